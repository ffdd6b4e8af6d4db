//! El Torito boot catalog (El Torito 1.0 §2): validation entry, initial entry, section headers
//! and section entries. Platform 0 is BIOS (x86), 0xEF is EFI.

use serde::Serialize;

use super::source::{le16, le32, read, Source};
use super::{IsoError, SECTOR};

/// We read at most this many catalog sectors (each holds 64 entries).
const MAX_CATALOG_SECTORS: u64 = 4;

/// One bootable image the firmware may load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootImage {
    /// "bios", "efi", "ppc", "mac" or a hex id.
    pub platform: String,
    pub bootable: bool,
    /// Emulation: "none", "floppy", "hdd".
    pub media: String,
    /// First 2048-byte sector of the image.
    pub load_lba: u32,
    /// Length in 512-byte sectors as recorded (often 0, 1 or 4 whatever the real size).
    pub sectors: u16,
}

fn platform_name(id: u8) -> String {
    match id {
        0 => "bios".into(),
        1 => "ppc".into(),
        2 => "mac".into(),
        0xEF => "efi".into(),
        x => format!("0x{x:02x}"),
    }
}

fn media_name(m: u8) -> String {
    match m & 0x0F {
        0 => "none".into(),
        1..=3 => "floppy".into(),
        4 => "hdd".into(),
        x => format!("0x{x:x}"),
    }
}

fn entry(e: &[u8], platform: u8) -> BootImage {
    BootImage {
        platform: platform_name(platform),
        bootable: e[0] == 0x88,
        media: media_name(e[1]),
        load_lba: le32(e, 8),
        sectors: le16(e, 6),
    }
}

/// Reads the boot catalog at `lba`.
pub fn read_catalog(src: &dyn Source, lba: u32) -> Result<Vec<BootImage>, IsoError> {
    let offset = lba as u64 * SECTOR;
    let avail = src
        .len()
        .saturating_sub(offset)
        .min(MAX_CATALOG_SECTORS * SECTOR);
    let cat = read(src, offset, avail - avail % 32, "El Torito boot catalog")?;
    if cat.len() < 64 || cat[0] != 1 || cat[30] != 0x55 || cat[31] != 0xAA {
        return Err(IsoError::malformed(format!(
            "El Torito boot catalog at sector {lba} has no valid validation entry"
        )));
    }
    let sum = cat[..32].chunks_exact(2).fold(0u16, |a, c| {
        a.wrapping_add(u16::from_le_bytes([c[0], c[1]]))
    });
    if sum != 0 {
        return Err(IsoError::malformed(format!(
            "El Torito validation entry checksum is wrong (sector {lba})"
        )));
    }
    let mut out = vec![entry(&cat[32..64], cat[1])];
    let mut i = 64;
    while i + 32 <= cat.len() {
        let h = &cat[i..i + 32];
        if h[0] != 0x90 && h[0] != 0x91 {
            break;
        }
        let platform = h[1];
        let n = le16(h, 2) as usize;
        i += 32;
        let mut taken = 0;
        while taken < n && i + 32 <= cat.len() {
            let e = &cat[i..i + 32];
            i += 32;
            if e[0] == 0x44 {
                continue; // section entry extension
            }
            out.push(entry(e, platform));
            taken += 1;
        }
        if h[0] == 0x91 {
            break;
        }
    }
    Ok(out)
}
