//! The agent's `write_image`: which disk is the root device ([`pick_root_device`], Ironic's
//! "smallest disk of at least 4 GiB unless hinted" is replaced by "the hint, else the first
//! non-removable whole disk"), how a checksum given as a checksum-file URL (SHA256SUMS style)
//! becomes a [`Checksum`] ([`checksum_from_file`]), and [`execute`], which runs a
//! [`WriteCommand`] with the writer.

use std::path::{Path, PathBuf};

use deploy_drivers::{ChecksumSpec, WriteCommand};

use crate::writer::{self, Checksum, Format, Source, WriteError, WriteOptions, WriteReport};

/// Why the agent could not run a write command.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no suitable root disk found (looked for non-removable whole disks in /sys/block): give a root_device hint")]
    NoDisk,
    #[error(
        "checksum file {url} has no line for {name:?}: check the file or give the checksum value"
    )]
    NotInChecksumFile { url: String, name: String },
    #[error("fetching checksum file {url}: {message}")]
    ChecksumFile { url: String, message: String },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A block device as seen in /sys/block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    pub name: String,
    pub size_bytes: u64,
    pub removable: bool,
}

/// The hint if given, else the first (by name) non-removable disk that is not a loop, ram,
/// zram, optical or device-mapper device and has a size (pure).
pub fn pick_root_device(hint: Option<&str>, disks: &[DiskInfo]) -> Option<PathBuf> {
    if let Some(h) = hint {
        return Some(PathBuf::from(h));
    }
    let mut ok: Vec<&DiskInfo> = disks
        .iter()
        .filter(|d| !d.removable && d.size_bytes > 0 && !is_virtual_disk(&d.name))
        .collect();
    ok.sort_by(|a, b| a.name.cmp(&b.name));
    ok.first()
        .map(|d| PathBuf::from(format!("/dev/{}", d.name)))
}

/// Whether a /sys/block name is a loop, RAM, optical, device-mapper, md, nbd or floppy
/// device rather than a disk to install on.
pub fn is_virtual_disk(name: &str) -> bool {
    ["loop", "ram", "zram", "sr", "dm-", "md", "nbd", "fd"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Lists /sys/block.
pub fn list_disks() -> Vec<DiskInfo> {
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
            DiskInfo {
                name: e.file_name().to_string_lossy().into_owned(),
                size_bytes: read("size").trim().parse::<u64>().unwrap_or(0) * 512,
                removable: read("removable").trim() == "1",
            }
        })
        .collect()
}

/// Finds `image_name`'s digest in a SHA256SUMS/SHA512SUMS-style text (`HEX  name` or
/// `HEX *name`), or the only digest of a one-line file (pure).
pub fn checksum_from_file(text: &str, image_name: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for l in &lines {
        let mut parts = l.splitn(2, char::is_whitespace);
        let (Some(hex), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = name.trim().trim_start_matches('*');
        let base = name.rsplit('/').next().unwrap_or(name);
        if name == image_name || base == image_name {
            return Some(hex.to_string());
        }
    }
    match lines.as_slice() {
        [only] if !only.contains(char::is_whitespace) => Some(only.to_string()),
        _ => None,
    }
}

fn image_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_string()
}

/// Resolves the command's checksum (fetching a checksum file when given by URL).
pub fn resolve_checksum(cmd: &WriteCommand) -> Result<Option<Checksum>, AgentError> {
    match &cmd.checksum {
        None => Ok(None),
        Some(ChecksumSpec::Value { algorithm, hex }) => {
            Ok(Some(Checksum::parse(&format!("{algorithm}:{hex}"))?))
        }
        Some(ChecksumSpec::FileUrl(url)) => {
            let fail = |message: String| AgentError::ChecksumFile {
                url: url.clone(),
                message,
            };
            let text = fetch_text(url).map_err(fail)?;
            let name = image_name(&cmd.image_url);
            let hex = checksum_from_file(&text, &name).ok_or(AgentError::NotInChecksumFile {
                url: url.clone(),
                name,
            })?;
            Ok(Some(Checksum::parse(&hex)?))
        }
    }
}

fn fetch_text(url: &str) -> Result<String, String> {
    let bytes = super::fetch::fetch_bytes(url, 1 << 20)?;
    String::from_utf8(bytes).map_err(|_| "the checksum file is not UTF-8 text".to_string())
}

/// The disk a write command goes to: its hint, else the first suitable disk.
pub fn root_device(cmd: &WriteCommand) -> Result<PathBuf, AgentError> {
    pick_root_device(cmd.root_device.as_deref(), &list_disks()).ok_or(AgentError::NoDisk)
}

/// Runs a write command: picks the root disk, resolves the checksum, writes a block device
/// under `allow` (empty: any). Blocking.
pub fn execute(
    cmd: &WriteCommand,
    allow: &[PathBuf],
    progress: impl Fn(writer::Progress),
) -> Result<WriteReport, AgentError> {
    let options = WriteOptions {
        allow: allow.to_vec(),
        ..WriteOptions::default()
    };
    execute_with(cmd, options, progress)
}

/// [`execute`] with the writer's options given whole (e.g. `allow_file` for a test's disk
/// file).
pub fn execute_with(
    cmd: &WriteCommand,
    options: WriteOptions,
    progress: impl Fn(writer::Progress),
) -> Result<WriteReport, AgentError> {
    execute_on(cmd, &root_device(cmd)?, options, progress)
}

/// Runs a write command onto `dest`. Blocking.
pub fn execute_on(
    cmd: &WriteCommand,
    dest: &Path,
    options: WriteOptions,
    progress: impl Fn(writer::Progress),
) -> Result<WriteReport, AgentError> {
    let checksum = resolve_checksum(cmd)?;
    Ok(writer::write_image(
        writer::WriteRequest {
            source: Source::parse(&cmd.image_url),
            dest: dest.to_path_buf(),
            checksum,
            format: Format::Auto,
            options,
        },
        progress,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, gib: u64, removable: bool) -> DiskInfo {
        DiskInfo {
            name: name.into(),
            size_bytes: gib << 30,
            removable,
        }
    }

    #[test]
    fn root_device_table() {
        let disks = [
            disk("loop0", 1, false),
            disk("sr0", 1, true),
            disk("sdb", 100, false),
            disk("sda", 50, false),
            disk("sdc", 8, true),
            disk("nvme0n1", 0, false),
        ];
        assert_eq!(
            pick_root_device(None, &disks),
            Some(PathBuf::from("/dev/sda"))
        );
        assert_eq!(
            pick_root_device(Some("/dev/sdb"), &disks),
            Some(PathBuf::from("/dev/sdb"))
        );
        assert_eq!(pick_root_device(None, &disks[..2]), None);
    }

    #[test]
    fn checksum_file_table() {
        let h1 = "a".repeat(64);
        let h2 = "b".repeat(64);
        let text = format!("# sums\n{h1}  other.img\n{h2} *images/disk.qcow2\n");
        assert_eq!(checksum_from_file(&text, "disk.qcow2"), Some(h2.clone()));
        assert_eq!(checksum_from_file(&text, "other.img"), Some(h1.clone()));
        assert_eq!(checksum_from_file(&text, "missing.img"), None);
        assert_eq!(checksum_from_file(&format!("{h1}\n"), "x"), Some(h1));
        assert_eq!(image_name("http://h/a/b/disk.qcow2"), "disk.qcow2");
    }
}
