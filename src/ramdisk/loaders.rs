//! Boot loaders of the agent ISO, taken from distro packages: isolinux (package `isolinux`,
//! plus `ldlinux.c32` from `syslinux-common`) for BIOS, a GRUB EFI binary made by
//! `grub-mkimage` from `grub-efi-amd64-bin`'s modules for UEFI. Their configs are rendered
//! here (pure) so `iso inspect` and `iso remaster --append` find and patch them: that is how
//! the conductor gives each node its URL and token.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::RamdiskError;

/// Kernel arguments every entry carries: the serial console last, so /dev/console (init's
/// output) is ttyS0; quiet so a 115200-baud console does not slow the boot.
pub const BASE_ARGS: &str = "console=tty0 console=ttyS0,115200n8 quiet";
/// Paths in the ISO.
pub const KERNEL: &str = "/boot/vmlinuz";
pub const INITRD: &str = "/boot/initramfs.gz";
pub const ISOLINUX_BIN: &str = "/isolinux/isolinux.bin";
pub const ISOLINUX_CFG: &str = "/isolinux/isolinux.cfg";
pub const LDLINUX: &str = "/isolinux/ldlinux.c32";
pub const CATALOG: &str = "/isolinux/boot.cat";
pub const GRUB_CFG: &str = "/boot/grub/grub.cfg";
pub const EFI_IMAGE: &str = "/boot/grub/efi.img";
/// A file only this ISO has: GRUB searches for it to find the ISO's own file system.
pub const ISO_MARK: &str = "/boot/grub/ironcast-agent.id";
/// Inside the EFI image.
pub const EFI_BINARY: &str = "EFI/BOOT/BOOTX64.EFI";
pub const EFI_GRUB_CFG: &str = "EFI/BOOT/grub.cfg";
const EFI_MARK: &str = "/EFI/BOOT/ironcast-agent-efi.id";

/// Modules linked into the GRUB EFI binary: read an ISO or a FAT image, search, boot Linux.
const GRUB_MODULES: &[&str] = &[
    "part_gpt",
    "part_msdos",
    "fat",
    "iso9660",
    "normal",
    "configfile",
    "linux",
    "search",
    "search_fs_file",
    "test",
    "echo",
    "serial",
    "terminal",
];

/// Where the distro packages put the loader files.
#[derive(Debug, Clone)]
pub struct LoaderPaths {
    pub isolinux_bin: PathBuf,
    pub ldlinux: PathBuf,
    pub grub_efi_modules: PathBuf,
}

impl Default for LoaderPaths {
    fn default() -> Self {
        Self {
            isolinux_bin: "/usr/lib/ISOLINUX/isolinux.bin".into(),
            ldlinux: "/usr/lib/syslinux/modules/bios/ldlinux.c32".into(),
            grub_efi_modules: "/usr/lib/grub/x86_64-efi".into(),
        }
    }
}

/// isolinux.cfg: one entry, booting at once, on the serial console too.
pub fn isolinux_cfg(args: &str) -> String {
    format!(
        "serial 0 115200\ndefault agent\nprompt 0\ntimeout 1\n\nlabel agent\n  kernel {KERNEL}\n  append initrd={INITRD} {args}\n"
    )
}

/// grub.cfg on the ISO and inside the EFI image: the same entry; the EFI copy first finds the
/// ISO's file system (it is read from the FAT image, where the kernel is not).
pub fn grub_cfg(args: &str, in_efi_image: bool) -> String {
    let find_iso = if in_efi_image {
        format!("search --no-floppy --file --set=root {ISO_MARK}\n")
    } else {
        String::new()
    };
    format!(
        "set timeout=0\nserial --unit=0 --speed=115200\nterminal_output console serial\n{find_iso}\nmenuentry 'ironcast agent' {{\n  linux {KERNEL} {args}\n  initrd {INITRD}\n}}\n"
    )
}

/// The config built into the GRUB binary: prefer the grub.cfg inside the EFI image when GRUB
/// can read it (booted as a disk), else the ISO's (from a CD, firmware gives GRUB the ISO).
fn embedded_cfg() -> String {
    format!(
        "search --no-floppy --file --set=efiroot {EFI_MARK}\nif [ -n \"$efiroot\" ]; then\n  configfile ($efiroot)/{EFI_GRUB_CFG}\nfi\nsearch --no-floppy --file --set=root {ISO_MARK}\nconfigfile {GRUB_CFG}\n"
    )
}

/// Runs `grub-mkimage` to make BOOTX64.EFI with [`embedded_cfg`].
pub fn grub_efi_binary(paths: &LoaderPaths, work: &Path) -> Result<Vec<u8>, RamdiskError> {
    if !paths.grub_efi_modules.join("linux.mod").exists() {
        return Err(RamdiskError::Input(format!(
            "GRUB EFI modules not found in {} (install grub-efi-amd64-bin)",
            paths.grub_efi_modules.display()
        )));
    }
    let cfg = work.join("embedded.cfg");
    let out = work.join("BOOTX64.EFI");
    let io = |context: String| move |cause| RamdiskError::Io { context, cause };
    std::fs::write(&cfg, embedded_cfg()).map_err(io(format!("writing {}", cfg.display())))?;
    let status = Command::new("grub-mkimage")
        .args(["-O", "x86_64-efi", "-p", "/boot/grub", "-c"])
        .arg(&cfg)
        .arg("-d")
        .arg(&paths.grub_efi_modules)
        .arg("-o")
        .arg(&out)
        .args(GRUB_MODULES)
        .output()
        .map_err(io("running grub-mkimage (install grub-common)".into()))?;
    if !status.status.success() {
        return Err(RamdiskError::Input(format!(
            "grub-mkimage failed: {}",
            String::from_utf8_lossy(&status.stderr).trim()
        )));
    }
    std::fs::read(&out).map_err(io(format!("reading {}", out.display())))
}

/// The marker files GRUB searches for.
pub fn marks() -> [(&'static str, &'static [u8]); 2] {
    [
        (ISO_MARK, b"ironcast agent ISO\n"),
        (EFI_MARK, b"ironcast agent EFI image\n"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_name_kernel_initrd_and_args() {
        let iso = isolinux_cfg("console=ttyS0 x=1");
        assert!(iso.contains(
            "kernel /boot/vmlinuz\n  append initrd=/boot/initramfs.gz console=ttyS0 x=1\n"
        ));
        let g = grub_cfg("console=ttyS0 x=1", false);
        assert!(g.contains("linux /boot/vmlinuz console=ttyS0 x=1\n  initrd /boot/initramfs.gz\n"));
        assert!(!g.contains("search"));
        assert!(grub_cfg("a", true).contains("--set=root /boot/grub/ironcast-agent.id"));
        assert!(embedded_cfg().contains("configfile /boot/grub/grub.cfg"));
    }
}
