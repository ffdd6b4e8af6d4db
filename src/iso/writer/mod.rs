//! The ISO engine's writer: masters a new ISO 9660 image from files held in memory.
//!
//! Job: lay out an ISO 9660 volume (ECMA-119) whose primary tree carries Rock Ridge names
//! (IEEE P1282 RRIP 1.10: NM and PX, declared by SP/ER), so lower-case and long names survive
//! in every reader; optionally an El Torito catalog with a BIOS entry (an isolinux-style
//! no-emulation image, 4 sectors loaded, boot-info table patched in) and an EFI entry (a FAT
//! image, see [`efi_image`]). The volume id is the caller's, verbatim (`config-2`).
//! Output is deterministic: the same inputs give the same bytes (fixed dates, sorted names).
//! Used for the agent ramdisk ISO, config drives, and the demo's boot ISO.
//!
//! Non-goals: Joliet, UDF, hybrid MBR/GPT (booting the image as a disk), multi-extent files
//! (each file is below 4 GiB), deep trees (ECMA-119's 8 levels are the limit), streaming.
//!
//! Layout, in sectors: system area (0–15), primary volume descriptor (16), El Torito boot
//! record, terminator, L and M path tables, the Rock Ridge ER continuation sector, directories
//! breadth-first, then file data in path order.

pub mod boot;
mod fat;
mod names;
pub mod records;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use fat::efi_image;

use super::IsoError;
use records::{FLAG_DIRECTORY, MODE_DIR, MODE_FILE};

const SECTOR: usize = super::SECTOR as usize;
/// The primary volume descriptor's sector (ECMA-119 §6.2.1: sectors 0–15 are the system area).
const PVD_LBA: u32 = 16;
/// Longest name component accepted: its NM entry must fit in one directory record (255 bytes).
pub const MAX_NAME: usize = 140;
/// ECMA-119 §6.8.2.1: at most 8 levels of directories, the root included.
const MAX_DEPTH: usize = 8;
/// Longest volume identifier (§8.4.11).
const MAX_VOLUME_ID: usize = 32;
/// isolinux's boot file is loaded as 4 virtual 512-byte sectors (its documented setting).
const BIOS_LOAD_SECTORS: u16 = 4;

/// An image to master: files by absolute path, and optional boot entries.
#[derive(Debug, Clone)]
pub struct IsoWriter {
    volume_id: String,
    files: BTreeMap<String, Vec<u8>>,
    bios: Option<BiosBoot>,
    efi: Option<String>,
}

/// The BIOS El Torito entry: a no-emulation boot file (isolinux.bin) and where the catalog
/// appears in the tree.
#[derive(Debug, Clone)]
struct BiosBoot {
    image: String,
    catalog: String,
}

fn bad(msg: impl Into<String>) -> IsoError {
    IsoError::BadInput(msg.into())
}

/// "/boot//grub/grub.cfg" → ["boot", "grub", "grub.cfg"], refusing what no tree can hold.
fn components(path: &str) -> Result<Vec<String>, IsoError> {
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if parts.is_empty() {
        return Err(bad(format!("{path:?} names no file")));
    }
    for p in &parts {
        if p == "." || p == ".." || p.contains('\0') || p.len() > MAX_NAME {
            return Err(bad(format!(
                "{path:?}: name {p:?} is not allowed (no \".\", \"..\", NUL, or more than {MAX_NAME} bytes)"
            )));
        }
    }
    if parts.len() > MAX_DEPTH {
        return Err(bad(format!(
            "{path:?} is {} levels deep; ISO 9660 allows {MAX_DEPTH}",
            parts.len()
        )));
    }
    Ok(parts)
}

fn key(path: &str) -> Result<String, IsoError> {
    Ok(format!("/{}", components(path)?.join("/")))
}

impl IsoWriter {
    /// A new empty image with this volume id (1–32 printable ASCII characters, kept as given).
    pub fn new(volume_id: &str) -> Result<Self, IsoError> {
        if volume_id.is_empty()
            || volume_id.len() > MAX_VOLUME_ID
            || !volume_id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(bad(format!(
                "volume id {volume_id:?} must be 1 to {MAX_VOLUME_ID} printable ASCII characters"
            )));
        }
        Ok(Self {
            volume_id: volume_id.to_string(),
            files: BTreeMap::new(),
            bios: None,
            efi: None,
        })
    }

    /// Adds a file at `path` ("/openstack/latest/meta_data.json"); parent directories are
    /// implied. A path given twice is refused.
    pub fn add_file(
        &mut self,
        path: &str,
        data: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, IsoError> {
        let data = data.into();
        if u32::try_from(data.len()).is_err() {
            return Err(bad(format!(
                "{path}: files of 4 GiB or more are not supported"
            )));
        }
        let k = key(path)?;
        if self.files.insert(k.clone(), data).is_some() {
            return Err(bad(format!("{k} was added twice")));
        }
        Ok(self)
    }

    /// Makes the image BIOS-bootable: `image` (a file added to the tree, e.g.
    /// "/isolinux/isolinux.bin") gets the El Torito initial entry and its boot-info table;
    /// the catalog appears in the tree at `catalog` ("/isolinux/boot.cat").
    pub fn bios_boot(&mut self, image: &str, catalog: &str) -> Result<&mut Self, IsoError> {
        self.bios = Some(BiosBoot {
            image: key(image)?,
            catalog: key(catalog)?,
        });
        Ok(self)
    }

    /// Makes the image UEFI-bootable: `image` (a FAT image added to the tree, see
    /// [`efi_image`]) gets an El Torito EFI entry.
    pub fn efi_boot(&mut self, image: &str) -> Result<&mut Self, IsoError> {
        self.efi = Some(key(image)?);
        Ok(self)
    }

    /// Lays out and returns the image.
    pub fn build(&self) -> Result<Vec<u8>, IsoError> {
        let mut files = self.files.clone();
        if let Some(b) = &self.bios {
            if files.insert(b.catalog.clone(), vec![0; SECTOR]).is_some() {
                return Err(bad(format!(
                    "the boot catalog path {} is also a file of the image",
                    b.catalog
                )));
            }
        }
        for (what, path) in [
            ("BIOS boot image", self.bios.as_ref().map(|b| &b.image)),
            ("EFI boot image", self.efi.as_ref()),
        ] {
            if let Some(p) = path {
                if !self.files.contains_key(p) {
                    return Err(bad(format!("the {what} {p} is not a file of the image")));
                }
            }
        }
        let mut tree = Tree::new(&files)?;
        let layout = tree.lay_out(self.bios.is_some() || self.efi.is_some())?;
        let mut out = vec![0u8; layout.total as usize * SECTOR];
        let put = |out: &mut Vec<u8>, lba: u32, bytes: &[u8]| {
            let at = lba as usize * SECTOR;
            out[at..at + bytes.len()].copy_from_slice(bytes);
        };
        let lba_of = |path: &str| tree.file_lba(path);
        // File data, with the boot catalog and boot-info table filled in.
        let bios_entry = self.bios.as_ref().map(|b| boot::CatalogEntry {
            lba: lba_of(&b.image),
            sectors: BIOS_LOAD_SECTORS,
        });
        let efi_entry = self.efi.as_ref().map(|e| boot::CatalogEntry {
            lba: lba_of(e),
            sectors: boot::efi_sectors(files[e].len()),
        });
        for (path, data) in &files {
            let lba = lba_of(path);
            match &self.bios {
                Some(b) if *path == b.image => {
                    let mut patched = data.clone();
                    boot::patch_boot_info_table(&mut patched, PVD_LBA, lba);
                    put(&mut out, lba, &patched);
                }
                Some(b) if *path == b.catalog => {
                    put(&mut out, lba, &boot::catalog(bios_entry, efi_entry))
                }
                _ => put(&mut out, lba, data),
            }
        }
        for (lba, bytes) in tree.directory_sectors() {
            put(&mut out, lba, &bytes);
        }
        put(&mut out, layout.er_lba, &records::er());
        let (l, m) = tree.path_tables();
        put(&mut out, layout.l_table, &l);
        put(&mut out, layout.m_table, &m);
        let root_record = records::dir_record(
            &[0],
            tree.dirs[0].lba,
            tree.dirs[0].size,
            FLAG_DIRECTORY,
            &[],
        );
        let pvd = records::pvd(&records::PvdFields {
            volume_id: &self.volume_id,
            total_sectors: layout.total,
            path_table_len: l.len() as u32,
            l_table: layout.l_table,
            m_table: layout.m_table,
            root_record: &root_record,
        });
        put(&mut out, PVD_LBA, &pvd);
        let mut next = PVD_LBA + 1;
        if let Some(catalog) = self.bios.as_ref().map(|b| lba_of(&b.catalog)) {
            put(&mut out, next, &boot::boot_record(catalog));
            next += 1;
        } else if let Some(e) = efi_entry {
            // EFI-only: the catalog is not in the tree; it sits in the reserved sector.
            put(&mut out, next, &boot::boot_record(layout.spare_catalog));
            put(
                &mut out,
                layout.spare_catalog,
                &boot::catalog(None, Some(e)),
            );
            next += 1;
        }
        put(&mut out, next, &records::terminator());
        Ok(out)
    }

    /// Builds the image and writes it to `path` (through a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<(), IsoError> {
        let bytes = self.build()?;
        crate::durable::write(path, &bytes, crate::durable::Mode::Public).map_err(|e| {
            IsoError::Io {
                context: e.context,
                source: e.source,
            }
        })
    }
}

/// Where the fixed structures went.
struct Layout {
    total: u32,
    l_table: u32,
    m_table: u32,
    er_lba: u32,
    /// A sector for the catalog of an EFI-only image (0 when unused).
    spare_catalog: u32,
}

struct DirNode {
    name: String,
    id: String,
    parent: usize,
    dirs: Vec<usize>,
    files: Vec<usize>,
    lba: u32,
    size: u32,
}

struct FileNode {
    name: String,
    id: String,
    path: String,
    len: u32,
    lba: u32,
}

/// A directory entry while numbering: a subdirectory's path, or a file's path and length.
enum Child<'a> {
    Dir(Vec<String>),
    File(&'a String, u32),
}

/// The directory tree: directories breadth-first (index = path table number − 1).
struct Tree {
    dirs: Vec<DirNode>,
    files: Vec<FileNode>,
    /// The sector of the root's Rock Ridge continuation area (the ER entry).
    er_lba: u32,
}

impl Tree {
    fn new(files: &BTreeMap<String, Vec<u8>>) -> Result<Self, IsoError> {
        // Directory paths first, then breadth-first numbering by sorted ISO id.
        let mut dir_paths: BTreeMap<Vec<String>, ()> = BTreeMap::new();
        dir_paths.insert(vec![], ());
        for path in files.keys() {
            let parts = components(path)?;
            for n in 1..parts.len() {
                dir_paths.insert(parts[..n].to_vec(), ());
            }
        }
        for path in files.keys() {
            if dir_paths.contains_key(&components(path)?) {
                return Err(bad(format!("{path} is both a file and a directory")));
            }
        }
        let mut tree = Tree {
            dirs: vec![DirNode {
                name: String::new(),
                id: String::new(),
                parent: 0,
                dirs: vec![],
                files: vec![],
                lba: 0,
                size: 0,
            }],
            files: vec![],
            er_lba: 0,
        };
        let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::from([(vec![], 0)]);
        // Breadth-first over the directory paths.
        let mut level = vec![Vec::<String>::new()];
        while !level.is_empty() {
            let mut next_level = Vec::new();
            for parent_path in level {
                let parent = index[&parent_path];
                let children: Vec<Vec<String>> = dir_paths
                    .keys()
                    .filter(|p| p.len() == parent_path.len() + 1 && p.starts_with(&parent_path))
                    .cloned()
                    .collect();
                let child_files: Vec<(&String, &Vec<u8>)> = files
                    .iter()
                    .filter(|(p, _)| {
                        let c = components(p).unwrap_or_default();
                        c.len() == parent_path.len() + 1 && c.starts_with(&parent_path)
                    })
                    .collect();
                let mut taken = BTreeSet::new();
                let mut named: Vec<(String, Child)> = Vec::new();
                for c in &children {
                    let id = names::unique(names::dir_id(c.last().expect("child")), &taken, true);
                    taken.insert(id.clone());
                    named.push((id, Child::Dir(c.clone())));
                }
                for (p, data) in child_files {
                    let name = p.rsplit('/').next().unwrap_or_default();
                    let id = names::unique(names::file_id(name), &taken, false);
                    taken.insert(id.clone());
                    named.push((id, Child::File(p, data.len() as u32)));
                }
                named.sort_by(|a, b| a.0.cmp(&b.0));
                for (id, child) in named {
                    if let Child::Dir(d) = child {
                        let i = tree.dirs.len();
                        tree.dirs.push(DirNode {
                            name: d.last().expect("child").clone(),
                            id,
                            parent,
                            dirs: vec![],
                            files: vec![],
                            lba: 0,
                            size: 0,
                        });
                        tree.dirs[parent].dirs.push(i);
                        index.insert(d.clone(), i);
                        next_level.push(d);
                    } else if let Child::File(p, len) = child {
                        let i = tree.files.len();
                        tree.files.push(FileNode {
                            name: p.rsplit('/').next().unwrap_or_default().to_string(),
                            id: format!("{id};1"),
                            path: p.clone(),
                            len,
                            lba: 0,
                        });
                        tree.dirs[parent].files.push(i);
                    }
                }
            }
            level = next_level;
        }
        if tree.dirs.len() > u16::MAX as usize {
            return Err(bad("more than 65535 directories"));
        }
        Ok(tree)
    }

    fn links(&self, dir: usize) -> u32 {
        2 + self.dirs[dir].dirs.len() as u32
    }

    /// The records of one directory, in order, given the extents assigned so far.
    fn records(&self, d: usize, er_lba: u32) -> Vec<Vec<u8>> {
        let dir = &self.dirs[d];
        let parent = &self.dirs[dir.parent];
        let mut dot_su = Vec::new();
        if d == 0 {
            dot_su.extend(records::sp());
        }
        dot_su.extend(records::px(MODE_DIR, self.links(d)));
        if d == 0 {
            dot_su.extend(records::ce(er_lba, records::er().len() as u32));
        }
        let mut out = vec![
            records::dir_record(&[0], dir.lba, dir.size, FLAG_DIRECTORY, &dot_su),
            records::dir_record(
                &[1],
                parent.lba,
                parent.size,
                FLAG_DIRECTORY,
                &records::px(MODE_DIR, self.links(dir.parent)),
            ),
        ];
        // Children in identifier order (§9.3), directories and files merged.
        let mut children: Vec<(&str, Vec<u8>)> = Vec::new();
        for &c in &dir.dirs {
            let sub = &self.dirs[c];
            let mut su = records::px(MODE_DIR, self.links(c));
            su.extend(records::nm(&sub.name));
            let r = records::dir_record(sub.id.as_bytes(), sub.lba, sub.size, FLAG_DIRECTORY, &su);
            children.push((&sub.id, r));
        }
        for &f in &dir.files {
            let file = &self.files[f];
            let mut su = records::px(MODE_FILE, 1);
            su.extend(records::nm(&file.name));
            let r = records::dir_record(file.id.as_bytes(), file.lba, file.len, 0, &su);
            children.push((&file.id, r));
        }
        children.sort_by(|a, b| a.0.cmp(b.0));
        out.extend(children.into_iter().map(|(_, r)| r));
        out
    }

    /// Packs records into sectors: a record never crosses a sector boundary (§6.8.1.1).
    fn pack(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        for r in records {
            let used = out.len() % SECTOR;
            if used + r.len() > SECTOR {
                out.resize(out.len() + SECTOR - used, 0);
            }
            out.extend(r);
        }
        out.resize(out.len().div_ceil(SECTOR).max(1) * SECTOR, 0);
        out
    }

    fn path_tables(&self) -> (Vec<u8>, Vec<u8>) {
        let (mut l, mut m) = (Vec::new(), Vec::new());
        for (i, d) in self.dirs.iter().enumerate() {
            let id: &[u8] = if i == 0 { &[0] } else { d.id.as_bytes() };
            let parent = d.parent as u16 + 1;
            l.extend(records::path_record(id, d.lba, parent, false));
            m.extend(records::path_record(id, d.lba, parent, true));
        }
        (l, m)
    }

    /// Assigns every sector; directory sizes do not depend on extents, so one pass suffices.
    fn lay_out(&mut self, el_torito: bool) -> Result<Layout, IsoError> {
        let mut next = PVD_LBA + 1 + u32::from(el_torito) + 1;
        let spare_catalog = if el_torito {
            next += 1;
            next - 1
        } else {
            0
        };
        let (l, _) = self.path_tables();
        let pt_sectors = l.len().div_ceil(SECTOR) as u32;
        let l_table = next;
        let m_table = l_table + pt_sectors;
        let er_lba = m_table + pt_sectors;
        next = er_lba + 1;
        self.er_lba = er_lba;
        for d in 0..self.dirs.len() {
            let size = Self::pack(&self.records(d, er_lba)).len() as u32;
            self.dirs[d].size = size;
        }
        for d in 0..self.dirs.len() {
            self.dirs[d].lba = next;
            next += self.dirs[d].size / SECTOR as u32;
        }
        let mut order: Vec<usize> = (0..self.files.len()).collect();
        order.sort_by(|&a, &b| self.files[a].path.cmp(&self.files[b].path));
        for f in order {
            // An empty file has no data; its extent is the (non-zero) ER sector, as no reader
            // follows it and some refuse extents past the volume's end.
            if self.files[f].len == 0 {
                self.files[f].lba = er_lba;
                continue;
            }
            self.files[f].lba = next;
            let sectors = (self.files[f].len as u64).div_ceil(SECTOR as u64);
            next = u32::try_from(next as u64 + sectors)
                .map_err(|_| bad("the image would exceed 8 TiB"))?;
        }
        Ok(Layout {
            total: next,
            l_table,
            m_table,
            er_lba,
            spare_catalog,
        })
    }

    fn directory_sectors(&self) -> Vec<(u32, Vec<u8>)> {
        (0..self.dirs.len())
            .map(|d| (self.dirs[d].lba, Self::pack(&self.records(d, self.er_lba))))
            .collect()
    }

    fn file_lba(&self, path: &str) -> u32 {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map_or(0, |f| f.lba)
    }
}

#[cfg(test)]
mod tests;
