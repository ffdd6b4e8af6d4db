//! An Ironic API client speaking as BMO does (gophercloud: JSON bodies, the microversion
//! header), `serve` with its state in the test's directory, and sushy-tools BMCs.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::ironcast_bin;
use crate::common::libvirt::{define, sushy_libvirt_with, virsh_ok, Domain};
use crate::common::serve::{spawn_serve, Server};
use crate::common::sushy::Sushy;
use crate::deploy_support::serve_log;

/// The microversion BMO sends to ironcast: BMO's `ChooseMicroversion` (clients/features.go)
/// over the maximum ironcast advertises — 1.110 (deploy abort, the newest BMO's pick), 1.109
/// (health), 1.95 (disable_power_off), 1.93 (vmedia GET), else its 1.89 baseline.
pub fn bmo_version() -> String {
    let max = ironcast::api::version::MAX.0;
    let picked = [110, 109, 95, 93]
        .into_iter()
        .find(|v| max >= *v)
        .unwrap_or(89);
    format!("1.{picked}")
}

pub struct Api {
    pub url: String,
    http: reqwest::Client,
    pub version: String,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            url: server.url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            version: bmo_version(),
        }
    }

    /// One call: status and JSON body (Null when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.url))
            .header("X-OpenStack-Ironic-API-Version", &self.version);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// A call that must answer `want`; returns the body.
    pub async fn expect(&self, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    pub async fn node(&self, ident: &str) -> Value {
        self.expect("GET", &format!("/v1/nodes/{ident}"), None, 200)
            .await
    }

    pub async fn provision(&self, ident: &str, body: Value) {
        self.expect(
            "PUT",
            &format!("/v1/nodes/{ident}/states/provision"),
            Some(body),
            202,
        )
        .await;
    }

    /// Polls as BMO does until the node rests in `want` (panics on a failure state).
    pub async fn wait_state(&self, ident: &str, want: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.node(ident).await;
            let state = n["provision_state"].as_str().unwrap_or("").to_string();
            if state == want && n["target_provision_state"].is_null() {
                return n;
            }
            assert!(
                !state.ends_with("failed") || want.ends_with("failed"),
                "node {ident} reached {state} waiting for {want}: {}",
                n["last_error"]
            );
            assert!(
                Instant::now() < deadline,
                "node {ident} still {state} after {timeout:?}, waiting for {want}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Registers a redfish node the way BMO's Register does, with a port for its boot MAC.
    pub async fn register(&self, name: &str, bmc: &str, system_id: &str, extra: Value) -> Value {
        let mut body = json!({
            "name": name,
            "driver": "redfish",
            "driver_info": {
                "redfish_address": bmc,
                "redfish_system_id": system_id,
                "redfish_username": "admin",
                "redfish_password": "password",
                "redfish_verify_ca": false,
            },
            "boot_interface": "redfish-virtual-media",
            "inspect_interface": "redfish",
            "management_interface": "redfish",
            "power_interface": "redfish",
            "raid_interface": "redfish",
            "vendor_interface": "redfish",
            "bios_interface": "redfish",
            "firmware_interface": "redfish",
            "deploy_interface": "ramdisk",
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.expect("POST", "/v1/nodes", Some(body), 201).await
    }
}

/// sushy --fake and the path of its one system.
pub async fn sushy_fake(dir: &Path) -> Option<(Sushy, String)> {
    let sushy = Sushy::start(&dir.join("sushy"))?;
    let systems: Value = reqwest::get(format!("{}/redfish/v1/Systems", sushy.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let system = systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    Some((sushy, system))
}

/// A volume in libvirt's `default` pool (sushy's SimpleStorage lists only pool volumes),
/// deleted on drop.
pub struct PoolVolume(pub String);

impl Drop for PoolVolume {
    fn drop(&mut self) {
        let _ = crate::common::libvirt::virsh(&["vol-delete", "--pool", "default", &self.0]);
    }
}

/// A defined (never started) libvirt domain behind sushy's libvirt driver: BIOS, processors,
/// memory, SimpleStorage (a 6 GiB pool volume), NICs and a BIOS version, as on a real BMC.
pub fn sushy_libvirt_domain(dir: &Path) -> Option<(Domain, Sushy, PoolVolume)> {
    sushy_libvirt_domain_with(dir, |_| String::new())
}

/// [`sushy_libvirt_domain`] with more sushy configuration, made from the domain's UUID.
pub fn sushy_libvirt_domain_with(
    dir: &Path,
    extra_conf: impl FnOnce(&str) -> String,
) -> Option<(Domain, Sushy, PoolVolume)> {
    crate::common::tool("virsh")?;
    let volume = PoolVolume(format!(
        "ironcast-metal3-{}-{}.img",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    virsh_ok(&[
        "vol-create-as",
        "default",
        &volume.0,
        "6G",
        "--allocation",
        "0",
        "--format",
        "raw",
    ]);
    let extra = format!(
        "<interface type='user'><mac address='52:54:00:12:34:56'/><model type='e1000'/></interface>\
         <disk type='volume' device='disk'><source pool='default' volume='{}'/>\
         <target dev='sdc' bus='sata'/></disk>",
        volume.0
    );
    let domain = define(dir, "uefi", 1 << 20, &extra);
    // Redfish reports whole GiB (TotalSystemMemoryGiB): give the never-started guest 2 GiB.
    for cmd in ["setmaxmem", "setmem"] {
        virsh_ok(&[cmd, &domain.name, "2097152", "--config"]);
    }
    let sushy = sushy_libvirt_with(dir, &domain, &extra_conf(&domain.uuid))?;
    Some((domain, sushy, volume))
}

pub fn serve(dir: &Path) -> Server {
    spawn_serve(dir, &[])
}

/// `ironcast ARGS` against `server`.
pub fn ironcast(server: &Server, args: &[&str]) -> Output {
    Command::new(ironcast_bin())
        .args(args)
        .env("IRONCAST_URL", &server.url)
        .output()
        .expect("run ironcast")
}

pub fn ok(server: &Server, args: &[&str]) -> String {
    let out = ironcast(server, args);
    assert!(
        out.status.success(),
        "ironcast {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn get_bmh(server: &Server, name: &str) -> Option<Value> {
    let out = ironcast(server, &["get", "bmh", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("get bmh -o json is JSON"))
}

/// Waits until the host's provisioning.state is `want`, returning the host; on timeout shows
/// the host and serve's log (in `dir`).
pub fn wait_state(server: &Server, dir: &Path, name: &str, want: &str, timeout: Duration) -> Value {
    wait_host(server, dir, name, want, timeout, |_| true)
}

/// [`wait_state`], also waiting for `also` to hold of the host (e.g. a new image reached).
pub fn wait_host(
    server: &Server,
    dir: &Path,
    name: &str,
    want: &str,
    timeout: Duration,
    also: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let h = get_bmh(server, name).unwrap_or_else(|| panic!("host {name} vanished"));
        let state = h["status"]["provisioning"]["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if state != last {
            eprintln!("{name}: {state} ({} ms)", start.elapsed().as_millis());
            last = state.clone();
        }
        if state == want && also(&h) {
            return h;
        }
        assert!(
            start.elapsed() < timeout,
            "{name} did not reach {want:?} in {timeout:?}: {h:#}\nnode: {:#}\n{}",
            node(server, &format!("default~{name}")).unwrap_or_default(),
            serve_log(dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The node (Ironic's JSON at the latest microversion) named or numbered `ident`, if any.
pub fn node(server: &Server, ident: &str) -> Option<Value> {
    let out = Command::new("curl")
        .args(["-s", "-H", "X-OpenStack-Ironic-API-Version: latest"])
        .arg(format!("{}/v1/nodes/{ident}", server.url))
        .output()
        .expect("curl");
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get("uuid").is_some().then_some(v)
}
