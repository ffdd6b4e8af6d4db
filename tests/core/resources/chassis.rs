//! /v1/chassis in-process: create, list, patch, the nodes of a chassis, and the refusals
//! Ironic gives (a chassis holding nodes, a node naming a missing chassis).

use serde_json::json;

use crate::support::{api, fault};

#[tokio::test]
async fn chassis_crud_nodes_and_refusals() {
    let api = api().await;
    let (s, c) = api
        .call(
            "POST",
            "/v1/chassis",
            Some(json!({"description": "В Україні ♡ OpenStack!", "extra": {"row": 1}})),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let uuid = c["uuid"].as_str().unwrap().to_string();
    assert_eq!(c["description"], "В Україні ♡ OpenStack!");
    assert!(c["nodes"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/chassis/{uuid}/nodes")));

    let (s, body) = api
        .call("POST", "/v1/chassis", Some(json!({"bogus": 1})))
        .await;
    assert_eq!(s, 400);
    assert!(fault(&body).contains("'bogus' was unexpected"), "{body}");

    let (s, list) = api.call("GET", "/v1/chassis", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["chassis"][0]["uuid"], uuid.as_str());
    assert!(list["chassis"][0].get("extra").is_none(), "{list}");

    let (s, c) = api
        .call(
            "PATCH",
            &format!("/v1/chassis/{uuid}"),
            Some(
                json!([{"op": "replace", "path": "/description", "value": "new"},
                         {"op": "remove", "path": "/extra/row"}]),
            ),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["description"], "new");
    assert_eq!(c["extra"], json!({}));

    let (s, body) = api
        .call(
            "POST",
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "chassis_uuid": uuid::Uuid::new_v4().to_string()})),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(fault(&body).contains("could not be found"), "{body}");

    let (s, node) = api
        .call(
            "POST",
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "chassis_uuid": uuid})),
        )
        .await;
    assert_eq!(s, 201, "{node}");
    let (s, nodes) = api
        .call("GET", &format!("/v1/chassis/{uuid}/nodes"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(nodes["nodes"][0]["uuid"], node["uuid"]);

    let (s, body) = api
        .call("DELETE", &format!("/v1/chassis/{uuid}"), None)
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        fault(&body),
        format!("Cannot complete the requested action because chassis {uuid} contains nodes.")
    );
    let node_uuid = node["uuid"].as_str().unwrap();
    let (s, _) = api
        .call("DELETE", &format!("/v1/nodes/{node_uuid}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = api
        .call("DELETE", &format!("/v1/chassis/{uuid}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = api.call("GET", &format!("/v1/chassis/{uuid}"), None).await;
    assert_eq!(s, 404);
}
