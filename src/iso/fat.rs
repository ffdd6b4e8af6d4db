//! grub.cfg files inside an EFI FAT image, read and rewritten in memory with the `fatfs` crate.
//! The image keeps its size; the caller turns the old/new bytes into patches with [`diff`].
//! fatfs is not hardened against hostile images, so every call runs under `catch_unwind` and a
//! panic becomes an error (the only place we do this).

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use fatfs::{FileSystem, FsOptions};

use crate::overlay::Patch;

/// Walk limits for hostile images.
const MAX_DEPTH: usize = 8;
const MAX_FILES: usize = 4096;

/// A grub config inside the image.
#[derive(Debug, Clone)]
pub struct FatConfig {
    pub path: String,
    pub text: String,
    pub encoding: super::text::Encoding,
}

/// The in-memory image with a budget on bytes read: a FAT with a looping cluster chain makes
/// fatfs iterate forever inside one call; running out of budget turns that into an error.
struct Budgeted {
    inner: Cursor<Vec<u8>>,
    left: u64,
}

impl Budgeted {
    fn new(image: &[u8]) -> Self {
        Self {
            left: (image.len() as u64).saturating_mul(8).max(1 << 20),
            inner: Cursor::new(image.to_vec()),
        }
    }
}

impl Read for Budgeted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left < buf.len() as u64 {
            return Err(io::Error::other(
                "read budget exhausted (a cluster chain loops?)",
            ));
        }
        self.left -= buf.len() as u64;
        self.inner.read(buf)
    }
}

impl Write for Budgeted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Never grow the image: writes past its end fail.
        let pos = self.inner.position();
        let len = self.inner.get_ref().len() as u64;
        if pos.saturating_add(buf.len() as u64) > len {
            return Err(io::Error::other("write past the end of the EFI image"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Budgeted {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err("the FAT file system is corrupt (the FAT reader gave up)".into()),
    }
}

fn is_grub_cfg(name: &str) -> bool {
    name.eq_ignore_ascii_case("grub.cfg")
}

/// Lists every grub.cfg in the image.
pub fn list_configs(image: &[u8]) -> Result<Vec<FatConfig>, String> {
    guarded(|| {
        let mut cur = Budgeted::new(image);
        let fs = FileSystem::new(&mut cur, FsOptions::new())
            .map_err(|e| format!("not a FAT file system: {e}"))?;
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), fs.root_dir(), 0usize)];
        let mut seen = 0usize;
        while let Some((path, dir, depth)) = stack.pop() {
            for entry in dir.iter() {
                let entry = entry.map_err(|e| format!("reading directory {path}/: {e}"))?;
                seen += 1;
                if seen > MAX_FILES {
                    return Err(format!("more than {MAX_FILES} files"));
                }
                let name = entry.file_name();
                if name == "." || name == ".." {
                    continue;
                }
                let p = format!("{path}/{name}");
                if entry.is_dir() {
                    if depth < MAX_DEPTH {
                        stack.push((p, entry.to_dir(), depth + 1));
                    }
                } else if is_grub_cfg(&name) && entry.len() <= super::bootcfg::MAX_CONFIG {
                    let mut buf = Vec::new();
                    entry
                        .to_file()
                        .read_to_end(&mut buf)
                        .map_err(|e| format!("reading {p}: {e}"))?;
                    let (text, encoding) = super::text::decode(&buf);
                    out.push(FatConfig {
                        path: p,
                        text,
                        encoding,
                    });
                }
            }
        }
        Ok(out)
    })
}

/// Rewrites files (path → new bytes) and returns the new image bytes, same length.
pub fn rewrite(image: &[u8], edits: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    guarded(|| {
        let mut cur = Budgeted::new(image);
        {
            let fs = FileSystem::new(&mut cur, FsOptions::new().update_accessed_date(false))
                .map_err(|e| format!("not a FAT file system: {e}"))?;
            for (path, text) in edits {
                let rel = path.trim_start_matches('/');
                let mut f = fs
                    .root_dir()
                    .open_file(rel)
                    .map_err(|e| format!("opening {path}: {e}"))?;
                f.truncate()
                    .map_err(|e| format!("truncating {path}: {e}"))?;
                f.write_all(text).map_err(|e| {
                    format!("writing {path}: {e} (is the EFI image full? it cannot grow)")
                })?;
                f.flush().map_err(|e| format!("writing {path}: {e}"))?;
            }
            fs.unmount()
                .map_err(|e| format!("closing the file system: {e}"))?;
        }
        let out = cur.inner.into_inner();
        if out.len() != image.len() {
            return Err("the FAT image changed size".into());
        }
        Ok(out)
    })
}

/// Byte patches turning `old` into `new` (same length), placed at `base` in the image. Runs
/// closer than 64 bytes are merged to keep the patch set small.
pub fn diff(base: u64, old: &[u8], new: &[u8]) -> Vec<Patch> {
    const GAP: usize = 64;
    let mut out: Vec<Patch> = Vec::new();
    let mut i = 0;
    let n = old.len().min(new.len());
    while i < n {
        if old[i] == new[i] {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        let mut j = end;
        while j < n && j - end < GAP {
            if old[j] != new[j] {
                end = j + 1;
            }
            j += 1;
        }
        out.push(Patch {
            offset: base + start as u64,
            data: new[start..end].to_vec(),
        });
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_merges_close_runs() {
        let old = vec![0u8; 300];
        let mut new = old.clone();
        new[10] = 1;
        new[20] = 2;
        new[200] = 3;
        let p = diff(1000, &old, &new);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].offset, 1010);
        assert_eq!(p[0].data.len(), 11);
        assert_eq!(p[1].offset, 1200);
        assert_eq!(p[1].data, vec![3]);
    }

    fn image_with_config() -> Vec<u8> {
        let mut img = Cursor::new(vec![0u8; 8 << 20]);
        fatfs::format_volume(
            &mut img,
            fatfs::FormatVolumeOptions::new().fat_type(fatfs::FatType::Fat16),
        )
        .unwrap();
        {
            let fs = FileSystem::new(&mut img, FsOptions::new()).unwrap();
            fs.root_dir().create_dir("EFI").unwrap();
            fs.root_dir().create_dir("EFI/BOOT").unwrap();
            let mut f = fs.root_dir().create_file("EFI/BOOT/grub.cfg").unwrap();
            f.write_all(b"linux /k q\n").unwrap();
        }
        img.into_inner()
    }

    #[test]
    fn rewrites_in_place_same_size() {
        let img = image_with_config();
        let found = list_configs(&img).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "/EFI/BOOT/grub.cfg");
        let new = rewrite(
            &img,
            &[(found[0].path.clone(), b"linux /k q m=1\n".to_vec())],
        )
        .unwrap();
        assert_eq!(new.len(), img.len());
        assert_eq!(list_configs(&new).unwrap()[0].text, "linux /k q m=1\n");
        assert!(!diff(0, &img, &new).is_empty());
    }

    #[test]
    fn looping_cluster_chains_end() {
        let mut img = image_with_config();
        let bps = u16::from_le_bytes([img[11], img[12]]) as usize;
        let reserved = u16::from_le_bytes([img[14], img[15]]) as usize;
        let fat_sectors = u16::from_le_bytes([img[22], img[23]]) as usize;
        let fat = reserved * bps;
        // Every cluster points at itself: every chain loops.
        for k in 2..(fat_sectors * bps / 2) {
            img[fat + 2 * k..fat + 2 * k + 2].copy_from_slice(&(k as u16).to_le_bytes());
        }
        let start = std::time::Instant::now();
        let _ = list_configs(&img);
        let _ = rewrite(&img, &[("/EFI/BOOT/grub.cfg".into(), vec![b'x'; 100_000])]);
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_directory_at_a_reserved_cluster_is_an_error() {
        // Found by the iso_structured fuzz target: clusters 0 and 1 are reserved, and fatfs
        // computes `cluster - 2` for a directory entry that names one.
        let mut img = image_with_config();
        let bps = u16::from_le_bytes([img[11], img[12]]) as usize;
        let reserved = u16::from_le_bytes([img[14], img[15]]) as usize;
        let fats = img[16] as usize;
        let fat_sectors = u16::from_le_bytes([img[22], img[23]]) as usize;
        let root = (reserved + fats * fat_sectors) * bps;
        let efi = (root..root + 512)
            .step_by(32)
            .find(|&e| &img[e..e + 11] == b"EFI        ")
            .expect("the EFI directory entry");
        img[efi + 26..efi + 28].copy_from_slice(&1u16.to_le_bytes());
        assert!(list_configs(&img).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut img = vec![0xFFu8; 64 * 1024];
        img[510] = 0x55;
        img[511] = 0xAA;
        assert!(list_configs(&img).is_err());
        assert!(list_configs(&[]).is_err());
    }
}
