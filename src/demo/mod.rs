//! `ironcast demo`: the main job end to end on one machine with nothing installed but cargo —
//! a conductor on SQLite in a temporary directory, a fleet of simulated BMCs, a small demo ISO
//! built in memory, N nodes enrolled, deployed with kernel args, checked, and undeployed.

use std::sync::Arc;

use crate::iso::{IsoWriter, Loader};
use crate::redfish::sim::BootInspector;

/// The simulated BMCs' view of a fetched ISO, through the ISO engine: the kernel args of every
/// Linux entry, the BIOS (isolinux) ones first as a BMC's default El Torito entry is BIOS.
pub fn iso_boot_inspector() -> BootInspector {
    Arc::new(|path| {
        let mut entries = crate::iso::boot_cmdlines(path).map_err(|e| e.to_string())?;
        entries.sort_by_key(|e| e.loader != Loader::Syslinux);
        if entries.is_empty() {
            return Err("the ISO has no Linux boot entry".into());
        }
        Ok(entries
            .into_iter()
            .map(|e| e.args.trim().to_string())
            .collect())
    })
}

/// Kernel args already in the demo ISO's boot configs; the demo appends its own after them.
pub const DEMO_BASE_ARGS: &str = "console=ttyS0 quiet";

/// The demo boot ISO: isolinux and grub configs booting /vmlinuz with [`DEMO_BASE_ARGS`].
/// The kernel and boot loader are placeholders: simulated BMCs read the configs, not boot them.
pub fn demo_iso() -> Vec<u8> {
    demo_writer("IRONCAST_DEMO")
        .build()
        .expect("the demo ISO's fixed contents are valid")
}

/// The demo's agent ramdisk: the same layout as [`demo_iso`] under another volume id. The
/// conductor remasters it with each node's agent args (URL, node, token); a simulated BMC
/// that boots it starts a simulated agent (`agent::sim`) with those args.
pub fn demo_agent_iso() -> Vec<u8> {
    demo_writer("IRONCAST_AGENT")
        .build()
        .expect("the demo ISO's fixed contents are valid")
}

fn demo_writer(volume_id: &str) -> IsoWriter {
    let isolinux = format!(
        "default live\nprompt 0\n\nlabel live\n  kernel /vmlinuz\n  append initrd=/initrd.img {DEMO_BASE_ARGS}\n\nlabel local\n  localboot 0\n"
    );
    let grub = format!(
        "set timeout=1\n\nmenuentry 'ironcast demo' {{\n    linux /vmlinuz {DEMO_BASE_ARGS}\n    initrd /initrd.img\n}}\n"
    );
    let files: [(&str, Vec<u8>); 5] = [
        ("/isolinux/isolinux.bin", vec![0xFA; 2048]),
        ("/isolinux/isolinux.cfg", isolinux.into_bytes()),
        ("/boot/grub/grub.cfg", grub.into_bytes()),
        ("/vmlinuz", b"placeholder kernel".to_vec()),
        ("/initrd.img", b"placeholder initrd".to_vec()),
    ];
    let mut w = IsoWriter::new(volume_id).expect("a valid volume id");
    for (path, data) in files {
        w.add_file(path, data).expect("distinct demo paths");
    }
    w.bios_boot("/isolinux/isolinux.bin", "/isolinux/boot.cat")
        .expect("valid paths");
    w
}

/// The demo's whole-disk image: 4 MiB, a deterministic pattern in its first MiB and zeros
/// after, so the simulated agents stream and verify real bytes.
pub fn demo_disk_image() -> Vec<u8> {
    let mut disk = vec![0u8; 4 << 20];
    let mut x: u32 = 0x1234_5678;
    for b in disk.iter_mut().take(1 << 20) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    disk
}
