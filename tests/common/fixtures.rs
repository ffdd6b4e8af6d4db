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

/// Debian's kernel package unpacked under target/ (fixtures/kernel.sh): the vmlinuz path.
/// None on a developer machine without apt.
pub fn kernel() -> Option<PathBuf> {
    for tool in ["apt-get", "dpkg-deb", "flock"] {
        crate::common::tool(tool)?;
    }
    let out = Command::new("bash")
        .arg(repo().join("fixtures/kernel.sh"))
        .arg(repo().join("target/iso-boot/kernel"))
        .output()
        .expect("run fixtures/kernel.sh");
    assert!(
        out.status.success(),
        "fixtures/kernel.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Runs `cmd` under an exclusive `flock` on `lock`, so parallel test processes build a shared
/// fixture once; panics with its output when it fails.
pub fn locked(lock: &Path, cmd: &mut Command) {
    let mut locked = Command::new("flock");
    locked.arg(lock).arg(cmd.get_program()).args(cmd.get_args());
    let out = locked.output().expect("run flock");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The agent ramdisk built by this test build's `ironcast ramdisk build` (cached under
/// target/ by the binary's size and time): (ISO, initramfs, kernel copy).
pub fn agent_ramdisk() -> Option<(PathBuf, PathBuf, PathBuf)> {
    for tool in ["xorriso", "grub-mkimage", "busybox", "strip", "ldd"] {
        crate::common::tool(tool)?;
    }
    let kernel = kernel()?;
    let bin = crate::common::ironcast_bin();
    let meta = std::fs::metadata(&bin).unwrap();
    let mut h = Sha256::new();
    h.update(meta.len().to_le_bytes());
    h.update(format!("{:?}", meta.modified().unwrap()));
    h.update(kernel.to_string_lossy().as_bytes());
    let dir = repo()
        .join("target/ramdisk-test")
        .join(hex::encode(&h.finalize()[..6]));
    std::fs::create_dir_all(&dir).unwrap();
    let (iso, initramfs, vmlinuz) = (
        dir.join("agent.iso"),
        dir.join("net/initramfs.gz"),
        dir.join("net/vmlinuz"),
    );
    if !iso.exists() {
        let mut build = Command::new(&bin);
        build
            .args(["ramdisk", "build", "--kernel"])
            .arg(&kernel)
            .arg("--output")
            .arg(&iso)
            .arg("--initramfs-output")
            .arg(&initramfs);
        let lock = dir.join("build.lock");
        // The first holder builds; the others find the ISO once they get the lock.
        let script = format!(
            "[ -s '{}' ] || exec \"$@\"",
            iso.display().to_string().replace('\'', "")
        );
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(build.get_program())
            .args(build.get_args());
        locked(&lock, &mut sh);
    }
    Some((iso, initramfs, vmlinuz))
}

/// The whole-disk fixture image (fixtures/deploy/make-disk-image.sh) printing `marker`:
/// (disk.raw, disk.qcow2), cached under target/ by the script's hash and the marker.
pub fn disk_image(marker: &str) -> Option<(PathBuf, PathBuf)> {
    for tool in [
        "sgdisk",
        "mkfs.vfat",
        "mcopy",
        "syslinux",
        "grub-mkimage",
        "busybox",
        "cpio",
        "modinfo",
        "qemu-img",
    ] {
        crate::common::tool(tool)?;
    }
    kernel()?;
    let script = repo().join("fixtures/deploy/make-disk-image.sh");
    let mut h = Sha256::new();
    h.update(std::fs::read(&script).unwrap());
    h.update(marker.as_bytes());
    let dir = repo()
        .join("target/deploy-disk")
        .join(hex::encode(&h.finalize()[..6]));
    let (raw, qcow2) = (dir.join("disk.raw"), dir.join("disk.qcow2"));
    if !qcow2.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let script_text = format!("[ -s '{}' ] || exec \"$@\"", qcow2.display());
        locked(
            &dir.join("build.lock"),
            Command::new("sh")
                .arg("-c")
                .arg(script_text)
                .arg("sh")
                .arg("bash")
                .arg(&script)
                .arg(&dir)
                .arg(marker),
        );
    }
    Some((raw, qcow2))
}

/// The installer ISO of fixtures/install/make-installer-iso.sh (a Debian-like layout whose
/// busybox installer writes the fixture disk and leaves the automation file's marker on it),
/// built once per version of the scripts under target/install-iso/.
pub fn installer_iso() -> Option<PathBuf> {
    for tool in [
        "xorriso",
        "sgdisk",
        "mkfs.vfat",
        "mcopy",
        "syslinux",
        "grub-mkimage",
        "busybox",
        "cpio",
        "modinfo",
        "qemu-img",
    ] {
        crate::common::tool(tool)?;
    }
    kernel()?;
    let mut h = Sha256::new();
    for f in [
        "fixtures/install/make-installer-iso.sh",
        "fixtures/deploy/make-disk-image.sh",
        "fixtures/iso/lib.sh",
    ] {
        h.update(std::fs::read(repo().join(f)).unwrap());
    }
    let dir = repo()
        .join("target/install-iso")
        .join(hex::encode(&h.finalize()[..6]));
    let iso = dir.join("installer.iso");
    if !iso.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let script_text = format!("[ -s '{}' ] || exec \"$@\"", iso.display());
        locked(
            &dir.join("build.lock"),
            Command::new("sh")
                .arg("-c")
                .arg(script_text)
                .arg("sh")
                .arg("bash")
                .arg(repo().join("fixtures/install/make-installer-iso.sh"))
                .arg(&dir),
        );
    }
    Some(iso)
}
