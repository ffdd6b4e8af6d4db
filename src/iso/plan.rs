//! The remaster planner: kernel arguments in, [`PatchSet`] out. Pure over a [`Source`]; no
//! byte of the base is written. A grown config stays in its extent when its last sector's
//! slack holds the growth, else moves to free space at the tail of the volume (verified zero)
//! or to a new extent after the end of the image; then the volume space size (PVD and every
//! Joliet SVD), the hybrid MBR and GPT (primary and backup, CRCs) and every directory record
//! pointing at the file (ISO 9660 and Joliet trees) are rewritten.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::bootcfg::{self, Dialect};
use super::dirtree::{Entry, RECORD_EXTENT_OFFSET, RECORD_SIZE_OFFSET};
use super::image::Iso;
use super::inspect::efi_configs;
use super::source::{both32, le32, read, FileSource, Source};
use super::text::encode;
use super::volume::VOLUME_SPACE_SIZE_OFFSET;
use super::{fat, grub, partition, syslinux, unattended, IsoError, SECTOR};
use crate::overlay::{Patch, PatchSet};

/// What a remaster did, for people.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemasterReport {
    /// Configs edited in place ("/boot/grub/grub.cfg", "/images/efiboot.img:/EFI/BOOT/grub.cfg").
    pub edited: Vec<String>,
    /// Configs moved to a new extent, with the sector they moved to.
    pub moved: Vec<(String, u32)>,
    /// Kernel entries seen (patched or already carrying the arguments).
    pub kernel_entries: usize,
    pub base_len: u64,
    pub new_len: u64,
}

/// The kernel command line's size, terminating NUL included (Linux `COMMAND_LINE_SIZE` on
/// x86 and arm64, whether booted by BIOS or UEFI).
pub const MAX_KERNEL_CMDLINE: usize = 2048;

/// Splits and checks kernel arguments: words separated by spaces, double quotes keep spaces
/// inside one word (`foo="a b"`); control characters (newline, tab …) and more than the
/// kernel command line holds are refused.
pub fn parse_args(s: &str) -> Result<Vec<String>, IsoError> {
    if s.len() >= MAX_KERNEL_CMDLINE {
        return Err(IsoError::BadArgs(format!(
            "kernel arguments of {} bytes: the kernel command line holds at most {} (x86 \
             COMMAND_LINE_SIZE, BIOS and UEFI boots alike); pass large data another way (a \
             config drive, a URL)",
            s.len(),
            MAX_KERNEL_CMDLINE - 1
        )));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(IsoError::BadArgs(format!(
            "control character {:?} in kernel arguments: a boot config line cannot carry it",
            c
        )));
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(IsoError::BadArgs(
            "unbalanced double quote in kernel arguments".into(),
        ));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err(IsoError::BadArgs("no kernel arguments given".into()));
    }
    if out.iter().any(|a| a == "---" || a == "--") {
        return Err(IsoError::BadArgs(
            "`--`/`---` separate installer and installed-system arguments; give only arguments"
                .into(),
        ));
    }
    Ok(out)
}

/// Remasters the image at `path`.
pub fn remaster(path: &Path, args: &str) -> Result<(PatchSet, RemasterReport), IsoError> {
    let src = FileSource::open(path)?;
    remaster_source(&src, args)
}

/// Remasters the image at `path` for an unattended install: the args, plus the install entry
/// made the default with a `timeout_s` menu timeout ([`super::unattended`]).
pub fn remaster_unattended(
    path: &Path,
    args: &str,
    timeout_s: u32,
) -> Result<(PatchSet, RemasterReport), IsoError> {
    let src = FileSource::open(path)?;
    remaster_source_with(&src, args, Some(timeout_s))
}

/// Patches one config; `config` names it in a refusal.
fn patch_text(
    dialect: Dialect,
    text: &str,
    args: &[String],
    config: &str,
    unattended: Option<u32>,
) -> Result<(Option<String>, usize), IsoError> {
    let (new, kernels) = match dialect {
        Dialect::Grub => grub::patch(text, args),
        Dialect::Syslinux => syslinux::patch(text, args),
    }
    .map_err(|source| IsoError::CmdlineTooLong {
        config: config.to_string(),
        source,
    })?;
    let Some(timeout) = unattended else {
        return Ok((new, kernels));
    };
    let base = new.as_deref().unwrap_or(text);
    let menu = match dialect {
        Dialect::Grub => unattended::grub(base, timeout),
        Dialect::Syslinux => unattended::syslinux(base, timeout),
    };
    Ok((menu.or(new), kernels))
}

/// A config whose new bytes need a place.
struct Edit {
    path: String,
    /// Every config path sharing this extent.
    paths: Vec<String>,
    extent: u32,
    old_size: u32,
    data: Vec<u8>,
}

/// Remasters any [`Source`].
pub fn remaster_source(
    src: &dyn Source,
    args: &str,
) -> Result<(PatchSet, RemasterReport), IsoError> {
    remaster_source_with(src, args, None)
}

/// Remasters any [`Source`]; `unattended`: the menu timeout of an unattended install.
pub fn remaster_source_with(
    src: &dyn Source,
    args: &str,
    unattended: Option<u32>,
) -> Result<(PatchSet, RemasterReport), IsoError> {
    let args = parse_args(args)?;
    let iso = Iso::read(src)?;
    let configs = bootcfg::discover(src, &iso.tree)?;
    let (efis, bad) = efi_configs(src, &iso);
    if let Some((img, e)) = bad.first() {
        return Err(IsoError::Fat {
            offset: img.offset,
            message: format!("{} cannot be read: {e}", img.name),
        });
    }
    if configs.is_empty() && efis.iter().all(|e| e.configs.is_empty()) {
        return Err(if iso.volumes.udf {
            IsoError::Unsupported(
                "UDF image without an ISO 9660 boot config (Windows media?)".into(),
            )
        } else {
            IsoError::NoBootConfig
        });
    }
    let mut report = RemasterReport {
        base_len: src.len(),
        ..Default::default()
    };
    let mut patches: Vec<Patch> = Vec::new();

    // ISO 9660 configs, one edit per extent.
    let mut edits: BTreeMap<u32, Edit> = BTreeMap::new();
    for c in &configs {
        let (new, kernels) = patch_text(c.dialect, &c.text, &args, &c.entry.path, unattended)?;
        report.kernel_entries += kernels;
        if let Some(new) = new {
            let data = encode(&new, c.encoding, &c.entry.path)?;
            let e = edits.entry(c.entry.extent).or_insert(Edit {
                path: c.entry.path.clone(),
                paths: Vec::new(),
                extent: c.entry.extent,
                old_size: c.entry.size,
                data,
            });
            e.paths.push(c.entry.path.clone());
        }
    }

    // Where moved files go.
    let mut alloc = Allocator::new(src, &iso)?;
    for e in edits.values() {
        let new_len = e.data.len() as u64;
        let old_sectors = (e.old_size as u64).div_ceil(SECTOR);
        let new_sectors = new_len.div_ceil(SECTOR);
        let is_ours = |r: &&Entry| e.paths.iter().any(|p| p.eq_ignore_ascii_case(&r.path));
        // In place only when no other file shares the extent (empty files all may).
        let exclusive = e.old_size > 0
            && iso
                .tree
                .entries
                .iter()
                .filter(|r| !r.is_dir && r.extent == e.extent)
                .all(|r| is_ours(&r));
        let extent = if exclusive && new_sectors <= old_sectors {
            let mut data = e.data.clone();
            data.resize(data.len().max(e.old_size as usize), 0);
            patches.push(Patch {
                offset: e.extent as u64 * SECTOR,
                data,
            });
            report.edited.push(e.path.clone());
            e.extent
        } else {
            let lba = alloc.take(src, new_sectors)?;
            let mut data = e.data.clone();
            data.resize((new_sectors * SECTOR) as usize, 0);
            patches.push(Patch {
                offset: lba as u64 * SECTOR,
                data,
            });
            report.moved.push((e.path.clone(), lba));
            lba
        };
        for t in std::iter::once(&iso.tree).chain(iso.joliet.iter()) {
            for r in t
                .entries
                .iter()
                .filter(|r| !r.is_dir && r.extent == e.extent && (exclusive || is_ours(r)))
            {
                if extent != e.extent {
                    patches.push(Patch {
                        offset: r.record + RECORD_EXTENT_OFFSET,
                        data: both32(extent).to_vec(),
                    });
                }
                patches.push(Patch {
                    offset: r.record + RECORD_SIZE_OFFSET,
                    data: both32(new_len as u32).to_vec(),
                });
            }
        }
    }

    // grub.cfg inside EFI images: same size image, byte diff.
    for img in &efis {
        let mut fat_edits = Vec::new();
        for c in &img.configs {
            let what = format!("{}:{}", img.image.name, c.path);
            let (new, kernels) = patch_text(Dialect::Grub, &c.text, &args, &what, unattended)?;
            report.kernel_entries += kernels;
            if let Some(new) = new {
                fat_edits.push((c.path.clone(), encode(&new, c.encoding, &what)?));
                report.edited.push(what);
            }
        }
        if fat_edits.is_empty() {
            continue;
        }
        let new = fat::rewrite(&img.bytes, &fat_edits).map_err(|message| IsoError::Fat {
            offset: img.image.offset,
            message: format!("{}: {message}", img.image.name),
        })?;
        patches.extend(fat::diff(img.image.offset, &img.bytes, &new));
    }

    if report.kernel_entries == 0 {
        return Err(IsoError::NoKernelEntry);
    }
    let new_len = alloc.finish(&iso, &mut patches)?;
    report.new_len = new_len;
    let set = PatchSet::new(src.len(), new_len, patches)?;
    Ok((set, report))
}

/// Hands out sectors for moved files: the zeroed tail of the volume first, then past the end.
struct Allocator {
    /// Next free sector and end (exclusive) of the free tail inside the volume.
    tail: (u64, u64),
    /// Next sector past the end of the image.
    end: u64,
    initial_end: u64,
    volume_sectors: u64,
    base_len: u64,
}

impl Allocator {
    fn new(src: &dyn Source, iso: &Iso) -> Result<Self, IsoError> {
        let volume_sectors = iso.volume_bytes() / SECTOR;
        let mut used = FIRST_FREE_AFTER_DESCRIPTORS;
        // Saturating: a hostile extent or size only makes the free tail empty.
        let mut mark =
            |lba: u64, bytes: u64| used = used.max(lba.saturating_add(bytes.div_ceil(SECTOR)));
        for t in std::iter::once(&iso.tree).chain(iso.joliet.iter()) {
            for e in &t.entries {
                mark(e.extent as u64, e.size as u64);
            }
        }
        let vds = std::iter::once(iso.volumes.primary.as_ref())
            .flatten()
            .chain(iso.volumes.joliet.iter());
        for vd in vds {
            mark(
                le32(&vd.root_record, 2) as u64,
                le32(&vd.root_record, 10) as u64,
            );
            mark(vd.path_table_lba as u64, vd.path_table_size as u64);
            mark(vd.offset / SECTOR, SECTOR);
        }
        if let Some(c) = iso.volumes.boot_catalog {
            mark(c as u64, SECTOR);
        }
        for b in &iso.boot {
            mark(b.load_lba as u64, b.sectors as u64 * 512);
        }
        for e in &iso.efi {
            mark(e.offset / SECTOR, e.len);
        }
        for p in &iso.tables.partitions {
            // Partitions that start inside the volume (not the one mapping the whole image).
            if p.offset() > 64 * SECTOR && p.offset() < volume_sectors * SECTOR {
                mark(p.offset() / SECTOR, p.byte_len());
            }
        }
        let end = src.len().div_ceil(SECTOR).max(volume_sectors);
        let mut limit = volume_sectors.min(src.len() / SECTOR);
        if let Some(g) = &iso.tables.gpt {
            // The backup GPT (entries, then header) may sit inside the volume's tail.
            let backup_entries = g
                .backup_lba
                .saturating_sub((g.entries.len() as u64).div_ceil(512));
            limit = limit.min(backup_entries.saturating_mul(512) / SECTOR);
        }
        Ok(Self {
            tail: (used, limit),
            end,
            initial_end: end,
            volume_sectors,
            base_len: src.len(),
        })
    }

    fn take(&mut self, src: &dyn Source, sectors: u64) -> Result<u32, IsoError> {
        let (next, limit) = self.tail;
        if next.saturating_add(sectors) <= limit {
            let bytes = read(
                src,
                next * SECTOR,
                sectors * SECTOR,
                "free space at the end of the volume",
            )?;
            if bytes.iter().all(|&b| b == 0) {
                self.tail.0 += sectors;
                return lba32(next);
            }
        }
        let lba = self.end;
        self.end += sectors;
        lba32(lba)
    }

    /// Adds the volume size and partition table patches when the image grew; the new length.
    fn finish(&self, iso: &Iso, patches: &mut Vec<Patch>) -> Result<u64, IsoError> {
        let data_end_sectors = self.end;
        if self.end == self.initial_end {
            return Ok(self.base_len);
        }
        let new_volume = lba32(data_end_sectors)?;
        let vds = std::iter::once(iso.volumes.primary.as_ref())
            .flatten()
            .chain(iso.volumes.joliet.iter());
        for vd in vds {
            patches.push(Patch {
                offset: vd.offset + VOLUME_SPACE_SIZE_OFFSET,
                data: both32(new_volume).to_vec(),
            });
        }
        let data_end = data_end_sectors * SECTOR;
        let gpt_tail = iso
            .tables
            .gpt
            .as_ref()
            .map(|g| g.entries.len() as u64 + 512)
            .unwrap_or(0);
        let new_len = (data_end + gpt_tail).div_ceil(SECTOR) * SECTOR;
        let mut old_ends = vec![self.volume_sectors * SECTOR, self.base_len];
        if let Some(g) = &iso.tables.gpt {
            let last_usable = super::source::le64(&g.header, 48);
            if let Some(end) = last_usable.checked_add(1).and_then(|l| l.checked_mul(512)) {
                old_ends.push(end);
            }
        }
        for (offset, data) in partition::grow_patches(&iso.tables, &old_ends, data_end, new_len)? {
            patches.push(Patch { offset, data });
        }
        Ok(new_len)
    }
}

/// Sectors 0–15 system area, 16 onwards descriptors: nothing is free before this.
const FIRST_FREE_AFTER_DESCRIPTORS: u64 = 18;

fn lba32(v: u64) -> Result<u32, IsoError> {
    u32::try_from(v).map_err(|_| IsoError::Unsupported("the image would grow past 8 TiB".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_args() {
        assert_eq!(
            parse_args(" a=1  b=\"x y\" ").unwrap(),
            vec!["a=1", "b=\"x y\""]
        );
        for bad in ["", "   ", "a\nb", "a\tb", "x=\"open", "a --- b", "a\u{7f}"] {
            assert!(
                matches!(parse_args(bad), Err(IsoError::BadArgs(_))),
                "{bad:?}"
            );
        }
        let long = "x=1 ".repeat(MAX_KERNEL_CMDLINE / 4);
        let err = parse_args(&long).unwrap_err().to_string();
        assert!(err.contains("2047"), "{err}");
        assert!(parse_args(&"x=1 ".repeat(MAX_KERNEL_CMDLINE / 4 - 1)).is_ok());
    }
}
