//! Proof on a virtual machine, the way Ironic's own CI does it: sushy-tools' libvirt driver in
//! front of a QEMU VM (TCG). A node enrolled through python-ironicclient with that BMC and the
//! bootable fixture ISO plus a marker arg reaches active, and the marker appears in the VM's
//! serial console from /proc/cmdline — in BIOS and in UEFI boot mode. Undeploy powers it off
//! and ejects. libvirt is set up by scripts/libvirt-setup (run from .ci/setup.d).

use std::time::{Duration, Instant};

use crate::common::fixtures::{bootable_iso, read_lossy};
pub use crate::common::libvirt::{define, sushy_libvirt, virsh_ok};
use crate::support::{get_json, serve_with, Client};

fn deploy_and_see_the_marker(mode: &str) {
    let (Some(_), Some(_)) = (
        crate::common::tool("virsh"),
        crate::common::tool("qemu-system-x86_64"),
    ) else {
        return;
    };
    let Some(iso) = bootable_iso() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let domain = define(dir.path(), mode, 64 << 20, "");
    let Some(sushy) = sushy_libvirt(dir.path(), &domain) else {
        return;
    };
    let server = serve_with(dir.path(), &[iso.parent().unwrap()]);
    let Some(bm) = Client::new(&server) else {
        return;
    };
    let marker = format!("ironcast.vm={mode}-{}", std::process::id());
    let name = format!("vm-{mode}");
    let capabilities = format!("capabilities=boot_mode:{mode}");
    bm.enrol_redfish(
        &name,
        &sushy.base,
        &domain.uuid,
        &["--property", &capabilities],
    );
    bm.set_boot_iso(&name, &iso, &[&format!("kernel_append_params={marker}")]);
    for verb in ["manage", "provide", "deploy"] {
        bm.ok(&["node", verb, &name, "--wait", "300"]);
    }
    assert_eq!(bm.show(&name)["provision_state"], "active");

    // The VM boots the remastered ISO; its initramfs prints /proc/cmdline and powers off.
    let deadline = Instant::now() + Duration::from_secs(240);
    let cmdline = loop {
        let log = read_lossy(&domain.serial);
        if let Some(line) = log.lines().find(|l| l.contains("IRONCAST-CMDLINE:")) {
            break line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{mode}: no command line on the serial console after 240 s:\n{log}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        cmdline.contains(&marker),
        "{mode}: {marker} missing from {cmdline:?}"
    );

    bm.ok(&["node", "undeploy", &name, "--wait", "300"]);
    assert_eq!(bm.show(&name)["provision_state"], "available");
    let state = virsh_ok(&["domstate", &domain.name]);
    assert_eq!(
        state, "shut off",
        "{mode}: undeploy leaves the VM powered off"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cd = rt.block_on(get_json(&format!(
        "{}/redfish/v1/Systems/{}/VirtualMedia/Cd",
        sushy.base, domain.uuid
    )));
    assert_eq!(cd["Inserted"], false, "{mode}: undeploy ejects: {cd}");
}

#[test]
fn qemu_boot_vm_bios_through_sushy_libvirt() {
    deploy_and_see_the_marker("bios");
}

#[test]
fn qemu_boot_vm_uefi_through_sushy_libvirt() {
    deploy_and_see_the_marker("uefi");
}
