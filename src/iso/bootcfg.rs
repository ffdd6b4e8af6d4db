//! Boot-config discovery in the ISO 9660 tree: every grub.cfg/loopback.cfg and
//! isolinux.cfg/syslinux.cfg, plus the files they `source`/`configfile`/INCLUDE, each tagged with
//! its dialect. Pure over an [`Iso`] plus reads of config files (bounded).

use std::collections::VecDeque;

use super::dirtree::{normalize, Entry, Tree};
use super::source::{read, Source};
use super::text::{decode, Encoding};
use super::{grub, syslinux, IsoError, SECTOR};

/// Configs larger than this are not boot configs.
pub const MAX_CONFIG: u64 = 1 << 20;
/// At most this many configs are followed.
const MAX_CONFIGS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Grub,
    Syslinux,
}

/// A config file in the ISO 9660 tree and its text.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub entry: Entry,
    pub dialect: Dialect,
    pub text: String,
    pub encoding: Encoding,
}

fn seed_dialect(name: &str) -> Option<Dialect> {
    match name.to_ascii_lowercase().as_str() {
        "grub.cfg" | "loopback.cfg" => Some(Dialect::Grub),
        "isolinux.cfg" | "syslinux.cfg" | "extlinux.conf" => Some(Dialect::Syslinux),
        _ => None,
    }
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Resolves a reference written in a config at `from` to an absolute path, or None when it
/// depends on run-time variables we cannot know.
pub fn resolve(dialect: Dialect, from: &str, reference: &str) -> Option<String> {
    let mut r = reference.to_string();
    if dialect == Dialect::Grub {
        if r.starts_with('(') {
            r = r.split_once(')').map(|(_, p)| p.to_string())?;
        }
        for var in [
            "${prefix}",
            "$prefix",
            "${config_directory}",
            "$config_directory",
        ] {
            if let Some(rest) = r.strip_prefix(var) {
                r = format!("{}{rest}", dir_of(from));
            }
        }
        if r.contains('$') {
            return None;
        }
    }
    if r.is_empty() {
        return None;
    }
    Some(if r.starts_with('/') {
        normalize(&r)
    } else {
        normalize(&format!("{}/{r}", dir_of(from)))
    })
}

/// Reads a config file's text (UTF-8, else Latin-1; see [`super::text`]).
pub fn read_text(src: &dyn Source, e: &Entry) -> Result<(String, Encoding), IsoError> {
    if e.size as u64 > MAX_CONFIG {
        return Err(IsoError::malformed(format!(
            "{} is {} bytes: too large for a boot config",
            e.path, e.size
        )));
    }
    let bytes = read(src, e.extent as u64 * SECTOR, e.size as u64, &e.path)?;
    Ok(decode(&bytes))
}

pub fn references(dialect: Dialect, text: &str) -> Vec<String> {
    match dialect {
        Dialect::Grub => grub::references(text),
        Dialect::Syslinux => syslinux::references(text),
    }
}

/// Finds every boot config in `tree`.
pub fn discover(src: &dyn Source, tree: &Tree) -> Result<Vec<ConfigFile>, IsoError> {
    let mut queue: VecDeque<(Entry, Dialect)> = tree
        .entries
        .iter()
        .filter(|e| !e.is_dir && !e.multi_extent)
        .filter_map(|e| {
            seed_dialect(e.path.rsplit('/').next().unwrap_or("")).map(|d| (e.clone(), d))
        })
        .collect();
    let mut out: Vec<ConfigFile> = Vec::new();
    while let Some((entry, dialect)) = queue.pop_front() {
        if out
            .iter()
            .any(|c| c.entry.extent == entry.extent && c.entry.path == entry.path)
            || out.len() >= MAX_CONFIGS
        {
            continue;
        }
        let (text, encoding) = read_text(src, &entry)?;
        for r in references(dialect, &text) {
            if let Some(p) = resolve(dialect, &entry.path, &r) {
                if let Some(e) = tree.find(&p) {
                    if !e.is_dir && !e.multi_extent {
                        queue.push_back((e.clone(), dialect));
                    }
                }
            }
        }
        out.push(ConfigFile {
            entry,
            dialect,
            text,
            encoding,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_references() {
        let table = [
            (
                Dialect::Grub,
                "/boot/grub/grub.cfg",
                "$prefix/x86_64-efi/grub.cfg",
                Some("/boot/grub/x86_64-efi/grub.cfg"),
            ),
            (
                Dialect::Grub,
                "/EFI/BOOT/grub.cfg",
                "($root)/boot/grub/grub.cfg",
                Some("/boot/grub/grub.cfg"),
            ),
            (
                Dialect::Grub,
                "/boot/grub/grub.cfg",
                "${prefix}/../x.cfg",
                Some("/boot/x.cfg"),
            ),
            (Dialect::Grub, "/boot/grub/grub.cfg", "$cfgdir/x.cfg", None),
            (
                Dialect::Syslinux,
                "/isolinux/isolinux.cfg",
                "txt.cfg",
                Some("/isolinux/txt.cfg"),
            ),
            (
                Dialect::Syslinux,
                "/isolinux/isolinux.cfg",
                "/boot/menu.cfg",
                Some("/boot/menu.cfg"),
            ),
        ];
        for (d, from, r, want) in table {
            assert_eq!(resolve(d, from, r).as_deref(), want, "{r}");
        }
    }
}
