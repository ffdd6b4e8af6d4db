//! System Use Sharing Protocol (IEEE P1281) and Rock Ridge (IEEE P1282) entries we need:
//! NM (alternate name), CE (continuation area), SP (skip bytes), RE/CL (relocated directories),
//! PX/RR (presence). Rock Ridge stores no extents of regular files, so a moved file needs no
//! edit here; CL carries a directory's extent and is followed when walking.

use super::budget::Budget;
use super::source::{le32, read, Source};
use super::{IsoError, SECTOR};

/// At most this many continuation areas per record (a CE chain can loop).
const MAX_CONTINUATIONS: usize = 16;

/// What the system use area of one directory record tells us.
#[derive(Debug, Default, Clone)]
pub struct SuInfo {
    pub name: Option<String>,
    /// Skip bytes announced by SP (only meaningful on the root's "." record).
    pub sp_skip: Option<u8>,
    /// RE: this directory was relocated; its real entry is a CL elsewhere.
    pub relocated: bool,
    /// CL: this file record stands for a directory at this LBA.
    pub child_link: Option<u32>,
    /// Any RRIP entry seen (PX, NM, RR, SL, TF …).
    pub rock_ridge: bool,
}

/// Parses a system use area, following CE continuation areas (counted against `budget`).
pub fn parse(
    src: &dyn Source,
    area: &[u8],
    skip: usize,
    budget: &mut Budget,
) -> Result<SuInfo, IsoError> {
    let mut info = SuInfo::default();
    let mut name = String::new();
    let mut name_done = false;
    let mut chunk: Vec<u8> = area.get(skip..).unwrap_or(&[]).to_vec();
    for _ in 0..=MAX_CONTINUATIONS {
        let mut next: Option<(u64, u64)> = None;
        let mut i = 0usize;
        while i + 4 <= chunk.len() {
            let sig = [chunk[i], chunk[i + 1]];
            let len = chunk[i + 2] as usize;
            if len < 4 || i + len > chunk.len() {
                break;
            }
            let e = &chunk[i..i + len];
            match &sig {
                b"SP" if len >= 7 => info.sp_skip = Some(e[6]),
                b"CE" if len >= 28 => {
                    // u32 fields: lba * 2048 + off always fits a u64.
                    let lba = le32(e, 4) as u64;
                    let off = le32(e, 12) as u64;
                    let l = le32(e, 20) as u64;
                    next = Some((lba * SECTOR + off, l.min(SECTOR * 4)));
                }
                b"NM" if len >= 5 => {
                    info.rock_ridge = true;
                    let flags = e[4];
                    if !name_done && flags & 0x06 == 0 {
                        name.push_str(&String::from_utf8_lossy(&e[5..]));
                        Budget::check_name(name.len())?;
                        if flags & 1 == 0 {
                            name_done = true;
                        }
                    }
                }
                b"RE" => info.relocated = true,
                b"CL" if len >= 12 => info.child_link = Some(le32(e, 4)),
                b"PX" | b"RR" | b"SL" | b"TF" | b"PN" => info.rock_ridge = true,
                b"ST" => break,
                _ => {}
            }
            i += len;
        }
        match next {
            Some((off, len)) if len > 0 => {
                budget.take_ce(len)?;
                chunk = read(src, off, len, "Rock Ridge continuation area")?
            }
            _ => break,
        }
    }
    if !name.is_empty() {
        info.name = Some(name);
    }
    Ok(info)
}
