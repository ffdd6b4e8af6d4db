//! A replay of baremetal-operator's (BMO) calls, derived from its Ironic provisioner
//! (metal3-io/baremetal-operator `pkg/provisioner/ironic/`: `ironic.go`, `register.go`,
//! `inspecthardware.go`, `servicing.go`), against `ironcast serve`. Each step names the BMO
//! function it replays; every answer BMO extracts is decoded into gophercloud's result structs
//! (`gophercloud.rs`), so a field gophercloud would fail on fails here.
//!
//! Three hosts, each on the peer its steps need:
//! - `worker-0` on sushy-tools' libvirt driver (a defined, never started domain: BIOS, firmware
//!   versions, processors, disks): registration with a port, inspection, "preparing" with BIOS
//!   and firmware clean steps, provide, maintenance, delete.
//! - `worker-1` on sushy-tools' fake driver: live ISO (no checksum, as BMO sends it), power,
//!   deprovision; then registered again as after a lost database and adopted; virtual media
//!   attach and detach (BMO's DataImage); deprovision, delete.
//! - `worker-2` on ironcast's BMC simulator with its simulated agent (the only agent that runs
//!   here without booting a VM; it runs the real agent code against a simulated disk): direct
//!   deploy with BMO's config drive, deprovision, delete.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::gophercloud::{self as gc, decode};
use crate::support::{sushy_fake, sushy_libvirt_domain, Api};

const WAIT: Duration = Duration::from_secs(90);
/// BMO's namespace: Ironic node names are `namespace~name` (`ironicNodeName`).
const NS: &str = "metal3";

/// BMO's view of ironcast: every call it makes, in order, with the answers decoded.
struct Bmo {
    api: Api,
    calls: Vec<String>,
}

impl Bmo {
    fn new(server: &crate::common::serve::Server) -> Bmo {
        Bmo {
            api: Api::new(server),
            calls: Vec::new(),
        }
    }

    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, v) = self.api.call(method, path, body).await;
        self.calls.push(format!("{method} {path} -> {status}"));
        (status, v)
    }

    async fn expect(&mut self, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    /// `getNode` / `nodes.Get`: None on 404, as BMO reads ErrNeedsRegistration.
    async fn get_node(&mut self, ident: &str) -> Option<gc::Node> {
        let (status, v) = self.call("GET", &format!("/v1/nodes/{ident}"), None).await;
        match status {
            200 => Some(gc::node(&v)),
            404 => None,
            other => panic!("GET node {ident}: {other} {v}"),
        }
    }

    /// `findExistingHost`: by name (`ns~name`, then `name`), then by the boot MAC's port.
    async fn find_existing_host(&mut self, name: &str, mac: &str) -> Option<gc::Node> {
        for ident in [format!("{NS}~{name}"), name.to_string()] {
            if let Some(n) = self.get_node(&ident).await {
                return Some(n);
            }
        }
        let ports = self.list_ports(&format!("address={mac}")).await;
        let uuid = ports.ports.first()?.node_uuid.clone()?;
        self.get_node(&uuid).await
    }

    /// `listAllPorts` / `nodeHasAssignedPort`: `ports.List` with `fields=node_uuid`.
    async fn list_ports(&mut self, filter: &str) -> gc::PortList {
        let v = self
            .expect(
                "GET",
                &format!("/v1/ports?{filter}&fields=node_uuid"),
                None,
                200,
            )
            .await;
        decode("ports", &v)
    }

    /// `enrollNode` (`nodes.Create`) then `createPXEEnabledNodePort` (`ports.Create`).
    async fn enroll(&mut self, name: &str, driver_info: Value, mac: &str) -> gc::Node {
        let node = self
            .expect(
                "POST",
                "/v1/nodes",
                Some(json!({
                    "driver": "redfish",
                    "bios_interface": "redfish",
                    "boot_interface": "redfish-virtual-media",
                    "name": format!("{NS}~{name}"),
                    "driver_info": driver_info,
                    "firmware_interface": "redfish",
                    "deploy_interface": "direct",
                    "inspect_interface": "redfish",
                    "management_interface": "redfish",
                    "power_interface": "redfish",
                    "raid_interface": "redfish",
                    "vendor_interface": "redfish",
                    "disable_power_off": false,
                    "properties": {"capabilities": "boot_mode:uefi", "cpu_arch": "x86_64"},
                })),
                201,
            )
            .await;
        let node = gc::node(&node);
        let port = self
            .expect(
                "POST",
                "/v1/ports",
                Some(json!({"node_uuid": node.uuid, "address": mac, "pxe_enabled": true})),
                201,
            )
            .await;
        let port: gc::Port = decode("port", &port);
        assert_eq!(port.address.as_deref(), Some(mac));
        assert_eq!(port.pxe_enabled, Some(true));
        node
    }

    /// `tryUpdateNode`: a JSON patch, answered with the node.
    async fn patch(&mut self, uuid: &str, ops: Value) -> gc::Node {
        let v = self
            .expect("PATCH", &format!("/v1/nodes/{uuid}"), Some(ops), 200)
            .await;
        gc::node(&v)
    }

    /// `changeNodeProvisionState`: 202, nothing to extract.
    async fn provision(&mut self, uuid: &str, opts: Value) {
        let v = self
            .expect(
                "PUT",
                &format!("/v1/nodes/{uuid}/states/provision"),
                Some(opts),
                202,
            )
            .await;
        assert!(v.is_null(), "{v}");
    }

    /// BMO polls `nodes.Get` until the node rests in `want`.
    async fn wait(&mut self, uuid: &str, want: &str) -> gc::Node {
        let deadline = Instant::now() + WAIT;
        loop {
            let n = self.get_node(uuid).await.expect("node exists");
            if n.provision_state == want && n.target_provision_state.is_none() {
                return n;
            }
            assert!(
                !n.provision_state.ends_with("failed") || want.ends_with("failed"),
                "{uuid} reached {} waiting for {want}: {:?}",
                n.provision_state,
                n.last_error
            );
            assert!(
                Instant::now() < deadline,
                "{uuid} still {}",
                n.provision_state
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `validateNode`: `nodes.Validate`, its boot and deploy results.
    async fn validate(&mut self, uuid: &str) -> gc::NodeValidation {
        let v = self
            .expect("GET", &format!("/v1/nodes/{uuid}/validate"), None, 200)
            .await;
        decode("validation", &v)
    }

    /// `ChangePowerState` then polling the node's power_state.
    async fn power(&mut self, uuid: &str, target: &str, rests_in: &str) {
        self.expect(
            "PUT",
            &format!("/v1/nodes/{uuid}/states/power"),
            Some(json!({"target": target})),
            202,
        )
        .await;
        let deadline = Instant::now() + WAIT;
        loop {
            let n = self.get_node(uuid).await.unwrap();
            if n.power_state.as_deref() == Some(rests_in) && n.target_power_state.is_none() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{uuid} power {:?}",
                n.power_state
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `setMaintenanceFlag`: `nodes.SetMaintenance` (PUT with the reason) or
    /// `nodes.UnsetMaintenance` (DELETE); both answer 202 with nothing to extract.
    async fn maintenance(&mut self, uuid: &str, on: bool, reason: &str) -> gc::Node {
        let path = format!("/v1/nodes/{uuid}/maintenance");
        let (method, body) = if on {
            ("PUT", Some(json!({"reason": reason})))
        } else {
            ("DELETE", None)
        };
        self.expect(method, &path, body, 202).await;
        let n = self.get_node(uuid).await.unwrap();
        assert_eq!(n.maintenance, Some(on));
        n
    }

    /// `Delete`: an available node is managed first, then put in maintenance, then deleted.
    async fn delete(&mut self, uuid: &str) {
        let n = self.get_node(uuid).await.unwrap();
        if n.provision_state == "available" {
            self.provision(uuid, json!({"target": "manage"})).await;
            self.wait(uuid, "manageable").await;
        }
        self.maintenance(uuid, true, "forcing deletion in ironic")
            .await;
        self.expect("DELETE", &format!("/v1/nodes/{uuid}"), None, 204)
            .await;
        assert!(self.get_node(uuid).await.is_none());
    }

    /// `Register` from nothing: lookups that find nothing, enrolment with the boot MAC's port,
    /// then `manage` until manageable (`Verifying` → continue).
    async fn register(&mut self, name: &str, driver_info: Value, mac: &str) -> String {
        assert!(self.find_existing_host(name, mac).await.is_none());
        let node = self.enroll(name, driver_info, mac).await;
        assert_eq!(node.provision_state, "enroll");
        let ports = self.list_ports(&format!("node_uuid={}", node.uuid)).await;
        assert_eq!(ports.ports.len(), 1, "nodeHasAssignedPort");
        self.provision(&node.uuid, json!({"target": "manage"}))
            .await;
        let n = self.wait(&node.uuid, "manageable").await;
        assert!(n.last_error.unwrap_or_default().is_empty());
        // configureNode: BMO's automatedCleaningMode "disabled" on these sushy hosts (their
        // fake BMCs boot no agent to clean with).
        self.patch(
            &node.uuid,
            json!([{"op": "replace", "path": "/automated_clean", "value": false}]),
        )
        .await;
        node.uuid
    }
}

/// Serves `body` over HTTP on loopback, as the web server holding BMO's DataImage would;
/// returns its URL.
async fn http_file(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/data-image.iso",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/data-image.iso")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `serve` with the image cache allowed to read file:// images from `dir` (BMO's images are
/// http URLs; the cache fetches both the same way) and `env`.
fn serve(dir: &Path, env: &[(&str, &str)]) -> crate::common::serve::Server {
    crate::deploy_support::serve_with_env(dir, &[dir], env)
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_bmo_register_inspect_prepare_provide_maintenance_delete_on_libvirt_bmc() {
    let dir = tempfile::tempdir().unwrap();
    let Some((domain, sushy, _volume)) = sushy_libvirt_domain(dir.path()) else {
        return;
    };
    let server = serve(dir.path(), &[]);
    let mut bmo = Bmo::new(&server);
    let mac = "52:54:00:12:34:56";
    let info = json!({
        "redfish_address": sushy.base,
        "redfish_system_id": format!("/redfish/v1/Systems/{}", domain.uuid),
        "redfish_username": "admin",
        "redfish_password": "password",
        "redfish_verify_ca": false,
    });
    let uuid = bmo.register("worker-0", info, mac).await;
    // A second registration pass finds the node by its name and its port by the node.
    let found = bmo.find_existing_host("worker-0", mac).await.unwrap();
    assert_eq!(found.uuid, uuid);
    assert_eq!(
        found.driver_info.unwrap()["redfish_password"],
        "******",
        "the password is masked"
    );

    // InspectHardware: inspect, poll, then the inventory.
    bmo.provision(&uuid, json!({"target": "inspect"})).await;
    let n = bmo.wait(&uuid, "manageable").await;
    assert!(n.inspection_finished_at.is_some());
    let data = bmo
        .expect("GET", &format!("/v1/nodes/{uuid}/inventory"), None, 200)
        .await;
    let inv: gc::InventoryData = decode("inventory", &data);
    let macs: Vec<String> = inv
        .inventory
        .interfaces
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.mac_address)
        .collect();
    assert!(macs.contains(&mac.to_string()), "{macs:?}");
    // The inspected NIC is the registered one: no second port.
    assert_eq!(
        bmo.list_ports(&format!("node_uuid={uuid}"))
            .await
            .ports
            .len(),
        1
    );
    // UpdateHardwareState / GetFirmwareSettings / GetFirmwareComponents.
    let bios = bmo
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/bios?detail=true"),
            None,
            200,
        )
        .await;
    let bios: gc::BiosList = decode("bios", &bios);
    assert!(bios.bios.iter().any(|s| s.name == "ProcTurboMode"));
    let fw = bmo
        .expect("GET", &format!("/v1/nodes/{uuid}/firmware"), None, 200)
        .await;
    let fw: gc::FirmwareList = decode("firmware", &fw);
    let before = fw
        .firmware
        .iter()
        .find(|c| c.component == "bios")
        .and_then(|c| c.current_version.clone())
        .unwrap();

    // Prepare: manual cleaning with BMO's BIOS settings and firmware update steps.
    bmo.provision(
        &uuid,
        json!({"target": "clean", "clean_steps": [
            {"interface": "bios", "step": "apply_configuration",
             "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}},
            {"interface": "firmware", "step": "update",
             "args": {"settings": [{"component": "bios", "url": "http://127.0.0.1:1/bios.bin"}]}},
        ]}),
    )
    .await;
    bmo.wait(&uuid, "manageable").await;
    let one = bmo
        .expect(
            "GET",
            &format!("/v1/nodes/{uuid}/bios/ProcTurboMode"),
            None,
            200,
        )
        .await;
    assert_eq!(one["ProcTurboMode"]["value"], "Disabled", "{one}");
    let fw: gc::FirmwareList = decode(
        "firmware",
        &bmo.expect("GET", &format!("/v1/nodes/{uuid}/firmware"), None, 200)
            .await,
    );
    let bios_fw = fw.firmware.iter().find(|c| c.component == "bios").unwrap();
    assert_ne!(bios_fw.current_version.as_deref(), Some(before.as_str()));

    // Provide, then maintenance on and off.
    bmo.provision(&uuid, json!({"target": "provide"})).await;
    bmo.wait(&uuid, "available").await;
    let n = bmo.maintenance(&uuid, true, "replay").await;
    assert_eq!(n.maintenance_reason.as_deref(), Some("replay"));
    let n = bmo.maintenance(&uuid, false, "").await;
    assert!(n.maintenance_reason.unwrap_or_default().is_empty());

    bmo.delete(&uuid).await;
    assert!(bmo.find_existing_host("worker-0", mac).await.is_none());
    eprintln!("BMO calls replayed:\n{}", bmo.calls.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_bmo_live_iso_power_adopt_vmedia_deprovision_delete_on_sushy_fake() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sushy, system)) = sushy_fake(dir.path()).await else {
        return;
    };
    let iso = dir.path().join("live.iso");
    std::fs::write(&iso, ironcast::demo::demo_iso()).unwrap();
    let server = serve(dir.path(), &[]);
    let mut bmo = Bmo::new(&server);
    let mac = "52:54:00:aa:bb:01";
    let info = json!({
        "redfish_address": sushy.base,
        "redfish_system_id": system,
        "redfish_username": "admin",
        "redfish_password": "password",
        "redfish_verify_ca": false,
    });
    let uuid = bmo.register("worker-1", info.clone(), mac).await;
    bmo.provision(&uuid, json!({"target": "provide"})).await;
    bmo.wait(&uuid, "available").await;

    // Provision, live ISO: setLiveIsoUpdateOptsForNode (boot_iso, no checksum; ramdisk
    // deploy; force_persistent_boot_device), validateNode, then active without a config drive.
    let boot_iso = format!("file://{}", iso.display());
    let live_iso_opts = json!([
        {"op": "add", "path": "/instance_info/boot_iso", "value": boot_iso},
        {"op": "replace", "path": "/deploy_interface", "value": "ramdisk"},
        {"op": "add", "path": "/driver_info/force_persistent_boot_device", "value": "Default"},
    ]);
    bmo.patch(&uuid, live_iso_opts.clone()).await;
    let v = bmo.validate(&uuid).await;
    assert!(v.boot.result && v.deploy.result, "{v:?}");
    bmo.provision(&uuid, json!({"target": "active"})).await;
    let n = bmo.wait(&uuid, "active").await;
    assert_eq!(n.power_state.as_deref(), Some("power on"));

    // PowerOff / PowerOn.
    bmo.power(&uuid, "power off", "power off").await;
    bmo.power(&uuid, "power on", "power on").await;

    // Deprovision: deleted, polled until available; Ironic forgot the instance.
    bmo.provision(&uuid, json!({"target": "deleted"})).await;
    let n = bmo.wait(&uuid, "available").await;
    assert!(n.instance_uuid.is_none());

    // The database is lost: the node is gone, BMO registers the host again (same name, same
    // MAC) and, the host being provisioned, adopts it instead of deploying again.
    bmo.delete(&uuid).await;
    let uuid = bmo.register("worker-1", info, mac).await;
    bmo.patch(&uuid, live_iso_opts).await;
    bmo.provision(&uuid, json!({"target": "adopt"})).await;
    let n = bmo.wait(&uuid, "active").await;
    assert!(n.last_error.unwrap_or_default().is_empty());

    // DataImage: attach to the virtual CD (sushy downloads it), list, detach.
    let data_image = http_file(ironcast::demo::demo_iso()).await;
    let data_image = data_image.as_str();
    bmo.expect(
        "POST",
        &format!("/v1/nodes/{uuid}/vmedia"),
        Some(json!({"device_type": "cdrom", "image_url": data_image})),
        204,
    )
    .await;
    let listed = bmo
        .expect("GET", &format!("/v1/nodes/{uuid}/vmedia"), None, 200)
        .await;
    let cd =
        crate::deploy_support::get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Image"], data_image, "sushy shows the data image: {cd}");
    assert_eq!(cd["Inserted"], true, "{cd}");
    assert!(listed.to_string().contains(data_image), "{listed}");
    bmo.expect(
        "DELETE",
        &format!("/v1/nodes/{uuid}/vmedia?device_types=cdrom"),
        None,
        204,
    )
    .await;
    let cd =
        crate::deploy_support::get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Inserted"], false, "{cd}");

    bmo.provision(&uuid, json!({"target": "deleted"})).await;
    bmo.wait(&uuid, "available").await;
    bmo.delete(&uuid).await;
    eprintln!("BMO calls replayed:\n{}", bmo.calls.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_bmo_direct_deploy_with_config_drive_on_simulated_agent() {
    use ironcast::redfish::sim::{Fleet, FleetOptions};
    let dir = tempfile::tempdir().unwrap();
    let agent_iso = dir.path().join("agent.iso");
    std::fs::write(&agent_iso, ironcast::demo::demo_agent_iso()).unwrap();
    let image = dir.path().join("disk.raw");
    let bytes = crate::common::pseudo_random(4 << 20, 15);
    std::fs::write(&image, &bytes).unwrap();
    let server = serve(
        dir.path(),
        &[
            ("IRONCAST_AGENT__ISO", agent_iso.to_str().unwrap()),
            ("IRONCAST_DIRECT__AGENT_TIMEOUT_S", "60"),
        ],
    );
    let mut opts = FleetOptions::new(1);
    opts.inspector = ironcast::demo::iso_boot_inspector();
    opts.on_power = Some(ironcast::agent::sim::agent_hook());
    let fleet = Fleet::start(opts).await.unwrap();
    let mut bmo = Bmo::new(&server);
    let mac = "52:54:00:aa:bb:02";
    let info = json!({
        "redfish_address": fleet.address(0),
        "redfish_username": "admin",
        "redfish_password": "password",
    });
    let uuid = bmo.register("worker-2", info, mac).await;
    // BMO's default automatedCleaningMode (metadata): the agent cleans on provide.
    bmo.patch(
        &uuid,
        json!([{"op": "replace", "path": "/automated_clean", "value": true}]),
    )
    .await;
    bmo.provision(&uuid, json!({"target": "provide"})).await;
    bmo.wait(&uuid, "available").await;

    // Provision, direct deploy: setDirectDeployUpdateOptsForNode (image and its hash),
    // root device hints, validateNode, then active with BMO's config drive.
    bmo.patch(
        &uuid,
        json!([
            {"op": "add", "path": "/instance_info/image_source",
             "value": format!("file://{}", image.display())},
            {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
            {"op": "add", "path": "/instance_info/image_os_hash_value", "value": sha256_hex(&bytes)},
            {"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"},
            {"op": "add", "path": "/instance_info/capabilities", "value": {}},
            // devicehints.MakeHintMap: minSizeGigabytes becomes Ironic's size operator.
            {"op": "add", "path": "/properties/root_device", "value": {"size": ">= 1"}},
        ]),
    )
    .await;
    let v = bmo.validate(&uuid).await;
    assert!(v.boot.result && v.deploy.result, "{v:?}");
    let config_drive = json!({
        "meta_data": {
            "uuid": "9f1b7b1e-0000-4000-8000-000000000002",
            "metal3-namespace": NS,
            "metal3-name": "worker-2",
            "local-hostname": "worker-2",
            "local_hostname": "worker-2",
            "name": "worker-2",
        },
        "user_data": "#cloud-config\nhostname: worker-2\n",
        "network_data": {"links": [], "networks": [], "services": []},
    });
    bmo.provision(
        &uuid,
        json!({"target": "active", "configdrive": config_drive}),
    )
    .await;
    let n = bmo.wait(&uuid, "active").await;
    assert!(n.last_error.unwrap_or_default().is_empty());
    let history = bmo
        .expect("GET", &format!("/v1/nodes/{uuid}/history"), None, 200)
        .await
        .to_string();
    assert!(history.contains("config drive"), "{history}");

    bmo.provision(&uuid, json!({"target": "deleted"})).await;
    let n = bmo.wait(&uuid, "available").await;
    assert!(n
        .instance_info
        .unwrap_or_default()
        .get("configdrive")
        .is_none());
    bmo.delete(&uuid).await;
    eprintln!("BMO calls replayed:\n{}", bmo.calls.join("\n"));
}
