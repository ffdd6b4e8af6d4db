//! Directory hierarchies (ECMA-119 §6.8, §9.1): the ISO 9660 tree with Rock Ridge names and
//! the Joliet tree. Each file is listed with every directory record that points at it, so a
//! moved file can have all of them rewritten.

use std::collections::HashSet;

use super::budget::Budget;
use super::rockridge;
use super::source::{le32, read, Source};
use super::volume::VolumeDescriptor;
use super::{IsoError, SECTOR};

/// Deeper trees are refused (ECMA-119 allows 8 levels; Rock Ridge relocation goes further).
const MAX_DEPTH: usize = 64;
/// Offset of the both-endian extent LBA in a directory record (ECMA-119 §9.1.3).
pub const RECORD_EXTENT_OFFSET: u64 = 2;
/// Offset of the both-endian data length in a directory record (ECMA-119 §9.1.4).
pub const RECORD_SIZE_OFFSET: u64 = 10;

/// Which tree a walk reads, which decides how names are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    Iso9660,
    Joliet,
}

/// One file or directory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Absolute path, "/" separated, Rock Ridge or Joliet name where present.
    pub path: String,
    pub is_dir: bool,
    pub extent: u32,
    pub size: u32,
    /// Byte offset in the image of the directory record describing this entry.
    pub record: u64,
    /// Part of a multi-extent file (flag bit 7): never moved or edited.
    pub multi_extent: bool,
}

/// A walked tree.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub entries: Vec<Entry>,
    pub rock_ridge: bool,
}

impl Tree {
    /// Finds a file by path: exact match first, else ASCII case-insensitive (plain ISO 9660
    /// names are upper case while configs name them in lower case).
    pub fn find(&self, path: &str) -> Option<&Entry> {
        let want = normalize(path);
        self.entries.iter().find(|e| e.path == want).or_else(|| {
            self.entries
                .iter()
                .find(|e| e.path.eq_ignore_ascii_case(&want))
        })
    }
}

/// Collapses `//`, `.` and `..` in an absolute path.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn iso_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s.split(';').next().unwrap_or("");
    s.strip_suffix('.').unwrap_or(s).to_string()
}

fn joliet_name(raw: &[u8]) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let s = String::from_utf16_lossy(&units);
    s.split(';').next().unwrap_or("").to_string()
}

/// Walks the tree rooted at `vd`'s root record, spending from `budget` (shared by every walk
/// of one image).
pub fn walk(
    src: &dyn Source,
    vd: &VolumeDescriptor,
    kind: TreeKind,
    budget: &mut Budget,
) -> Result<Tree, IsoError> {
    let root = &vd.root_record;
    let root_extent = le32(root, 2);
    let root_size = le32(root, 10);
    let mut tree = Tree::default();
    let mut visited: HashSet<u32> = HashSet::new();
    // Rock Ridge: SP in the root's "." record announces SUSP and its skip length.
    let mut susp_skip: Option<usize> = None;
    if kind == TreeKind::Iso9660 {
        let first = read(
            src,
            root_extent as u64 * SECTOR,
            SECTOR.min(root_size.max(34) as u64),
            "root directory",
        )?;
        let len = first[0] as usize;
        if len >= 34 && len <= first.len() {
            let nl = first[32] as usize;
            let su_start = 33 + nl + (1 - nl % 2);
            if su_start <= len {
                let info = rockridge::parse(src, &first[su_start..len], 0, budget)?;
                if let Some(skip) = info.sp_skip {
                    susp_skip = Some(skip as usize);
                }
            }
        }
    }
    let mut stack: Vec<(String, u32, u32, usize)> =
        vec![(String::new(), root_extent, root_size, 0)];
    visited.insert(root_extent);
    while let Some((dir_path, extent, size, depth)) = stack.pop() {
        budget.take_directory(size as u64)?;
        if depth > MAX_DEPTH {
            return Err(IsoError::malformed(format!(
                "directory {dir_path}/ is nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let data = read(src, extent as u64 * SECTOR, size as u64, "directory")?;
        let mut pos = 0usize;
        while pos < data.len() {
            let len = data[pos] as usize;
            if len == 0 {
                // Records never cross sectors: the rest of this sector is padding.
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            if len < 34 || pos + len > data.len() {
                return Err(IsoError::malformed(format!(
                    "directory record at byte {} has length {len}",
                    extent as u64 * SECTOR + pos as u64
                )));
            }
            let rec = &data[pos..pos + len];
            let record_offset = extent as u64 * SECTOR + pos as u64;
            pos += len;
            let nl = rec[32] as usize;
            if 33 + nl > len {
                return Err(IsoError::malformed(format!(
                    "directory record at byte {record_offset} has a name longer than itself"
                )));
            }
            let raw = &rec[33..33 + nl];
            if nl == 1 && (raw[0] == 0 || raw[0] == 1) {
                continue; // "." and ".."
            }
            let flags = rec[25];
            let mut is_dir = flags & 0x02 != 0;
            let mut child_extent = le32(rec, 2);
            let mut child_size = le32(rec, 10);
            let mut name = match kind {
                TreeKind::Iso9660 => iso_name(raw),
                TreeKind::Joliet => joliet_name(raw),
            };
            if let Some(skip) = susp_skip {
                let su_start = 33 + nl + (1 - nl % 2);
                if su_start < len {
                    let info = rockridge::parse(src, &rec[su_start..], skip, budget)?;
                    tree.rock_ridge |= info.rock_ridge;
                    if info.relocated {
                        continue;
                    }
                    if let Some(cl) = info.child_link {
                        // The real directory lives at the CL extent; its size is in its "." record.
                        let dot = read(src, cl as u64 * SECTOR, 34, "relocated directory")?;
                        is_dir = true;
                        child_extent = cl;
                        child_size = le32(&dot, 10);
                    }
                    if let Some(n) = info.name {
                        name = n;
                    }
                }
            }
            let path = format!("{dir_path}/{name}");
            budget.take_entry(&path)?;
            tree.entries.push(Entry {
                path: path.clone(),
                is_dir,
                extent: child_extent,
                size: child_size,
                record: record_offset,
                multi_extent: flags & 0x80 != 0,
            });
            if is_dir {
                if !visited.insert(child_extent) {
                    return Err(IsoError::malformed(format!(
                        "directory {path} points back at an already visited directory (a loop)"
                    )));
                }
                stack.push((path, child_extent, child_size, depth + 1));
            }
        }
    }
    Ok(tree)
}
