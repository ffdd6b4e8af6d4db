//! BMC event subscriptions through Ironic's redfish vendor passthru, as baremetal-operator's
//! BMCEventSubscription controller calls them with gophercloud (`CreateSubscription` with
//! Redfish-named arguments, `GetAllSubscriptions`, `GetSubscription`, `DeleteSubscription`
//! with `{"id"}`), answers decoded into gophercloud's structs.
//!
//! sushy-tools (2.2.0 here) serves no EventService (`/redfish/v1/EventService` is 404), so the
//! BMC is a small fake imitating the DMTF Redfish EventService as iDRAC and iLO serve it
//! (DSP0268: the service root links `EventService`, whose `Subscriptions` collection takes a
//! POST of an EventDestination, answers 201 with a Location, lists members by `@odata.id`,
//! and deletes a member). It records what it was sent and the credentials it was sent with.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::gophercloud::{self as gc, decode};
use crate::support::{serve, Api};

const SUBS: &str = "/redfish/v1/EventService/Subscriptions";

#[derive(Default)]
struct Bmc {
    subscriptions: Mutex<Vec<Value>>,
    /// Every POSTed EventDestination, with the Authorization header it came with.
    posted: Mutex<Vec<(Value, Option<String>)>>,
}

type Shared = State<Arc<Bmc>>;

async fn root() -> Json<Value> {
    Json(json!({
        "@odata.id": "/redfish/v1/",
        "RedfishVersion": "1.15.0",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "EventService": {"@odata.id": "/redfish/v1/EventService"},
    }))
}

async fn event_service() -> Json<Value> {
    Json(json!({
        "@odata.id": "/redfish/v1/EventService",
        "ServiceEnabled": true,
        "EventTypesForSubscription": ["Alert", "StatusChange"],
        "Subscriptions": {"@odata.id": SUBS},
    }))
}

async fn list(State(bmc): Shared) -> Json<Value> {
    let subs = bmc.subscriptions.lock().unwrap();
    let members: Vec<Value> = subs
        .iter()
        .map(|s| json!({"@odata.id": s["@odata.id"]}))
        .collect();
    Json(json!({
        "@odata.id": SUBS,
        "@odata.type": "#EventDestinationCollection.EventDestinationCollection",
        "Name": "Event Subscriptions Collection",
        "Members": members,
        "Members@odata.count": subs.len(),
    }))
}

async fn create(
    State(bmc): Shared,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    bmc.posted.lock().unwrap().push((body.clone(), auth));
    let mut subs = bmc.subscriptions.lock().unwrap();
    let id = format!("{}", subs.len() + 1);
    let path = format!("{SUBS}/{id}");
    let mut member = body;
    member["@odata.id"] = json!(path);
    member["Id"] = json!(id);
    member.as_object_mut().unwrap().remove("HttpHeaders"); // write-only in Redfish
    subs.push(member.clone());
    (StatusCode::CREATED, [("Location", path)], Json(member))
}

async fn member(State(bmc): Shared, Path(id): Path<String>) -> impl IntoResponse {
    let subs = bmc.subscriptions.lock().unwrap();
    match subs.iter().find(|s| s["Id"] == id.as_str()) {
        Some(s) => Json(s.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn remove(State(bmc): Shared, Path(id): Path<String>) -> StatusCode {
    let mut subs = bmc.subscriptions.lock().unwrap();
    let before = subs.len();
    subs.retain(|s| s["Id"] != id.as_str());
    if subs.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn start_bmc() -> (String, Arc<Bmc>) {
    let bmc = Arc::new(Bmc::default());
    let app = Router::new()
        .route("/redfish/v1", get(root))
        .route("/redfish/v1/", get(root))
        .route("/redfish/v1/EventService", get(event_service))
        .route(SUBS, get(list).post(create))
        .route(&format!("{SUBS}/{{id}}"), get(member).delete(remove))
        .with_state(bmc.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), bmc)
}

#[tokio::test(flavor = "multi_thread")]
async fn bmo_event_subscriptions_through_vendor_passthru_reach_the_bmc_event_service() {
    let dir = tempfile::tempdir().unwrap();
    let (bmc_url, bmc) = start_bmc().await;
    let server = serve(dir.path());
    let api = Api::new(&server);
    let node = api
        .register("events", &bmc_url, "/redfish/v1/Systems/1", json!({}))
        .await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    let passthru = |method: &str| format!("/v1/nodes/{uuid}/vendor_passthru?method={method}");

    let methods = api
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/vendor_passthru/methods"),
            None,
            200,
        )
        .await;
    let methods: gc::VendorPassthruMethods = decode("methods", &methods);
    assert_eq!(methods.create_subscription.unwrap().http_methods, ["POST"]);

    // gophercloud's CreateSubscriptionOpts: Redfish's names.
    let created = api
        .expect(
            "POST",
            &passthru("create_subscription"),
            Some(json!({
                "Destination": "https://events.example.com/metal3",
                "EventTypes": ["Alert"],
                "Context": "metal3~worker-0",
                "Protocol": "Redfish",
                "HttpHeaders": [{"X-Metal3-Token": "s3cret"}],
            })),
            200,
        )
        .await;
    let sub: gc::Subscription = decode("subscription", &created);
    assert_eq!(sub.destination, "https://events.example.com/metal3");
    assert_eq!(sub.context.as_deref(), Some("metal3~worker-0"));
    {
        let posted = bmc.posted.lock().unwrap();
        assert_eq!(posted.len(), 1);
        let (body, auth) = &posted[0];
        assert_eq!(body["Destination"], "https://events.example.com/metal3");
        assert_eq!(body["EventTypes"], json!(["Alert"]));
        assert_eq!(body["Protocol"], "Redfish");
        assert_eq!(body["HttpHeaders"], json!([{"X-Metal3-Token": "s3cret"}]));
        assert!(
            auth.as_deref().is_some_and(|a| a.starts_with("Basic ")),
            "{auth:?}"
        );
    }
    // A second one with Ironic's defaults (EventTypes ["Alert"], Protocol "Redfish").
    let second = api
        .expect(
            "POST",
            &passthru("create_subscription"),
            Some(json!({"Destination": "http://127.0.0.1:9/hook"})),
            200,
        )
        .await;
    let second: gc::Subscription = decode("subscription", &second);
    assert_eq!(second.event_types, Some(vec!["Alert".to_string()]));
    assert_eq!(second.protocol.as_deref(), Some("Redfish"));

    let all = api
        .expect("GET", &passthru("get_all_subscriptions"), None, 200)
        .await;
    let all: gc::AllSubscriptions = decode("all subscriptions", &all);
    assert_eq!(all.count, 2);
    assert_eq!(all.members.len(), 2);
    let one = api
        .expect(
            "GET",
            &passthru("get_subscription"),
            Some(json!({"id": sub.id})),
            200,
        )
        .await;
    let one: gc::Subscription = decode("subscription", &one);
    assert_eq!(one.id, sub.id);

    // gophercloud's DeleteSubscriptionOpts: {"id"}.
    let (status, body) = api
        .call(
            "DELETE",
            &passthru("delete_subscription"),
            Some(json!({"id": sub.id})),
        )
        .await;
    assert!(matches!(status, 200 | 204), "{status} {body}");
    let left: Vec<String> = bmc
        .subscriptions
        .lock()
        .unwrap()
        .iter()
        .map(|s| s["Id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [second.id.as_str()]);

    // Bad input says what was wrong; nothing reaches the BMC.
    let cases: [(&str, Value, &str); 3] = [
        (
            "create_subscription",
            json!({"EventTypes": ["Alert"]}),
            "Destination",
        ),
        (
            "create_subscription",
            json!({"Destination": "https://x/", "EventTypes": "Alert"}),
            "EventTypes",
        ),
        ("delete_subscription", json!({}), "id"),
    ];
    for (method, args, says) in cases {
        let verb = if method.starts_with("delete") {
            "DELETE"
        } else {
            "POST"
        };
        let (status, body) = api.call(verb, &passthru(method), Some(args.clone())).await;
        assert_eq!(status, 400, "{method} {args}: {body}");
        assert!(body.to_string().contains(says), "{method} {args}: {body}");
    }
    let (status, body) = api
        .call(
            "DELETE",
            &passthru("delete_subscription"),
            Some(json!({"id": "nope"})),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body.to_string().contains("nope"), "{body}");
    assert_eq!(bmc.posted.lock().unwrap().len(), 2);
}
