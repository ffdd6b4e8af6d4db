//! Volume descriptors (ECMA-119 §8): primary, supplementary (Joliet), boot record, terminator;
//! plus detection of a UDF volume recognition sequence (ECMA-167 §2/9.1).

use super::source::{le32, read, Source};
use super::{IsoError, SECTOR};

/// First volume descriptor sector (ECMA-119 §6.2.1: sectors 0–15 are the system area).
pub const FIRST_VD_SECTOR: u64 = 16;
/// We stop looking after this many descriptors (hostile images never terminate the set).
const MAX_DESCRIPTORS: u64 = 64;
/// Offset of the 8-byte both-endian volume space size in a PVD/SVD (ECMA-119 §8.4.8).
pub const VOLUME_SPACE_SIZE_OFFSET: u64 = 80;
/// Offset of the root directory record in a PVD/SVD (ECMA-119 §8.4.18).
const ROOT_RECORD_OFFSET: usize = 156;

/// A primary or supplementary volume descriptor, with where it sits in the image.
#[derive(Debug, Clone)]
pub struct VolumeDescriptor {
    /// Byte offset of the descriptor in the image.
    pub offset: u64,
    pub joliet: bool,
    pub system_id: String,
    pub volume_id: String,
    pub publisher_id: String,
    pub preparer_id: String,
    pub application_id: String,
    pub volume_space_size: u32,
    pub logical_block_size: u16,
    pub path_table_size: u32,
    pub path_table_lba: u32,
    /// The 34-byte root directory record.
    pub root_record: Vec<u8>,
}

/// Every descriptor we understood.
#[derive(Debug, Clone, Default)]
pub struct Volumes {
    pub primary: Option<VolumeDescriptor>,
    pub joliet: Vec<VolumeDescriptor>,
    /// LBA of the El Torito boot catalog, from the boot record.
    pub boot_catalog: Option<u32>,
    pub udf: bool,
}

fn text(b: &[u8], joliet: bool) -> String {
    if joliet {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units).trim_end().to_string()
    } else {
        String::from_utf8_lossy(b).trim_end().to_string()
    }
}

/// Joliet escape sequences %/@, %/C, %/E (UCS-2 levels 1–3) at offset 88.
fn is_joliet(d: &[u8]) -> bool {
    let esc = &d[88..91];
    esc[0] == 0x25 && esc[1] == 0x2F && matches!(esc[2], 0x40 | 0x43 | 0x45)
}

fn parse_pvd(d: &[u8], offset: u64, joliet: bool) -> VolumeDescriptor {
    VolumeDescriptor {
        offset,
        joliet,
        system_id: text(&d[8..40], joliet),
        volume_id: text(&d[40..72], joliet),
        publisher_id: text(&d[318..446], joliet),
        preparer_id: text(&d[446..574], joliet),
        application_id: text(&d[574..702], joliet),
        volume_space_size: le32(d, 80),
        logical_block_size: u16::from_le_bytes([d[128], d[129]]),
        path_table_size: le32(d, 132),
        path_table_lba: le32(d, 140),
        root_record: d[ROOT_RECORD_OFFSET..ROOT_RECORD_OFFSET + 34].to_vec(),
    }
}

/// Reads the volume descriptor set.
pub fn read_volumes(src: &dyn Source) -> Result<Volumes, IsoError> {
    let mut vols = Volumes::default();
    if src.len() < (FIRST_VD_SECTOR + 1) * SECTOR {
        return Err(IsoError::NotIso(format!(
            "only {} bytes, too short to hold a volume descriptor",
            src.len()
        )));
    }
    for i in 0..MAX_DESCRIPTORS {
        let offset = (FIRST_VD_SECTOR + i) * SECTOR;
        if offset + SECTOR > src.len() {
            break;
        }
        let d = read(src, offset, SECTOR, "volume descriptor")?;
        let id = &d[1..6];
        if id == b"BEA01" || id == b"NSR02" || id == b"NSR03" || id == b"TEA01" {
            vols.udf |= id != b"BEA01" && id != b"TEA01";
            continue;
        }
        if id != b"CD001" {
            break;
        }
        match d[0] {
            0 if d[7..30].starts_with(b"EL TORITO SPECIFICATION") => {
                vols.boot_catalog = Some(le32(&d, 0x47));
            }
            1 if vols.primary.is_none() => vols.primary = Some(parse_pvd(&d, offset, false)),
            2 if is_joliet(&d) => vols.joliet.push(parse_pvd(&d, offset, true)),
            255 => break,
            _ => {}
        }
    }
    // A UDF volume recognition sequence sits after the ISO terminator: look a few sectors on.
    if !vols.udf {
        for s in 17..40u64 {
            let off = s * SECTOR;
            if off + SECTOR > src.len() {
                break;
            }
            let d = read(src, off, 8, "volume recognition sequence")?;
            if &d[1..6] == b"NSR02" || &d[1..6] == b"NSR03" {
                vols.udf = true;
                break;
            }
        }
    }
    match &vols.primary {
        None if vols.udf => Err(IsoError::Unsupported(
            "this is a UDF-only image (Windows installation media?): only ISO 9660 boot images can be remastered".into(),
        )),
        None => Err(IsoError::NotIso(
            "no primary volume descriptor (CD001) at sector 16".into(),
        )),
        Some(p) if p.logical_block_size as u64 != SECTOR => Err(IsoError::Unsupported(format!(
            "logical block size {} (only 2048 is supported)",
            p.logical_block_size
        ))),
        Some(_) => Ok(vols),
    }
}
