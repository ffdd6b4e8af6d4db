//! Moving a GPT's backup header and entries to the end of a disk bigger than the image
//! (what `sgdisk -e` does), with both CRC32s recomputed. Spec: UEFI 2.10 §5.3.
//!
//! [`relocate_plan`] is pure: header bytes in, the byte writes out.

/// GPT header fields (UEFI §5.3.2, Table 5.5), byte offsets within the header.
const SIG: &[u8; 8] = b"EFI PART";
const HEADER_SIZE: usize = 12;
const HEADER_CRC: usize = 16;
const MY_LBA: usize = 24;
const ALTERNATE_LBA: usize = 32;
const LAST_USABLE: usize = 48;
const ENTRY_LBA: usize = 72;
const NUM_ENTRIES: usize = 80;
const ENTRY_SIZE: usize = 84;
/// Protective MBR: first partition record's type and size-in-LBA (UEFI §5.2.3).
const PMBR_TYPE: usize = 446 + 4;
const PMBR_SIZE: usize = 446 + 12;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Where the primary header says its entries are, and how many bytes they take; `None` when
/// `lba1` is not a valid GPT header.
pub fn entries_location(lba1: &[u8], ss: u64) -> Option<(u64, u64)> {
    let hs = header_ok(lba1)?;
    let _ = hs;
    let bytes = le32(lba1, NUM_ENTRIES) as u64 * le32(lba1, ENTRY_SIZE) as u64;
    Some((le64(lba1, ENTRY_LBA) * ss, bytes))
}

fn header_ok(h: &[u8]) -> Option<usize> {
    if h.len() < 92 || &h[..8] != SIG {
        return None;
    }
    let hs = le32(h, HEADER_SIZE) as usize;
    if !(92..=h.len()).contains(&hs) {
        return None;
    }
    let mut copy = h[..hs].to_vec();
    copy[HEADER_CRC..HEADER_CRC + 4].fill(0);
    (crc32fast::hash(&copy) == le32(h, HEADER_CRC)).then_some(hs)
}

fn seal(h: &mut [u8], hs: usize) {
    h[HEADER_CRC..HEADER_CRC + 4].fill(0);
    let crc = crc32fast::hash(&h[..hs]);
    h[HEADER_CRC..HEADER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Plans the writes that move the backup GPT from the image's end (`image_sectors`) to the
/// disk's end (`disk_sectors`). `None` when there is nothing to do: no valid GPT, a disk no
/// bigger than the image, or a backup that was not at the image's end.
pub fn relocate_plan(
    lba0: &[u8],
    lba1: &[u8],
    entries: &[u8],
    image_sectors: u64,
    disk_sectors: u64,
    ss: u64,
) -> Option<Vec<(u64, Vec<u8>)>> {
    let hs = header_ok(lba1)?;
    if disk_sectors <= image_sectors || le64(lba1, ALTERNATE_LBA) != image_sectors - 1 {
        return None;
    }
    let entry_sectors = (entries.len() as u64).div_ceil(ss);
    let new_alt = disk_sectors - 1;
    if new_alt <= entry_sectors + 2 {
        return None;
    }
    let mut primary = lba1.to_vec();
    put64(&mut primary, ALTERNATE_LBA, new_alt);
    put64(&mut primary, LAST_USABLE, new_alt - entry_sectors - 1);
    let mut backup = primary.clone();
    seal(&mut primary, hs);
    put64(&mut backup, MY_LBA, new_alt);
    put64(&mut backup, ALTERNATE_LBA, 1);
    put64(&mut backup, ENTRY_LBA, new_alt - entry_sectors);
    seal(&mut backup, hs);
    let mut writes = vec![
        ((new_alt - entry_sectors) * ss, entries.to_vec()),
        (new_alt * ss, backup),
        ((image_sectors - 1) * ss, vec![0u8; ss as usize]),
        (ss, primary),
    ];
    if lba0.len() >= 512 && lba0[510..512] == [0x55, 0xaa] && lba0[PMBR_TYPE] == 0xee {
        let mut mbr = lba0.to_vec();
        let size = (disk_sectors - 1).min(u32::MAX as u64) as u32;
        mbr[PMBR_SIZE..PMBR_SIZE + 4].copy_from_slice(&size.to_le_bytes());
        writes.push((0, mbr));
    }
    Some(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(alt: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(SIG);
        h[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(&92u32.to_le_bytes());
        put64(&mut h, MY_LBA, 1);
        put64(&mut h, ALTERNATE_LBA, alt);
        put64(&mut h, LAST_USABLE, alt - 33);
        put64(&mut h, ENTRY_LBA, 2);
        h[NUM_ENTRIES..NUM_ENTRIES + 4].copy_from_slice(&128u32.to_le_bytes());
        h[ENTRY_SIZE..ENTRY_SIZE + 4].copy_from_slice(&128u32.to_le_bytes());
        seal(&mut h, 92);
        h
    }

    #[test]
    fn plan_moves_backup_and_fixes_crcs() {
        let entries = vec![7u8; 128 * 128];
        let lba1 = header(999);
        assert_eq!(entries_location(&lba1, 512), Some((1024, 16384)));
        let plan = relocate_plan(&[0u8; 512], &lba1, &entries, 1000, 5000, 512).unwrap();
        let at = |off: u64| plan.iter().find(|(o, _)| *o == off).unwrap().1.clone();
        let backup = at(4999 * 512);
        assert!(header_ok(&backup).is_some(), "backup CRC valid");
        assert_eq!(le64(&backup, MY_LBA), 4999);
        assert_eq!(le64(&backup, ALTERNATE_LBA), 1);
        assert_eq!(le64(&backup, ENTRY_LBA), 4999 - 32);
        let primary = at(512);
        assert!(header_ok(&primary).is_some(), "primary CRC valid");
        assert_eq!(le64(&primary, ALTERNATE_LBA), 4999);
        assert_eq!(le64(&primary, LAST_USABLE), 5000 - 34);
        assert_eq!(at((4999 - 32) * 512), entries);
        // Nothing to do on an equal-size disk or when the backup was elsewhere.
        assert!(relocate_plan(&[0u8; 512], &lba1, &entries, 1000, 1000, 512).is_none());
        assert!(relocate_plan(&[0u8; 512], &header(500), &entries, 1000, 5000, 512).is_none());
        let mut broken = lba1.clone();
        broken[40] ^= 1;
        assert!(relocate_plan(&[0u8; 512], &broken, &entries, 1000, 5000, 512).is_none());
    }
}
