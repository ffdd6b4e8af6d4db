//! `erase_metadata` and `erase_disk`.
//!
//! Metadata: the partition tables at both ends of the disk (MBR, primary and backup GPT) and
//! the signatures at the start and end of each partition (filesystems, LVM, RAID superblocks
//! such as md 1.0 at the end). [`metadata_plan`] decides, in pure code, which byte ranges:
//! the first and last MiB of the disk and of every partition found in its tables (read before
//! anything is erased), merged. Then they are zeroed. Whole disk: every byte zeroed in 1 GiB
//! steps with progress, through the writer's zeroing (BLKZEROOUT, which the kernel guarantees
//! reads back zero, falling back to writing zeros; a punched hole in a file).
//!
//! Partition tables are read with 512-byte sectors (`iso::partition`); on a 4Kn disk the
//! per-partition ranges may be missed, the tables at both ends are not.

use std::path::Path;

use deploy_drivers::{AgentProgress, PortErrorKind};
use serde_json::{json, Value};

use super::commands::{write_error, CommandError, Limits};
use crate::writer::Disk;

/// How much is erased at each end of the disk and of each partition.
pub const EDGE: u64 = 1 << 20;

/// Bytes zeroed per step of a whole-disk erase (one progress report each).
const STEP: u64 = 1 << 30;

/// The byte ranges `(offset, len)` to zero on a disk of `disk_len` bytes whose partitions are
/// `partitions` (`(offset, len)` in bytes): sorted, merged, inside the disk (pure).
pub fn metadata_plan(disk_len: u64, partitions: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let mut edges = |start: u64, len: u64| {
        let end = start.saturating_add(len).min(disk_len);
        if start >= end {
            return;
        }
        ranges.push((start, (start + EDGE).min(end)));
        ranges.push((end.saturating_sub(EDGE).max(start), end));
    };
    edges(0, disk_len);
    for &(start, len) in partitions {
        edges(start, len);
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some((_, last_end)) if s <= *last_end => *last_end = (*last_end).max(e),
            _ => merged.push((s, e)),
        }
    }
    merged.into_iter().map(|(s, e)| (s, e - s)).collect()
}

/// Erases the metadata of one disk.
pub fn metadata(device: &Path, limits: &Limits) -> Result<Value, CommandError> {
    let ctx = format!("erasing metadata of {}", device.display());
    let io = |e| write_error(&e, &ctx);
    let mut disk = Disk::open(device, &limits.write_options()).map_err(io)?;
    let size = disk.size();
    let mut head = vec![0u8; size.min(EDGE) as usize];
    disk.read_at(&mut head, 0).map_err(io)?;
    let partitions: Vec<(u64, u64)> = crate::iso::partition::read_tables(&head)
        .map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.offset(), p.byte_len()))
                .collect()
        })
        .unwrap_or_default();
    let plan = metadata_plan(size, &partitions);
    for &(at, len) in &plan {
        disk.zero(at, len).map_err(io)?;
    }
    disk.finish().map_err(io)?;
    Ok(json!({
        "partitions": partitions.len(),
        "zeroed": plan,
    }))
}

/// Zeroes every byte of one disk.
pub fn whole_disk(
    device: &Path,
    limits: &Limits,
    progress: &(dyn Fn(AgentProgress) + Sync),
) -> Result<Value, CommandError> {
    let ctx = format!("erasing {}", device.display());
    let io = |e| write_error(&e, &ctx);
    let mut disk = Disk::open(device, &limits.write_options()).map_err(io)?;
    let size = disk.size();
    if size == 0 {
        return Err(CommandError::new(
            PortErrorKind::InvalidInput,
            format!("{} is empty: nothing to erase", device.display()),
        ));
    }
    let mut at = 0;
    while at < size {
        let len = STEP.min(size - at);
        disk.zero(at, len).map_err(io)?;
        at += len;
        progress(AgentProgress {
            done_bytes: at,
            total_bytes: Some(size),
        });
    }
    disk.finish().map_err(io)?;
    Ok(json!({ "zeroed_bytes": size }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn plan_table() {
        type Ranges = &'static [(u64, u64)];
        let cases: &[(u64, Ranges, Ranges)] = &[
            // Both ends of a disk.
            (100 * MIB, &[], &[(0, MIB), (99 * MIB, MIB)]),
            // A disk under 2 MiB is erased whole, once.
            (MIB + 512, &[], &[(0, MIB + 512)]),
            // Partitions: their first and last MiB, merged with the disk's first MiB.
            (
                100 * MIB,
                &[(MIB, 10 * MIB), (50 * MIB, MIB / 2)],
                &[
                    (0, 2 * MIB),
                    (10 * MIB, MIB),
                    (50 * MIB, MIB / 2),
                    (99 * MIB, MIB),
                ],
            ),
            // A partition that runs past the disk is clipped; one outside is ignored.
            (
                10 * MIB,
                &[(8 * MIB, 100 * MIB), (20 * MIB, MIB)],
                &[(0, MIB), (8 * MIB, 2 * MIB)],
            ),
            (0, &[(0, MIB)], &[]),
        ];
        for (disk, parts, want) in cases {
            assert_eq!(metadata_plan(*disk, parts), *want, "{disk} {parts:?}");
        }
    }
}
