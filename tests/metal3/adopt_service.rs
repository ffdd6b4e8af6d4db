//! Adoption (`adopt`, 1.17) and servicing (`service` with `service_steps`, 1.87) as BMO uses
//! them: externally provisioned hosts and hosts re-registered after the database was lost are
//! adopted; firmware settings of a provisioned host are changed by servicing, and a failed
//! service is aborted back to active.

use std::time::Duration;

use serde_json::{json, Value};

use crate::gophercloud::{self as gc, decode};
use crate::support::{serve, sushy_fake, sushy_libvirt_domain, Api};

const WAIT: Duration = Duration::from_secs(60);

async fn history(api: &Api, uuid: &str) -> String {
    api.expect("GET", &format!("/v1/nodes/{uuid}/history"), None, 200)
        .await
        .to_string()
}

/// A provision request whose refusal the test reads.
async fn put(api: &Api, uuid: &str, body: Value) -> (u16, Value) {
    api.call(
        "PUT",
        &format!("/v1/nodes/{uuid}/states/provision"),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn adopt_through_sushy_fake_fails_without_the_live_iso_then_reaches_active() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sushy, system)) = sushy_fake(dir.path()).await else {
        return;
    };
    let iso = dir.path().join("live.iso");
    std::fs::write(&iso, ironcast::demo::demo_iso()).unwrap();
    let server = crate::deploy_support::serve_with_env(dir.path(), &[dir.path()], &[]);
    let mut api = Api::new(&server);
    let id = system.rsplit('/').next().unwrap();
    let node = api.register("adopted", &sushy.base, id, json!({})).await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    api.provision(&uuid, json!({"target": "manage"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;

    // adopt came with 1.17.
    api.version = "1.16".into();
    let (status, body) = api
        .call(
            "PUT",
            &format!("/v1/nodes/{uuid}/states/provision"),
            Some(json!({"target": "adopt"})),
        )
        .await;
    assert_eq!(status, 406, "{body}");
    api.version = crate::support::bmo_version();

    // A live-ISO (ramdisk) node must say what it boots: Ironic's boot validation fails it.
    api.provision(&uuid, json!({"target": "adopt"})).await;
    let failed = api.wait_state(&uuid, "adopt failed", WAIT).await;
    let n = gc::node(&failed);
    let why = n.last_error.unwrap_or_default();
    assert!(
        why.starts_with(&format!("Error while attempting to adopt node {uuid}:"))
            && why.contains("instance_info has no boot_iso"),
        "{why}"
    );
    assert!(failed["power_state"].is_null(), "{failed}");

    // BMO sets the live ISO it knows the host runs, then adopts again from adopt failed.
    api.expect(
        "PATCH",
        &format!("/v1/nodes/{uuid}"),
        Some(json!([{"op": "add", "path": "/instance_info/boot_iso",
                     "value": format!("file://{}", iso.display())}])),
        200,
    )
    .await;
    api.provision(&uuid, json!({"target": "adopt"})).await;
    let node = api.wait_state(&uuid, "active", WAIT).await;
    let active = gc::node(&node);
    assert!(active.last_error.unwrap_or_default().is_empty());
    // Nothing was powered: sushy's system is still off. The ISO is served from here now, in
    // the node's virtual CD.
    assert_eq!(active.power_state.as_deref(), Some("power off"));
    let url = node["driver_internal_info"]["ramdisk_publication_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no publication after adoption: {node}"));
    let cd =
        crate::deploy_support::get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Image"], url, "{cd}");
    assert_eq!(cd["Inserted"], true, "{cd}");
    let h = history(&api, &uuid).await;
    assert!(h.contains("adopt : manageable -> adopting"), "{h}");
    assert!(h.contains("adopt : adopt failed -> adopting"), "{h}");
    assert!(h.contains("adopting done : adopting -> active"), "{h}");
    // An adopted node is deprovisioned like a deployed one: ejected, its ISO no longer served.
    api.provision(&uuid, json!({"target": "deleted"})).await;
    api.wait_state(&uuid, "available", WAIT).await;
    let cd =
        crate::deploy_support::get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Inserted"], false, "{cd}");
}

#[tokio::test(flavor = "multi_thread")]
async fn service_steps_on_fake_hardware_fail_with_their_reason_and_abort_returns_to_active() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let mut api = Api::new(&server);
    let node = api
        .expect(
            "POST",
            "/v1/nodes",
            Some(json!({"name": "serviced", "driver": "fake-hardware"})),
            201,
        )
        .await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    api.provision(&uuid, json!({"target": "manage"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    // A disk-booting node needs nothing to be adopted.
    api.provision(&uuid, json!({"target": "adopt"})).await;
    api.wait_state(&uuid, "active", WAIT).await;

    let raid_create = json!([{"interface": "raid", "step": "create_configuration"}]);
    // Refusals that change nothing: no steps, an erase, steps with another verb, unhold.
    for (body, status, says) in [
        (
            json!({"target": "service"}),
            400,
            "service_steps is required",
        ),
        (
            json!({"target": "service", "service_steps": [{"interface": "deploy", "step": "erase_devices"}]}),
            400,
            "not a service step",
        ),
        (
            json!({"target": "rebuild", "service_steps": raid_create}),
            400,
            "only allowed when setting target provision state to service",
        ),
        (json!({"target": "unhold"}), 400, "can not be performed"),
    ] {
        let (s, b) = put(&api, &uuid, body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(b.to_string().contains(says), "{body}: {b}");
    }
    assert_eq!(api.node(&uuid).await["provision_state"], "active");
    api.version = "1.86".into();
    let (s, b) = put(
        &api,
        &uuid,
        json!({"target": "service", "service_steps": raid_create}),
    )
    .await;
    assert_eq!(s, 406, "service came with 1.87: {b}");
    api.version = crate::support::bmo_version();

    // No target_raid_config: the step fails, saying what to set, and stays shown.
    api.provision(
        &uuid,
        json!({"target": "service", "service_steps": raid_create}),
    )
    .await;
    let failed = api.wait_state(&uuid, "service failed", WAIT).await;
    let n = gc::node(&failed);
    assert!(
        n.last_error
            .as_deref()
            .is_some_and(|e| e.contains("target_raid_config")),
        "{failed}"
    );
    assert_eq!(
        failed["service_step"],
        json!({"interface": "raid", "step": "create_configuration"})
    );
    // BMO aborts a failed service to get its host back.
    api.provision(&uuid, json!({"target": "abort"})).await;
    api.wait_state(&uuid, "active", WAIT).await;

    // With a target it runs; the node rests in active with the RAID recorded.
    let target = json!({"logical_disks": [{"size_gb": 100, "raid_level": "1"}]});
    api.expect(
        "PUT",
        &format!("/v1/nodes/{uuid}/states/raid"),
        Some(target.clone()),
        204,
    )
    .await;
    api.provision(
        &uuid,
        json!({"target": "service", "service_steps": [
            {"interface": "raid", "step": "delete_configuration"},
            {"interface": "raid", "step": "create_configuration"},
        ]}),
    )
    .await;
    let done = api.wait_state(&uuid, "active", WAIT).await;
    let n = gc::node(&done);
    assert_eq!(Value::Object(n.raid_config.unwrap()), target);
    assert_eq!(done["service_step"], json!({}), "{done}");
    assert!(done["driver_internal_info"].get("service_steps").is_none());
    let h = history(&api, &uuid).await;
    assert!(h.contains("service : active -> servicing"), "{h}");
    assert!(h.contains("servicing done : servicing -> active"), "{h}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adopted_libvirt_host_is_serviced_with_bmo_bios_settings() {
    let dir = tempfile::tempdir().unwrap();
    let Some((domain, sushy, _volume)) = sushy_libvirt_domain(dir.path()) else {
        return;
    };
    let server = serve(dir.path());
    let api = Api::new(&server);
    let node = api
        .register(
            "vm-service",
            &sushy.base,
            &domain.uuid,
            json!({"deploy_interface": "direct"}),
        )
        .await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    api.provision(&uuid, json!({"target": "manage"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    api.provision(&uuid, json!({"target": "adopt"})).await;
    api.wait_state(&uuid, "active", WAIT).await;
    // BMO's buildServiceSteps: bios.apply_configuration with the changed settings.
    api.provision(
        &uuid,
        json!({"target": "service", "service_steps": [
            {"interface": "bios", "step": "apply_configuration",
             "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}},
        ]}),
    )
    .await;
    let done = api.wait_state(&uuid, "active", WAIT).await;
    gc::node(&done);
    let one = api
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/bios/ProcTurboMode"),
            None,
            200,
        )
        .await;
    assert_eq!(one["ProcTurboMode"]["value"], "Disabled", "{one}");
    let list: gc::BiosList = decode(
        "bios",
        &api.expect("GET", &format!("/v1/nodes/{uuid}/bios"), None, 200)
            .await,
    );
    assert!(list.bios.iter().any(|s| s.name == "ProcTurboMode"));
    let h = history(&api, &uuid).await;
    assert!(h.contains("bios.apply_configuration: done"), "{h}");
}
