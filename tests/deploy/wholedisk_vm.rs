//! The whole-disk (`direct`) deploy on a real VM, as Ironic's CI proves its own: sushy-tools'
//! libvirt driver in front of a QEMU TCG domain with a user-net NIC, our agent ramdisk built by
//! `ironcast ramdisk build`, the fixture whole-disk image (fixtures/deploy/make-disk-image.sh)
//! and an unmodified python-ironicclient. Provide cleans the disk through the agent; deploy
//! writes the image (qcow2 or raw) and the config drive, and the VM reboots into its disk, whose
//! init prints its marker and the config drive's uuid; undeploy cleans again (the first MiB
//! reads zero) and the node is available. The guest reaches the host's loopback at 10.0.2.2, so
//! the agent is given that address for the API and the image server, while sushy (on the host)
//! fetches the agent ISO from 127.0.0.1.

use crate::common::fixtures::{agent_ramdisk, disk_image};
use crate::common::libvirt::wait_console;
use crate::common::serve::serve_for_guests;
use crate::support::{sha256, Client};
use crate::vm::{define, sushy_libvirt};

const MARKER: &str = "wholedisk-vm-5e2a";
const UUID: &str = "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";

fn deploy_whole_disk(mode: &str, qcow2: bool) {
    for tool in ["virsh", "qemu-system-x86_64", "qemu-img"] {
        if crate::common::tool(tool).is_none() {
            return;
        }
    }
    let (Some((agent_iso, _, _)), Some((raw, qcow))) = (agent_ramdisk(), disk_image(MARKER)) else {
        return;
    };
    let image = if qcow2 { qcow } else { raw };
    let dir = tempfile::tempdir().unwrap();
    let mac = "52:54:00:1c:0d:17";
    let nic =
        format!("<interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>");
    // Sparse, and big enough for Ironic's rule that a root disk has at least 4 GiB.
    let domain = define(dir.path(), mode, 5 << 30, &nic);
    let Some(sushy) = sushy_libvirt(dir.path(), &domain) else {
        return;
    };
    let server = serve_for_guests(dir.path(), &agent_iso, &[image.parent().unwrap()], &[]);
    let Some(bm) = Client::new(&server) else {
        return;
    };
    let name = format!("wd-{mode}");
    let capabilities = format!("capabilities=boot_mode:{mode}");
    bm.enrol_redfish_with(
        &name,
        &sushy.base,
        &domain.uuid,
        "direct",
        &["--property", &capabilities],
    );
    let uuid = bm.show(&name)["uuid"].as_str().unwrap().to_string();
    bm.ok(&["port", "create", mac, "--node", &uuid]);

    // Provide runs automated cleaning: the agent boots and erases the disk's metadata.
    bm.ok(&["node", "manage", &name, "--wait", "300"]);
    bm.ok(&["node", "provide", &name, "--wait", "900"]);
    assert_eq!(bm.show(&name)["provision_state"], "available");
    let seen = wait_console(
        &domain.serial,
        0,
        &[ironcast::ramdisk::init::AGENT_STARTING],
        "cleaning at provide",
    );

    let source = format!("image_source=file://{}", image.display());
    let checksum = format!("image_checksum={}", &sha256(&image)["sha256:".len()..]);
    let format = format!("image_disk_format={}", if qcow2 { "qcow2" } else { "raw" });
    bm.ok(&[
        "node",
        "set",
        &name,
        "--instance-info",
        &source,
        "--instance-info",
        &checksum,
        "--instance-info",
        &format,
    ]);
    let info = &bm.show(&name)["instance_info"];
    assert!(info["image_source"].is_string(), "node set lost: {info}");
    let config_drive = serde_json::json!({
        "meta_data": {"uuid": UUID, "hostname": name},
        "user_data": format!("#cloud-config\nhostname: {name}\n"),
        "network_data": {"links": [], "networks": [], "services": []},
    })
    .to_string();
    bm.ok(&[
        "node",
        "deploy",
        &name,
        "--config-drive",
        &config_drive,
        "--wait",
        "900",
    ]);
    let node = bm.show(&name);
    assert_eq!(node["provision_state"], "active", "{node}");

    // The agent ran again, then the VM rebooted into the disk it wrote.
    wait_console(
        &domain.serial,
        seen,
        &[
            ironcast::ramdisk::init::AGENT_STARTING,
            &format!("IRONCAST-DISK-BOOTED {MARKER}"),
            &format!("IRONCAST-CONFIGDRIVE-UUID {UUID}"),
        ],
        "deploy",
    );
    let history = bm.ok(&[
        "node", "history", "list", &name, "-f", "value", "-c", "Event",
    ]);
    assert!(
        history.contains("write image: done, checksum verified"),
        "{history}"
    );

    // Undeploy cleans the disk: its first MiB reads zero, and the node is available again.
    bm.ok(&["node", "undeploy", &name, "--wait", "900"]);
    assert_eq!(bm.show(&name)["provision_state"], "available");
    let mut first = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open(&domain.disk).unwrap(), &mut first).unwrap();
    assert!(
        first.iter().all(|&b| b == 0),
        "the first MiB of the disk is not zero after undeploy"
    );
}

#[test]
fn qemu_boot_whole_disk_qcow2_bios_through_sushy_libvirt() {
    deploy_whole_disk("bios", true);
}

#[test]
fn qemu_boot_whole_disk_raw_uefi_through_sushy_libvirt() {
    deploy_whole_disk("uefi", false);
}
