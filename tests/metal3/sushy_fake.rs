//! BareMetalHost manifests against sushy-emulator --fake: a live-ISO host goes registering →
//! inspecting → preparing → available → provisioning → provisioned; removing the image
//! deprovisions it back to available; deleting it removes its node. Invalid manifests create
//! nothing; a missing Secret leaves the host registering and discovered.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::serve::Server;
use crate::common::sushy::Sushy;
use crate::deploy_support::{serve_log, serve_with_env};
use crate::support::{get_bmh, ironcast, node, ok, wait_state};

pub fn manifest(sushy: &Sushy, system: &str, image: Option<&Path>) -> String {
    let image = match image {
        Some(iso) => format!(
            "  image:\n    url: file://{}\n    format: live-iso\n",
            iso.display()
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: host-0-bmc
type: Opaque
stringData:
  username: admin
  password: s3cret
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: host-0
spec:
  online: true
  # No agent ramdisk in this test: cleaning would need one.
  automatedCleaningMode: disabled
  bootMACAddress: 52:54:00:aa:bb:01
  bmc:
    address: redfish-virtualmedia+{}{}
    credentialsName: host-0-bmc
{image}",
        sushy.base, system
    )
}

pub async fn first_system(sushy: &Sushy) -> String {
    let systems: Value = reqwest::get(format!("{}/redfish/v1/Systems", sushy.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn serve(dir: &Path) -> Server {
    serve_with_env(
        dir,
        &[dir],
        &[
            ("IRONCAST_METAL3__POLL_INTERVAL_MS", "200"),
            ("IRONCAST_METAL3__BACKOFF_UNIT_S", "1"),
            // BMO sends no checksum for a live ISO.
            ("IRONCAST_RAMDISK__ALLOW_UNVERIFIED", "true"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bmh_live_iso_through_sushy_fake_provisions_deprovisions_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(&dir.path().join("sushy")) else {
        return;
    };
    let server = serve(dir.path());
    let system = first_system(&sushy).await;
    let iso = dir.path().join("live.iso");
    std::fs::write(&iso, ironcast::demo::demo_iso()).unwrap();
    let file = dir.path().join("hosts.yaml");
    std::fs::write(&file, manifest(&sushy, &system, Some(&iso))).unwrap();

    let out = ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    assert!(out.contains("secret/host-0-bmc created"), "{out}");
    assert!(
        out.contains("baremetalhost.metal3.io/host-0 created"),
        "{out}"
    );
    let again = ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    assert!(
        again.contains("baremetalhost.metal3.io/host-0 unchanged"),
        "{again}"
    );

    let h = wait_state(
        &server,
        dir.path(),
        "host-0",
        "provisioned",
        Duration::from_secs(180),
    );
    let st = &h["status"];
    assert_eq!(st["operationalStatus"], "OK", "{h:#}");
    assert_eq!(st["errorType"], "", "{h:#}");
    assert_eq!(st["poweredOn"], true, "{h:#}");
    // Inspected out of band through sushy: its fake system's NIC, from the stored inventory.
    let mac = st["hardware"]["nics"][0]["mac"].as_str().unwrap_or("");
    assert_eq!(mac.len(), 17, "{h:#}");
    assert!(st["provisioning"]["image"]["url"]
        .as_str()
        .unwrap()
        .ends_with("live.iso"));
    for op in ["register", "inspect", "provision"] {
        let m = &st["operationHistory"][op];
        assert!(
            m["start"].is_string() && m["end"].is_string(),
            "{op}: {h:#}"
        );
    }
    let node_id = st["provisioning"]["ID"].as_str().unwrap().to_string();
    let n = node(&server, &node_id).expect("the host's node");
    assert_eq!(n["name"], "default~host-0");
    assert_eq!(n["provision_state"], "active");
    assert_eq!(n["deploy_interface"], "ramdisk");
    assert_eq!(n["boot_interface"], "redfish-virtual-media");
    assert_eq!(n["driver_info"]["redfish_password"], "******");
    // sushy shows the ISO inserted: the host really booted it.
    let sys: Value = reqwest::get(format!("{}{system}", sushy.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sys["PowerState"], "On", "{sys:#}");

    let table = ok(&server, &["get", "bmh"]);
    assert!(
        table.contains("host-0") && table.contains("provisioned"),
        "{table}"
    );

    // Removing the image deprovisions back to available.
    std::fs::write(&file, manifest(&sushy, &system, None)).unwrap();
    let out = ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    assert!(
        out.contains("baremetalhost.metal3.io/host-0 configured"),
        "{out}"
    );
    let h = wait_state(
        &server,
        dir.path(),
        "host-0",
        "available",
        Duration::from_secs(120),
    );
    assert_eq!(h["status"]["provisioning"]["image"]["url"], "", "{h:#}");
    assert!(
        h["status"]["operationHistory"]["deprovision"]["end"].is_string(),
        "{h:#}"
    );
    let n = node(&server, &node_id).unwrap();
    assert!(
        n["provision_state"] == "available" || n["provision_state"] == "manageable",
        "{n:#}"
    );

    // Deleting the host removes its node, then the host.
    let out = ok(&server, &["delete", "bmh", "host-0", "--wait", "120"]);
    assert!(out.contains("deleted"), "{out}");
    assert!(get_bmh(&server, "host-0").is_none());
    assert!(
        node(&server, &node_id).is_none(),
        "node {node_id} still exists"
    );
}

/// An HTTP server that accepts connections and never answers: a deploy fetching from it stays
/// in `deploying` until the image timeout.
fn stalling_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().map_while(Result::ok) {
            held.push(conn);
        }
    });
    format!("http://{addr}/slow.iso")
}

#[tokio::test(flavor = "multi_thread")]
async fn bmh_delete_mid_provision_deprovisions_first() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(&dir.path().join("sushy")) else {
        return;
    };
    let server = serve_with_env(
        dir.path(),
        &[dir.path()],
        &[
            ("IRONCAST_METAL3__POLL_INTERVAL_MS", "200"),
            ("IRONCAST_RAMDISK__ALLOW_UNVERIFIED", "true"),
            ("IRONCAST_RAMDISK__IMAGE_TIMEOUT_S", "4"),
        ],
    );
    let system = first_system(&sushy).await;
    let file = dir.path().join("hosts.yaml");
    let slow = stalling_server();
    let text = manifest(&sushy, &system, None)
        + &format!("  image:\n    url: {slow}\n    format: live-iso\n");
    std::fs::write(&file, text).unwrap();
    ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    let h = wait_state(
        &server,
        dir.path(),
        "host-0",
        "provisioning",
        Duration::from_secs(60),
    );
    let node_id = h["status"]["provisioning"]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    // The deploy is fetching the image (it stalls): delete the host now.
    let start = Instant::now();
    while node(&server, &node_id).unwrap()["provision_state"] != "deploying" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "deploy did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&server, &["delete", "bmh", "host-0"]);
    let h = wait_state(
        &server,
        dir.path(),
        "host-0",
        "deprovisioning",
        Duration::from_secs(30),
    );
    assert!(h["metadata"]["deletionTimestamp"].is_string(), "{h:#}");
    assert!(
        node(&server, &node_id).is_some(),
        "the node went before deprovisioning"
    );
    let start = Instant::now();
    while get_bmh(&server, "host-0").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "host not deleted"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(node(&server, &node_id).is_none());
    // The node history shows the undeploy before the deletion.
    let log = serve_log(dir.path());
    let deprov = log
        .find("to=\"deprovisioning\"")
        .expect("deprovisioning in the log");
    let deleting = log.find("to=\"deleting\"").expect("deleting in the log");
    assert!(deprov < deleting, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bmh_invalid_manifests_create_nothing_and_missing_secret_waits_discovered() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(&dir.path().join("sushy")) else {
        return;
    };
    let server = serve(dir.path());
    let system = first_system(&sushy).await;
    let file = dir.path().join("bad.yaml");
    // A valid Secret and an invalid host in one file: BMO's message, nothing created.
    let bad = manifest(&sushy, &system, None).replace("name: host-0\n", "name: host~0\n");
    std::fs::write(&file, &bad).unwrap();
    let out = ironcast(&server, &["apply", "-f", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "BareMetalHost resource name cannot contain characters other than [A-Za-z0-9._-]"
        ),
        "{err}"
    );
    let list = ok(&server, &["get", "bmh", "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        Value::Array(vec![])
    );

    // An unknown field is named.
    std::fs::write(
        &file,
        manifest(&sushy, &system, None).replace("online:", "onlin:"),
    )
    .unwrap();
    let out = ironcast(&server, &["apply", "-f", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `onlin`"), "{err}");

    // The host without its Secret: registering, discovered.
    let host_only = manifest(&sushy, &system, None)
        .split("---\n")
        .nth(1)
        .unwrap()
        .to_string();
    std::fs::write(&file, host_only).unwrap();
    ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    let h = wait_state(
        &server,
        dir.path(),
        "host-0",
        "registering",
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(1));
    let h = get_bmh(&server, "host-0").unwrap_or(h);
    assert_eq!(h["status"]["operationalStatus"], "discovered", "{h:#}");
    assert!(
        h["status"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("host-0-bmc not found"),
        "{h:#}"
    );
    assert!(node(&server, "default~host-0").is_none());

    // bootMACAddress cannot change once set.
    std::fs::write(
        &file,
        manifest(&sushy, &system, None).replace("52:54:00:aa:bb:01", "52:54:00:aa:bb:02"),
    )
    .unwrap();
    let out = ironcast(&server, &["apply", "-f", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bootMACAddress can not be changed once it is set"),
        "{err}"
    );
    // With the Secret applied, registration goes on.
    std::fs::write(&file, manifest(&sushy, &system, None)).unwrap();
    ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    wait_state(
        &server,
        dir.path(),
        "host-0",
        "available",
        Duration::from_secs(60),
    );
}
