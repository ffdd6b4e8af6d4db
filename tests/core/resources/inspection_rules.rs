//! /v1/inspection_rules in-process (API 1.96): Ironic's fields, validation, error bodies and
//! version gates, and the rules applied when a fake-hardware node is inspected.

use serde_json::{json, Value};

use crate::support::{api, fault, Api};

async fn at(api: &Api, version: &str, method: &str, path: &str, body: Option<Value>) -> u16 {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = api
        .http
        .request(m, format!("{}{path}", api.url))
        .header("X-OpenStack-Ironic-API-Version", version);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().status().as_u16()
}

fn log_rule(extra: Value) -> Value {
    let mut r = json!({
        "description": "log the node",
        "conditions": [],
        "actions": [{"op": "log", "args": {"msg": "Node {node.uuid} is being inspected"}}],
        "phase": "main",
        "priority": 0,
        "sensitive": false,
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

#[tokio::test]
async fn inspection_rules_crud_validation_and_gates_as_ironic() {
    let api = api().await;
    // Before 1.96 the resource is not there: 404 for reads, 405 for writes.
    assert_eq!(
        at(&api, "1.95", "GET", "/v1/inspection_rules", None).await,
        404
    );
    assert_eq!(
        at(
            &api,
            "1.95",
            "POST",
            "/v1/inspection_rules",
            Some(log_rule(json!({})))
        )
        .await,
        405
    );

    let looped = json!([{"op": "eq", "args": ["{inventory.system.product_name}", "{item}"],
                         "loop": ["p1", "p2"], "multiple": "any"}]);
    let (s, created) = api
        .call(
            "POST",
            "/v1/inspection_rules",
            Some(log_rule(json!({"conditions": looped, "priority": 20}))),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let uuid = created["uuid"].as_str().unwrap().to_string();
    assert_eq!(created["conditions"], looped);
    assert_eq!(created["phase"], "main");
    assert!(created["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/inspection_rules/{uuid}")));

    // Sensitive rules never show their conditions and actions, and stay sensitive.
    let (s, secret) = api
        .call(
            "POST",
            "/v1/inspection_rules",
            Some(log_rule(json!({"sensitive": true}))),
        )
        .await;
    assert_eq!(s, 201);
    let secret_uuid = secret["uuid"].as_str().unwrap().to_string();
    let (_, shown) = api
        .call("GET", &format!("/v1/inspection_rules/{secret_uuid}"), None)
        .await;
    assert_eq!(shown["sensitive"], true);
    assert!(
        shown["conditions"].is_null() && shown["actions"].is_null(),
        "{shown}"
    );
    let (s, body) = api
        .call(
            "PATCH",
            &format!("/v1/inspection_rules/{secret_uuid}"),
            Some(json!([{"op": "replace", "path": "/sensitive", "value": false}])),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        fault(&body).contains("cannot have the sensitive flag unset"),
        "{body}"
    );

    // The list shows uuid, priority, phase, description (and links) unless detail=true.
    let (s, list) = api.call("GET", "/v1/inspection_rules", None).await;
    assert_eq!(s, 200);
    let first = &list["inspection_rules"][0];
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["description", "links", "phase", "priority", "uuid"]);
    let (_, detail) = api
        .call(
            "GET",
            "/v1/inspection_rules?detail=true&sort_key=priority&sort_dir=desc",
            None,
        )
        .await;
    assert_eq!(detail["inspection_rules"][0]["uuid"], uuid.as_str());
    assert!(detail["inspection_rules"][1]["actions"].is_null());
    let (s, body) = api
        .call("GET", "/v1/inspection_rules?sort_key=actions", None)
        .await;
    assert_eq!(s, 400);
    assert!(
        fault(&body).contains("actions is an invalid field for sorting"),
        "{body}"
    );
    let (_, paged) = api
        .call("GET", "/v1/inspection_rules?limit=1&phase=main", None)
        .await;
    let next = paged["next"].as_str().unwrap();
    assert!(
        next.contains("phase=main") && next.contains("limit=1"),
        "{next}"
    );

    // JSON-Patch, checked as a new rule is.
    let (s, patched) = api
        .call(
            "PATCH",
            &format!("/v1/inspection_rules/{uuid}"),
            Some(json!([
                {"op": "replace", "path": "/priority", "value": 200},
                {"op": "replace", "path": "/actions", "value": [
                    {"op": "set-attribute", "args": ["/properties/cpu_model", "cpu_xyz"]}]},
            ])),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["priority"], 200);
    assert_eq!(
        patched["actions"][0]["args"],
        json!(["/properties/cpu_model", "cpu_xyz"])
    );
    assert!(patched["updated_at"].is_string());
    let (s, body) = api
        .call(
            "PATCH",
            &format!("/v1/inspection_rules/{uuid}"),
            Some(json!([{"op": "replace", "path": "/priority", "value": 10000}])),
        )
        .await;
    assert_eq!(s, 400);
    assert!(fault(&body).contains("between 0 and 9999"), "{body}");

    // Bad rules: Ironic's words.
    for (bad, says) in [
        (
            log_rule(json!({"priority": -1})),
            "-1 is less than the minimum of 0",
        ),
        (
            log_rule(json!({"priority": 5000.5})),
            "5000.5 is not of type 'integer'",
        ),
        (
            log_rule(json!({"priority": 10000})),
            "Priority must be between 0 and 9999",
        ),
        (log_rule(json!({"phase": "late"})), "Invalid phase: late"),
        (
            log_rule(json!({"actions": [{"op": "explode", "args": {}}]})),
            "'explode' is not one of",
        ),
        (
            log_rule(json!({"actions": [{"op": "log", "args": {}}]})),
            "missing required argument(s): msg",
        ),
        (
            json!({"conditions": []}),
            "'actions' is a required property",
        ),
    ] {
        let (s, body) = api
            .call("POST", "/v1/inspection_rules", Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad} → {body}");
        assert!(fault(&body).contains(says), "{bad} → {body}");
    }

    let missing = uuid::Uuid::new_v4();
    let (s, body) = api
        .call("DELETE", &format!("/v1/inspection_rules/{missing}"), None)
        .await;
    assert_eq!(s, 404);
    assert!(
        fault(&body).contains(&format!("Rule {missing} could not be found")),
        "{body}"
    );
    let (s, _) = api
        .call("DELETE", &format!("/v1/inspection_rules/{uuid}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = api
        .call("GET", &format!("/v1/inspection_rules/{uuid}"), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn rules_are_applied_when_a_node_is_inspected() {
    let api = api().await;
    let (s, node) = api
        .call(
            "POST",
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "r1"})),
        )
        .await;
    assert_eq!(s, 201, "{node}");
    let uuid = node["uuid"].as_str().unwrap().to_string();
    let rules = [
        json!({"priority": 50, "conditions": [{"op": "!is-empty", "args": {"value": "{inventory[cpu][count]}"}}],
        "actions": [
            {"op": "set-attribute", "args": {"path": "/extra/cpus", "value": "{inventory[cpu][count]}"}},
            {"op": "add-trait", "args": {"name": "CUSTOM_INSPECTED"}},
            {"op": "set-capability", "args": {"name": "rack", "value": "r1"}},
            {"op": "set-plugin-data", "args": {"path": "rules.node", "value": "{node.uuid}"}},
        ]}),
        // Its condition does not hold: the fail action never runs.
        json!({"priority": 90, "conditions": [{"op": "eq", "args": {"values": ["a", "b"]}}],
               "actions": [{"op": "fail", "args": {"msg": "never"}}]}),
    ];
    for r in rules {
        let (s, body) = api.call("POST", "/v1/inspection_rules", Some(r)).await;
        assert_eq!(s, 201, "{body}");
    }
    let target = |t: &str| json!({"target": t});
    let states = format!("/v1/nodes/{uuid}/states/provision");
    assert_eq!(
        api.call("PUT", &states, Some(target("manage"))).await.0,
        202
    );
    api.wait_state(&uuid, "manageable", 30).await;
    assert_eq!(
        api.call("PUT", &states, Some(target("inspect"))).await.0,
        202
    );
    let node = api.wait_state(&uuid, "manageable", 30).await;
    let (_, data) = api
        .call("GET", &format!("/v1/nodes/{uuid}/inventory"), None)
        .await;
    let cpus = data["inventory"]["cpu"]["count"].clone();
    assert_eq!(
        node["extra"]["cpus"],
        Value::String(cpus.to_string()),
        "{node}"
    );
    assert!(
        node["properties"]["capabilities"]
            .as_str()
            .unwrap()
            .contains("rack:r1"),
        "{node}"
    );
    assert_eq!(data["plugin_data"]["rules"]["node"], uuid.as_str());
    let (_, traits) = api
        .call("GET", &format!("/v1/nodes/{uuid}/traits"), None)
        .await;
    assert_eq!(traits["traits"], json!(["CUSTOM_INSPECTED"]));

    // A rule whose fail action runs fails the inspection, with its message.
    let (s, _) = api
        .call(
            "POST",
            "/v1/inspection_rules",
            Some(json!({"priority": 99,
            "actions": [{"op": "fail", "args": {"msg": "model not allowed here"}}]})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        api.call("PUT", &states, Some(target("inspect"))).await.0,
        202
    );
    let node = api.wait_state(&uuid, "inspect failed", 30).await;
    assert!(
        node["last_error"]
            .as_str()
            .unwrap()
            .contains("model not allowed here"),
        "{node}"
    );
}
