//! `inspect`: what an image is and how it boots — ids, trees, El Torito, partitions, every
//! boot config and every kernel entry with its current arguments. Also [`boot_cmdlines`], the
//! question a simulated BMC asks: which kernel command lines would this ISO boot with?

use std::path::Path;

use serde::Serialize;

use super::bootcfg::{self, ConfigFile, Dialect};
use super::eltorito::BootImage;
use super::family::{self, Family};
use super::fat::{self, FatConfig};
use super::image::{EfiImage, Iso};
use super::partition::Partition;
use super::source::{read, FileSource, Source};
use super::{grub, pathtable, syslinux, IsoError, SECTOR};

/// Which boot loader reads a config.
pub type Loader = Dialect;

/// One kernel entry of one config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEntry {
    pub loader: Loader,
    /// "iso9660" for the ISO tree, else the EFI image's name (e.g. "/images/efiboot.img").
    pub location: String,
    /// Path of the config (inside the EFI image when `location` names one).
    pub config: String,
    /// Menu entry title or syslinux LABEL.
    pub label: Option<String>,
    pub kernel: String,
    /// Current arguments, as written in the config.
    pub args: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BootLoad {
    #[serde(flatten)]
    pub image: BootImage,
    /// What the entry loads: an ISO path, a partition, or "sectors N..".
    pub loads: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigRef {
    pub loader: Loader,
    pub location: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EfiRef {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

/// The answer of `ironcast iso inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub file: String,
    pub size: u64,
    pub system_id: String,
    pub volume_id: String,
    pub publisher_id: String,
    pub preparer_id: String,
    pub application_id: String,
    pub volume_bytes: u64,
    pub joliet: bool,
    pub rock_ridge: bool,
    pub udf: bool,
    /// Directories listed in the primary type L path table.
    pub path_table_dirs: usize,
    pub family: Family,
    pub el_torito: Vec<BootLoad>,
    pub partitions: Vec<Partition>,
    pub efi_images: Vec<EfiRef>,
    pub configs: Vec<ConfigRef>,
    pub entries: Vec<BootEntry>,
    /// Things that could not be read but did not stop the inspection.
    pub warnings: Vec<String>,
}

/// Configs inside one EFI image.
pub struct EfiConfigs {
    pub image: EfiImage,
    pub bytes: Vec<u8>,
    pub configs: Vec<FatConfig>,
}

/// Reads every EFI image and the grub.cfg files inside; failures go to the error list.
pub fn efi_configs(src: &dyn Source, iso: &Iso) -> (Vec<EfiConfigs>, Vec<(EfiImage, String)>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for img in &iso.efi {
        let bytes = match read(src, img.offset, img.len, &img.name) {
            Ok(b) => b,
            Err(e) => {
                bad.push((img.clone(), e.to_string()));
                continue;
            }
        };
        match fat::list_configs(&bytes) {
            Ok(configs) => ok.push(EfiConfigs {
                image: img.clone(),
                bytes,
                configs,
            }),
            Err(e) => bad.push((img.clone(), e)),
        }
    }
    (ok, bad)
}

fn entries_of(dialect: Dialect, location: &str, config: &str, text: &str) -> Vec<BootEntry> {
    match dialect {
        Dialect::Grub => grub::kernel_lines(text)
            .into_iter()
            .map(|k| BootEntry {
                loader: dialect,
                location: location.into(),
                config: config.into(),
                label: k.title,
                kernel: k.kernel,
                args: k.args,
            })
            .collect(),
        Dialect::Syslinux => syslinux::kernel_labels(text)
            .into_iter()
            .map(|k| BootEntry {
                loader: dialect,
                location: location.into(),
                config: config.into(),
                label: Some(k.label),
                kernel: k.kernel,
                args: k.args,
            })
            .collect(),
    }
}

/// Inspects the image at `path`.
pub fn inspect(path: &Path) -> Result<Inspection, IsoError> {
    let src = FileSource::open(path)?;
    inspect_source(&src, &path.display().to_string())
}

/// Inspects any [`Source`]; `name` is shown as the file.
pub fn inspect_source(src: &dyn Source, name: &str) -> Result<Inspection, IsoError> {
    let iso = Iso::read(src)?;
    let pvd = iso
        .volumes
        .primary
        .clone()
        .ok_or_else(|| IsoError::NotIso("no primary volume descriptor".into()))?;
    let configs: Vec<ConfigFile> = bootcfg::discover(src, &iso.tree)?;
    let (efis, bad) = efi_configs(src, &iso);
    let mut warnings: Vec<String> = bad
        .iter()
        .map(|(i, e)| format!("EFI image {}: {e}", i.name))
        .collect();
    let path_table_dirs = match pathtable::read_l(src, &pvd) {
        Ok(t) => {
            let dirs = iso.tree.entries.iter().filter(|e| e.is_dir).count() + 1;
            if t.len() != dirs {
                warnings.push(format!(
                    "the path table lists {} directories, the tree has {dirs}",
                    t.len()
                ));
            }
            t.len()
        }
        Err(e) => {
            warnings.push(format!("path table: {e}"));
            0
        }
    };
    let mut out = Inspection {
        file: name.into(),
        size: src.len(),
        system_id: pvd.system_id.clone(),
        volume_id: pvd.volume_id.clone(),
        publisher_id: pvd.publisher_id.clone(),
        preparer_id: pvd.preparer_id.clone(),
        application_id: pvd.application_id.clone(),
        volume_bytes: iso.volume_bytes(),
        joliet: !iso.joliet.is_empty(),
        rock_ridge: iso.tree.rock_ridge,
        udf: iso.volumes.udf,
        path_table_dirs,
        family: family::guess(&pvd.volume_id, &iso.tree),
        el_torito: iso
            .boot
            .iter()
            .map(|b| BootLoad {
                image: b.clone(),
                loads: loads(&iso, b),
            })
            .collect(),
        partitions: iso.tables.partitions.clone(),
        efi_images: iso
            .efi
            .iter()
            .map(|e| EfiRef {
                name: e.name.clone(),
                offset: e.offset,
                len: e.len,
            })
            .collect(),
        configs: Vec::new(),
        entries: Vec::new(),
        warnings,
    };
    for c in &configs {
        out.configs.push(ConfigRef {
            loader: c.dialect,
            location: "iso9660".into(),
            path: c.entry.path.clone(),
        });
        out.entries
            .extend(entries_of(c.dialect, "iso9660", &c.entry.path, &c.text));
    }
    for e in &efis {
        for c in &e.configs {
            out.configs.push(ConfigRef {
                loader: Dialect::Grub,
                location: e.image.name.clone(),
                path: c.path.clone(),
            });
            out.entries
                .extend(entries_of(Dialect::Grub, &e.image.name, &c.path, &c.text));
        }
    }
    Ok(out)
}

fn loads(iso: &Iso, b: &BootImage) -> String {
    let off = b.load_lba as u64 * SECTOR;
    if let Some(e) = iso
        .tree
        .entries
        .iter()
        .find(|e| !e.is_dir && e.extent == b.load_lba)
    {
        return e.path.clone();
    }
    if let Some(p) = iso.tables.partitions.iter().find(|p| p.offset() == off) {
        return format!("{} partition {}", p.table.to_uppercase(), p.index);
    }
    format!("sector {}", b.load_lba)
}

/// The kernel entries a machine booting this ISO could use, with their command lines.
/// For a simulated BMC: BIOS boot reads the `syslinux` entries, UEFI boot from CD reads the
/// `grub` entries at location "iso9660", UEFI boot of the hybrid image as a disk reads the
/// grub entries inside the EFI image (location = the image's name) first.
pub fn boot_cmdlines(path: &Path) -> Result<Vec<BootEntry>, IsoError> {
    Ok(inspect(path)?.entries)
}

/// How a machine boots the ISO, for [`boot_cmdline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootPath {
    /// Legacy BIOS from a CD: isolinux, else a BIOS grub reading the ISO's grub.cfg.
    BiosCd,
    /// UEFI from a CD: grub reads the ISO's grub.cfg (it cannot see the El Torito FAT image),
    /// else the EFI image's.
    UefiCd,
    /// UEFI from the hybrid image as a disk: the grub.cfg inside the EFI image first.
    UefiDisk,
}

/// The entry a machine booting `path` that way would most likely start: the first kernel entry
/// of the config its loader reads (menu defaults and timeouts are not evaluated).
pub fn boot_cmdline(path: &Path, via: BootPath) -> Result<Option<BootEntry>, IsoError> {
    Ok(pick(&inspect(path)?.entries, via).cloned())
}

fn pick(entries: &[BootEntry], via: BootPath) -> Option<&BootEntry> {
    let syslinux = |e: &&BootEntry| e.loader == Dialect::Syslinux;
    let grub_iso = |e: &&BootEntry| e.loader == Dialect::Grub && e.location == "iso9660";
    let grub_efi = |e: &&BootEntry| e.loader == Dialect::Grub && e.location != "iso9660";
    let order: [&dyn Fn(&&BootEntry) -> bool; 2] = match via {
        BootPath::BiosCd => [&syslinux, &grub_iso],
        BootPath::UefiCd => [&grub_iso, &grub_efi],
        BootPath::UefiDisk => [&grub_efi, &grub_iso],
    };
    order.iter().find_map(|f| entries.iter().find(|e| f(e)))
}
