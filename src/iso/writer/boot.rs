//! El Torito 1.0 structures the writer emits: the boot record volume descriptor (§2.0), the
//! boot catalog (§2.1–2.4: validation entry, initial entry, one section for EFI) and the
//! isolinux boot-info table (mkisofs `-boot-info-table`, documented in isolinux's doc/isolinux.txt).

/// Platform ids of the validation entry and section headers.
const PLATFORM_BIOS: u8 = 0;
const PLATFORM_EFI: u8 = 0xEF;
/// Entry byte 0: bootable; byte 1: no emulation.
const BOOTABLE: u8 = 0x88;
/// Section header byte 0: the final section.
const FINAL_SECTION: u8 = 0x91;

/// A catalog entry to emit.
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    pub lba: u32,
    /// Virtual 512-byte sectors the firmware loads (isolinux wants 4; EFI the image size).
    pub sectors: u16,
}

/// The boot record volume descriptor pointing at the catalog.
pub fn boot_record(catalog_lba: u32) -> Vec<u8> {
    let mut d = vec![0u8; 2048];
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d[7..7 + 23].copy_from_slice(b"EL TORITO SPECIFICATION");
    d[71..75].copy_from_slice(&catalog_lba.to_le_bytes());
    d
}

fn validation(platform: u8) -> [u8; 32] {
    let mut v = [0u8; 32];
    v[0] = 1;
    v[1] = platform;
    v[4..12].copy_from_slice(b"IRONCAST");
    v[30] = 0x55;
    v[31] = 0xAA;
    let sum = v.chunks(2).fold(0u16, |acc, w| {
        acc.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    v[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    v
}

fn entry(e: CatalogEntry) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[0] = BOOTABLE;
    out[6..8].copy_from_slice(&e.sectors.to_le_bytes());
    out[8..12].copy_from_slice(&e.lba.to_le_bytes());
    out
}

/// The catalog (one sector): BIOS as the initial entry when present, EFI in a final section
/// (or as the initial entry of an EFI-only image).
pub fn catalog(bios: Option<CatalogEntry>, efi: Option<CatalogEntry>) -> Vec<u8> {
    let mut c = vec![0u8; 2048];
    match (bios, efi) {
        (Some(b), efi) => {
            c[..32].copy_from_slice(&validation(PLATFORM_BIOS));
            c[32..64].copy_from_slice(&entry(b));
            if let Some(e) = efi {
                c[64] = FINAL_SECTION;
                c[65] = PLATFORM_EFI;
                c[66..68].copy_from_slice(&1u16.to_le_bytes());
                c[96..128].copy_from_slice(&entry(e));
            }
        }
        (None, Some(e)) => {
            c[..32].copy_from_slice(&validation(PLATFORM_EFI));
            c[32..64].copy_from_slice(&entry(e));
        }
        (None, None) => {}
    }
    c
}

/// Sector count recorded for an EFI image of `len` bytes: its size in 512-byte sectors,
/// capped at the field's maximum (firmware then reads the FAT's own size).
pub fn efi_sectors(len: usize) -> u16 {
    len.div_ceil(512).min(u16::MAX as usize) as u16
}

/// Patches the 56-byte boot-info table at offset 8 of an isolinux-style boot file: the primary
/// volume descriptor's LBA, the file's LBA and length, and the 32-bit sum of its words from
/// offset 64 on. isolinux reads it to find itself on the disc.
pub fn patch_boot_info_table(file: &mut [u8], pvd_lba: u32, file_lba: u32) {
    if file.len() < 64 {
        return;
    }
    let sum = file[64..].chunks(4).fold(0u32, |acc, w| {
        let mut word = [0u8; 4];
        word[..w.len()].copy_from_slice(w);
        acc.wrapping_add(u32::from_le_bytes(word))
    });
    let len = file.len() as u32;
    file[8..12].copy_from_slice(&pvd_lba.to_le_bytes());
    file[12..16].copy_from_slice(&file_lba.to_le_bytes());
    file[16..20].copy_from_slice(&len.to_le_bytes());
    file[20..24].copy_from_slice(&sum.to_le_bytes());
    file[24..64].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_entry_sums_to_zero() {
        for p in [PLATFORM_BIOS, PLATFORM_EFI] {
            let v = validation(p);
            let sum = v.chunks(2).fold(0u16, |a, w| {
                a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
            });
            assert_eq!(sum, 0);
        }
    }

    #[test]
    fn catalog_has_bios_then_efi_section() {
        let c = catalog(
            Some(CatalogEntry {
                lba: 30,
                sectors: 4,
            }),
            Some(CatalogEntry {
                lba: 40,
                sectors: 2880,
            }),
        );
        assert_eq!(
            (c[1], c[32], c[64], c[65], c[96]),
            (0, 0x88, 0x91, 0xEF, 0x88)
        );
        assert_eq!(u32::from_le_bytes(c[40..44].try_into().unwrap()), 30);
        assert_eq!(u32::from_le_bytes(c[104..108].try_into().unwrap()), 40);
        assert_eq!(u16::from_le_bytes([c[102], c[103]]), 2880);
        let efi_only = catalog(
            None,
            Some(CatalogEntry {
                lba: 40,
                sectors: 8,
            }),
        );
        assert_eq!((efi_only[1], efi_only[64]), (0xEF, 0));
    }

    #[test]
    fn boot_info_table_sums_words_after_offset_64() {
        let mut f = vec![0u8; 70];
        f[64..70].copy_from_slice(&[1, 0, 0, 0, 2, 0]);
        patch_boot_info_table(&mut f, 16, 33);
        let word = |i: usize| u32::from_le_bytes(f[i..i + 4].try_into().unwrap());
        assert_eq!((word(8), word(12), word(16), word(20)), (16, 33, 70, 3));
        assert_eq!(efi_sectors(1), 1);
        assert_eq!(efi_sectors(100 << 20), u16::MAX);
    }
}
