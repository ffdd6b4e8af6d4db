//! The direct deploy interface and cleaning through the API, in-process, on fake-hardware
//! (the direct driver's orchestration over fake ports, FakeAgent included): deploy with a
//! config drive, steps in history, automated and manual cleaning, and bad requests refused
//! before anything changes.

use serde_json::{json, Value};

use crate::support::{api, api_with_services, fault, settings, Api};

async fn enrol(api: &Api, name: &str) -> String {
    let (s, n) = api
        .call(
            "POST",
            "/v1/nodes",
            Some(
                json!({"driver": "fake-hardware", "name": name, "deploy_interface": "direct",
                        "properties": {"capabilities": "boot_mode:bios"}}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{n}");
    n["uuid"].as_str().unwrap().to_string()
}

async fn provision(api: &Api, id: &str, body: Value) -> (u16, Value) {
    api.call(
        "PUT",
        &format!("/v1/nodes/{id}/states/provision"),
        Some(body),
    )
    .await
}

async fn history(api: &Api, id: &str) -> Vec<String> {
    let (_, h) = api
        .call("GET", &format!("/v1/nodes/{id}/history"), None)
        .await;
    h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["event_type"].as_str().unwrap(),
                e["event"].as_str().unwrap()
            )
        })
        .collect()
}

/// The reason `validate` gives for the deploy interface ("" when it passes).
async fn deploy_reason(api: &Api, id: &str) -> String {
    let (_, v) = api
        .call("GET", &format!("/v1/nodes/{id}/validate"), None)
        .await;
    v["deploy"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn api_direct_deploy_and_cleaning_on_fake_hardware() {
    let api = api().await;
    let id = enrol(&api, "disk1").await;
    assert_eq!(
        provision(&api, &id, json!({"target": "manage"})).await.0,
        202
    );
    api.wait_state(&id, "manageable", 20).await;
    assert_eq!(
        provision(&api, &id, json!({"target": "provide"})).await.0,
        202
    );
    api.wait_state(&id, "available", 20).await;
    let h = history(&api, &id).await;
    for want in [
        "clean_step clean: erase_devices_metadata",
        "clean_step erase_devices_metadata: partition tables and filesystem signatures erased",
        "clean_step power off: powered off",
    ] {
        assert!(h.iter().any(|e| e == want), "{want} not in {h:#?}");
    }

    // Validation names what is missing, and the deploy verb is refused before any change.
    let (_, v) = api
        .call("GET", &format!("/v1/nodes/{id}/validate"), None)
        .await;
    assert_eq!(v["deploy"]["result"], false, "{v}");
    assert!(
        v["deploy"]["reason"]
            .as_str()
            .unwrap()
            .contains("image_source is not set"),
        "{v}"
    );
    let (s, body) = provision(&api, &id, json!({"target": "active"})).await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = api
        .call(
            "PATCH",
            &format!("/v1/nodes/{id}"),
            Some(json!([
                {"op": "add", "path": "/instance_info/image_source", "value": "http://images/disk.raw"},
                {"op": "add", "path": "/instance_info/kernel", "value": "http://images/vmlinuz"},
                {"op": "add", "path": "/instance_info/ramdisk", "value": "http://images/initrd"},
            ])),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let reason = deploy_reason(&api, &id).await;
    assert!(reason.contains("partition image"), "{reason}");
    let (s, body) = api
        .call(
            "PATCH",
            &format!("/v1/nodes/{id}"),
            Some(json!([
                {"op": "remove", "path": "/instance_info/kernel"},
                {"op": "remove", "path": "/instance_info/ramdisk"},
            ])),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let reason = deploy_reason(&api, &id).await;
    assert!(reason.contains("image_checksum is not set"), "{reason}");
    let (s, body) = api
        .call(
            "PATCH",
            &format!("/v1/nodes/{id}"),
            Some(json!([
                {"op": "add", "path": "/instance_info/image_checksum", "value": "ab".repeat(32)},
            ])),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, v) = api
        .call("GET", &format!("/v1/nodes/{id}/validate"), None)
        .await;
    assert_eq!(v["deploy"]["result"], true, "{v}");

    // A config drive over 64 MiB is refused, and nothing is stored.
    let big = "A".repeat((64 << 20) + 1);
    let (s, body) = provision(&api, &id, json!({"target": "active", "configdrive": big})).await;
    assert_eq!(s, 400);
    let msg = fault(&body);
    assert!(
        msg.contains("67108865 bytes") && msg.contains("64 MiB"),
        "{msg}"
    );
    let (_, n) = api.call("GET", &format!("/v1/nodes/{id}"), None).await;
    assert_eq!(n["provision_state"], "available");
    assert!(n["instance_info"].get("configdrive").is_none(), "{n}");

    let drive = json!({"meta_data": {"uuid": "u-42"}, "user_data": "#!/bin/sh\necho hi\n"});
    let (s, body) = provision(&api, &id, json!({"target": "active", "configdrive": drive})).await;
    assert_eq!(s, 202, "{body}");
    let n = api.wait_state(&id, "active", 20).await;
    assert_eq!(
        n["instance_info"]["configdrive"], "******",
        "masked like a secret"
    );
    assert_eq!(n["deploy_step"], json!({}), "cleared once active");
    let h = history(&api, &id).await;
    for want in [
        "deploy_step cache image: http://images/disk.raw",
        "deploy_step build config drive",
        "deploy_step wait for agent: the agent called in",
        "deploy_step root device: /dev/sda",
        "deploy_step write image: 100%",
        "deploy_step write config drive: a partition at the end of /dev/sda",
        "deploy_step boot from disk: disk, persistent, bios",
        "deploy_step reboot: into the written disk",
    ] {
        assert!(
            h.iter().any(|e| e.starts_with(want)),
            "{want} not in {h:#?}"
        );
    }

    // Undeploy runs automated cleaning, then the node is available.
    let (s, _) = provision(&api, &id, json!({"target": "deleted"})).await;
    assert_eq!(s, 202);
    api.wait_state(&id, "available", 20).await;
    let h = history(&api, &id).await;
    let after_undeploy = h
        .iter()
        .rposition(|e| e.contains("deleted : active -> deleting"))
        .unwrap();
    assert!(
        h[after_undeploy..]
            .iter()
            .any(|e| e.starts_with("clean_step erase_devices_metadata")),
        "{h:#?}"
    );
}

#[tokio::test]
async fn api_manual_clean_runs_the_given_steps_and_returns_to_manageable() {
    let api = api().await;
    let id = enrol(&api, "clean1").await;
    assert_eq!(
        provision(&api, &id, json!({"target": "manage"})).await.0,
        202
    );
    api.wait_state(&id, "manageable", 20).await;

    for (body, want) in [
        (json!({"target": "clean"}), "clean_steps is required"),
        (
            json!({"target": "clean", "clean_steps": [{"interface": "deploy", "step": "erase_everything"}]}),
            "step \"deploy.erase_everything\" is not supported",
        ),
        (
            json!({"target": "clean", "clean_steps": [{"interface": "bios", "step": "apply_configuration"}]}),
            "bios.apply_configuration needs args {\"settings\": [...]}",
        ),
        (
            json!({"target": "provide", "clean_steps": []}),
            "only allowed when setting target provision state to clean",
        ),
    ] {
        let (s, b) = provision(&api, &id, body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert!(fault(&b).contains(want), "{body}: {}", fault(&b));
    }

    let steps = json!([
        {"interface": "deploy", "step": "erase_devices_metadata"},
        {"interface": "deploy", "step": "erase_devices"},
    ]);
    let (s, b) = provision(&api, &id, json!({"target": "clean", "clean_steps": steps})).await;
    assert_eq!(s, 202, "{b}");
    let n = api.wait_state(&id, "manageable", 20).await;
    assert!(
        n["driver_internal_info"].get("clean_steps").is_none(),
        "{n}"
    );
    assert_eq!(n["clean_step"], json!({}));
    let h = history(&api, &id).await;
    for want in [
        "clean_step clean: erase_devices_metadata, erase_devices",
        "clean_step erase_devices: every disk overwritten",
        "provisioning cleaning done : cleaning -> manageable",
    ] {
        assert!(
            h.iter().any(|e| e.starts_with(want)),
            "{want} not in {h:#?}"
        );
    }

    // Automated cleaning off for the node: provide cleans nothing.
    let (s, _) = api
        .call(
            "PATCH",
            &format!("/v1/nodes/{id}"),
            Some(json!([{"op": "replace", "path": "/automated_clean", "value": false}])),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        provision(&api, &id, json!({"target": "provide"})).await.0,
        202
    );
    api.wait_state(&id, "available", 20).await;
    let h = history(&api, &id).await;
    assert_eq!(
        h.last().map(String::as_str),
        Some("provisioning cleaning done : cleaning -> available"),
        "{h:#?}"
    );
    assert!(h
        .iter()
        .any(|e| e == "clean_step clean: automated cleaning is off for this node"));
}

#[tokio::test]
async fn api_write_progress_shows_in_node_show_and_history() {
    let mut services = ironcast::conductor::Services::none();
    services.direct.progress_interval = std::time::Duration::from_millis(50);
    // Each fake BMC call and agent command takes 800 ms, the fake write reports quarters.
    let api = api_with_services(
        ironcast::conductor::Settings {
            fake_power_delay_ms: 800,
            automated_clean: false,
            ..settings("progress-conductor")
        },
        services,
    )
    .await;
    let id = enrol(&api, "slow1").await;
    for (target, want) in [("manage", "manageable"), ("provide", "available")] {
        assert_eq!(provision(&api, &id, json!({"target": target})).await.0, 202);
        api.wait_state(&id, want, 20).await;
    }
    let (s, _) = api
        .call(
            "PATCH",
            &format!("/v1/nodes/{id}"),
            Some(json!([
                {"op": "add", "path": "/instance_info/image_source", "value": "http://images/disk.raw"},
                {"op": "add", "path": "/instance_info/image_checksum", "value": "ab".repeat(32)},
            ])),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        provision(&api, &id, json!({"target": "active"})).await.0,
        202
    );
    // While the image is written, node show carries the write's progress.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, n) = api.call("GET", &format!("/v1/nodes/{id}"), None).await;
        if n["deploy_step"]["step"] == "write image" {
            if let Some(p) = n["deploy_step"].get("progress") {
                seen.push(p.clone());
            }
        }
        if n["provision_state"] == "active" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never active: {n}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        seen.iter().any(|p| p["total_bytes"] == 4 << 20
            && p["percent"].as_u64().is_some_and(|pc| pc > 0 && pc < 100)),
        "no partial progress seen in deploy_step: {seen:?}"
    );
    let h = history(&api, &id).await;
    let milestones: Vec<&String> = h
        .iter()
        .filter(|e| e.starts_with("deploy_step write image: ") && e.contains('%'))
        .collect();
    assert_eq!(
        milestones,
        [
            "deploy_step write image: 25% (1 of 4 MiB)",
            "deploy_step write image: 50% (2 of 4 MiB)",
            "deploy_step write image: 75% (3 of 4 MiB)",
            "deploy_step write image: 100% (4 of 4 MiB)",
        ],
        "one history event per tenth reached, not one per report"
    );
}
