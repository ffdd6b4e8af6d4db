//! Partition tables: a disk image with a protective or hybrid MBR and a GPT whose header and
//! entry CRCs are right (unless asked otherwise), with fields that may be sane or hostile. It
//! is read by the ISO engine (`iso::partition`) and planned on by the writer's GPT and MBR
//! editors (`writer::gpt`, `writer::mbr`).

use arbitrary::Arbitrary;

/// A value that is usually sensible and sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Field {
    Sane,
    Raw(u64),
    Near(i16),
}

impl Field {
    pub fn or(self, sane: u64) -> u64 {
        match self {
            Field::Sane => sane,
            Field::Raw(v) => v,
            Field::Near(d) => sane.wrapping_add(d as i64 as u64),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct PartSpec {
    pub esp: bool,
    pub first: Field,
    pub last: Field,
    pub name: String,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct MbrSpec {
    pub kind: u8,
    pub start: u32,
    pub sectors: u32,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct GptSpec {
    /// Disk size in 512-byte sectors above the minimum of 64.
    pub extra_sectors: u16,
    pub parts: Vec<PartSpec>,
    pub mbr: Vec<MbrSpec>,
    pub protective: bool,
    pub num_entries: Field,
    pub entry_size: Field,
    pub entries_lba: Field,
    pub backup_lba: Field,
    pub last_usable: Field,
    pub header_size: Field,
    pub bad_header_crc: bool,
    pub bad_entries_crc: bool,
}

/// Writes the tables of `spec` into `disk` (at least 64 sectors), CRCs computed; the entry
/// array at its sane place takes at most `max_entries` bytes.
pub fn write_tables(spec: &GptSpec, disk: &mut [u8], max_entries: usize) {
    let sectors = (disk.len() / 512) as u64;
    disk[510] = 0x55;
    disk[511] = 0xAA;
    let mut mbr: Vec<MbrSpec> = spec.mbr.iter().take(4).cloned().collect();
    if spec.protective {
        mbr.insert(
            0,
            MbrSpec {
                kind: 0xEE,
                start: 1,
                sectors: (sectors - 1).min(u32::MAX as u64) as u32,
            },
        );
    }
    for (i, m) in mbr.iter().take(4).enumerate() {
        let at = 446 + i * 16;
        disk[at + 4] = m.kind;
        disk[at + 8..at + 12].copy_from_slice(&m.start.to_le_bytes());
        disk[at + 12..at + 16].copy_from_slice(&m.sectors.to_le_bytes());
    }
    let esz = spec.entry_size.or(128) as u32;
    let n = spec.num_entries.or(32) as u32;
    // Entries are built only for the room the disk has; a hostile count still goes in the header.
    let room = disk.len().saturating_sub(1024 + 512);
    let bytes = (n as usize)
        .saturating_mul(esz as usize)
        .min(room)
        .min(max_entries);
    let mut entries = vec![0u8; bytes];
    if esz >= 128 {
        for (e, p) in entries.chunks_exact_mut(esz as usize).zip(&spec.parts) {
            let ty: [u8; 16] = if p.esp {
                ironcast::iso::partition::ESP_GUID
            } else {
                [0xAF; 16]
            };
            e[..16].copy_from_slice(&ty);
            e[16..32].copy_from_slice(&[7; 16]);
            let first = p.first.or(34);
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&p.last.or(first.saturating_add(7)).to_le_bytes());
            for (i, unit) in p.name.encode_utf16().take(36).enumerate() {
                e[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
            }
        }
    }
    let mut entries_crc = crc32fast::hash(&entries);
    if spec.bad_entries_crc {
        entries_crc ^= 1;
    }
    let entries_lba = spec.entries_lba.or(2);
    let backup = spec.backup_lba.or(sectors - 1);
    let hsize = spec.header_size.or(92) as u32;
    let mut h = vec![0u8; 512];
    h[..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&hsize.to_le_bytes());
    h[24..32].copy_from_slice(&1u64.to_le_bytes());
    h[32..40].copy_from_slice(&backup.to_le_bytes());
    h[40..48].copy_from_slice(&34u64.to_le_bytes());
    h[48..56].copy_from_slice(&spec.last_usable.or(sectors - 34).to_le_bytes());
    h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    h[80..84].copy_from_slice(&n.to_le_bytes());
    h[84..88].copy_from_slice(&esz.to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let covered = (hsize as usize).clamp(92, 512);
    let mut crc = crc32fast::hash(&h[..covered]);
    if spec.bad_header_crc {
        crc ^= 1;
    }
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    disk[512..1024].copy_from_slice(&h);
    if let Some(at) = entries_lba.checked_mul(512).map(|a| a as usize) {
        if at >= 1024 && at.saturating_add(entries.len()) <= disk.len() {
            disk[at..at + entries.len()].copy_from_slice(&entries);
        }
    }
}

/// The disk image of `spec`.
pub fn build(spec: &GptSpec) -> Vec<u8> {
    let sectors = 64 + (spec.extra_sectors % 4096) as usize;
    let mut disk = vec![0u8; sectors * 512];
    write_tables(spec, &mut disk, 64 << 10);
    disk
}

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub spec: GptSpec,
    /// The disk the writer would put the image on, in sectors (hostile sizes included).
    pub disk_sectors: Field,
    pub want_bytes: u64,
    pub grow_to: u32,
    pub sector_4k: bool,
}

pub fn run(data: &[u8]) {
    let Some(input) = super::structured::<Input>(data) else {
        return;
    };
    check(&input);
}

/// Reads and plans on the tables of `input`: errors are fine, panics are not.
pub fn check(input: &Input) {
    use ironcast::iso::partition;
    use ironcast::writer::{gpt, mbr};
    let disk = build(&input.spec);
    let src: &[u8] = &disk;
    if let Ok(t) = partition::read_tables(&src) {
        for p in &t.partitions {
            let _ = (p.offset(), p.byte_len());
        }
        let len = disk.len() as u64;
        let new_len = (len + input.grow_to as u64 * 512).max(len);
        let _ = partition::grow_patches(&t, &[len, new_len / 2], len, new_len);
    }
    let ss = if input.sector_4k { 4096 } else { 512 };
    let image_sectors = disk.len() as u64 / ss;
    let disk_sectors = input.disk_sectors.or(image_sectors * 4);
    let (lba0, lba1) = (&disk[..512], &disk[512..1024]);
    if let Some((at, len)) = gpt::entries_location(lba1, 512) {
        let entries = usize::try_from(at)
            .ok()
            .and_then(|at| disk.get(at..at.checked_add(len as usize)?));
        if let Some(entries) = entries {
            let _ = gpt::relocate_plan(lba0, lba1, entries, image_sectors, disk_sectors, ss);
            if let Ok((p, writes)) = gpt::add_partition_plan(
                lba0,
                lba1,
                entries,
                disk_sectors,
                ss,
                input.want_bytes,
                [1; 16],
                [2; 16],
                "config-2",
            ) {
                assert!(p.first <= p.last && p.last < disk_sectors, "{p:?}");
                for (offset, bytes) in writes {
                    assert!(
                        offset.saturating_add(bytes.len() as u64)
                            <= disk_sectors.saturating_mul(ss),
                        "write past the disk at {offset}"
                    );
                }
            }
        }
    }
    if let Ok((p, _)) = mbr::add_partition_plan(lba0, disk_sectors, ss, input.want_bytes, 0x83) {
        assert!(p.first <= p.last && p.last < disk_sectors, "{p:?}");
    }
}
