//! GPT edits, pure (header bytes in, the byte writes out), with every CRC32 recomputed. Spec:
//! UEFI 2.10 §5.3. [`relocate_plan`] moves the backup header and entries to the end of a disk
//! bigger than the image (what `sgdisk -e` does); [`add_partition_plan`] adds a partition at
//! the end of the disk (the agent's config drive), moving the backup to the disk's end too.

/// GPT header fields (UEFI §5.3.2, Table 5.5), byte offsets within the header.
const SIG: &[u8; 8] = b"EFI PART";
const HEADER_SIZE: usize = 12;
const HEADER_CRC: usize = 16;
const MY_LBA: usize = 24;
const ALTERNATE_LBA: usize = 32;
const FIRST_USABLE: usize = 40;
const LAST_USABLE: usize = 48;
const ENTRY_LBA: usize = 72;
const NUM_ENTRIES: usize = 80;
const ENTRY_SIZE: usize = 84;
const ENTRIES_CRC: usize = 88;
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
/// `lba1` is not a valid GPT header or its entries lie beyond any disk.
pub fn entries_location(lba1: &[u8], ss: u64) -> Option<(u64, u64)> {
    header_ok(lba1)?;
    // Two u32s: the product fits a u64.
    let bytes = le32(lba1, NUM_ENTRIES) as u64 * le32(lba1, ENTRY_SIZE) as u64;
    let at = le64(lba1, ENTRY_LBA).checked_mul(ss)?;
    at.checked_add(bytes)?;
    Some((at, bytes))
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
    if disk_sectors <= image_sectors || le64(lba1, ALTERNATE_LBA) != image_sectors.checked_sub(1)? {
        return None;
    }
    // Every byte offset below is at most the disk's size.
    disk_sectors.checked_mul(ss)?;
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

/// Where a new partition went: its 1-based number and its first and last sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPartition {
    pub number: usize,
    pub first: u64,
    pub last: u64,
}

/// Byte writes `(offset, bytes)` that carry out a plan.
pub type Writes = Vec<(u64, Vec<u8>)>;

/// New partitions start on a 1 MiB boundary, as partitioning tools place them.
const ALIGN_BYTES: u64 = 1 << 20;

/// Why a partition cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("{0}")]
    NoTable(String),
    #[error("{0}")]
    NoRoom(String),
}

/// Plans adding a partition of at least `want_bytes` at the end of a GPT disk of
/// `disk_sectors`, ending at the last usable sector: a free entry filled with `type_guid`,
/// `unique_guid` and `name`, entries and both headers rewritten with their CRCs, the backup at
/// the disk's end, the protective MBR's size fixed. The writes do not touch the new
/// partition's bytes, which the caller fills.
#[allow(clippy::too_many_arguments)]
pub fn add_partition_plan(
    lba0: &[u8],
    lba1: &[u8],
    entries: &[u8],
    disk_sectors: u64,
    ss: u64,
    want_bytes: u64,
    type_guid: [u8; 16],
    unique_guid: [u8; 16],
    name: &str,
) -> Result<(NewPartition, Writes), AddError> {
    let hs =
        header_ok(lba1).ok_or_else(|| AddError::NoTable("no valid GPT header at LBA 1".into()))?;
    let esz = le32(lba1, ENTRY_SIZE) as usize;
    let n = le32(lba1, NUM_ENTRIES) as usize;
    if esz < 128
        || Some(entries.len()) != n.checked_mul(esz)
        || crc32fast::hash(entries) != le32(lba1, ENTRIES_CRC)
    {
        return Err(AddError::NoTable(
            "the GPT partition entries do not match their header's CRC".into(),
        ));
    }
    let no_room = |m: &str| AddError::NoRoom(m.to_string());
    disk_sectors
        .checked_mul(ss)
        .ok_or_else(|| no_room("the disk's size does not fit 64 bits"))?;
    let entries_at = le64(lba1, ENTRY_LBA)
        .checked_mul(ss)
        .filter(|at| at.checked_add(entries.len() as u64).is_some())
        .ok_or_else(|| {
            AddError::NoTable(format!(
                "the GPT header puts its entries at LBA {}, beyond any disk",
                le64(lba1, ENTRY_LBA)
            ))
        })?;
    let entry_sectors = (entries.len() as u64).div_ceil(ss);
    let backup = disk_sectors
        .checked_sub(1)
        .ok_or_else(|| no_room("the disk is empty"))?;
    let last_usable = backup
        .checked_sub(entry_sectors + 1)
        .ok_or_else(|| AddError::NoRoom("the disk is smaller than its partition table".into()))?;
    let used_end = entries
        .chunks_exact(esz)
        .filter(|e| e[..16].iter().any(|&b| b != 0))
        .map(|e| le64(e, 40))
        .max()
        .unwrap_or(0)
        .max(le64(lba1, FIRST_USABLE).saturating_sub(1));
    let align = (ALIGN_BYTES / ss).max(1);
    // Asking for 0 bytes still gets one aligned unit: a partition is never empty.
    let want = want_bytes.max(1).div_ceil(ss).next_multiple_of(align);
    let first = (last_usable + 1)
        .checked_sub(want)
        .map(|s| s / align * align)
        .filter(|&s| s > used_end)
        .ok_or_else(|| {
            AddError::NoRoom(format!(
                "no room for {want_bytes} bytes at the end of the disk: the last partition ends at byte {}, the usable space at byte {}",
                used_end.saturating_add(1).saturating_mul(ss),
                (last_usable + 1) * ss
            ))
        })?;
    // The primary entries are rewritten where the header says they are: past the new
    // partition's start that would write into it, or past the disk's end (found by the gpt
    // fuzz target).
    if entries_at + entries.len() as u64 > first * ss {
        return Err(AddError::NoTable(format!(
            "the GPT header puts its entries at LBA {}, past the start of the new partition (LBA {first})",
            le64(lba1, ENTRY_LBA)
        )));
    }
    let slot = entries
        .chunks_exact(esz)
        .position(|e| e[..16].iter().all(|&b| b == 0))
        .ok_or_else(|| AddError::NoRoom(format!("all {n} GPT entries are in use")))?;
    let mut new_entries = entries.to_vec();
    let e = &mut new_entries[slot * esz..(slot + 1) * esz];
    e.fill(0);
    e[..16].copy_from_slice(&type_guid);
    e[16..32].copy_from_slice(&unique_guid);
    put64(e, 32, first);
    put64(e, 40, last_usable);
    for (i, unit) in name.encode_utf16().take(36).enumerate() {
        e[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
    }
    let mut primary = lba1.to_vec();
    put64(&mut primary, ALTERNATE_LBA, backup);
    put64(&mut primary, LAST_USABLE, last_usable);
    primary[ENTRIES_CRC..ENTRIES_CRC + 4]
        .copy_from_slice(&crc32fast::hash(&new_entries).to_le_bytes());
    let mut backup_header = primary.clone();
    seal(&mut primary, hs);
    put64(&mut backup_header, MY_LBA, backup);
    put64(&mut backup_header, ALTERNATE_LBA, 1);
    put64(&mut backup_header, ENTRY_LBA, backup - entry_sectors);
    seal(&mut backup_header, hs);
    let mut writes = Vec::new();
    // A backup left where a smaller image ended would be found by tools as a stale table.
    let old_backup = le64(lba1, ALTERNATE_LBA);
    if old_backup != backup
        && old_backup < disk_sectors
        && !(first..=last_usable).contains(&old_backup)
    {
        writes.push((old_backup * ss, vec![0u8; ss as usize]));
    }
    writes.push((entries_at, new_entries.clone()));
    writes.push(((backup - entry_sectors) * ss, new_entries));
    writes.push((backup * ss, backup_header));
    writes.push((ss, primary));
    if lba0.len() >= 512 && lba0[510..512] == [0x55, 0xaa] && lba0[PMBR_TYPE] == 0xee {
        let mut mbr = lba0.to_vec();
        let size = (disk_sectors - 1).min(u32::MAX as u64) as u32;
        mbr[PMBR_SIZE..PMBR_SIZE + 4].copy_from_slice(&size.to_le_bytes());
        writes.push((0, mbr));
    }
    Ok((
        NewPartition {
            number: slot + 1,
            first,
            last: last_usable,
        },
        writes,
    ))
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

    /// A disk image of `sectors` with a GPT whose entries (128 × 128 bytes at LBA 2) hold one
    /// partition 2048..=last; the backup at `backup`.
    fn gpt_disk(sectors: u64, last: u64, backup: u64) -> Vec<u8> {
        let mut disk = vec![0u8; (sectors * 512) as usize];
        let mut entries = vec![0u8; 128 * 128];
        entries[..16].copy_from_slice(&[0xAF; 16]);
        entries[16..32].copy_from_slice(&[1; 16]);
        put64(&mut entries, 32, 2048);
        put64(&mut entries, 40, last);
        let mut h = header(backup);
        put64(&mut h, FIRST_USABLE, 34);
        h[ENTRIES_CRC..ENTRIES_CRC + 4].copy_from_slice(&crc32fast::hash(&entries).to_le_bytes());
        seal(&mut h, 92);
        disk[446 + 4] = 0xee;
        disk[510] = 0x55;
        disk[511] = 0xaa;
        disk[512..1024].copy_from_slice(&h);
        disk[1024..1024 + entries.len()].copy_from_slice(&entries);
        disk
    }

    fn apply(disk: &mut [u8], writes: &[(u64, Vec<u8>)]) {
        for (at, bytes) in writes {
            disk[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
        }
    }

    #[test]
    fn add_partition_at_the_end_fixes_both_headers() {
        // 64 MiB disk, an image of 16 MiB whose backup GPT still sits at its end.
        let sectors = 64 * 2048;
        let mut disk = gpt_disk(sectors, 16 * 2048 - 34, 16 * 2048 - 1);
        let (lba0, lba1) = (disk[..512].to_vec(), disk[512..1024].to_vec());
        let entries = disk[1024..1024 + 16384].to_vec();
        let (part, writes) = add_partition_plan(
            &lba0,
            &lba1,
            &entries,
            sectors,
            512,
            3 << 20,
            [0xCD; 16],
            [2; 16],
            "config-2",
        )
        .unwrap();
        assert_eq!(part.number, 2);
        assert_eq!(part.last, sectors - 34);
        assert_eq!(part.first % 2048, 0);
        assert!((part.last + 1 - part.first) * 512 >= 3 << 20);
        apply(&mut disk, &writes);
        let primary = &disk[512..1024];
        let backup = &disk[((sectors - 1) * 512) as usize..(sectors * 512) as usize];
        for h in [primary, backup] {
            assert!(header_ok(h).is_some());
            assert_eq!(le64(h, LAST_USABLE), sectors - 34);
        }
        assert_eq!(le64(primary, ALTERNATE_LBA), sectors - 1);
        assert_eq!(le64(backup, MY_LBA), sectors - 1);
        let at = |lba: u64| &disk[(lba * 512) as usize..(lba * 512) as usize + 16384];
        assert_eq!(at(2), at(sectors - 33), "both entry arrays equal");
        assert_eq!(crc32fast::hash(at(2)), le32(primary, ENTRIES_CRC));
        let e = &at(2)[128..256];
        assert_eq!(&e[..16], &[0xCD; 16]);
        assert_eq!(le64(e, 32), part.first);
        assert_eq!(&e[56..58], &[b'c', 0]);
        assert!(
            disk[((16 * 2048 - 1) * 512) as usize..][..512]
                .iter()
                .all(|&b| b == 0),
            "stale backup zeroed"
        );
        assert_eq!(le32(&disk, PMBR_SIZE), (sectors - 1) as u32);
    }

    #[test]
    fn add_partition_refusals() {
        let sectors = 64 * 2048;
        let full = gpt_disk(sectors, sectors - 40, sectors - 1);
        let (lba0, lba1) = (full[..512].to_vec(), full[512..1024].to_vec());
        let entries = full[1024..1024 + 16384].to_vec();
        let add = |lba1: &[u8], entries: &[u8], want: u64| {
            add_partition_plan(
                &lba0, lba1, entries, sectors, 512, want, [1; 16], [2; 16], "x",
            )
        };
        assert!(
            matches!(add(&lba1, &entries, 1 << 20), Err(AddError::NoRoom(m)) if m.contains("no room"))
        );
        let roomy = gpt_disk(sectors, 4096, sectors - 1);
        let (r1, re) = (
            roomy[512..1024].to_vec(),
            roomy[1024..1024 + 16384].to_vec(),
        );
        assert!(add(&r1, &re, 1 << 20).is_ok());
        assert!(matches!(add(&r1, &re, 63 << 20), Err(AddError::NoRoom(_))));
        let mut bad = re.clone();
        bad[0] ^= 1;
        assert!(matches!(add(&r1, &bad, 1 << 20), Err(AddError::NoTable(_))));
        assert!(matches!(
            add(&[0u8; 512], &re, 1 << 20),
            Err(AddError::NoTable(_))
        ));
        let mut used = re.clone();
        for e in used.chunks_exact_mut(128) {
            e[0] = 1;
        }
        let mut h = r1.clone();
        h[ENTRIES_CRC..ENTRIES_CRC + 4].copy_from_slice(&crc32fast::hash(&used).to_le_bytes());
        seal(&mut h, 92);
        assert!(
            matches!(add(&h, &used, 1 << 20), Err(AddError::NoRoom(m)) if m.contains("in use"))
        );
    }

    /// CRC-valid headers whose fields overflow any arithmetic: refused, never a panic.
    #[test]
    fn hostile_fields_are_refused_not_wrapped() {
        let sectors = 64 * 2048;
        let disk = gpt_disk(sectors, 4096, sectors - 1);
        let (lba0, lba1) = (disk[..512].to_vec(), disk[512..1024].to_vec());
        let entries = disk[1024..1024 + 16384].to_vec();
        // (field, value, what add_partition_plan must say)
        let table: &[(usize, u64, &str)] = &[
            (ENTRY_LBA, u64::MAX / 2, "beyond any disk"),
            (ENTRY_LBA, u64::MAX, "beyond any disk"),
        ];
        for &(field, value, want) in table {
            let mut h = lba1.clone();
            put64(&mut h, field, value);
            seal(&mut h, 92);
            assert_eq!(entries_location(&h, 512), None, "field {field} = {value}");
            let err = add_partition_plan(
                &lba0,
                &h,
                &entries,
                sectors,
                512,
                1 << 20,
                [1; 16],
                [2; 16],
                "x",
            )
            .unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        // Entries placed at the disk's end or inside the new partition's space.
        for at in [sectors, sectors - 40] {
            let mut h = lba1.clone();
            put64(&mut h, ENTRY_LBA, at);
            seal(&mut h, 92);
            let err = add_partition_plan(
                &lba0,
                &h,
                &entries,
                sectors,
                512,
                1 << 20,
                [1; 16],
                [2; 16],
                "x",
            )
            .unwrap_err();
            assert!(
                err.to_string()
                    .contains("past the start of the new partition"),
                "{err}"
            );
        }
        // A partition whose last LBA is u64::MAX: no room, said in numbers that did not wrap.
        let mut e = entries.clone();
        put64(&mut e, 40, u64::MAX);
        let mut h = lba1.clone();
        h[ENTRIES_CRC..ENTRIES_CRC + 4].copy_from_slice(&crc32fast::hash(&e).to_le_bytes());
        seal(&mut h, 92);
        let err = add_partition_plan(&lba0, &h, &e, sectors, 512, 1 << 20, [1; 16], [2; 16], "x")
            .unwrap_err();
        assert!(matches!(err, AddError::NoRoom(_)), "{err}");
        // An empty disk and an image of no sectors.
        assert!(
            add_partition_plan(&lba0, &lba1, &entries, 0, 512, 1, [1; 16], [2; 16], "x").is_err()
        );
        assert!(relocate_plan(&lba0, &lba1, &entries, 0, sectors, 512).is_none());
        assert!(relocate_plan(&lba0, &lba1, &entries, 1000, u64::MAX, 512).is_none());
    }
}
