//! Proof on a virtual machine, the way Ironic's own CI does it: sushy-tools' libvirt driver in
//! front of a QEMU VM (TCG). A node enrolled through python-ironicclient with that BMC and the
//! bootable fixture ISO plus a marker arg reaches active, and the marker appears in the VM's
//! serial console from /proc/cmdline — in BIOS and in UEFI boot mode. Undeploy powers it off
//! and ejects. libvirt is set up by scripts/libvirt-setup (run from .ci/setup.d).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::fixtures::{bootable_iso, read_lossy, repo};
use crate::common::sushy::Sushy;
use crate::support::{get_json, serve_with, Client};

const VIRSH_URI: &str = "qemu:///system";

/// A libvirt domain defined for one test; destroyed and undefined on drop.
pub struct Domain {
    pub name: String,
    pub uuid: String,
    pub serial: PathBuf,
    pub disk: PathBuf,
}

impl Drop for Domain {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", &self.name]);
        let _ = virsh(&["undefine", "--nvram", &self.name]);
    }
}

pub fn virsh(args: &[&str]) -> std::process::Output {
    Command::new("virsh")
        .arg("-c")
        .arg(VIRSH_URI)
        .args(args)
        .output()
        .expect("run virsh")
}

pub fn virsh_ok(args: &[&str]) -> String {
    let out = virsh(args);
    assert!(
        out.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Defines a TCG domain booting in `mode` ("bios" or "uefi") with a blank disk of
/// `disk_bytes` and `extra` devices (libvirt XML).
pub fn define(dir: &Path, mode: &str, disk_bytes: u64, extra: &str) -> Domain {
    let name = format!("ironcast-test-{mode}-{}", std::process::id());
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(disk_bytes)
        .unwrap();
    let serial = dir.join("serial.log");
    let firmware = match mode {
        "uefi" => format!(
            "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>\
             <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>{}</nvram>",
            dir.join("vars.fd").display()
        ),
        _ => "<loader readonly='yes' type='rom'>/usr/share/seabios/bios-256k.bin</loader>".into(),
    };
    let xml = std::fs::read_to_string(repo().join("fixtures/vm/domain.xml.in"))
        .unwrap()
        .replace("@NAME@", &name)
        .replace("@SERIAL@", &serial.display().to_string())
        .replace("@DISK@", &disk.display().to_string())
        .replace("@FIRMWARE@", &firmware)
        .replace("@EXTRA@", extra);
    let file = dir.join("domain.xml");
    std::fs::write(&file, xml).unwrap();
    virsh_ok(&["define", file.to_str().unwrap()]);
    let uuid = virsh_ok(&["domuuid", &name]);
    Domain {
        name,
        uuid,
        serial,
        disk,
    }
}

/// sushy-tools' libvirt driver limited to `domain`, with SeaBIOS and OVMF for its boot modes.
pub fn sushy_libvirt(dir: &Path, domain: &Domain) -> Option<Sushy> {
    let conf = format!(
        "SUSHY_EMULATOR_LIBVIRT_URI = '{VIRSH_URI}'\n\
         SUSHY_EMULATOR_ALLOWED_INSTANCES = ['{}']\n\
         SUSHY_EMULATOR_BOOT_LOADER_MAP = {{\n\
         'UEFI': {{'x86_64': '/usr/share/OVMF/OVMF_CODE.fd'}},\n\
         'Legacy': {{'x86_64': '/usr/share/seabios/bios-256k.bin'}}}}\n",
        domain.uuid
    );
    Sushy::start_libvirt(&dir.join("sushy"), &conf)
}

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
