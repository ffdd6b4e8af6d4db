//! Adding a primary partition to an MBR (DOS) partition table, pure: sector 0 in, the bytes
//! to write out. Partitions are addressed by LBA only (CHS fields hold the "beyond 8 GiB"
//! marker FE FF FF), so nothing past 2 TiB can be described.

use super::gpt::{AddError, NewPartition, Writes};

const TABLE: usize = 446;
const ENTRY: usize = 16;

fn le32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}

/// Plans a primary partition of type `kind` of at least `want_bytes` that ends at the end of
/// the disk (or at the last sector an MBR can address), starting on a 1 MiB boundary.
pub fn add_partition_plan(
    lba0: &[u8],
    disk_sectors: u64,
    ss: u64,
    want_bytes: u64,
    kind: u8,
) -> Result<(NewPartition, Writes), AddError> {
    if lba0.len() < 512 || lba0[510..512] != [0x55, 0xaa] {
        return Err(AddError::NoTable(
            "the disk has no partition table (no MBR signature, no GPT)".into(),
        ));
    }
    let entry = |i: usize| &lba0[TABLE + i * ENTRY..TABLE + (i + 1) * ENTRY];
    let used = |e: &[u8]| e[4] != 0 && le32(e, 12) != 0;
    if (0..4).any(|i| used(entry(i)) && entry(i)[4] == 0xee) {
        return Err(AddError::NoTable(
            "the MBR is a GPT's protective MBR but the GPT header is not valid".into(),
        ));
    }
    let used_end = (0..4)
        .map(entry)
        .filter(|e| used(e))
        .map(|e| le32(e, 8) + le32(e, 12))
        .max()
        .unwrap_or(1);
    let limit = disk_sectors.min(u32::MAX as u64);
    let align = ((1u64 << 20) / ss).max(1);
    // Asking for 0 bytes still gets one aligned unit: a partition is never empty.
    let want = want_bytes.max(1).div_ceil(ss).next_multiple_of(align);
    let first = limit
        .checked_sub(want)
        .map(|s| s / align * align)
        .filter(|&s| s >= used_end && s > 0)
        .ok_or_else(|| {
            AddError::NoRoom(format!(
                "no room for {want_bytes} bytes at the end of the disk: the last partition ends at byte {}, the addressable space at byte {}",
                used_end * ss,
                limit * ss
            ))
        })?;
    let slot = (0..4)
        .find(|&i| !used(entry(i)))
        .ok_or_else(|| AddError::NoRoom("all four MBR primary partitions are in use".into()))?;
    let mut e = [0u8; ENTRY];
    e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[4] = kind;
    e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[8..12].copy_from_slice(&(first as u32).to_le_bytes());
    e[12..16].copy_from_slice(&((limit - first) as u32).to_le_bytes());
    Ok((
        NewPartition {
            number: slot + 1,
            first,
            last: limit - 1,
        },
        vec![((TABLE + slot * ENTRY) as u64, e.to_vec())],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbr(parts: &[(u8, u32, u32)]) -> Vec<u8> {
        let mut m = vec![0u8; 512];
        m[510] = 0x55;
        m[511] = 0xaa;
        for (i, (kind, start, count)) in parts.iter().enumerate() {
            let at = TABLE + i * ENTRY;
            m[at + 4] = *kind;
            m[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
            m[at + 12..at + 16].copy_from_slice(&count.to_le_bytes());
        }
        m
    }

    #[test]
    fn add_table() {
        let disk = 64 * 2048;
        let (p, w) =
            add_partition_plan(&mbr(&[(0x83, 2048, 16 * 2048)]), disk, 512, 3 << 20, 0x83).unwrap();
        assert_eq!(
            p,
            NewPartition {
                number: 2,
                first: disk - 3 * 2048,
                last: disk - 1
            }
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, (TABLE + ENTRY) as u64);
        assert_eq!(w[0].1[4], 0x83);
        assert_eq!(le32(&w[0].1, 8), disk - 3 * 2048);
        assert_eq!(le32(&w[0].1, 12), 3 * 2048);
        // Found by the gpt fuzz target: 0 bytes asked made a partition ending before it began.
        let (p, _) =
            add_partition_plan(&mbr(&[(0x83, 2048, 16 * 2048)]), disk, 512, 0, 0x83).unwrap();
        assert!(p.first <= p.last && p.last < disk, "{p:?}");
        // Full tables, no room, no table, a protective MBR.
        let four = mbr(&[
            (0x83, 2048, 10),
            (0x83, 4096, 10),
            (0x83, 6144, 10),
            (0x83, 8192, 10),
        ]);
        assert!(
            matches!(add_partition_plan(&four, disk, 512, 1 << 20, 0x83), Err(AddError::NoRoom(m)) if m.contains("four"))
        );
        let big = mbr(&[(0x83, 2048, disk as u32 - 4096)]);
        assert!(matches!(
            add_partition_plan(&big, disk, 512, 4 << 20, 0x83),
            Err(AddError::NoRoom(_))
        ));
        assert!(matches!(
            add_partition_plan(&[0u8; 512], disk, 512, 1 << 20, 0x83),
            Err(AddError::NoTable(_))
        ));
        let pmbr = mbr(&[(0xee, 1, disk as u32 - 1)]);
        assert!(matches!(
            add_partition_plan(&pmbr, disk, 512, 1 << 20, 0x83),
            Err(AddError::NoTable(_))
        ));
        // An empty table: the partition goes to the end all the same.
        let (p, _) = add_partition_plan(&mbr(&[]), disk, 512, 1 << 20, 0x83).unwrap();
        assert_eq!(p.number, 1);
        assert_eq!(p.first, disk - 2048);
    }
}
