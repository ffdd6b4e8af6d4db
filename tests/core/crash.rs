//! kill -9 at every crash seam of a live-ISO deploy: `ironcast serve` runs with
//! `IRONCAST_FAILPOINTS=<seam>=abort` (the process dies on the spot, as with kill -9), deploys a
//! node of a simulated BMC fleet (redfish + ramdisk driver, the ISO remastered and published),
//! and is restarted without the fail point. Afterwards: the node is unlocked and `active` or
//! `deploy failed` with a reason; no cache lease is pinned and no publication is live unless the
//! active node records it; every cache entry's bytes match its name; a re-deploy succeeds and
//! its URL answers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::spawn_serve;
use ironcast::redfish::sim::{Fleet, FleetHandle, FleetOptions};

const SEAMS: &[&str] = &[
    "cache-commit",
    "lease-taken",
    "publication-made",
    "eject-insert",
    "lock-release",
];

struct Setup {
    _dir: tempfile::TempDir,
    state: PathBuf,
    config: PathBuf,
    iso: PathBuf,
    checksum: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let iso = ironcast::demo::demo_iso();
    let iso_path = dir.path().join("live.iso");
    std::fs::write(&iso_path, &iso).unwrap();
    let config = dir.path().join("ironcast.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\nallowed_file_dirs = [{:?}]\n",
            dir.path().display().to_string()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    Setup {
        state,
        config,
        iso: iso_path,
        checksum: format!("sha256:{}", hex::encode(Sha256::digest(&iso))),
        _dir: dir,
    }
}

async fn call(url: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .header("X-OpenStack-Ironic-API-Version", "latest");
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// Waits until the node is unlocked in one of `states`.
async fn settle(url: &str, node: &str, states: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, n) = call(
            url,
            reqwest::Method::GET,
            &format!("/v1/nodes/{node}"),
            None,
        )
        .await;
        let state = n["provision_state"].as_str().unwrap_or_default();
        if n["reservation"].is_null() && states.contains(&state) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "never settled in {states:?}: {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn provision(url: &str, node: &str, target: &str) {
    let path = format!("/v1/nodes/{node}/states/provision");
    let (s, n) = call(
        url,
        reqwest::Method::PUT,
        &path,
        Some(json!({"target": target})),
    )
    .await;
    assert_eq!(s, 202, "{target}: {n}");
}

/// The `*.json` names (without the ending) in `dir`.
fn records(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .collect();
    out.sort();
    out
}

/// Every committed cache entry's bytes hash to its name.
fn assert_entries_whole(cache: &Path, seam: &str) {
    for e in std::fs::read_dir(cache.join("entries")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.len() == 64 && !name.contains('.') {
            let bytes = std::fs::read(e.path()).unwrap();
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                name,
                "{seam}: corrupt entry"
            );
        }
    }
}

/// What is held for the node must be what it records, and only while it is active.
fn assert_nothing_orphaned(state: &Path, node: &Value, seam: &str) {
    let dii = &node["driver_internal_info"];
    let active = node["provision_state"] == "active";
    let recorded = |key: &str| -> Vec<String> {
        match dii[key].as_str() {
            Some(id) if active => vec![id.to_string()],
            _ => vec![],
        }
    };
    assert_eq!(
        records(&state.join("cache/leases")),
        recorded("ramdisk_lease"),
        "{seam}: leases pinned: {node}"
    );
    assert_eq!(
        records(&state.join("imageserver")),
        recorded("ramdisk_publication"),
        "{seam}: publications live: {node}"
    );
    assert_entries_whole(&state.join("cache"), seam);
}

async fn crash_at(seam: &str, fleet: &FleetHandle) {
    let s = setup();
    let config = s.config.to_str().unwrap();
    // One image server address across restarts, as in production: a published URL names it.
    let images = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let base = [
        ("IRONCAST_CONFIG", config),
        ("IRONCAST_IMAGESERVER__BIND", images.as_str()),
    ];
    // Enrol and make the node available without the fail point (lock-release is on every path).
    let server = spawn_serve(&s.state, &base);
    let url = server.url.clone();
    let body = json!({
        "name": "victim", "driver": "redfish",
        "driver_info": {"redfish_address": fleet.address(0),
                        "redfish_username": "admin", "redfish_password": "password"},
        "instance_info": {"boot_iso": format!("file://{}", s.iso.display()),
                          "boot_iso_checksum": s.checksum,
                          "kernel_append_params": "marker=crash"},
    });
    let (status, n) = call(&url, reqwest::Method::POST, "/v1/nodes", Some(body)).await;
    assert_eq!(status, 201, "{n}");
    provision(&url, "victim", "manage").await;
    settle(&url, "victim", &["manageable"]).await;
    provision(&url, "victim", "provide").await;
    settle(&url, "victim", &["available"]).await;
    drop(server);

    let armed = format!("{seam}=abort");
    let mut server = spawn_serve(
        &s.state,
        &[base[0], base[1], ("IRONCAST_FAILPOINTS", &armed)],
    );
    let url = server.url.clone();
    provision(&url, "victim", "active").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{seam}: the fail point was never reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!exit.success(), "{seam}: serve should have aborted");
    drop(server);

    let server = spawn_serve(&s.state, &base);
    let url = server.url.clone();
    let node = settle(&url, "victim", &["active", "deploy failed"]).await;
    eprintln!(
        "{seam}: after restart {} ({})",
        node["provision_state"], node["last_error"]
    );
    if node["provision_state"] == "deploy failed" {
        assert!(
            !node["last_error"].as_str().unwrap_or_default().is_empty(),
            "{seam}: failed without a reason: {node}"
        );
    }
    assert_nothing_orphaned(&s.state, &node, seam);

    // The node deploys again, and its ISO is served.
    let node = if node["provision_state"] == "active" {
        node
    } else {
        provision(&url, "victim", "active").await;
        settle(&url, "victim", &["active"]).await
    };
    assert_nothing_orphaned(&s.state, &node, seam);
    let iso_url = node["driver_internal_info"]["ramdisk_publication_url"]
        .as_str()
        .unwrap();
    let resp = reqwest::Client::new().head(iso_url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{seam}: {iso_url}");
    drop(server);
    plant_orphans(&s.state, &node);
    let server = spawn_serve(&s.state, &base);
    let metrics = metrics(&server.url).await;
    assert!(
        metrics.contains("ironcast_leases_reconciled_total 1")
            && metrics.contains("ironcast_publications_reconciled_total 1"),
        "{seam}: {metrics}"
    );
    assert_nothing_orphaned(&s.state, &node, seam);
    let resp = reqwest::Client::new().head(iso_url).send().await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{seam}: the recorded URL still answers"
    );
}

/// A lease and a publication for the node that it does not record (as a deploy that died
/// before saving would leave them, had it not recorded its intent first): copies of the
/// recorded ones under fresh ids.
fn plant_orphans(state: &Path, node: &Value) {
    let dii = &node["driver_internal_info"];
    for (dir, key) in [
        (state.join("cache/leases"), "ramdisk_lease"),
        (state.join("imageserver"), "ramdisk_publication"),
    ] {
        let id = dii[key].as_str().unwrap();
        let mut record: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{id}.json"))).unwrap())
                .unwrap();
        let orphan = uuid::Uuid::new_v4().to_string();
        record["id"] = json!(orphan);
        if record.get("token").is_some() {
            record["token"] = json!(uuid::Uuid::new_v4().simple().to_string());
        }
        std::fs::write(
            dir.join(format!("{orphan}.json")),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
    }
}

async fn metrics(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A deploy whose lease or publication id cannot be saved on the node (the `intent-save` fail
/// point makes the store write fail) stops there: the node goes to `deploy failed` with a reason
/// naming the step, unlocked, and nothing is left pinned in the cache or published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_an_intent_that_cannot_be_saved_fails_the_deploy_and_holds_nothing() {
    let mut opts = FleetOptions::new(1);
    opts.inspector = ironcast::demo::iso_boot_inspector();
    let fleet = Fleet::start(opts).await.unwrap();
    let s = setup();
    let env = [
        ("IRONCAST_CONFIG", s.config.to_str().unwrap()),
        ("IRONCAST_FAILPOINTS", "intent-save=error"),
    ];
    let server = spawn_serve(&s.state, &env);
    let url = server.url.clone();
    let body = json!({
        "name": "unsaved", "driver": "redfish",
        "driver_info": {"redfish_address": fleet.address(0),
                        "redfish_username": "admin", "redfish_password": "password"},
        "instance_info": {"boot_iso": format!("file://{}", s.iso.display()),
                          "boot_iso_checksum": s.checksum,
                          "kernel_append_params": "marker=unsaved"},
    });
    let (status, n) = call(&url, reqwest::Method::POST, "/v1/nodes", Some(body)).await;
    assert_eq!(status, 201, "{n}");
    for (target, state) in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "deploy failed"),
    ] {
        provision(&url, "unsaved", target).await;
        settle(&url, "unsaved", &[state]).await;
    }
    let node = settle(&url, "unsaved", &["deploy failed"]).await;
    let err = node["last_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("cache image failed") && err.contains("could not be recorded"),
        "{err}"
    );
    assert_nothing_orphaned(&s.state, &node, "intent-save");
    assert_eq!(fleet.boots(&fleet.system_ids[0]), 0, "nothing was booted");
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_kill_9_at_every_seam_of_a_live_iso_deploy_loses_nothing() {
    let mut opts = FleetOptions::new(1);
    opts.inspector = ironcast::demo::iso_boot_inspector();
    let fleet = Fleet::start(opts).await.unwrap();
    for seam in SEAMS {
        crash_at(seam, &fleet).await;
        eprintln!("{seam}: nothing lost");
    }
    fleet.shutdown().await;
}
