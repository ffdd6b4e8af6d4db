//! Disk capture (`capture_disk`, the upload endpoint, the cache's ingest and names) with real
//! parts: `serve`'s own start-up code in this process; a real `ironcast agent` process reading
//! a disk file, checked by `qemu-img check`/`compare` and `zstd`; and simulated BMCs with
//! simulated agents driven through the API and `ironcast node capture`, whose image is then
//! deployed by name to another node.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use deploy_drivers::{
    Agent, AgentCommand, CaptureCommand, CaptureFormat, CaptureRequest, Captures,
};
use serde_json::{json, Value};

use crate::common;

const MIB: u64 = 1 << 20;

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn launch(dir: &Path, extra: &[(&str, &str)]) -> ironcast::cli::serve::Running {
    let mut env = vec![
        ("IRONCAST_CONDUCTOR__STATE_DIR", dir.to_str().unwrap()),
        ("IRONCAST_API__BIND", "127.0.0.1:0"),
        ("IRONCAST_IMAGESERVER__BIND", "127.0.0.1:0"),
        ("IRONCAST_AGENT__POLL_WAIT_S", "2"),
    ];
    env.extend_from_slice(extra);
    let config = ironcast::config::Config::load(
        None,
        env.into_iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    ironcast::cli::serve::launch(&config).await.unwrap()
}

/// A 40 MiB sparse disk with data in a few places (one chunk of it incompressible).
fn disk_file(path: &Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(40 * MIB).unwrap();
    let text: Vec<u8> = (0..3 * MIB)
        .map(|i| b"golden image "[(i % 13) as usize])
        .collect();
    f.write_all_at(&text, 0).unwrap();
    f.write_all_at(&common::pseudo_random(MIB as usize, 9), 17 * MIB + 4096)
        .unwrap();
    f.write_all_at(b"the last sector", 40 * MIB - 512).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_agent_captures_a_disk_as_qcow2_and_raw_zst_that_read_back_exactly() {
    for tool in ["qemu-img", "zstd", "cmp"] {
        if common::tool(tool).is_none() {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let running = launch(d, &[]).await;
    let hub = running.agent_hub();
    let captures = running.captures().unwrap();
    let node = uuid::Uuid::new_v4().to_string();
    let args = hub.begin(&node).await.unwrap();
    let cmdline = d.join("cmdline");
    std::fs::write(&cmdline, format!("console=ttyS0 {args}\n")).unwrap();
    let disk = d.join("disk.img");
    disk_file(&disk);

    let log = std::fs::File::create(d.join("agent.log")).unwrap();
    let mut agent = Command::new(common::ironcast_bin())
        .args(["agent", "--cmdline-file", cmdline.to_str().unwrap()])
        .args(["--allow", d.to_str().unwrap(), "--allow-file", "--no-act"])
        .args(["--max-backoff-s", "1"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let agent_log = || std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
    hub.wait_ready(&node, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));

    for (format, name) in [
        (CaptureFormat::Qcow2, "golden-q"),
        (CaptureFormat::RawZst, "golden-z"),
    ] {
        let request = CaptureRequest {
            name: name.into(),
            format,
        };
        captures.reserve(&node, &request, 40 * MIB).await.unwrap();
        let command = AgentCommand::CaptureDisk(CaptureCommand {
            device: disk.display().to_string(),
            format,
            zstd_level: 3,
        });
        let result = hub
            .run(&node, &command, Duration::from_secs(120), &NoProgress)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
        // Only the chunks with data travelled: 3 MiB of text, the random MiB (two chunks of
        // it for qcow2's 64 KiB clusters, one for raw.zst) and the last sector's chunk.
        let sent = result["data_bytes"].as_u64().unwrap();
        assert!(sent <= 6 * MIB, "{result}");
        let image = captures.finish(&node).await.unwrap();
        assert_eq!(image.name, name);
        assert_eq!(image.virtual_size, 40 * MIB);
        assert_eq!(result["image"]["digest"], json!(image.digest), "{result}");
        let entry = running.cache().named(name).await.unwrap();
        assert_eq!(format!("sha256:{}", entry.sha256), image.digest);
        let file = running.cache().path_of(&entry.sha256);
        let file_s = file.to_str().unwrap();
        // Smaller than the data: the text compresses, zeros are not stored.
        assert!(image.size < 3 * MIB, "{image:?}");
        match format {
            CaptureFormat::Qcow2 => {
                run("qemu-img", &["check", "-f", "qcow2", file_s]);
                let info: Value = serde_json::from_str(&run(
                    "qemu-img",
                    &["info", "--output=json", "-f", "qcow2", file_s],
                ))
                .unwrap();
                assert_eq!(info["virtual-size"], json!(40 * MIB), "{info}");
                assert_eq!(info["format-specific"]["data"]["compression-type"], "zstd");
                run(
                    "qemu-img",
                    &[
                        "compare",
                        "-f",
                        "raw",
                        "-F",
                        "qcow2",
                        disk.to_str().unwrap(),
                        file_s,
                    ],
                );
            }
            CaptureFormat::RawZst => {
                let raw = d.join("back.raw");
                run(
                    "zstd",
                    &["-q", "-d", "-f", file_s, "-o", raw.to_str().unwrap()],
                );
                run("cmp", &[disk.to_str().unwrap(), raw.to_str().unwrap()]);
            }
        }
    }

    // An upload nobody asked for is refused; so is one with another boot's token.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/agent/{node}/commands/nope/upload", running.api_url);
    let token = ironcast::agent::cmdline::parse(&args).unwrap().token;
    for (token, want) in [(token.as_str(), 404), ("wrong", 403)] {
        let resp = http
            .put(&url)
            .header(ironcast::agent::protocol::TOKEN_HEADER, token)
            .body(vec![0u8; 100])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want);
    }
    hub.end(&node).await;
    let _ = agent.kill();
    let _ = agent.wait();
    // Names outlive a restart (start-up reconciliation gives back only nodes' leases).
    let digest = running.cache().named("golden-q").await.unwrap().sha256;
    running.stop().await;
    let again = launch(d, &[]).await;
    assert_eq!(
        again.cache().named("golden-q").await.unwrap().sha256,
        digest
    );
    again.stop().await;
}

struct NoProgress;

impl deploy_drivers::ProgressSink for NoProgress {
    fn progress(&self, _: deploy_drivers::AgentProgress) {}
}

/// `ironcast node …` against `api`; returns (success, stdout, stderr).
fn cli(api: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::ironcast_bin())
        .args(["node"])
        .args(args)
        .args(["--url", api])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> Value {
    let resp = http.request(method, &url).json(&body).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn wait_state(http: &reqwest::Client, api: &str, node: &str, want: &str) -> Value {
    for _ in 0..600 {
        let n: Value = http
            .get(format!("{api}/v1/nodes/{node}"))
            .header("X-OpenStack-Ironic-API-Version", "1.95")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if n["provision_state"] == want && n["reservation"].is_null() {
            return n;
        }
        assert!(
            !n["provision_state"]
                .as_str()
                .unwrap_or("")
                .contains("failed"),
            "{n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{node} never reached {want}");
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_nodes_capture_through_the_cli_and_deploy_the_image_by_name() {
    use ironcast::redfish::sim::{Fleet, FleetOptions};
    let Some(qemu_img) = common::tool("qemu-img") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("agent.iso"), ironcast::demo::demo_agent_iso()).unwrap();
    let agent_iso = d.join("agent.iso");
    // The simulated disk is 100 GiB: room for its capture is reserved up front.
    let running = launch(
        d,
        &[
            ("IRONCAST_AGENT__ISO", agent_iso.to_str().unwrap()),
            ("IRONCAST_CACHE__QUOTA_BYTES", "161061273600"),
            ("IRONCAST_CONDUCTOR__AUTOMATED_CLEAN", "false"),
            ("IRONCAST_DIRECT__AGENT_TIMEOUT_S", "60"),
        ],
    )
    .await;
    let mut opts = FleetOptions::new(3);
    opts.inspector = ironcast::demo::iso_boot_inspector();
    opts.on_power = Some(ironcast::agent::sim::agent_hook());
    let fleet = Fleet::start(opts).await.unwrap();
    let api = running.api_url.clone();
    let http = reqwest::Client::new();
    for i in 0..3 {
        call(
            &http,
            reqwest::Method::POST,
            format!("{api}/v1/nodes"),
            json!({
                "name": format!("n{i}"),
                "driver": "redfish",
                "deploy_interface": "direct",
                "driver_info": {
                    "redfish_address": fleet.address(i),
                    "redfish_username": "admin",
                    "redfish_password": "password",
                },
                "properties": if i == 2 { json!({"local_gb": 200}) } else { json!({}) },
            }),
        )
        .await;
        call(
            &http,
            reqwest::Method::PUT,
            format!("{api}/v1/nodes/n{i}/states/provision"),
            json!({"target": "manage"}),
        )
        .await;
        wait_state(&http, &api, &format!("n{i}"), "manageable").await;
    }

    // Bad input: an unknown format, a bad name, a node in the wrong state, and a disk the
    // quota cannot hold (n2 says 200 GiB): refused before anything boots, naming the sizes.
    let (ok, _, err) = cli(
        &api,
        &["capture", "n0", "--name", "golden", "--format", "vhd"],
    );
    assert!(
        !ok && err.contains("\"vhd\" is not supported: use qcow2 or raw.zst"),
        "{err}"
    );
    let (ok, _, err) = cli(&api, &["capture", "n0", "--name", "../etc"]);
    assert!(!ok && err.contains("is not usable"), "{err}");
    let (ok, _, err) = cli(&api, &["capture", "n2", "--name", "big"]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("capturing the 214748364800-byte disk") && err.contains("quota 161061273600"),
        "{err}"
    );
    let history = http
        .get(format!("{api}/v1/nodes/n2/history"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!history.contains("power on"), "{history}");

    // n0 (manageable) is captured with the CLI, then is powered off and manageable again.
    let (ok, out, err) = cli(&api, &["capture", "n0", "--name", "golden", "-o", "json"]);
    assert!(ok, "{out}\n{err}");
    let image: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(image["name"], "golden");
    assert_eq!(image["format"], "qcow2");
    assert_eq!(image["virtual_size"], json!(100u64 << 30));
    let n0 = wait_state(&http, &api, "n0", "manageable").await;
    assert_eq!(n0["power_state"], "power off", "{n0}");
    assert_eq!(n0["driver_internal_info"]["capture"]["state"], "done");
    let entry = running.cache().named("golden").await.unwrap();
    assert_eq!(json!(format!("sha256:{}", entry.sha256)), image["digest"]);
    let file = running.cache().path_of(&entry.sha256);
    let out = Command::new(&qemu_img)
        .args(["check", "-f", "qcow2"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The simulated disk's second region, read back through qemu: its first line names the
    // system and the offset (50 GiB), and nothing else of the 100 GiB holds data.
    let Some(qemu_io) = common::tool("qemu-io") else {
        return;
    };
    let out = Command::new(qemu_io)
        .args(["-r", "-f", "qcow2", "-c", "read -v 53687091200 48"])
        .arg(&file)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stdout).into_owned();
    // Lines of "offset:  16 hex bytes  ascii": the hex bytes, decoded.
    let bytes: Vec<u8> = dump
        .lines()
        .filter_map(|l| l.split_once(":  "))
        .flat_map(|(_, rest)| {
            rest.split_whitespace()
                .take(16)
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .collect::<Vec<u8>>()
        })
        .collect();
    let want = format!("IRONCAST-SIM-DISK {}", fleet.system_ids[0]);
    assert!(
        bytes.starts_with(&want.as_bytes()[..want.len().min(48)]),
        "{dump}"
    );
    let map: Value = serde_json::from_str(&run(
        "qemu-img",
        &[
            "map",
            "--output=json",
            "-f",
            "qcow2",
            file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let data: u64 = map
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"] == true)
        .map(|e| e["length"].as_u64().unwrap())
        .sum();
    assert_eq!(data, MIB + 256 * 1024, "{map}");

    // n1 deploys it by name (no checksum: the cache has the digest) and becomes active.
    call(
        &http,
        reqwest::Method::PATCH,
        format!("{api}/v1/nodes/n1"),
        json!([{"op": "add", "path": "/instance_info/image_source", "value": "golden"}]),
    )
    .await;
    for (target, want) in [("provide", "available"), ("active", "active")] {
        if want == "active" {
            let (ok, _, err) = cli(&api, &["capture", "n1", "--name", "early"]);
            assert!(
                !ok && err.contains("while it is in state \"available\""),
                "{err}"
            );
        }
        call(
            &http,
            reqwest::Method::PUT,
            format!("{api}/v1/nodes/n1/states/provision"),
            json!({"target": target}),
        )
        .await;
        wait_state(&http, &api, "n1", want).await;
    }
    let history = http
        .get(format!("{api}/v1/nodes/n1/history"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        history.contains("write image: done, checksum verified"),
        "{history}"
    );

    // The active n1 is captured as raw.zst and stays active, booted from its disk again.
    let (ok, out, err) = cli(
        &api,
        &["capture", "n1", "--name", "golden2", "--format", "raw.zst"],
    );
    assert!(ok, "{out}\n{err}");
    let n1 = wait_state(&http, &api, "n1", "active").await;
    assert_eq!(n1["power_state"], "power on", "{n1}");
    let system = &fleet.system_ids[1];
    assert_eq!(fleet.booted_from(system), Some("Hdd"));
    let record: Value = http
        .get(format!("{api}/v1/nodes/n1/capture"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["state"], "done", "{record}");
    assert_eq!(record["image"]["format"], "raw.zst");

    // `ironcast cache` lists captured images by name and deletes them by name.
    let list = cache_cli(d, &["list"]);
    assert!(list.0, "{}", list.2);
    let named_rows: Vec<&str> = list
        .1
        .lines()
        .filter(|l| l.contains(" golden ") || l.contains(" golden2 "))
        .collect();
    assert_eq!(named_rows.len(), 2, "{}", list.1);
    let golden2 = running.cache().named("golden2").await.unwrap().sha256;
    let (ok, out, err) = cache_cli(d, &["evict", "golden2"]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.trim(), format!("evicted sha256:{golden2}"));
    assert!(running.cache().named("golden2").await.is_err());
    assert!(!running.cache().path_of(&golden2).exists());
    // While anything else leases it, an image is not deleted and keeps its name.
    let golden = running.cache().named("golden").await.unwrap().sha256;
    let held = running
        .cache()
        .lease(&golden, "test: a deploy in progress")
        .await
        .unwrap();
    let (ok, _, err) = cache_cli(d, &["evict", "golden"]);
    assert!(!ok && err.contains("test: a deploy in progress"), "{err}");
    assert_eq!(
        running.cache().named("golden").await.unwrap().sha256,
        golden
    );
    running.cache().release(&held.id).await.unwrap();
    let (ok, _, err) = cache_cli(d, &["evict", "no-such-image"]);
    assert!(!ok && err.contains("no-such-image"), "{err}");
    let (ok, out, err) = cache_cli(d, &["evict", "golden"]);
    assert!(ok, "{out}\n{err}");
    let list = cache_cli(d, &["list"]).1;
    assert!(!list.contains(" golden"), "{list}");
    running.stop().await;
}

/// `ironcast cache ARGS` on the state directory's cache: (success, stdout, stderr).
fn cache_cli(state: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::ironcast_bin())
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(state.join("cache"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
