//! BareMetalHost manifests on a real VM: sushy-tools' libvirt driver in front of a QEMU TCG
//! domain (SeaBIOS, a blank disk, a user-net NIC), `ironcast apply` and the reconciler inside
//! `serve`. One host, one boot of each kind, to keep the VM time short: the host is inspected
//! out of band (its CPU, memory and NIC show in `get bmh`), provisioned with a live ISO (the
//! bootable fixture, which prints its command line on the serial console), then its image is
//! changed to the whole-disk fixture: the reconciler deprovisions, and the direct deploy boots
//! our agent ramdisk, which writes the image and the config drive built from the host's
//! userData Secret; the VM reboots into its disk, which prints its marker and the config drive's
//! uuid (the host's uid, as BMO's meta_data has it). Deleting the host removes its node.

use std::path::Path;
use std::time::Duration;

use crate::common::fixtures::{agent_ramdisk, bootable_iso, disk_image};
use crate::common::libvirt::{define, sushy_libvirt, virsh_ok, wait_console};
use crate::common::serve::serve_for_guests;
use crate::deploy_support::sha256;
use crate::support::{get_bmh, node, ok, wait_host, wait_state};

/// The whole-disk fixture's marker: the same as tests/deploy/wholedisk_vm.rs, so CI builds
/// the image once.
const MARKER: &str = "wholedisk-vm-5e2a";
const MAC: &str = "52:54:00:1c:0d:35";

/// The Secrets and the host, with `image` (YAML lines under `image:`).
fn manifest(bmc: &str, image: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: vm-0-bmc
type: Opaque
stringData:
  username: admin
  password: password
---
apiVersion: v1
kind: Secret
metadata:
  name: vm-0-user-data
stringData:
  userData: |
    #cloud-config
    hostname: vm-0
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: vm-0
spec:
  online: true
  bootMode: legacy
  # Cleaning would boot the agent twice more; the whole-disk VM test proves it.
  automatedCleaningMode: disabled
  bootMACAddress: {MAC}
  bmc:
    address: {bmc}
    credentialsName: vm-0-bmc
  userData:
    name: vm-0-user-data
  image:
{image}"
    )
}

fn apply(server: &crate::common::serve::Server, file: &Path, text: &str) -> String {
    std::fs::write(file, text).unwrap();
    ok(server, &["apply", "-f", file.to_str().unwrap()])
}

#[test]
fn qemu_boot_bmh_live_iso_then_direct_deploy_through_sushy_libvirt() {
    for tool in ["virsh", "qemu-system-x86_64", "qemu-img"] {
        if crate::common::tool(tool).is_none() {
            return;
        }
    }
    let (Some(iso), Some((agent_iso, _, _)), Some((_, disk))) =
        (bootable_iso(), agent_ramdisk(), disk_image(MARKER))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nic =
        format!("<interface type='user'><mac address='{MAC}'/><model type='virtio'/></interface>");
    // Sparse, and big enough for Ironic's rule that a root disk has at least 4 GiB.
    let domain = define(dir.path(), "bios", 5 << 30, &nic);
    // Redfish reports whole GiB (TotalSystemMemoryGiB): 1 GiB shows as 1024 MiB.
    for cmd in ["setmaxmem", "setmem"] {
        virsh_ok(&[cmd, &domain.name, "1048576", "--config"]);
    }
    let Some(sushy) = sushy_libvirt(dir.path(), &domain) else {
        return;
    };
    let server = serve_for_guests(
        dir.path(),
        &agent_iso,
        &[iso.parent().unwrap(), disk.parent().unwrap()],
        &[("IRONCAST_METAL3__POLL_INTERVAL_MS", "500")],
    );
    let bmc = format!(
        "redfish-virtualmedia+{}/redfish/v1/Systems/{}",
        sushy.base, domain.uuid
    );
    let file = dir.path().join("hosts.yaml");
    let live = format!("    url: file://{}\n    format: live-iso\n", iso.display());
    let out = apply(&server, &file, &manifest(&bmc, &live));
    assert!(
        out.contains("baremetalhost.metal3.io/vm-0 created"),
        "{out}"
    );

    // Live ISO: inspected, provisioned, and the VM booted the ISO.
    let h = wait_state(
        &server,
        dir.path(),
        "vm-0",
        "provisioned",
        Duration::from_secs(600),
    );
    let seen = wait_console(&domain.serial, 0, &["IRONCAST-CMDLINE:"], "live ISO");
    let st = &h["status"];
    assert_eq!(st["operationalStatus"], "OK", "{h:#}");
    let hw = &st["hardware"];
    assert_eq!(hw["cpu"]["count"], 1, "{h:#}");
    assert_eq!(hw["cpu"]["arch"], "x86_64", "{h:#}");
    assert_eq!(hw["ramMebibytes"], 1024, "{h:#}");
    let macs: Vec<&str> = hw["nics"]
        .as_array()
        .map(|n| n.iter().filter_map(|i| i["mac"].as_str()).collect())
        .unwrap_or_default();
    assert!(macs.contains(&MAC), "{MAC} not in {macs:?}: {h:#}");
    let node_id = st["provisioning"]["ID"].as_str().unwrap().to_string();
    assert_eq!(
        node(&server, &node_id).unwrap()["deploy_interface"],
        "ramdisk"
    );
    let table = ok(&server, &["get", "bmh", "vm-0", "-o", "yaml"]);
    assert!(table.contains(&format!("mac: {MAC}")), "{table}");

    // A whole-disk image instead: deprovisioned, then written by the agent.
    let digest = sha256(&disk);
    let image = format!(
        "    url: file://{}\n    checksum: {}\n    checksumType: sha256\n    format: qcow2\n",
        disk.display(),
        &digest["sha256:".len()..]
    );
    let out = apply(&server, &file, &manifest(&bmc, &image));
    assert!(
        out.contains("baremetalhost.metal3.io/vm-0 configured"),
        "{out}"
    );
    let url = format!("file://{}", disk.display());
    let h = wait_host(
        &server,
        dir.path(),
        "vm-0",
        "provisioned",
        Duration::from_secs(900),
        |h| h["status"]["provisioning"]["image"]["url"] == url.as_str(),
    );
    let st = &h["status"];
    assert!(
        st["operationHistory"]["deprovision"]["end"].is_string(),
        "the live ISO was not deprovisioned first: {h:#}"
    );
    let n = node(&server, &node_id).unwrap();
    assert_eq!(n["deploy_interface"], "direct", "{n:#}");
    assert_eq!(n["provision_state"], "active", "{n:#}");
    let uid = h["metadata"]["uid"].as_str().expect("metadata.uid");
    wait_console(
        &domain.serial,
        seen,
        &[
            ironcast::ramdisk::init::AGENT_STARTING,
            &format!("IRONCAST-DISK-BOOTED {MARKER}"),
            &format!("IRONCAST-CONFIGDRIVE-UUID {uid}"),
        ],
        "direct deploy",
    );

    // Deleting the host deprovisions it and removes its node.
    let out = ok(&server, &["delete", "bmh", "vm-0", "--wait", "300"]);
    assert!(out.contains("deleted"), "{out}");
    assert!(get_bmh(&server, "vm-0").is_none());
    assert!(node(&server, &node_id).is_none(), "node {node_id} remains");
    let state = virsh_ok(&["domstate", &domain.name]);
    assert_eq!(state, "shut off", "deprovisioning powers the VM off");
}
