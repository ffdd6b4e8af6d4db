//! Capture on real VMs: VM A (BIOS) gets the fixture whole-disk image and a config drive by a
//! `direct` deploy, then `ironcast node capture` boots our agent on it, which uploads its disk
//! (qcow2, zero clusters skipped) into the conductor's cache under a name, and A boots its
//! disk again. VM B (UEFI, another sushy-tools libvirt domain) is deployed with that name as
//! its `image_source` and boots it: its console shows the fixture's marker and A's config
//! drive uuid, which only the captured disk holds.

use std::process::Command;

use crate::common::fixtures::{agent_ramdisk, disk_image};
use crate::common::serve::spawn_serve;
use crate::support::Client;
use crate::vm::{define, sushy_libvirt};
use crate::wholedisk_vm::{free_port, sha256_hex, wait_console};

const MARKER: &str = "capture-vm-7b1c";
const UUID: &str = "0c5f7a3e-2d1b-4e6f-9a8b-7c6d5e4f3a2b";

fn node(bm: &Client, name: &str, sushy: &str, domain: &str, mode: &str, mac: &str) {
    let capabilities = format!("capabilities=boot_mode:{mode}");
    bm.enrol_redfish_with(
        name,
        sushy,
        domain,
        "direct",
        &["--property", &capabilities],
    );
    let uuid = bm.show(name)["uuid"].as_str().unwrap().to_string();
    bm.ok(&["port", "create", mac, "--node", &uuid]);
    bm.ok(&["node", "manage", name, "--wait", "300"]);
    bm.ok(&["node", "provide", name, "--wait", "300"]);
}

#[test]
fn qemu_boot_capture_a_deployed_vm_and_deploy_it_to_another() {
    for tool in ["virsh", "qemu-system-x86_64", "qemu-img"] {
        if crate::common::tool(tool).is_none() {
            return;
        }
    }
    let (Some((agent_iso, _, _)), Some((_, qcow))) = (agent_ramdisk(), disk_image(MARKER)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let (mac_a, mac_b) = ("52:54:00:1c:0d:21", "52:54:00:1c:0d:22");
    let nic = |mac: &str| {
        format!("<interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>")
    };
    let a = define(&a_dir, "bios", 4 << 30, &nic(mac_a));
    let b = define(&b_dir, "uefi", 4 << 30, &nic(mac_b));
    let (Some(sushy_a), Some(sushy_b)) = (sushy_libvirt(&a_dir, &a), sushy_libvirt(&b_dir, &b))
    else {
        return;
    };
    let (api_port, images_port) = (free_port(), free_port());
    let config = dir.path().join("ironcast.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\nallowed_file_dirs = [{images:?}]\n\n\
             [conductor]\nautomated_clean = false\n\n\
             [agent]\niso = {iso:?}\nconductor_url = \"http://10.0.2.2:{api_port}\"\n\
             image_server_url = \"http://10.0.2.2:{images_port}\"\n",
            images = qcow.parent().unwrap().display().to_string(),
            iso = agent_iso.display().to_string(),
        ),
    )
    .unwrap();
    let (api_bind, images_bind) = (
        format!("127.0.0.1:{api_port}"),
        format!("127.0.0.1:{images_port}"),
    );
    let server = spawn_serve(
        dir.path(),
        &[
            ("IRONCAST_CONFIG", config.to_str().unwrap()),
            ("IRONCAST_API__BIND", &api_bind),
            ("IRONCAST_IMAGESERVER__BIND", &images_bind),
        ],
    );
    let Some(bm) = Client::new(&server) else {
        return;
    };
    node(&bm, "cap-a", &sushy_a.base, &a.uuid, "bios", mac_a);
    node(&bm, "cap-b", &sushy_b.base, &b.uuid, "uefi", mac_b);

    // A: the fixture image and a config drive, deployed.
    bm.ok(&[
        "node",
        "set",
        "cap-a",
        "--instance-info",
        &format!("image_source=file://{}", qcow.display()),
        "--instance-info",
        &format!("image_checksum={}", sha256_hex(&qcow)),
    ]);
    let config_drive = serde_json::json!({"meta_data": {"uuid": UUID}}).to_string();
    bm.ok(&[
        "node",
        "deploy",
        "cap-a",
        "--config-drive",
        &config_drive,
        "--wait",
        "900",
    ]);
    let seen = wait_console(
        &a.serial,
        0,
        &[
            &format!("IRONCAST-DISK-BOOTED {MARKER}"),
            &format!("IRONCAST-CONFIGDRIVE-UUID {UUID}"),
        ],
        "deploy A",
    );

    // Capture A with ironcast's CLI: the agent boots, uploads, and A boots its disk again.
    let out = Command::new(crate::common::ironcast_bin())
        .args([
            "node",
            "capture",
            "cap-a",
            "--name",
            "golden-vm",
            "--format",
            "qcow2",
        ])
        .args(["-o", "json", "--url", &server.url, "--timeout", "1200"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        image["virtual_size"],
        serde_json::json!(4u64 << 30),
        "{image}"
    );
    // Zero clusters were not sent: far less than the disk.
    assert!(image["data_bytes"].as_u64().unwrap() < 512 << 20, "{image}");
    wait_console(
        &a.serial,
        seen,
        &[
            ironcast::ramdisk::init::AGENT_STARTING,
            &format!("IRONCAST-DISK-BOOTED {MARKER}"),
        ],
        "capture A",
    );
    let a_node = bm.show("cap-a");
    assert_eq!(a_node["provision_state"], "active", "{a_node}");
    let history = bm.ok(&[
        "node", "history", "list", "cap-a", "-f", "value", "-c", "Event",
    ]);
    assert!(history.contains("register image: golden-vm"), "{history}");

    // B: deployed by name, no checksum given (the cache has the digest); it boots A's disk.
    bm.ok(&[
        "node",
        "set",
        "cap-b",
        "--instance-info",
        "image_source=golden-vm",
    ]);
    bm.ok(&["node", "deploy", "cap-b", "--wait", "900"]);
    assert_eq!(bm.show("cap-b")["provision_state"], "active");
    wait_console(
        &b.serial,
        0,
        &[
            &format!("IRONCAST-DISK-BOOTED {MARKER}"),
            &format!("IRONCAST-CONFIGDRIVE-UUID {UUID}"),
        ],
        "deploy B from the capture",
    );
}
