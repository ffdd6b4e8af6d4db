//! Path tables (ECMA-119 §9.4): the type L (little-endian) table of directories. Remastering
//! never moves a directory, so the tables are only read (for `inspect` and a consistency check);
//! they hold no file extents.

use super::source::{le16, le32, read, Source};
use super::volume::VolumeDescriptor;
use super::{IsoError, SECTOR};

/// Records read at most: a record's parent is a 16-bit index, so a valid table has no more.
pub const MAX_RECORDS: usize = 65_535;

/// One directory of the path table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRecord {
    pub name: String,
    pub extent: u32,
    /// 1-based index of the parent record.
    pub parent: u16,
}

/// Reads the type L path table of `vd`.
pub fn read_l(src: &dyn Source, vd: &VolumeDescriptor) -> Result<Vec<PathRecord>, IsoError> {
    let data = read(
        src,
        vd.path_table_lba as u64 * SECTOR,
        vd.path_table_size as u64,
        "path table",
    )?;
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + 8 <= data.len() {
        if out.len() >= MAX_RECORDS {
            return Err(IsoError::malformed(format!(
                "path table holds more than {MAX_RECORDS} records (parents are 16-bit indexes)"
            )));
        }
        let len = data[i] as usize;
        if len == 0 {
            return Err(IsoError::malformed(format!(
                "path table record {} has an empty name",
                out.len() + 1
            )));
        }
        let end = i + 8 + len;
        if end > data.len() {
            return Err(IsoError::malformed("path table record runs past the table"));
        }
        let raw = &data[i + 8..end];
        let name = if vd.joliet {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            String::from_utf8_lossy(raw).into_owned()
        };
        out.push(PathRecord {
            name,
            extent: le32(&data, i + 2),
            parent: le16(&data, i + 6),
        });
        i = end + len % 2;
    }
    Ok(out)
}
