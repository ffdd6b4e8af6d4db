//! BMO's annotations on a BareMetalHost, end to end against sushy-emulator --fake:
//! `reboot.metal3.io` powers the host off and on again and is consumed; `paused` leaves the
//! host alone (a change of `online` waits until it is removed); `detached` removes the node
//! and keeps the host (`operationalStatus: detached`), and removing it registers the host
//! again; `inspect.metal3.io: ""` on an available host inspects it again and is consumed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::serve::Server;
use crate::common::sushy::Sushy;
use crate::deploy_support::get_json;
use crate::support::{get_bmh, node, ok, wait_state};
use crate::sushy_fake::{first_system, manifest, serve};

/// The host's manifest (no image, `online` as given) with `annotations` (YAML lines).
fn annotated(sushy: &Sushy, system: &str, online: bool, annotations: &[&str]) -> String {
    let mut text = manifest(sushy, system, None);
    if !online {
        text = text.replace("online: true", "online: false");
    }
    if !annotations.is_empty() {
        let lines: String = annotations.iter().map(|a| format!("    {a}\n")).collect();
        text = text.replace(
            "  name: host-0\nspec:",
            &format!("  name: host-0\n  annotations:\n{lines}spec:"),
        );
    }
    text
}

/// Polls the host until `cond` holds (90 s at most: power actions wait on the BMC), returning it.
fn wait_for(server: &Server, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let h = get_bmh(server, "host-0").expect("host-0");
        if cond(&h) {
            eprintln!("{what}: {} ms", start.elapsed().as_millis());
            return h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{what}: not reached in 90 s: {h:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn has_annotation(h: &Value, key: &str) -> bool {
    h["metadata"]["annotations"].get(key).is_some()
}

/// The node's power history events, oldest first ("Off: power off", "On: power on").
fn power_events(server: &Server, node_id: &str) -> Vec<String> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-H", "X-OpenStack-Ironic-API-Version: latest"])
        .arg(format!(
            "{}/v1/nodes/{node_id}/history?detail=true",
            server.url
        ))
        .output()
        .expect("curl");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event_type"] == "power")
        .filter_map(|e| e["event"].as_str().map(String::from))
        .collect()
}

async fn power_state(sushy: &Sushy, system: &str) -> Value {
    get_json(&format!("{}{system}", sushy.base)).await["PowerState"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn bmh_annotations_reboot_paused_detached_and_inspect_through_sushy_fake() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(&dir.path().join("sushy")) else {
        return;
    };
    let server = serve(dir.path());
    let system = first_system(&sushy).await;
    let file = dir.path().join("hosts.yaml");
    let apply = |text: String| {
        std::fs::write(&file, text).unwrap();
        ok(&server, &["apply", "-f", file.to_str().unwrap()])
    };
    apply(annotated(&sushy, &system, true, &[]));
    let h = wait_state(
        &server,
        dir.path(),
        "host-0",
        "available",
        Duration::from_secs(60),
    );
    let h = if h["status"]["poweredOn"] == true {
        h
    } else {
        wait_for(&server, "powered on", |h| h["status"]["poweredOn"] == true)
    };
    let node_id = h["status"]["provisioning"]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let inspected_at = h["status"]["operationHistory"]["inspect"]["start"].clone();

    // reboot.metal3.io: off, the annotation consumed, on again.
    let before = power_events(&server, &node_id).len();
    apply(annotated(
        &sushy,
        &system,
        true,
        &["reboot.metal3.io: \"\""],
    ));
    wait_for(&server, "reboot consumed and powered on", |h| {
        !has_annotation(h, "reboot.metal3.io") && h["status"]["poweredOn"] == true
    });
    let events = power_events(&server, &node_id);
    let after: Vec<&str> = events[before..].iter().map(String::as_str).collect();
    let off = after.iter().position(|e| e.ends_with("power off"));
    let on = after.iter().rposition(|e| e.ends_with("power on"));
    assert!(
        matches!((off, on), (Some(a), Some(b)) if a < b),
        "no power off then on: {after:?}"
    );

    // paused: online: false is not acted on until the annotation goes.
    apply(annotated(
        &sushy,
        &system,
        false,
        &["baremetalhost.metal3.io/paused: \"\""],
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        power_state(&sushy, &system).await,
        "On",
        "a paused host was acted on"
    );
    apply(annotated(&sushy, &system, false, &[]));
    wait_for(&server, "powered off once unpaused", |h| {
        h["status"]["poweredOn"] == false
    });
    assert_eq!(power_state(&sushy, &system).await, "Off");

    // detached: the node goes, the host stays; without it the host registers again.
    apply(annotated(
        &sushy,
        &system,
        false,
        &["baremetalhost.metal3.io/detached: \"\""],
    ));
    let h = wait_for(&server, "detached", |h| {
        h["status"]["operationalStatus"] == "detached"
    });
    assert_eq!(h["status"]["provisioning"]["state"], "available", "{h:#}");
    assert!(node(&server, &node_id).is_none(), "the node was kept");
    apply(annotated(&sushy, &system, false, &[]));
    let h = wait_for(&server, "attached again", |h| {
        h["status"]["operationalStatus"] == "OK"
            && node(&server, "default~host-0").is_some_and(|n| n["provision_state"] == "manageable")
    });
    assert_eq!(h["status"]["provisioning"]["state"], "available", "{h:#}");

    // inspect.metal3.io: "" inspects an available host again.
    apply(annotated(
        &sushy,
        &system,
        false,
        &["inspect.metal3.io: \"\""],
    ));
    let h = wait_for(&server, "inspected again", |h| {
        h["status"]["provisioning"]["state"] == "available"
            && !has_annotation(h, "inspect.metal3.io")
            && h["status"]["operationHistory"]["inspect"]["start"] != inspected_at
            && h["status"]["operationHistory"]["inspect"]["end"].is_string()
    });
    assert!(h["status"]["hardware"]["nics"].is_array(), "{h:#}");
}
