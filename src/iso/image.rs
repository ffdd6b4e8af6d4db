//! Everything the reader learns about an image in one value: descriptors, trees, boot
//! catalog, partition tables, and the EFI FAT images the firmware may load.

use super::budget::Budget;
use super::dirtree::{self, Tree, TreeKind};
use super::eltorito::{self, BootImage};
use super::partition::{self, Tables};
use super::source::{le16, le32, read, Source, MAX_READ};
use super::volume::{self, Volumes};
use super::{IsoError, SECTOR};

/// A FAT image the firmware can boot from: the El Torito EFI image or an ESP partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfiImage {
    /// Human name: its ISO path, or "GPT partition 2", or "El Torito EFI image at sector N".
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

/// A parsed image.
#[derive(Debug, Clone)]
pub struct Iso {
    pub volumes: Volumes,
    pub tree: Tree,
    pub joliet: Vec<Tree>,
    pub boot: Vec<BootImage>,
    pub tables: Tables,
    pub efi: Vec<EfiImage>,
}

/// Size of a FAT file system from its boot sector (BPB), or None if it is not one.
fn fat_len(src: &dyn Source, offset: u64) -> Option<u64> {
    let bs = read(src, offset, 512, "EFI image boot sector").ok()?;
    if bs[510] != 0x55 || bs[511] != 0xAA {
        return None;
    }
    let bps = le16(&bs, 11) as u64;
    if !matches!(bps, 512 | 1024 | 2048 | 4096) {
        return None;
    }
    let total = match le16(&bs, 19) {
        0 => le32(&bs, 32) as u64,
        n => n as u64,
    };
    let len = total * bps;
    (len > 0 && len <= MAX_READ && offset.checked_add(len)? <= src.len()).then_some(len)
}

impl Iso {
    pub fn read(src: &dyn Source) -> Result<Self, IsoError> {
        let volumes = volume::read_volumes(src)?;
        let pvd = volumes
            .primary
            .as_ref()
            .ok_or_else(|| IsoError::NotIso("no primary volume descriptor".into()))?;
        let mut budget = Budget::default();
        let tree = dirtree::walk(src, pvd, TreeKind::Iso9660, &mut budget)?;
        let mut joliet = Vec::new();
        for svd in &volumes.joliet {
            joliet.push(dirtree::walk(src, svd, TreeKind::Joliet, &mut budget)?);
        }
        let boot = match volumes.boot_catalog {
            Some(lba) => eltorito::read_catalog(src, lba)?,
            None => Vec::new(),
        };
        let tables = partition::read_tables(src)?;
        let mut efi: Vec<EfiImage> = Vec::new();
        for b in boot.iter().filter(|b| b.platform == "efi") {
            let offset = b.load_lba as u64 * SECTOR;
            let Some(len) = fat_len(src, offset) else {
                continue;
            };
            let name = tree
                .entries
                .iter()
                .find(|e| !e.is_dir && e.extent == b.load_lba)
                .map(|e| e.path.clone())
                .or_else(|| {
                    tables
                        .partitions
                        .iter()
                        .find(|p| p.offset() == offset)
                        .map(|p| format!("{} partition {}", p.table.to_uppercase(), p.index))
                })
                .unwrap_or_else(|| format!("El Torito EFI image at sector {}", b.load_lba));
            efi.push(EfiImage { name, offset, len });
        }
        for p in tables.partitions.iter().filter(|p| p.esp) {
            let offset = p.offset();
            if efi.iter().any(|e| e.offset == offset) {
                continue;
            }
            if let Some(len) = fat_len(src, offset) {
                let name = tree
                    .entries
                    .iter()
                    .find(|e| !e.is_dir && e.extent as u64 * SECTOR == offset)
                    .map(|e| e.path.clone())
                    .unwrap_or_else(|| format!("{} partition {}", p.table.to_uppercase(), p.index));
                efi.push(EfiImage { name, offset, len });
            }
        }
        Ok(Self {
            volumes,
            tree,
            joliet,
            boot,
            tables,
            efi,
        })
    }

    /// Volume space size in bytes (from the PVD).
    pub fn volume_bytes(&self) -> u64 {
        self.volumes
            .primary
            .as_ref()
            .map(|p| p.volume_space_size as u64 * SECTOR)
            .unwrap_or(0)
    }
}
