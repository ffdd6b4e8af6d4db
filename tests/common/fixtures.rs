//! Fixtures built by the repo's scripts and cached under target/ by a hash of the scripts.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bootable fixture ISO (a Debian kernel and a busybox initramfs printing
/// `IRONCAST-CMDLINE: <cmdline>` on the serial console, then powering off), built once by
/// fixtures/iso/boot.sh. None on a developer machine without the tools.
pub fn bootable_iso() -> Option<PathBuf> {
    for tool in [
        "xorriso",
        "mcopy",
        "grub-mkstandalone",
        "busybox",
        "cpio",
        "dpkg-deb",
    ] {
        crate::common::tool(tool)?;
    }
    let scripts = repo().join("fixtures/iso");
    let mut h = Sha256::new();
    for f in ["boot.sh", "lib.sh"] {
        h.update(std::fs::read(scripts.join(f)).unwrap());
    }
    let cache = repo()
        .join("target/iso-boot")
        .join(hex::encode(&h.finalize()[..6]));
    let out = Command::new("bash")
        .arg(scripts.join("boot.sh"))
        .arg(&cache)
        .arg(repo().join("target/iso-boot/kernel"))
        .output()
        .expect("run fixtures/iso/boot.sh");
    assert!(
        out.status.success(),
        "fixtures/iso/boot.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(cache.join("boot.iso"))
}

/// Reads `path` as text, lossily; empty when it does not exist yet.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
