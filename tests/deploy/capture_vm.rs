//! A golden image from an installer, on real VMs: VM A is installed by the `iso-install` deploy
//! (the fixture installer, ending with its call-back: [`crate::install_vm`]), then
//! `ironcast node capture` boots our agent on A, which uploads A's 1 GiB disk (qcow2, zero
//! clusters skipped) into the conductor's cache under a name, and A boots its disk again.
//! VM B (another sushy-tools libvirt domain, a blank disk of the same size) is deployed by
//! `direct` with that name as its `image_source` and boots it: its console shows the installed
//! system's marker and the note A's automation file left in A's last sector, which only the
//! captured disk holds. One install serves both proofs, to keep the VM time short.

use std::process::Command;

use crate::common::fixtures::read_lossy;
use crate::common::libvirt::wait_console;
use crate::install_vm::{install, Finish, DISK_BYTES, ROOT_DEVICE};
use crate::vm::{define, sushy_libvirt};

const IMAGE: &str = "installed-golden";

#[test]
fn qemu_boot_iso_install_call_back_then_capture_and_deploy_to_a_second_vm() {
    let Some(a) = install(Finish::CallBack) else {
        return;
    };
    let (bm, note) = (&a.bm, format!("IRONCAST-NOTE marker-of-{}", a.name));
    let seen = read_lossy(&a.domain.serial).len();

    // Capture A with ironcast's CLI: the agent boots, uploads, and A boots its disk again.
    let out = Command::new(crate::common::ironcast_bin())
        .args(["node", "capture", a.name, "--name", IMAGE])
        .args(["--format", "qcow2", "-o", "json", "--timeout", "900"])
        .args(["--url", &a.server.url])
        .output()
        .unwrap();
    let history = || {
        bm.ok(&[
            "node", "history", "list", a.name, "-f", "value", "-c", "Event",
        ])
    };
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        history()
    );
    let image: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(image["name"], IMAGE, "{image}");
    assert_eq!(image["virtual_size"], DISK_BYTES, "{image}");
    // Zero clusters were not read into the image: far less than the disk.
    let data = image["data_bytes"].as_u64().unwrap();
    assert!(data > 0 && data < DISK_BYTES / 4, "{image}");
    wait_console(
        &a.domain.serial,
        seen,
        &[
            ironcast::ramdisk::init::AGENT_STARTING,
            "IRONCAST-DISK-BOOTED installed-from-iso",
            &note,
        ],
        "capture of A, then A's disk again",
    );
    let node = bm.show(a.name);
    assert_eq!(node["provision_state"], "active", "{node}");
    let events = history();
    assert!(
        events.contains(&format!("register image: {IMAGE}")),
        "{events}"
    );

    // B: a blank disk of A's size (a root device hint, as it is under 4 GiB), deployed by
    // name, no checksum given (the cache has the digest).
    let b_dir = a.dir.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    let mac = "52:54:00:1c:0d:28";
    let nic =
        format!("<interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>");
    let b = define(&b_dir, "bios", DISK_BYTES, &nic);
    let sushy = sushy_libvirt(&b_dir, &b).expect("sushy-tools for the second VM");
    bm.enrol_redfish_with(
        "golden-b",
        &sushy.base,
        &b.uuid,
        "direct",
        &[
            "--property",
            "capabilities=boot_mode:bios",
            "--property",
            ROOT_DEVICE,
        ],
    );
    let uuid = bm.show("golden-b")["uuid"].as_str().unwrap().to_string();
    bm.ok(&["port", "create", mac, "--node", &uuid]);
    bm.ok(&["node", "manage", "golden-b", "--wait", "120"]);
    bm.ok(&["node", "provide", "golden-b", "--wait", "120"]);
    let source = format!("image_source={IMAGE}");
    bm.ok(&["node", "set", "golden-b", "--instance-info", &source]);
    bm.ok(&["node", "deploy", "golden-b", "--wait", "900"]);
    let node = bm.show("golden-b");
    assert_eq!(node["provision_state"], "active", "{node}");
    wait_console(
        &b.serial,
        0,
        &[
            ironcast::ramdisk::init::AGENT_STARTING,
            "IRONCAST-DISK-BOOTED installed-from-iso",
            &note,
        ],
        "deploy of the captured image to B",
    );
}
