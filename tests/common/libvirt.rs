//! libvirt domains for sushy-tools' libvirt driver: a small TCG guest defined per test (and
//! destroyed with it), and sushy limited to that domain.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::fixtures::{read_lossy, repo};
use crate::common::sushy::Sushy;

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
    // Unique per test process and per domain, so one test may define several.
    static DEFINED: AtomicUsize = AtomicUsize::new(0);
    let n = DEFINED.fetch_add(1, Ordering::Relaxed);
    let name = format!("ironcast-test-{mode}-{}-{n}", std::process::id());
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
    sushy_libvirt_with(dir, domain, "")
}

/// [`sushy_libvirt`] with more sushy configuration (`extra_conf`, Python).
pub fn sushy_libvirt_with(dir: &Path, domain: &Domain, extra_conf: &str) -> Option<Sushy> {
    let conf = format!(
        "SUSHY_EMULATOR_LIBVIRT_URI = '{VIRSH_URI}'\n\
         SUSHY_EMULATOR_ALLOWED_INSTANCES = ['{}']\n\
         SUSHY_EMULATOR_BOOT_LOADER_MAP = {{\n\
         'UEFI': {{'x86_64': '/usr/share/OVMF/OVMF_CODE.fd'}},\n\
         'Legacy': {{'x86_64': '/usr/share/seabios/bios-256k.bin'}}}}\n",
        domain.uuid
    ) + extra_conf;
    Sushy::start_libvirt(&dir.join("sushy"), &conf)
}

/// Waits until every `wanted` fragment is on the serial console after its first `from` bytes;
/// returns the console's length then (the `from` of the next wait).
pub fn wait_console(serial: &Path, from: usize, wanted: &[&str], what: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let log = read_lossy(serial);
        let tail = log.get(from..).unwrap_or_default();
        if wanted.iter().all(|w| tail.contains(w)) {
            return log.len();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {wanted:?} not all on the console after 300 s:\n{tail}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
