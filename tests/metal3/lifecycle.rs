//! Node lifecycle details BMO relies on.

use std::time::Duration;

use serde_json::json;

use crate::support::{serve, Api};

#[tokio::test(flavor = "multi_thread")]
async fn undeploy_clears_instance_uuid_as_ironic_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let api = Api::new(&server);
    let node = api
        .expect(
            "POST",
            "/v1/nodes",
            Some(json!({"name": "bmo-host", "driver": "fake-hardware",
                "instance_info": {"image_source": "http://example.invalid/disk.img"}})),
            201,
        )
        .await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    let instance = "4c5e6b2a-1d6f-4d2e-9a51-0c3b8f0e7d11";
    api.expect(
        "PATCH",
        &format!("/v1/nodes/{uuid}"),
        Some(json!([{"op": "replace", "path": "/instance_uuid", "value": instance}])),
        200,
    )
    .await;
    let wait = Duration::from_secs(30);
    for (verb, rest) in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "active"),
    ] {
        api.provision(&uuid, json!({"target": verb})).await;
        api.wait_state(&uuid, rest, wait).await;
    }
    assert_eq!(api.node(&uuid).await["instance_uuid"], instance);
    api.provision(&uuid, json!({"target": "deleted"})).await;
    let node = api.wait_state(&uuid, "available", wait).await;
    assert!(node["instance_uuid"].is_null(), "{node}");
}
