//! The agent with real parts: `serve`'s own start-up code (`cli::serve::launch`, SQLite, the
//! real API listener and image server) in this process, a real `ironcast agent` process that
//! reads its assignment from a kernel command line file, and the conductor's `AgentHub`
//! driven as a deploy driver drives it. The disk is a file (`--allow-file`); independent tools
//! (qemu-img, sfdisk, sgdisk, wipefs, xorriso) check what the agent wrote.

mod common;

#[path = "agent/capture.rs"]
mod capture;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use deploy_drivers::{
    Agent, AgentCommand, AgentProgress, Artifact, ChecksumSpec, ProgressSink, Publisher,
    WriteCommand,
};
use serde_json::json;
use sha2::Digest;

const MIB: u64 = 1 << 20;
const DISK: u64 = 64 * MIB;
const IMAGE: u64 = 16 * MIB;

#[derive(Default)]
struct Seen(Mutex<Vec<AgentProgress>>);

impl ProgressSink for Seen {
    fn progress(&self, p: AgentProgress) {
        self.0.lock().unwrap().push(p);
    }
}

/// Runs a tool, asserts it succeeded, returns its stdout.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 16 MiB disk image with a partition table (`sfdisk` MBR, or `sgdisk` GPT) and one
/// partition full of pseudo-random bytes.
fn disk_image(path: &Path, gpt: bool, seed: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(IMAGE).unwrap();
    drop(f);
    let p = path.to_str().unwrap();
    if gpt {
        run("sgdisk", &["-n", "1:2048:+8M", "-t", "1:8300", p]);
    } else {
        let mut child = Command::new("sfdisk")
            .arg(p)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"label: dos\nstart=2048, size=16384, type=83\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&common::pseudo_random(8 * MIB as usize, seed), MIB)
        .unwrap();
}

fn sha256(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn read(path: &Path, at: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, at)
        .unwrap();
    buf
}

async fn publish(publisher: &dyn Publisher, node: &str, path: &Path, name: &str) -> String {
    let artifact = Artifact {
        base: path.to_path_buf(),
        patch_set: None,
        len: std::fs::metadata(path).unwrap().len(),
    };
    publisher.publish(&artifact, node, name).await.unwrap().url
}

async fn heartbeat_status(api: &str, node: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{api}/v1/agent/{node}/heartbeat"))
        .json(&json!({}));
    if let Some(t) = token {
        req = req.header("X-Ironcast-Agent-Token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_process_inventories_writes_partitions_and_erases_a_disk() {
    for tool in ["qemu-img", "sfdisk", "sgdisk", "wipefs", "xorriso"] {
        if common::tool(tool).is_none() {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ironcast::config::Config::load(
        None,
        [
            ("IRONCAST_CONDUCTOR__STATE_DIR", d.to_str().unwrap()),
            ("IRONCAST_API__BIND", "127.0.0.1:0"),
            ("IRONCAST_IMAGESERVER__BIND", "127.0.0.1:0"),
            ("IRONCAST_AGENT__POLL_WAIT_S", "2"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let running = ironcast::cli::serve::launch(&config).await.unwrap();
    let hub = running.agent_hub();
    let publisher = running.publisher();
    let node = uuid::Uuid::new_v4().to_string();

    let args = hub.begin(&node).await.unwrap();
    let assignment = ironcast::agent::cmdline::parse(&args).unwrap();
    assert_eq!(assignment.conductor_url, running.api_url);
    let cmdline = d.join("cmdline");
    std::fs::write(
        &cmdline,
        format!("BOOT_IMAGE=/vmlinuz console=ttyS0 {args}\n"),
    )
    .unwrap();

    // No token, a wrong token: 403 in Ironic's error shape.
    for token in [None, Some("wrong")] {
        let (status, body) = heartbeat_status(&running.api_url, &node, token).await;
        assert_eq!(status, 403, "{token:?}");
        assert!(
            body["error_message"]
                .as_str()
                .unwrap()
                .contains("agent token"),
            "{body}"
        );
    }

    // The target disk: a file with old bytes at both ends.
    let disk = d.join("disk.img");
    std::fs::write(&disk, common::pseudo_random(DISK as usize, 7)).unwrap();
    let disk_s = disk.to_str().unwrap().to_string();

    let log = std::fs::File::create(d.join("agent.log")).unwrap();
    let agent = Command::new(common::ironcast_bin())
        .args(["agent", "--cmdline-file", cmdline.to_str().unwrap()])
        .args(["--allow", d.to_str().unwrap(), "--allow-file", "--no-act"])
        .args(["--max-backoff-s", "1"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let agent_log = || std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();

    let inventory = hub
        .wait_ready(&node, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
    assert!(inventory.cpu_count >= 1, "{inventory:?}");
    assert!(inventory.memory_mb > 0, "{inventory:?}");
    assert_eq!(inventory.cpu_arch, std::env::consts::ARCH);
    assert!(inventory.boot_mode.is_some());

    // write_image: a raw and a qcow2 image from our image server land byte-exact.
    let raw = d.join("mbr.raw");
    disk_image(&raw, false, 1);
    let qcow2 = d.join("mbr.qcow2");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            qcow2.to_str().unwrap(),
        ],
    );
    for (image, format) in [(&qcow2, "qcow2"), (&raw, "raw")] {
        let url = publish(publisher.as_ref(), &node, image, &format!("disk.{format}")).await;
        let command = AgentCommand::WriteImage(WriteCommand {
            image_url: url,
            checksum: Some(ChecksumSpec::Value {
                algorithm: "sha256".into(),
                hex: sha256(image),
            }),
            root_device: Some(disk_s.clone()),
        });
        let seen = Seen::default();
        let result = hub
            .run(&node, &command, Duration::from_secs(120), &seen)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
        assert_eq!(result["device"], disk_s);
        assert_eq!(result["format"], format);
        let expected = d.join(format!("{format}.expected"));
        run(
            "qemu-img",
            &[
                "convert",
                "-f",
                format,
                "-O",
                "raw",
                image.to_str().unwrap(),
                expected.to_str().unwrap(),
            ],
        );
        assert!(
            read(&disk, 0, IMAGE) == std::fs::read(&expected).unwrap(),
            "{format}: the disk's first {IMAGE} bytes differ from qemu-img's conversion"
        );
        let seen = seen.0.lock().unwrap();
        let last = seen.last().expect("progress was reported");
        let total = std::fs::metadata(image).unwrap().len();
        assert_eq!(last.total_bytes, Some(total), "{seen:?}");
        assert_eq!(last.done_bytes, total, "{seen:?}");
    }

    // write_config_drive on MBR: a new primary partition at the end holding the image.
    let cd_dir = d.join("cd");
    std::fs::create_dir_all(cd_dir.join("openstack/latest")).unwrap();
    std::fs::write(
        cd_dir.join("openstack/latest/meta_data.json"),
        r#"{"uuid": "agent-test"}"#,
    )
    .unwrap();
    let cd = d.join("config.iso");
    run(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-V",
            "config-2",
            "-J",
            "-R",
            "-o",
            cd.to_str().unwrap(),
            cd_dir.to_str().unwrap(),
        ],
    );
    let cd_url = publish(publisher.as_ref(), &node, &cd, "configdrive").await;
    let cd_bytes = std::fs::read(&cd).unwrap();
    let write_cd = AgentCommand::WriteConfigDrive {
        device: disk_s.clone(),
        url: cd_url.clone(),
    };
    let result = hub
        .run(&node, &write_cd, Duration::from_secs(60), &Seen::default())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
    assert_eq!(result["table"], "mbr");
    assert_eq!(result["partition"], 2);
    let start = result["start"].as_u64().unwrap();
    let dump = run("sfdisk", &["-d", &disk_s]);
    assert!(
        dump.contains(&format!("{disk_s}2 : start={:>12}", start / 512)),
        "{dump}"
    );
    assert_eq!(read(&disk, start, cd_bytes.len() as u64), cd_bytes);
    assert!(start + result["size"].as_u64().unwrap() <= DISK);

    // On GPT: a new entry, both headers valid (sgdisk verifies them), the bytes in place.
    let gpt = d.join("gpt.raw");
    disk_image(&gpt, true, 2);
    let url = publish(publisher.as_ref(), &node, &gpt, "gpt.raw").await;
    let command = AgentCommand::WriteImage(WriteCommand {
        image_url: url,
        checksum: None,
        root_device: Some(disk_s.clone()),
    });
    hub.run(&node, &command, Duration::from_secs(120), &Seen::default())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
    let result = hub
        .run(&node, &write_cd, Duration::from_secs(60), &Seen::default())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
    assert_eq!(result["table"], "gpt");
    let verify = run("sgdisk", &["-v", &disk_s]);
    assert!(verify.contains("No problems found"), "{verify}");
    let table = run("sgdisk", &["-p", &disk_s]);
    assert!(table.contains("config-2"), "{table}");
    let start = result["start"].as_u64().unwrap();
    assert_eq!(read(&disk, start, cd_bytes.len() as u64), cd_bytes);

    // erase_metadata: both ends zero, no signature left for wipefs.
    let erase = AgentCommand::EraseMetadata {
        device: Some(disk_s.clone()),
    };
    hub.run(&node, &erase, Duration::from_secs(60), &Seen::default())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
    assert!(read(&disk, 0, MIB).iter().all(|&b| b == 0));
    assert!(read(&disk, DISK - MIB, MIB).iter().all(|&b| b == 0));
    assert_eq!(run("wipefs", &[&disk_s]).trim(), "");
    assert!(
        read(&disk, 2 * MIB, MIB).iter().any(|&b| b != 0),
        "only metadata is erased"
    );

    // erase_disk: every byte reads zero.
    let seen = Seen::default();
    hub.run(
        &node,
        &AgentCommand::EraseDisk {
            device: Some(disk_s.clone()),
        },
        Duration::from_secs(60),
        &seen,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", agent_log()));
    assert!(std::fs::read(&disk).unwrap().iter().all(|&b| b == 0));
    assert_eq!(seen.0.lock().unwrap().last().unwrap().done_bytes, DISK);

    // A mistake is the agent's error, named, and the agent carries on.
    let err = hub
        .run(
            &node,
            &AgentCommand::EraseMetadata {
                device: Some("/dev/no-such-disk".into()),
            },
            Duration::from_secs(30),
            &Seen::default(),
        )
        .await
        .unwrap_err();
    assert!(err.message.contains("/dev/no-such-disk"), "{err}");

    // power_off: reported, then (--no-act) the agent exits.
    hub.run(
        &node,
        &AgentCommand::PowerOff,
        Duration::from_secs(30),
        &Seen::default(),
    )
    .await
    .unwrap();
    let out = agent.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", agent_log());
    assert!(String::from_utf8_lossy(&out.stdout).contains("power off"));

    // After end, the boot's own token is refused.
    hub.end(&node).await;
    let (status, _) = heartbeat_status(&running.api_url, &node, Some(&assignment.token)).await;
    assert_eq!(status, 403);
    running.stop().await;
}
