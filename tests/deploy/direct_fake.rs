//! python-ironicclient + `serve` on fake-hardware with `--deploy-interface direct`: the direct
//! deploy's orchestration over fake BMC, image server and agent ports, with the real image
//! cache (a qcow2 made by qemu-img, verified and size-checked) and the real config drive
//! builder. Deploy with a JSON config drive reaches active with its steps in history; a config
//! drive over 64 MiB is 400; validation errors show in `node validate`; provide and undeploy
//! clean; manual `node clean` with Ironic's step names; an unreachable image URL and an image
//! bigger than the disk fail before any power action, naming the URL and both sizes.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::clients::baremetal;
use crate::support::{serve, Client};

/// `qemu-img create -f qcow2 PATH SIZE` (a real peer makes the image whose size we read).
fn qcow2(path: &Path, size: &str) -> Option<()> {
    let qemu_img = crate::common::tool("qemu-img")?;
    let out = Command::new(qemu_img)
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(size)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Some(())
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// `baremetal ARGS` that must fail; returns its stderr.
fn fails(bm: &Client, args: &[&str]) -> String {
    let out = baremetal(&bm.bin, &bm.url, args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn history(bm: &Client, node: &str) -> String {
    bm.ok(&["node", "history", "list", node, "-f", "json"])
}

/// The history after the last event containing `marker`.
fn history_since(bm: &Client, node: &str, marker: &str) -> String {
    let h = history(bm, node);
    let at = h
        .rfind(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in history:\n{h}"));
    h[at..].to_string()
}

fn deploy_reason(bm: &Client, node: &str) -> String {
    let v: Value = serde_json::from_str(&bm.ok(&["node", "validate", node, "-f", "json"])).unwrap();
    let deploy = v
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["Interface"] == "deploy")
        .unwrap_or_else(|| panic!("no deploy row in {v}"));
    deploy["Reason"].as_str().unwrap_or_default().to_string()
}

#[test]
fn direct_deploy_and_cleaning_on_fake_hardware_with_python_ironicclient() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.qcow2");
    if qcow2(&image, "1G").is_none() {
        return;
    }
    let server = serve(dir.path());
    let Some(bm) = Client::new(&server) else {
        return;
    };
    bm.ok(&[
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--deploy-interface",
        "direct",
        "--name",
        "d1",
        "--property",
        "capabilities=boot_mode:uefi",
    ]);
    bm.ok(&["node", "manage", "d1", "--wait", "60"]);
    bm.ok(&["node", "provide", "d1", "--wait", "60"]);
    assert_eq!(bm.show("d1")["provision_state"], "available");
    let h = history(&bm, "d1");
    for want in [
        "clean: erase_devices_metadata",
        "erase_devices_metadata: partition tables and filesystem signatures erased",
    ] {
        assert!(h.contains(want), "{want:?} not in history:\n{h}");
    }

    // Validation errors show in `node validate`, and the deploy is refused.
    assert!(deploy_reason(&bm, "d1").contains("image_source is not set"));
    let source = format!("image_source=file://{}", image.display());
    bm.ok(&["node", "set", "d1", "--instance-info", &source]);
    assert!(deploy_reason(&bm, "d1").contains("image_checksum is not set"));
    let err = fails(&bm, &["node", "deploy", "d1"]);
    assert!(err.contains("image_checksum is not set"), "{err}");
    let checksum = format!("image_checksum={}", sha256_hex(&image));
    bm.ok(&[
        "node",
        "set",
        "d1",
        "--instance-info",
        &checksum,
        "--instance-info",
        "image_disk_format=qcow2",
    ]);
    assert_eq!(deploy_reason(&bm, "d1"), "");

    // A config drive over 64 MiB is refused with a message that says so; nothing changes.
    let big = dir.path().join("big-configdrive");
    std::fs::write(&big, "A".repeat((64 << 20) + 4)).unwrap();
    let err = fails(
        &bm,
        &[
            "node",
            "deploy",
            "d1",
            "--config-drive",
            big.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("over the limit") && err.contains("64 MiB"),
        "{err}"
    );
    assert_eq!(bm.show("d1")["provision_state"], "available");

    bm.ok(&[
        "node",
        "deploy",
        "d1",
        "--config-drive",
        r##"{"meta_data": {"uuid": "cd-uuid-42"}, "user_data": "#!/bin/sh\necho hi\n", "network_data": {"links": []}}"##,
        "--wait",
        "60",
    ]);
    let node = bm.show("d1");
    assert_eq!(node["provision_state"], "active", "{node}");
    assert!(
        node["driver_internal_info"].get("direct_held").is_none(),
        "{node}"
    );
    let h = history(&bm, "d1");
    for want in [
        "validate: whole-disk image file://",
        "cache image: file://",
        "check size: 1073741824 bytes; checked against the disk the agent reports",
        "build config drive:",
        "wait for agent: the agent called in",
        "root device: /dev/sda",
        "write image: 100%",
        "write config drive: a partition at the end of /dev/sda",
        "boot from disk: disk, persistent, uefi",
        "reboot: into the written disk",
        "release image: image lease released",
    ] {
        assert!(h.contains(want), "{want:?} not in history:\n{h}");
    }
    // The built config drive was dropped once written.
    let drives = dir.path().join("configdrive");
    let left: Vec<_> = std::fs::read_dir(&drives)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // Undeploy cleans, then the node is available again.
    bm.ok(&["node", "undeploy", "d1", "--wait", "60"]);
    assert_eq!(bm.show("d1")["provision_state"], "available");
    let after = history_since(&bm, "d1", "active -> deleting");
    assert!(after.contains("erase_devices_metadata"), "{after}");

    // Manual cleaning from manageable, with Ironic's step names, back to manageable.
    bm.ok(&["node", "manage", "d1", "--wait", "60"]);
    let err = fails(
        &bm,
        &[
            "node",
            "clean",
            "d1",
            "--clean-steps",
            r#"[{"interface": "deploy", "step": "shred"}]"#,
        ],
    );
    // The refusal names the step and the steps that exist.
    assert!(
        err.contains("deploy.shred") && err.contains("deploy.erase_devices_metadata"),
        "{err}"
    );
    bm.ok(&[
        "node",
        "clean",
        "d1",
        "--clean-steps",
        r#"[{"interface": "deploy", "step": "erase_devices_metadata"}]"#,
        "--wait",
        "60",
    ]);
    assert_eq!(bm.show("d1")["provision_state"], "manageable");
    assert!(history(&bm, "d1").contains("cleaning -> manageable"));

    // ironcast's own CLI has the same verb.
    let ironcast = |args: &[&str]| {
        Command::new(crate::common::ironcast_bin())
            .args(args)
            .env("IRONCAST_URL", &bm.url)
            .output()
            .unwrap()
    };
    let out = ironcast(&[
        "node",
        "clean",
        "d1",
        "--clean-steps",
        r#"[{"interface": "deploy", "step": "erase_devices"}]"#,
        "--wait",
        "60",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(history(&bm, "d1").contains("erase_devices: every disk overwritten"));
    let out = ironcast(&["node", "clean", "d1", "--clean-steps", "[{\"step\": 1}]"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs \"interface\" and \"step\""), "{err}");
}

#[test]
fn direct_deploy_fails_before_any_power_action_on_a_bad_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("big.qcow2");
    if qcow2(&image, "3G").is_none() {
        return;
    }
    let server = serve(dir.path());
    let Some(bm) = Client::new(&server) else {
        return;
    };
    bm.ok(&[
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--deploy-interface",
        "direct",
        "--name",
        "d2",
        "--property",
        "local_gb=2",
    ]);
    bm.ok(&["node", "manage", "d2", "--wait", "60"]);
    bm.ok(&["node", "provide", "d2", "--wait", "60"]);

    // Unreachable URL: the cache fails, naming it, before anything is booted.
    let url = "http://127.0.0.1:9/gone/disk.qcow2";
    let source = format!("image_source={url}");
    bm.ok(&[
        "node",
        "set",
        "d2",
        "--instance-info",
        &source,
        "--instance-info",
        &format!("image_checksum={}", "ab".repeat(32)),
    ]);
    let _ = baremetal(&bm.bin, &bm.url, &["node", "deploy", "d2", "--wait", "60"]);
    let node = bm.show("d2");
    assert_eq!(node["provision_state"], "deploy failed", "{node}");
    let last = node["last_error"].as_str().unwrap();
    assert!(last.contains("cache image") && last.contains(url), "{last}");
    let since = history_since(&bm, "d2", "available -> deploying");
    assert!(!since.contains("power on"), "no power action:\n{since}");

    // Bigger than the disk: both sizes are named, still before any power action.
    let source = format!("image_source=file://{}", image.display());
    let checksum = format!("image_checksum={}", sha256_hex(&image));
    bm.ok(&[
        "node",
        "set",
        "d2",
        "--instance-info",
        &source,
        "--instance-info",
        &checksum,
    ]);
    let _ = baremetal(&bm.bin, &bm.url, &["node", "deploy", "d2", "--wait", "60"]);
    let node = bm.show("d2");
    assert_eq!(node["provision_state"], "deploy failed", "{node}");
    let last = node["last_error"].as_str().unwrap();
    assert!(
        last.contains("check size")
            && last.contains("3221225472 bytes")
            && last.contains("2147483648 bytes"),
        "{last}"
    );
    let since = history_since(&bm, "d2", "deploy failed -> deploying");
    assert!(!since.contains("power on"), "no power action:\n{since}");
}
