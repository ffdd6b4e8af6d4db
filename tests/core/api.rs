//! The API in-process: versions, bad input in Ironic's error shape, the lifecycle over plain
//! HTTP, and 50 concurrent requests on one node.

use std::collections::BTreeSet;

use ironcast::store::Store;
use serde_json::{json, Value};

use crate::support::{api, api_with, fault, settings};

async fn create(api: &crate::support::Api, name: &str) -> String {
    let (s, n) = api
        .call(
            "POST",
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": name})),
        )
        .await;
    assert_eq!(s, 201, "{n}");
    n["uuid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn api_version_negotiation_and_documents() {
    let api = api().await;
    let get = |v: Option<&'static str>, path: &'static str| {
        let mut req = api.http.get(format!("{}{path}", api.url));
        if let Some(v) = v {
            req = req.header("X-OpenStack-Ironic-API-Version", v);
        }
        req.send()
    };
    let max = ironcast::api::version::MAX.to_string();
    let r = get(None, "/").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-openstack-ironic-api-minimum-version"], "1.1");
    assert_eq!(
        r.headers()["x-openstack-ironic-api-maximum-version"],
        max.as_str()
    );
    assert_eq!(r.headers()["x-openstack-ironic-api-version"], "1.1");
    assert!(r.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req-"));
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["default_version"]["version"], max.as_str());
    assert_eq!(doc["default_version"]["min_version"], "1.1");
    let r = get(Some("latest"), "/v1").await.unwrap();
    assert_eq!(r.headers()["x-openstack-ironic-api-version"], max.as_str());
    let doc: Value = r.json().await.unwrap();
    assert!(doc["nodes"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with("/v1/nodes/"));
    for (v, want) in [
        ("1.999", "minor version is not supported"),
        ("1.0", "minor version is not supported"),
        ("2.0", "Mutually exclusive versions requested"),
        (
            "garbage",
            "Invalid value for X-OpenStack-Ironic-API-Version header",
        ),
    ] {
        let r = get(Some(v), "/v1/nodes").await.unwrap();
        assert_eq!(r.status(), 406, "{v}");
        assert_eq!(
            r.headers()["x-openstack-ironic-api-maximum-version"],
            max.as_str()
        );
        let body: Value = r.json().await.unwrap();
        let inner: Value = serde_json::from_str(body["error_message"].as_str().unwrap()).unwrap();
        assert_eq!(inner["code"], 406);
        assert!(
            inner["description"].as_str().unwrap().contains(want),
            "{inner}"
        );
    }
    // At 1.1 a node shows the old field set, and `available` is spelled null.
    let id = create(&api, "old").await;
    let n: Value = get(Some("1.1"), "/v1/nodes")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(n["nodes"][0].get("name").is_none(), "{n}");
    let one: Value = api
        .http
        .get(format!("{}/v1/nodes/{id}", api.url))
        .header("X-OpenStack-Ironic-API-Version", "1.1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(one.get("deploy_interface").is_none());
    assert_eq!(one["provision_state"], "enroll");
    let (s, d) = api.call("GET", "/v1/drivers", None).await;
    assert_eq!(s, 200);
    assert_eq!(d["drivers"][0]["name"], "fake-hardware");
}

#[tokio::test]
async fn api_bad_input_gets_ironic_shaped_4xx() {
    let api = api().await;
    let id = create(&api, "n1").await;
    let raw = |method: reqwest::Method, path: String, body: &'static str| {
        api.http
            .request(method, format!("{}{path}", api.url))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    // Malformed JSON: Ironic answers 500 here; a client error is the honest answer.
    let r = raw(
        reqwest::Method::POST,
        "/v1/nodes".into(),
        "{\"driver\": \"fake-hardware\",,}",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let msg = fault(&r.json().await.unwrap());
    assert!(msg.starts_with("Invalid JSON in request body"), "{msg}");
    let r = raw(
        reqwest::Method::PATCH,
        format!("/v1/nodes/{id}"),
        "[{\"op\": ",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    let invalid_state = format!(
        "The requested action \"active\" can not be performed on node \"{id}\" while it is in state \"enroll\"."
    );
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "POST",
            "/v1/nodes".into(),
            json!({"driver": "fake-hardware", "colour": "red"}),
            400,
            "Unknown attribute for argument node: colour",
        ),
        (
            "POST",
            "/v1/nodes".into(),
            json!({"name": "x"}),
            400,
            "driver is missing",
        ),
        (
            "POST",
            "/v1/nodes".into(),
            json!({"driver": "no-such-driver"}),
            400,
            "No conductor service registered which supports driver no-such-driver",
        ),
        (
            "POST",
            "/v1/nodes".into(),
            json!({"driver": "fake-hardware", "name": "n1"}),
            409,
            "A node with name n1 already exists.",
        ),
        (
            "POST",
            "/v1/nodes".into(),
            json!({"driver": "fake-hardware", "properties": [1]}),
            400,
            "properties: [1] is not a JSON object",
        ),
        (
            "PATCH",
            format!("/v1/nodes/{id}"),
            json!([{"op": "add", "path": "/no_such_field", "value": 1}]),
            400,
            "Cannot patch /no_such_field. Only the following can be updated: automated_clean,",
        ),
        (
            "PATCH",
            format!("/v1/nodes/{id}"),
            json!([{"op": "frobnicate", "path": "/name"}]),
            400,
            "'frobnicate' is not one of ['add', 'replace', 'remove']",
        ),
        (
            "PATCH",
            format!("/v1/nodes/{id}"),
            json!([{"op": "remove", "path": "/extra/nope"}]),
            400,
            "can't remove a non-existent object 'nope'",
        ),
        (
            "PATCH",
            format!("/v1/nodes/{id}"),
            json!([{"op": "replace", "path": "/maintenance", "value": "maybe"}]),
            400,
            "maintenance: \"maybe\" is not a boolean",
        ),
        (
            "PATCH",
            format!("/v1/nodes/{id}"),
            json!({"op": "add"}),
            400,
            "must be a JSON array",
        ),
        (
            "PUT",
            format!("/v1/nodes/{id}/states/provision"),
            json!({"target": "active"}),
            400,
            &invalid_state,
        ),
        (
            "PUT",
            format!("/v1/nodes/{id}/states/provision"),
            json!({"target": "fly"}),
            400,
            "\"fly\" is not a valid provision target",
        ),
        (
            "PUT",
            format!("/v1/nodes/{id}/states/provision"),
            json!({"target": "manage", "speed": 9}),
            400,
            "Unknown attribute for provision request: speed",
        ),
        (
            "PUT",
            format!("/v1/nodes/{id}/states/power"),
            json!({"target": "power sideways"}),
            400,
            "is not a valid power target",
        ),
        (
            "GET",
            "/v1/nodes/00000000-1111-2222-3333-444444444444".into(),
            Value::Null,
            404,
            "Node 00000000-1111-2222-3333-444444444444 could not be found.",
        ),
        (
            "GET",
            "/v1/nodes/no-such-node".into(),
            Value::Null,
            404,
            "Node no-such-node could not be found.",
        ),
        (
            "PUT",
            "/v1/nodes/no-such-node/states/provision".into(),
            json!({"target": "manage"}),
            404,
            "Node no-such-node could not be found.",
        ),
        (
            "DELETE",
            "/v1/nodes/no-such-node".into(),
            Value::Null,
            404,
            "could not be found",
        ),
        (
            "GET",
            "/v1/nodes?limit=0".into(),
            Value::Null,
            400,
            "Limit must be positive",
        ),
        (
            "GET",
            "/v1/nodes?sort_key=colour".into(),
            Value::Null,
            400,
            "invalid field for sorting",
        ),
        (
            "GET",
            "/v1/nodes?sort_dir=up".into(),
            Value::Null,
            400,
            "Invalid sort direction: up",
        ),
        (
            "GET",
            "/v1/nodes?fields=uuid,colour".into(),
            Value::Null,
            400,
            "Field(s) \"colour\" are not valid",
        ),
        (
            "GET",
            "/v1/nodes?marker=nope".into(),
            Value::Null,
            400,
            "Expected UUID for marker: nope",
        ),
        (
            "GET",
            "/v1/nodes/n1/frobs".into(),
            Value::Null,
            404,
            "is not part of this API",
        ),
        (
            "POST",
            "/v1/ports".into(),
            json!({"address": "52:54:00:zz:00:01", "node_uuid": id}),
            400,
            "Expected a MAC address but received 52:54:00:zz:00:01",
        ),
        (
            "POST",
            "/v1/ports".into(),
            json!({"address": "52:54:00:00:00:01", "node_uuid": "ghost"}),
            400,
            "Expected a UUID but received ghost.",
        ),
        (
            "POST",
            "/v1/ports".into(),
            json!({"address": "52:54:00:00:00:01", "node_uuid": "d53bcc37-86d7-4f68-8d9f-736bc68ca429"}),
            400,
            "Node d53bcc37-86d7-4f68-8d9f-736bc68ca429 could not be found.",
        ),
    ];
    for (method, path, body, status, want) in cases {
        let body = if body.is_null() { None } else { Some(body) };
        let (s, b) = api.call(method, &path, body).await;
        assert_eq!(s, status, "{method} {path}: {b}");
        let msg = fault(&b);
        assert!(
            msg.contains(want),
            "{method} {path}: {msg:?} lacks {want:?}"
        );
    }
    // The node was not changed by any of the refused requests.
    let (_, n) = api.call("GET", &format!("/v1/nodes/{id}"), None).await;
    assert_eq!(n["provision_state"], "enroll");
    assert_eq!(n["extra"], json!({}));
    assert_eq!(n["maintenance"], false);
    assert!(n["reservation"].is_null());
}

#[tokio::test]
async fn api_lifecycle_patch_ports_history() {
    let api = api().await;
    let (s, n) = api
        .call(
            "POST",
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "life",
                        "driver_info": {"redfish_address": "http://bmc", "redfish_password": "pw"}})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(n["driver_info"]["redfish_password"], "******");
    assert_eq!(n["driver_info"]["redfish_address"], "http://bmc");
    let id = n["uuid"].as_str().unwrap().to_string();
    // The secret is stored, only masked on the way out.
    let stored = api.conductor.store().node(&id).await.unwrap();
    assert_eq!(stored.driver_info["redfish_password"], "pw");

    let (s, n) = api
        .call(
            "PATCH",
            "/v1/nodes/life",
            Some(json!([
                {"op": "add", "path": "/instance_info/boot_iso", "value": "http://x/live.iso"},
                {"op": "add", "path": "/instance_info/kernel_args", "value": {"console": "ttyS0"}},
                {"op": "add", "path": "/instance_info/kernel_args/quiet", "value": true},
                {"op": "replace", "path": "/description", "value": "rack 4"},
                {"op": "remove", "path": "/driver_info/redfish_password"},
            ])),
        )
        .await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(
        n["instance_info"]["kernel_args"],
        json!({"console": "ttyS0", "quiet": true})
    );
    assert_eq!(n["description"], "rack 4");
    assert!(n["driver_info"].get("redfish_password").is_none());

    let (s, p) = api
        .call(
            "POST",
            "/v1/ports",
            Some(json!({"address": "52:54:00:AA:BB:01", "node_uuid": id})),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["address"], "52:54:00:aa:bb:01");
    let (s, _) = api
        .call(
            "POST",
            "/v1/ports",
            Some(json!({"address": "52:54:00:aa:bb:01", "node_uuid": id})),
        )
        .await;
    assert_eq!(s, 409);
    let (_, ports) = api
        .call("GET", &format!("/v1/nodes/{id}/ports"), None)
        .await;
    assert_eq!(ports["ports"].as_array().unwrap().len(), 1);

    for (target, want) in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "active"),
    ] {
        let r = api
            .http
            .put(format!("{}/v1/nodes/{id}/states/provision", api.url))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .json(&json!({"target": target}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{target}");
        assert!(r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/v1/nodes/{id}/states")));
        api.wait_state(&id, want, 20).await;
    }
    let (_, st) = api
        .call("GET", &format!("/v1/nodes/{id}/states"), None)
        .await;
    assert_eq!(st["power_state"], "power on");
    assert!(st["target_provision_state"].is_null());
    // A deployed node cannot be deleted.
    let (s, b) = api.call("DELETE", &format!("/v1/nodes/{id}"), None).await;
    assert_eq!(s, 400);
    assert!(fault(&b).contains("while it is in state \"active\""));
    let (s, _) = api
        .call(
            "PUT",
            &format!("/v1/nodes/{id}/states/provision"),
            Some(json!({"target": "rebuild"})),
        )
        .await;
    assert_eq!(s, 202);
    api.wait_state(&id, "active", 20).await;
    let (s, _) = api
        .call(
            "PUT",
            &format!("/v1/nodes/{id}/states/provision"),
            Some(json!({"target": "deleted"})),
        )
        .await;
    assert_eq!(s, 202);
    let n = api.wait_state(&id, "available", 20).await;
    assert_eq!(n["power_state"], "power off");

    let (s, _) = api
        .call(
            "PUT",
            &format!("/v1/nodes/{id}/states/power"),
            Some(json!({"target": "power on"})),
        )
        .await;
    assert_eq!(s, 202);
    for _ in 0..200 {
        let (_, st) = api
            .call("GET", &format!("/v1/nodes/{id}/states"), None)
            .await;
        if st["power_state"] == "power on" && st["target_power_state"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (_, st) = api
        .call("GET", &format!("/v1/nodes/{id}/states"), None)
        .await;
    assert_eq!(st["power_state"], "power on");

    let (_, v) = api
        .call("GET", &format!("/v1/nodes/{id}/validate"), None)
        .await;
    assert_eq!(v["deploy"]["result"], true);
    assert_eq!(v["power"]["result"], true);

    let (_, h) = api
        .call("GET", &format!("/v1/nodes/{id}/history"), None)
        .await;
    let events: Vec<String> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let joined = events.join("\n");
    for want in [
        "manage : enroll -> verifying",
        "deploying done : deploying -> active",
        "set_boot_device: disk, persistent",
        "rebuild : active -> deploying",
        "deleting done : deleting -> cleaning",
    ] {
        assert!(joined.contains(want), "history lacks {want:?}:\n{joined}");
    }

    // List: brief entries, fields, paging, sorting.
    for name in ["b-node", "a-node"] {
        create(&api, name).await;
    }
    let (_, l) = api.call("GET", "/v1/nodes?limit=2", None).await;
    assert_eq!(l["nodes"].as_array().unwrap().len(), 2);
    assert!(l["nodes"][0].get("driver_info").is_none());
    let next = l["next"].as_str().unwrap();
    let (_, l2) = api.call("GET", &next[api.url.len()..], None).await;
    assert_eq!(l2["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(l2["nodes"][0]["name"], "a-node");
    let (_, l) = api
        .call(
            "GET",
            "/v1/nodes?sort_key=name&sort_dir=desc&fields=name,driver",
            None,
        )
        .await;
    let names: Vec<&str> = l["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["life", "b-node", "a-node"]);
    assert_eq!(l["nodes"][0]["driver"], "fake-hardware");
    let (_, d) = api.call("GET", "/v1/nodes/detail", None).await;
    assert_eq!(
        d["nodes"][0]["driver_info"]["redfish_address"],
        "http://bmc"
    );

    let (s, _) = api.call("DELETE", "/v1/nodes/a-node", None).await;
    assert_eq!(s, 204);
    let (s, _) = api.call("GET", "/v1/nodes/a-node", None).await;
    assert_eq!(s, 404);
}

/// 50 concurrent PATCH and provision requests on one node: each answer is a success or a 409,
/// exactly one deploy wins, and every PATCH that answered 200 is in the final document.
#[tokio::test]
async fn api_fifty_concurrent_requests_on_one_node() {
    let mut s = settings("test-conductor");
    s.fake_deploy_delay_ms = 4000;
    s.lock_wait_ms = 1500;
    let api = api_with(s).await;
    let id = create(&api, "busy").await;
    for (target, want) in [("manage", "manageable"), ("provide", "available")] {
        let (st, _) = api
            .call(
                "PUT",
                &format!("/v1/nodes/{id}/states/provision"),
                Some(json!({"target": target})),
            )
            .await;
        assert_eq!(st, 202);
        api.wait_state(&id, want, 20).await;
    }
    // Deploys are sent once a first PATCH has landed, so PATCHes and deploys really interleave
    // (a deploy sent first would lock the node for 4 s and starve every PATCH).
    let (landed_tx, landed_rx) = tokio::sync::watch::channel(false);
    let landed_tx = std::sync::Arc::new(landed_tx);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let http = api.http.clone();
        let url = api.url.clone();
        let id = id.clone();
        let landed_tx = landed_tx.clone();
        let mut landed_rx = landed_rx.clone();
        tasks.push(tokio::spawn(async move {
            let deploy = i % 5 == 0;
            let req = if deploy {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    landed_rx.wait_for(|v| *v),
                )
                .await;
                http.put(format!("{url}/v1/nodes/{id}/states/provision"))
                    .json(&json!({"target": "active"}))
            } else {
                http.patch(format!("{url}/v1/nodes/{id}"))
                    .json(&json!([{"op": "add", "path": format!("/extra/k{i}"), "value": i}]))
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            if !deploy && status == 200 {
                let _ = landed_tx.send(true);
            }
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (i, if deploy { "deploy" } else { "patch" }, status, body)
        }));
    }
    let mut patched = BTreeSet::new();
    let mut deploys_won = 0;
    let mut conflicts = 0;
    for t in tasks {
        let (i, kind, status, body) = t.await.unwrap();
        match (kind, status) {
            ("patch", 200) => {
                patched.insert(format!("k{i}"));
            }
            ("deploy", 202) => deploys_won += 1,
            (_, 409) => {
                conflicts += 1;
                assert!(
                    fault(&body).contains("is locked by host test-conductor"),
                    "{body}"
                );
            }
            other => panic!("request {i} answered {other:?}: {body}"),
        }
    }
    eprintln!(
        "50 requests: {} PATCH ok, {deploys_won} deploy ok, {conflicts} answered 409",
        patched.len()
    );
    assert_eq!(deploys_won, 1, "exactly one deploy can start");
    assert!(
        !patched.is_empty(),
        "PATCHes sent before any deploy must land"
    );
    assert!(
        conflicts > 0,
        "the deploy holds the lock for 4 s: someone must have waited in vain"
    );
    let n = api.wait_state(&id, "active", 30).await;
    let keys: BTreeSet<String> = n["extra"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, patched, "every acknowledged PATCH is kept, no other");
    assert!(n["target_provision_state"].is_null());
    assert!(n["last_error"].is_null());

    // Then 50 PATCHes alone, each a read-modify-write of the same `extra` document: a lost
    // update would drop a key whose PATCH was acknowledged.
    let mut tasks = Vec::new();
    for i in 100..150 {
        let http = api.http.clone();
        let url = format!("{}/v1/nodes/{id}", api.url);
        tasks.push(tokio::spawn(async move {
            let resp = http
                .patch(url)
                .json(&json!([{"op": "add", "path": format!("/extra/k{i}"), "value": i}]))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (i, status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut second = 0;
    for t in tasks {
        let (i, status, body) = t.await.unwrap();
        match status {
            200 => {
                patched.insert(format!("k{i}"));
                second += 1;
            }
            409 => assert!(fault(&body).contains("is locked by host"), "{body}"),
            other => panic!("PATCH {i} answered {other}: {body}"),
        }
    }
    eprintln!("50 PATCHes: {second} ok");
    assert!(second > 0);
    let (_, n) = api.call("GET", &format!("/v1/nodes/{id}"), None).await;
    let keys: BTreeSet<String> = n["extra"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, patched, "every acknowledged PATCH is kept, no other");
    assert_eq!(n["provision_state"], "active");
    assert!(n["reservation"].is_null());
}

/// A lock held by another conductor (another process sharing the database) answers 409 with
/// its holder, survives this conductor's start-up recovery, and once released the node works.
#[tokio::test]
async fn api_lock_of_another_conductor_is_409_and_survives_recovery() {
    let mut s = settings("test-conductor");
    s.lock_wait_ms = 100;
    let api = api_with(s).await;
    let id = create(&api, "shared").await;
    let store = api.conductor.store();
    assert!(store.reserve_node(&id, "other-host").await.unwrap());
    let (status, body) = api
        .call(
            "PATCH",
            "/v1/nodes/shared",
            Some(json!([{"op": "add", "path": "/extra/a", "value": 1}])),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        fault(&body),
        format!("Node {id} is locked by host other-host, please retry after the current operation is completed.")
    );
    let (status, _) = api
        .call(
            "PUT",
            "/v1/nodes/shared/states/provision",
            Some(json!({"target": "manage"})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(api.conductor.recover().await.unwrap(), 0);
    let n = store.node(&id).await.unwrap();
    assert_eq!(n.reservation.as_deref(), Some("other-host"));
    assert_eq!(n.provision_state, "enroll");
    assert!(store.release_node(&id, "other-host").await.unwrap());
    let (status, _) = api
        .call(
            "PATCH",
            "/v1/nodes/shared",
            Some(json!([{"op": "add", "path": "/extra/a", "value": 1}])),
        )
        .await;
    assert_eq!(status, 200);
}

/// A node waiting for a call-back is finished by `finish_wait`: success makes it active, a
/// failure puts it in deploy failed with the reason; abort is accepted only while waiting.
#[tokio::test]
async fn api_wait_callback_finish_and_abort() {
    let api = api().await;
    let store = api.conductor.store();
    for (name, outcome) in [
        ("ok", Ok(())),
        ("bad", Err("agent: checksum mismatch".to_string())),
    ] {
        let id = create(&api, name).await;
        let mut n = store.node(&id).await.unwrap();
        n.provision_state = "wait call-back".into();
        n.target_provision_state = Some("active".into());
        save_as_fixture(store, &n).await;
        let done = api
            .conductor
            .finish_wait(name, outcome.clone())
            .await
            .unwrap();
        match outcome {
            Ok(()) => assert_eq!(done.provision_state, "active"),
            Err(why) => {
                assert_eq!(done.provision_state, "deploy failed");
                assert_eq!(done.last_error.as_deref(), Some(why.as_str()));
            }
        }
        assert!(done.target_provision_state.is_none());
        assert!(store.node(&id).await.unwrap().reservation.is_none());
        // Not waiting any more: a second call-back is refused.
        assert!(api.conductor.finish_wait(name, Ok(())).await.is_err());
    }
    let id = create(&api, "aborted").await;
    let (s, b) = api
        .call(
            "PUT",
            "/v1/nodes/aborted/states/provision",
            Some(json!({"target": "abort"})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(fault(&b).contains("\"abort\" can not be performed"));
    let mut n = store.node(&id).await.unwrap();
    n.provision_state = "wait call-back".into();
    save_as_fixture(store, &n).await;
    let (s, _) = api
        .call(
            "PUT",
            "/v1/nodes/aborted/states/provision",
            Some(json!({"target": "abort"})),
        )
        .await;
    assert_eq!(s, 202);
    let n = api.wait_state(&id, "deploy failed", 10).await;
    assert!(n["last_error"].as_str().unwrap().contains("aborted"), "{n}");
}

/// Start-up recovery handles every interrupted node, however many, each to its own failure
/// state with a last_error, and frees this conductor's locks (not another's).
#[tokio::test]
async fn api_recovery_has_no_cap() {
    let api = api().await;
    let store = api.conductor.store();
    let cases = [
        ("deploying", "deploy failed"),
        ("wait call-back", "deploy failed"),
        ("deleting", "error"),
        ("cleaning", "clean failed"),
        ("clean wait", "clean failed"),
        ("verifying", "enroll"),
        ("inspecting", "inspect failed"),
        ("inspect wait", "inspect failed"),
    ];
    let mut expected = Vec::new();
    for i in 0..160 {
        let (from, to) = cases[i % cases.len()];
        let id = create(&api, &format!("r{i}")).await;
        let mut n = store.node(&id).await.unwrap();
        n.provision_state = from.into();
        n.target_provision_state = Some("active".into());
        save_as_fixture(store, &n).await;
        if from != "wait call-back" && from != "clean wait" && from != "inspect wait" {
            assert!(store.reserve_node(&id, "test-conductor").await.unwrap());
        }
        expected.push((id, from, to));
    }
    let stable = create(&api, "resting").await;
    assert_eq!(api.conductor.recover().await.unwrap(), 160);
    for (id, from, to) in expected {
        let n = store.node(&id).await.unwrap();
        assert_eq!(n.provision_state, to, "{from}");
        assert!(n.reservation.is_none());
        assert!(n.target_provision_state.is_none());
        let err = n.last_error.unwrap();
        assert!(
            err.contains(&format!("restarted while the node was in \"{from}\"")),
            "{err}"
        );
    }
    let n = store.node(&stable).await.unwrap();
    assert_eq!(n.provision_state, "enroll");
    assert!(n.last_error.is_none());
}

/// Saves `n` as a test fixture would: under a lock of its own, released at once.
async fn save_as_fixture(store: &Store, n: &ironcast::store::Node) {
    let lock = store.lock_node(&n.uuid, "fixture").await.unwrap().unwrap();
    store.save_node(&lock, n).await.unwrap();
    assert!(lock.release().await.unwrap());
}

/// Each state-changing request, cancelled at each of its first await points as hyper does when
/// the client hangs up: afterwards the node's lock is free and the node is either unchanged or
/// finished (never half-moved), and the next request is served, not refused as locked.
#[tokio::test]
async fn api_cancelled_requests_leave_no_lock() {
    use futures::FutureExt;
    use tower::ServiceExt;

    let api = api().await;
    let router = ironcast::api::app(ironcast::api::AppState {
        conductor: api.conductor.clone(),
        public_url: String::new(),
        max_limit: 1000,
        auth: None,
    });
    let provision = |target: &str| json!({ "target": target });
    // (method, path suffix, body, state before, stable state after)
    let steps = [
        (
            "PUT",
            "/states/provision",
            provision("manage"),
            "enroll",
            "manageable",
        ),
        (
            "PATCH",
            "",
            json!([{"op": "add", "path": "/instance_info/boot_iso", "value": "http://x/live.iso"}]),
            "manageable",
            "manageable",
        ),
        (
            "PUT",
            "/states/provision",
            provision("provide"),
            "manageable",
            "available",
        ),
        (
            "PUT",
            "/states/provision",
            provision("active"),
            "available",
            "active",
        ),
        (
            "PUT",
            "/states/power",
            json!({"target": "power off"}),
            "active",
            "active",
        ),
        (
            "PUT",
            "/maintenance",
            json!({"reason": "r"}),
            "active",
            "active",
        ),
        ("DELETE", "/maintenance", Value::Null, "active", "active"),
        (
            "PUT",
            "/states/provision",
            provision("deleted"),
            "active",
            "available",
        ),
    ];
    for polls in 1..=10 {
        let id = create(&api, &format!("cancel{polls}")).await;
        for (method, suffix, body, before, after) in &steps {
            let path = format!("/v1/nodes/{id}{suffix}");
            let req = axum::http::Request::builder()
                .method(*method)
                .uri(&path)
                .header("X-OpenStack-Ironic-API-Version", "latest")
                .header("Content-Type", "application/json");
            let raw = if body.is_null() {
                axum::body::Body::empty()
            } else {
                axum::body::Body::from(body.to_string())
            };
            let mut fut = router.clone().oneshot(req.body(raw).unwrap()).boxed();
            let mut finished = false;
            for _ in 0..polls {
                if futures::poll!(&mut fut).is_ready() {
                    finished = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            drop(fut); // the client hung up
            let n = wait_settled(&api, &id).await;
            let state = n["provision_state"].as_str().unwrap();
            assert!(
                state == *before || state == *after,
                "{method} {path} cancelled after {polls} polls (finished: {finished}): node in {state}, want {before} or {after}: {n}"
            );
            // The node is not left locked: the request, sent again, is served. (The cancelled
            // one may still be running detached and win the race: then the retry finds the
            // node already moved on, which Ironic answers 400.)
            if state == *before {
                let body = (!body.is_null()).then(|| body.clone());
                let (status, resp) = api.call(method, &path, body).await;
                assert!(
                    status < 300
                        || (status == 400 && fault(&resp).contains("can not be performed")),
                    "{method} {path} after a cancel: {status} {resp}"
                );
            }
            let n = api.wait_state(&id, after, 20).await;
            assert!(n["reservation"].is_null());
        }
    }
}

/// Polls the node until nobody holds it and it rests in a stable state (no worker running).
async fn wait_settled(api: &crate::support::Api, id: &str) -> Value {
    let stable = [
        "enroll",
        "manageable",
        "available",
        "active",
        "deploy failed",
        "clean failed",
        "error",
        "inspect failed",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, n) = api.call("GET", &format!("/v1/nodes/{id}"), None).await;
        let state = n["provision_state"].as_str().unwrap_or("");
        if n["reservation"].is_null() && stable.contains(&state) {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {id} never settled: {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A worker task that panics (the `worker-step` fail point) leaves its node neither locked
/// nor in a transient state: it goes to the state's failure state with the reason, and the
/// next request works.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn api_worker_panic_frees_the_node() {
    use ironcast::failpoint::{set, Action};

    let api = api().await;
    let id = create(&api, "panics").await;
    set("worker-step", Action::Panic);
    let (s, _) = api
        .call(
            "PUT",
            "/v1/nodes/panics/states/provision",
            Some(json!({"target": "manage"})),
        )
        .await;
    assert_eq!(s, 202);
    let n = api.wait_state(&id, "enroll", 20).await;
    let err = n["last_error"].as_str().unwrap();
    assert!(
        err.contains("internal error while in \"verifying\"") && err.contains("fail point"),
        "{err}"
    );
    set("worker-step", Action::Off);
    let (s, _) = api
        .call(
            "PUT",
            "/v1/nodes/panics/states/provision",
            Some(json!({"target": "manage"})),
        )
        .await;
    assert_eq!(s, 202);
    api.wait_state(&id, "manageable", 20).await;
}

/// A node field newer than an asked-for microversion is 406 when set (Ironic); a request
/// without a version header may set it. Protected nodes refuse undeploy with 403.
#[tokio::test]
async fn api_newer_fields_need_their_version_unless_none_is_asked() {
    let api = api().await;
    let post = |v: Option<&'static str>, body: Value| {
        let mut req = api.http.post(format!("{}/v1/nodes", api.url)).json(&body);
        if let Some(v) = v {
            req = req.header("X-OpenStack-Ironic-API-Version", v);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let gold = json!({"driver": "fake-hardware", "resource_class": "gold"});
    assert_eq!(post(Some("1.20"), gold.clone()).await, 406);
    assert_eq!(post(Some("1.21"), gold.clone()).await, 201);
    assert_eq!(post(None, gold).await, 201);
    let long = json!({"driver": "fake-hardware", "resource_class": "x".repeat(81)});
    assert_eq!(post(Some("1.21"), long).await, 400);

    let id = create(&api, "guarded").await;
    let states = format!("/v1/nodes/{id}/states/provision");
    let protect = |on: bool| json!([{"op": "replace", "path": "/protected", "value": on}]);
    let path = format!("/v1/nodes/{id}");
    let (s, _) = api.call("PATCH", &path, Some(protect(true))).await;
    assert_eq!(s, 409, "only a deployed node can be protected");
    for target in ["manage", "provide", "active"] {
        let (s, _) = api
            .call("PUT", &states, Some(json!({"target": target})))
            .await;
        assert_eq!(s, 202);
        let want = match target {
            "manage" => "manageable",
            "provide" => "available",
            _ => "active",
        };
        api.wait_state(&id, want, 30).await;
    }
    let reason = json!([{"op": "add", "path": "/protected_reason", "value": "prod"}]);
    assert_eq!(api.call("PATCH", &path, Some(reason.clone())).await.0, 400);
    let (s, _) = api.call("PATCH", &path, Some(protect(true))).await;
    assert_eq!(s, 200);
    let (s, n) = api.call("PATCH", &path, Some(reason)).await;
    assert_eq!((s, n["protected_reason"].as_str()), (200, Some("prod")));
    let (s, _) = api
        .call("PUT", &states, Some(json!({"target": "deleted"})))
        .await;
    assert_eq!(s, 403);
    let (s, n) = api.call("PATCH", &path, Some(protect(false))).await;
    assert_eq!(
        (s, &n["protected_reason"]),
        (200, &Value::Null),
        "cleared with the flag"
    );
}

/// Boot device, console and VIFs of a fake-hardware node.
#[tokio::test]
async fn api_boot_device_console_and_vifs() {
    let api = api().await;
    let id = create(&api, "managed").await;
    let boot = format!("/v1/nodes/{id}/management/boot_device");
    let (s, b) = api.call("GET", &boot, None).await;
    assert_eq!(
        (s, &b["boot_device"], &b["persistent"]),
        (200, &json!("pxe"), &json!(false))
    );
    let set = json!({"boot_device": "cdrom", "persistent": true});
    assert_eq!(api.call("PUT", &boot, Some(set)).await.0, 204);
    let (_, b) = api.call("GET", &boot, None).await;
    assert_eq!(
        (&b["boot_device"], &b["persistent"]),
        (&json!("cdrom"), &json!(true))
    );
    let (s, _) = api
        .call("PUT", &boot, Some(json!({"boot_device": "floppy"})))
        .await;
    assert_eq!(s, 400);
    let (_, sup) = api.call("GET", &format!("{boot}/supported"), None).await;
    assert!(sup["supported_boot_devices"]
        .as_array()
        .unwrap()
        .contains(&json!("pxe")));

    let console = format!("/v1/nodes/{id}/states/console");
    assert_eq!(
        api.call("PUT", &console, Some(json!({"enabled": true})))
            .await
            .0,
        202
    );
    let (_, c) = api.call("GET", &console, None).await;
    assert_eq!(c["console_enabled"], true);
    assert!(c["console_info"].is_object());

    let vifs = format!("/v1/nodes/{id}/vifs");
    let vif = json!({"id": "3b1bd2a0-7a3d-4c5e-9f5e-6f1f0c8a1d11"});
    assert_eq!(
        api.call("POST", &vifs, Some(vif.clone())).await.0,
        400,
        "no port yet"
    );
    let port = json!({"node_uuid": id, "address": "52:54:00:12:34:56"});
    assert_eq!(api.call("POST", "/v1/ports", Some(port)).await.0, 201);
    assert_eq!(api.call("POST", &vifs, Some(vif.clone())).await.0, 204);
    let (_, listed) = api.call("GET", &vifs, None).await;
    assert_eq!(listed["vifs"], json!([{"id": vif["id"]}]));
    let one = format!("{vifs}/{}", vif["id"].as_str().unwrap());
    assert_eq!(api.call("DELETE", &one, None).await.0, 204);
    assert_eq!(
        api.call("DELETE", &one, None).await.0,
        400,
        "not attached any more"
    );
}
