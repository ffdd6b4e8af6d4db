//! Inspection (`inspect_interface=redfish`), stored inventory, ports from inspected NICs, the
//! cached BIOS settings and firmware components, and BIOS + firmware clean steps.

use std::time::Duration;

use serde_json::json;

use crate::gophercloud::{self as gc, decode};
use crate::support::{serve, sushy_fake, sushy_libvirt_domain, Api};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn redfish_inspection_through_sushy_fake_stores_inventory_and_adds_ports() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sushy, system)) = sushy_fake(dir.path()).await else {
        return;
    };
    let server = serve(dir.path());
    let api = Api::new(&server);
    let id = system.rsplit('/').next().unwrap();
    let node = api.register("fake-insp", &sushy.base, id, json!({})).await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    // No inventory before inspection: Ironic's 404.
    let (status, _) = api
        .call("GET", &format!("/v1/nodes/{uuid}/inventory"), None)
        .await;
    assert_eq!(status, 404);
    api.provision(&uuid, json!({"target": "manage"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    api.provision(&uuid, json!({"target": "inspect"})).await;
    let node = api.wait_state(&uuid, "manageable", WAIT).await;
    assert!(node["inspection_finished_at"].is_string(), "{node}");
    assert!(
        node["properties"]["capabilities"]
            .as_str()
            .is_some_and(|c| c.contains("boot_mode:uefi")),
        "{node}"
    );

    let data = api
        .expect("GET", &format!("/v1/nodes/{uuid}/inventory"), None, 200)
        .await;
    let inv: gc::InventoryData = decode("inventory", &data);
    // sushy's fake system has one NIC; its MAC is what EthernetInterfaces says.
    let nics: serde_json::Value =
        reqwest::get(format!("{}{system}/EthernetInterfaces", sushy.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let nic_path = nics["Members"][0]["@odata.id"].as_str().unwrap();
    let nic: serde_json::Value = reqwest::get(format!("{}{nic_path}", sushy.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mac = nic["MACAddress"].as_str().unwrap().to_ascii_lowercase();
    let interfaces = inv.inventory.interfaces.unwrap();
    assert_eq!(interfaces.len(), 1);
    assert_eq!(interfaces[0].mac_address.as_deref(), Some(mac.as_str()));
    assert_eq!(
        inv.inventory.boot.unwrap().current_boot_mode.as_deref(),
        Some("uefi")
    );
    assert_eq!(inv.plugin_data["macs"], json!([mac]));
    // The inspected NIC became the node's port.
    let ports = api
        .expect("GET", &format!("/v1/nodes/{uuid}/ports"), None, 200)
        .await;
    let addresses: Vec<&str> = ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["address"].as_str())
        .collect();
    assert_eq!(addresses, [mac.as_str()]);
    // Inspecting again adds no duplicate port.
    api.provision(&uuid, json!({"target": "inspect"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    let ports = api
        .expect("GET", &format!("/v1/nodes/{uuid}/ports"), None, 200)
        .await;
    assert_eq!(ports["ports"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_and_bios_are_not_served_before_their_microversions() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let mut api = Api::new(&server);
    let node = api
        .expect(
            "POST",
            "/v1/nodes",
            Some(json!({"name": "old", "driver": "fake-hardware"})),
            201,
        )
        .await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    api.version = "1.80".into();
    let (status, _) = api
        .call("GET", &format!("/v1/nodes/{uuid}/inventory"), None)
        .await;
    assert_eq!(status, 404);
    api.version = "1.39".into();
    let (status, _) = api
        .call("GET", &format!("/v1/nodes/{uuid}/bios"), None)
        .await;
    assert_eq!(status, 404);
    api.version = "1.85".into();
    let (status, _) = api
        .call("GET", &format!("/v1/nodes/{uuid}/firmware"), None)
        .await;
    assert_eq!(status, 404);
    api.version = "1.86".into();
    let fw = api
        .expect("GET", &format!("/v1/nodes/{uuid}/firmware"), None, 200)
        .await;
    assert_eq!(fw, json!({"firmware": []}));
}

#[tokio::test(flavor = "multi_thread")]
async fn libvirt_bmc_inspection_bios_and_firmware_steps() {
    let dir = tempfile::tempdir().unwrap();
    let Some((domain, sushy, _volume)) = sushy_libvirt_domain(dir.path()) else {
        return;
    };
    let server = serve(dir.path());
    let api = Api::new(&server);
    let node = api
        .register("vm-bios", &sushy.base, &domain.uuid, json!({}))
        .await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    api.provision(&uuid, json!({"target": "manage"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;

    // Verify cached the BIOS settings and firmware versions, as Ironic does.
    let bios = api
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/bios?detail=true"),
            None,
            200,
        )
        .await;
    let list: gc::BiosList = decode("bios", &bios);
    let turbo = list
        .bios
        .iter()
        .find(|s| s.name == "ProcTurboMode")
        .unwrap_or_else(|| panic!("no ProcTurboMode in {bios}"));
    assert_eq!(turbo.value.as_deref(), Some("Enabled"));
    let one = api
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/bios/ProcTurboMode"),
            None,
            200,
        )
        .await;
    assert_eq!(one["ProcTurboMode"]["value"], "Enabled", "{one}");
    let fw = api
        .expect("GET", &format!("/v1/nodes/{uuid}/firmware"), None, 200)
        .await;
    let fw: gc::FirmwareList = decode("firmware", &fw);
    let bios_fw = fw.firmware.iter().find(|c| c.component == "bios").unwrap();
    gc::check_time("firmware created_at", &bios_fw.created_at);
    let before = bios_fw.current_version.clone().unwrap();

    api.provision(&uuid, json!({"target": "inspect"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    let data = api
        .expect("GET", &format!("/v1/nodes/{uuid}/inventory"), None, 200)
        .await;
    let inv: gc::InventoryData = decode("inventory", &data);
    let cpu = inv.inventory.cpu.unwrap();
    assert_eq!(cpu.count, Some(1));
    assert_eq!(cpu.architecture.as_deref(), Some("x86_64"));
    assert_eq!(inv.inventory.memory.unwrap().physical_mb, Some(2048));
    let disks = inv.inventory.disks.unwrap();
    assert!(disks.iter().any(|d| d.size == Some(6 << 30)), "{data}");
    let macs: Vec<String> = inv
        .inventory
        .interfaces
        .unwrap()
        .iter()
        .filter_map(|i| i.mac_address.clone())
        .collect();
    assert!(macs.contains(&"52:54:00:12:34:56".to_string()), "{macs:?}");
    let node = api.node(&uuid).await;
    assert_eq!(node["properties"]["memory_mb"], 2048);
    assert_eq!(node["properties"]["local_gb"], 5);

    // BMO's "preparing": manual cleaning with BIOS and firmware steps.
    api.provision(
        &uuid,
        json!({"target": "clean", "clean_steps": [
            {"interface": "bios", "step": "apply_configuration",
             "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}},
            {"interface": "firmware", "step": "update",
             "args": {"settings": [{"component": "bios", "url": "http://127.0.0.1:1/bios.bin"}]}},
        ]}),
    )
    .await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    let one = api
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/bios/ProcTurboMode"),
            None,
            200,
        )
        .await;
    assert_eq!(one["ProcTurboMode"]["value"], "Disabled", "{one}");
    let fw = api
        .expect("GET", &format!("/v1/nodes/{uuid}/firmware"), None, 200)
        .await;
    let fw: gc::FirmwareList = decode("firmware", &fw);
    let bios_fw = fw.firmware.iter().find(|c| c.component == "bios").unwrap();
    assert_eq!(bios_fw.initial_version.as_deref(), Some(before.as_str()));
    assert_ne!(bios_fw.current_version.as_deref(), Some(before.as_str()));
    assert_eq!(bios_fw.last_version_flashed, bios_fw.current_version);

    // factory_reset brings the default back.
    api.provision(
        &uuid,
        json!({"target": "clean", "clean_steps": [{"interface": "bios", "step": "factory_reset"}]}),
    )
    .await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    let one = api
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/bios/ProcTurboMode"),
            None,
            200,
        )
        .await;
    assert_eq!(one["ProcTurboMode"]["value"], "Enabled", "{one}");
}

/// Ironic's health monitoring (1.109) against a real Redfish peer: sushy-tools' fake system
/// reports Status.Health "OK", which the conductor's round records once the node is managed.
#[tokio::test(flavor = "multi_thread")]
async fn health_of_a_sushy_fake_system_is_monitored() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sushy, system)) = sushy_fake(dir.path()).await else {
        return;
    };
    let server = crate::common::serve::spawn_serve(
        dir.path(),
        &[("IRONCAST_CONDUCTOR__HEALTH_INTERVAL_S", "1")],
    );
    let api = Api::new(&server);
    let id = system.rsplit('/').next().unwrap();
    let node = api
        .register("fake-health", &sushy.base, id, json!({}))
        .await;
    let uuid = node["uuid"].as_str().unwrap().to_string();
    api.provision(&uuid, json!({"target": "manage"})).await;
    api.wait_state(&uuid, "manageable", WAIT).await;
    let want = "Node health status changed: health='OK' (previously 'None')";
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let history = api
            .expect("GET", &format!("/v1/nodes/{uuid}/history"), None, 200)
            .await;
        let seen = history["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == want);
        if seen {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no health record in {history}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if ironcast::api::version::MAX >= ironcast::api::version::Version(109) {
        let mut at = Api::new(&server);
        at.version = "1.109".into();
        let node = at
            .expect("GET", &format!("/v1/nodes/{uuid}"), None, 200)
            .await;
        assert_eq!(node["health"], "OK", "{node}");
    }
}
