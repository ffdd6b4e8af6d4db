//! Hybrid partition tables: the MBR in sector 0 and a GPT at LBA 1 (UEFI 2.x §5.2–5.3), read and,
//! when a remaster grows the image, rewritten (primary and backup headers, CRCs).

use serde::Serialize;

use super::source::{le32, le64, read, Source};
use super::IsoError;

const MBR_SIGNATURE_OFFSET: usize = 510;
const MBR_TABLE_OFFSET: u64 = 446;
const GPT_HEADER_OFFSET: u64 = 512;
/// At most this many GPT entries are read (the usual is 128; hostile headers claim more).
const MAX_GPT_ENTRIES: u32 = 1024;
/// EFI System Partition type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B, as stored (mixed endian).
pub const ESP_GUID: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];

/// One partition, in 512-byte sectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// "mbr" or "gpt".
    pub table: String,
    pub index: usize,
    /// MBR type byte in hex, or the GPT type GUID.
    pub kind: String,
    pub esp: bool,
    pub start: u64,
    pub sectors: u64,
    pub name: String,
}

/// The GPT header fields a grow needs.
#[derive(Debug, Clone)]
pub struct Gpt {
    pub header: Vec<u8>,
    pub entries: Vec<u8>,
    pub entry_size: u32,
    pub backup_lba: u64,
}

impl Partition {
    /// Byte offset of the first sector ([`read_tables`] refuses partitions whose bytes do not
    /// fit a u64; saturating keeps hand-made values from wrapping).
    pub fn offset(&self) -> u64 {
        self.start.saturating_mul(512)
    }
    /// Length in bytes.
    pub fn byte_len(&self) -> u64 {
        self.sectors.saturating_mul(512)
    }
}

/// Checks that a partition's byte range fits a u64: fields from an image are never trusted to.
fn checked_partition(p: Partition) -> Result<Partition, IsoError> {
    p.start
        .checked_add(p.sectors)
        .and_then(|end| end.checked_mul(512))
        .map(|_| p.clone())
        .ok_or_else(|| {
            IsoError::malformed(format!(
                "{} partition {} claims sectors {}..+{}, beyond any disk",
                p.table.to_uppercase(),
                p.index,
                p.start,
                p.sectors
            ))
        })
}

#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub mbr: Option<Vec<u8>>,
    pub gpt: Option<Gpt>,
    pub partitions: Vec<Partition>,
}

fn guid_text(g: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{}-{}",
        le32(g, 0),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        hex::encode_upper(&g[8..10]),
        hex::encode_upper(&g[10..16])
    )
}

/// Reads the MBR and GPT, if any. A broken GPT is ignored (reported as absent), not fatal.
pub fn read_tables(src: &dyn Source) -> Result<Tables, IsoError> {
    let mut t = Tables::default();
    let mbr = read(src, 0, 512, "MBR")?;
    if mbr[MBR_SIGNATURE_OFFSET] == 0x55 && mbr[MBR_SIGNATURE_OFFSET + 1] == 0xAA {
        for i in 0..4 {
            let e = &mbr[MBR_TABLE_OFFSET as usize + i * 16..][..16];
            let kind = e[4];
            let sectors = le32(e, 12) as u64;
            if kind == 0 || sectors == 0 {
                continue;
            }
            // u32 fields: their bytes always fit a u64.
            t.partitions.push(Partition {
                table: "mbr".into(),
                index: i + 1,
                kind: format!("0x{kind:02x}"),
                esp: kind == 0xEF,
                start: le32(e, 8) as u64,
                sectors,
                name: String::new(),
            });
        }
        t.mbr = Some(mbr);
    }
    let hdr = read(src, GPT_HEADER_OFFSET, 512, "GPT header")?;
    if &hdr[..8] == b"EFI PART" {
        let hsize = (le32(&hdr, 12) as usize).clamp(92, 512);
        let mut h = hdr[..hsize].to_vec();
        let crc = le32(&h, 16);
        h[16..20].fill(0);
        let entries_lba = le64(&hdr, 72);
        let n = le32(&hdr, 80);
        let esz = le32(&hdr, 84);
        if crc32fast::hash(&h) == crc && n <= MAX_GPT_ENTRIES && (128..=4096).contains(&esz) {
            let at = entries_lba.checked_mul(512).ok_or_else(|| {
                IsoError::malformed(format!(
                    "GPT header puts its entries at LBA {entries_lba}, beyond any disk"
                ))
            })?;
            let entries = read(src, at, n as u64 * esz as u64, "GPT entries")?;
            if crc32fast::hash(&entries) == le32(&hdr, 88) {
                for (i, e) in entries.chunks_exact(esz as usize).enumerate() {
                    if e[..16].iter().all(|&b| b == 0) {
                        continue;
                    }
                    let first = le64(e, 32);
                    let last = le64(e, 40);
                    let sectors = last
                        .checked_sub(first)
                        .ok_or_else(|| {
                            IsoError::malformed(format!(
                                "GPT partition {} ends (LBA {last}) before it starts (LBA {first})",
                                i + 1
                            ))
                        })?
                        .checked_add(1)
                        .ok_or_else(|| {
                            IsoError::malformed(format!(
                                "GPT partition {} spans 2^64 sectors, beyond any disk",
                                i + 1
                            ))
                        })?;
                    let name: Vec<u16> = e[56..128.min(e.len())]
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .take_while(|&c| c != 0)
                        .collect();
                    t.partitions.push(checked_partition(Partition {
                        table: "gpt".into(),
                        index: i + 1,
                        kind: guid_text(&e[..16]),
                        esp: e[..16] == ESP_GUID,
                        start: first,
                        sectors,
                        name: String::from_utf16_lossy(&name),
                    })?);
                }
                t.gpt = Some(Gpt {
                    header: hdr.to_vec(),
                    entries,
                    entry_size: esz,
                    backup_lba: le64(&hdr, 32),
                });
            }
        }
    }
    Ok(t)
}

fn set_header_crc(h: &mut [u8]) {
    let hsize = (le32(h, 12) as usize).clamp(92, 512);
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h[..hsize]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// `a * b`, `a + b`, `a - b` on values taken from an image, as a clear error on overflow.
fn ck(v: Option<u64>, what: &str) -> Result<u64, IsoError> {
    v.ok_or_else(|| {
        IsoError::malformed(format!(
            "the partition tables' {what} do not fit the image's arithmetic (a field is out of range)"
        ))
    })
}

/// Byte patches that resize the partition tables for an image growing from `old_end` to
/// `new_len` bytes (both multiples of 512): partitions ending at `old_end` are stretched to
/// the new data end, the protective/hybrid MBR entries likewise, and the GPT backup moves to
/// the new last LBA. `data_end` is where the backup GPT entries may start. Every sum and
/// product of a field from the image is checked: an out-of-range one is an error.
pub fn grow_patches(
    t: &Tables,
    old_ends: &[u64],
    data_end: u64,
    new_len: u64,
) -> Result<Vec<(u64, Vec<u8>)>, IsoError> {
    let mut out = Vec::new();
    let total_lba = new_len / 512;
    let last_lba = ck(total_lba.checked_sub(1), "new last sector")?;
    let data_end_lba = data_end / 512;
    // A partition is stretched over the new data only when no other partition lies in between
    // (an appended ESP after the ISO must not end up inside the ISO partition).
    let stretch = |start: u64, end_bytes: u64| {
        old_ends.contains(&end_bytes)
            && !t
                .partitions
                .iter()
                .any(|q| q.start != start && q.offset() >= end_bytes && q.offset() < data_end)
    };
    if let Some(mbr) = &t.mbr {
        let mut m = mbr.clone();
        for i in 0..4 {
            let at = MBR_TABLE_OFFSET as usize + i * 16;
            let kind = m[at + 4];
            // u32 fields: their sum and bytes fit a u64.
            let start = le32(&m, at + 8) as u64;
            let count = le32(&m, at + 12) as u64;
            if kind == 0 || count == 0 {
                continue;
            }
            let new_count = if kind == 0xEE {
                Some(last_lba.min(u32::MAX as u64))
            } else if stretch(start, (start + count) * 512) {
                Some(
                    ck(data_end_lba.checked_sub(start), "MBR partition start")?
                        .min(u32::MAX as u64),
                )
            } else {
                None
            };
            if let Some(c) = new_count {
                m[at + 12..at + 16].copy_from_slice(&(c as u32).to_le_bytes());
            }
        }
        if m != *mbr {
            out.push((MBR_TABLE_OFFSET, m[MBR_TABLE_OFFSET as usize..512].to_vec()));
        }
    }
    if let Some(g) = &t.gpt {
        let esz = g.entry_size as usize;
        let mut entries = g.entries.clone();
        let new_last = ck(data_end_lba.checked_sub(1), "data end")?;
        for e in entries.chunks_exact_mut(esz) {
            if e[..16].iter().all(|&b| b == 0) {
                continue;
            }
            let end = ck(
                le64(e, 40).checked_add(1).and_then(|l| l.checked_mul(512)),
                "GPT partition end",
            )?;
            if stretch(le64(e, 32), end) {
                e[40..48].copy_from_slice(&new_last.to_le_bytes());
            }
        }
        let entries_sectors = (entries.len() as u64).div_ceil(512);
        let backup_lba = last_lba;
        let backup_entries_lba = ck(backup_lba.checked_sub(entries_sectors), "backup entries")?;
        let last_usable = ck(backup_entries_lba.checked_sub(1), "last usable sector")?;
        let entries_crc = crc32fast::hash(&entries);
        let mut primary = g.header.clone();
        primary[32..40].copy_from_slice(&backup_lba.to_le_bytes());
        primary[48..56].copy_from_slice(&last_usable.to_le_bytes());
        primary[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        set_header_crc(&mut primary);
        let mut backup = primary.clone();
        backup[24..32].copy_from_slice(&backup_lba.to_le_bytes());
        backup[32..40].copy_from_slice(&1u64.to_le_bytes());
        backup[72..80].copy_from_slice(&backup_entries_lba.to_le_bytes());
        set_header_crc(&mut backup);
        let primary_entries = ck(le64(&g.header, 72).checked_mul(512), "GPT entries LBA")?;
        out.push((GPT_HEADER_OFFSET, primary));
        if entries != g.entries {
            out.push((primary_entries, entries.clone()));
        }
        out.push((backup_entries_lba * 512, entries));
        out.push((backup_lba * 512, backup));
        // The old backup header, now in the middle of the image, is wiped.
        if let Some(old) = g.backup_lba.checked_mul(512) {
            if g.backup_lba != backup_lba && old < data_end.min(new_len) {
                out.push((old, vec![0u8; 512]));
            }
        }
    }
    Ok(out)
}
