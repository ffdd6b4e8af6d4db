//! The on-disk layout; the filesystem is the truth and memory is only an index of it.
//!
//! ```text
//! <dir>/entries/<sha256>        the verified bytes (read-only once renamed here)
//! <dir>/entries/<sha256>.json   its metadata (written first; an entry exists iff both do)
//! <dir>/tmp/<key>.part          a download in progress (or interrupted: resumable)
//! <dir>/tmp/<key>.part.json     what the .part is: URL and validators, for Range resume
//! <dir>/tmp/<key>.lock          flock held by the process downloading <key>
//! <dir>/leases/<id>.json        a lease: this entry is in use, never evict it
//! ```
//! Blocking functions: call them from `spawn_blocking`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::CacheError;

/// Where one URL's copy of an entry came from, for revalidation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub validated_at: Option<DateTime<Utc>>,
}

/// Metadata of one cached entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// sha256 of the bytes, lowercase hex: the content address.
    pub sha256: String,
    pub size: u64,
    /// Every checksum computed while it was fetched: algorithm name → hex.
    pub checksums: BTreeMap<String, String>,
    /// URLs this content was fetched from.
    pub sources: BTreeMap<String, Source>,
    pub fetched_at: DateTime<Utc>,
    pub last_used: DateTime<Utc>,
}

/// What an interrupted download was, so it can be resumed with Range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub total: Option<u64>,
    pub started_at: DateTime<Utc>,
}

/// A lease protecting an entry from eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub sha256: String,
    pub holder: String,
    pub created_at: DateTime<Utc>,
}

pub fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> CacheError {
    let context = context.into();
    move |e| CacheError::Io {
        context,
        message: e.to_string(),
    }
}

/// Paths of the layout under one cache directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn entries(&self) -> PathBuf {
        self.root.join("entries")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn leases(&self) -> PathBuf {
        self.root.join("leases")
    }
    pub fn data(&self, sha256: &str) -> PathBuf {
        self.entries().join(sha256)
    }
    pub fn meta(&self, sha256: &str) -> PathBuf {
        self.entries().join(format!("{sha256}.json"))
    }
    pub fn part(&self, key: &str) -> PathBuf {
        self.tmp().join(format!("{key}.part"))
    }
    pub fn part_meta(&self, key: &str) -> PathBuf {
        self.tmp().join(format!("{key}.part.json"))
    }
    pub fn lock(&self, key: &str) -> PathBuf {
        self.tmp().join(format!("{key}.lock"))
    }
    pub fn lease(&self, id: &str) -> PathBuf {
        self.leases().join(format!("{id}.json"))
    }

    pub fn create_dirs(&self) -> Result<(), CacheError> {
        for d in [self.entries(), self.tmp(), self.leases()] {
            fs::create_dir_all(&d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        Ok(())
    }
}

/// Writes `value` as JSON to `path` atomically: temp file, fsync, rename, fsync the directory.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CacheError> {
    // A temp name per writer: two tasks touching one entry's metadata must not share it.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("json.{}-{n}.tmp", std::process::id()));
    let data = serde_json::to_vec_pretty(value).map_err(|e| CacheError::Io {
        context: format!("encoding {}", path.display()),
        message: e.to_string(),
    })?;
    let mut f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    f.write_all(&data)
        .and_then(|_| f.sync_all())
        .map_err(io_err(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io_err(format!("renaming {}", tmp.display())))?;
    sync_parent(path)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let data = fs::read(path).ok()?;
    serde_json::from_slice(&data).ok()
}

pub fn sync_parent(path: &Path) -> Result<(), CacheError> {
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_err(format!("syncing directory {}", parent.display())))?;
    }
    Ok(())
}

pub fn remove_quiet(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove file");
        }
    }
}

/// An exclusive advisory lock (flock) held until dropped: one downloader per key across
/// processes sharing the cache directory.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock is held.
    pub fn acquire(path: &Path) -> Result<Self, CacheError> {
        Self::lock(path, libc::LOCK_EX).map(|l| l.expect("blocking flock returns a lock"))
    }
    /// Returns None when another process holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, CacheError> {
        Self::lock(path, libc::LOCK_EX | libc::LOCK_NB)
    }
    fn lock(path: &Path, op: libc::c_int) -> Result<Option<Self>, CacheError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err(format!("opening lock {}", path.display())))?;
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(Some(Self { _file: file }));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(io_err(format!("locking {}", path.display()))(e)),
            }
        }
    }
}

/// What `scan` found: complete entries, leases, and what it cleaned.
#[derive(Debug, Default)]
pub struct Scan {
    pub entries: Vec<EntryMeta>,
    pub leases: Vec<Lease>,
    pub removed: Vec<PathBuf>,
}

/// Reads the cache directory; with `clean`, deletes orphans (data without metadata, metadata
/// without data or unreadable, temp files) and `.part` files nobody is downloading that cannot
/// be resumed (no readable `.part.json`) or are older than `part_max_age`.
pub fn scan(
    layout: &Layout,
    clean: bool,
    part_max_age: chrono::Duration,
) -> Result<Scan, CacheError> {
    let mut scan = Scan::default();
    let entries_dir = layout.entries();
    let names: Vec<String> = fs::read_dir(&entries_dir)
        .map_err(io_err(format!("listing {}", entries_dir.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    // A file younger than this may belong to a download committing right now (another process
    // writes the metadata, then renames the data): not an orphan yet.
    let settling = std::time::Duration::from_secs(300);
    let young = |p: &Path| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < settling)
    };
    let mut good = std::collections::HashSet::new();
    for name in &names {
        if let Some(hash) = name.strip_suffix(".json") {
            let meta: Option<EntryMeta> = read_json(&entries_dir.join(name));
            let data = fs::metadata(layout.data(hash)).ok();
            match (meta, data) {
                (Some(m), Some(d)) if m.sha256 == hash && d.len() == m.size => {
                    good.insert(hash.to_string());
                    scan.entries.push(m)
                }
                _ => {}
            }
        }
    }
    if clean {
        for name in &names {
            let stem = name.strip_suffix(".json").unwrap_or(name);
            let path = entries_dir.join(name);
            if !good.contains(stem) && !young(&path) {
                remove_quiet(&path);
                scan.removed.push(path);
            }
        }
    }
    let leases_dir = layout.leases();
    for e in fs::read_dir(&leases_dir)
        .map_err(io_err(format!("listing {}", leases_dir.display())))?
        .flatten()
    {
        match read_json::<Lease>(&e.path()) {
            Some(l) => scan.leases.push(l),
            None if clean && !young(&e.path()) => {
                remove_quiet(&e.path());
                scan.removed.push(e.path());
            }
            None => {}
        }
    }
    if clean {
        clean_parts(layout, part_max_age, &mut scan.removed)?;
    }
    Ok(scan)
}

fn clean_parts(
    layout: &Layout,
    max_age: chrono::Duration,
    removed: &mut Vec<PathBuf>,
) -> Result<(), CacheError> {
    let tmp = layout.tmp();
    let now = Utc::now();
    for e in fs::read_dir(&tmp)
        .map_err(io_err(format!("listing {}", tmp.display())))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_suffix(".part") else {
            if name.ends_with(".tmp") {
                remove_quiet(&e.path());
                removed.push(e.path());
            }
            continue;
        };
        // Someone is downloading it right now: leave it alone.
        let Some(_lock) = FileLock::try_acquire(&layout.lock(key))? else {
            continue;
        };
        let meta: Option<PartMeta> = read_json(&layout.part_meta(key));
        let keep = meta.is_some_and(|m| now - m.started_at <= max_age);
        if !keep {
            for p in [layout.part(key), layout.part_meta(key), layout.lock(key)] {
                if p.exists() {
                    remove_quiet(&p);
                    removed.push(p);
                }
            }
        }
    }
    // Sidecars and locks whose .part is gone.
    for e in fs::read_dir(&tmp)
        .map_err(io_err(format!("listing {}", tmp.display())))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(key) = name.strip_suffix(".part.json") {
            if !layout.part(key).exists() {
                if let Some(_lock) = FileLock::try_acquire(&layout.lock(key))? {
                    remove_quiet(&e.path());
                    removed.push(e.path());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn scan_keeps_entries_and_resumable_parts_and_cleans_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: dir.path().to_path_buf(),
        };
        layout.create_dirs().unwrap();
        let now = Utc::now();
        let meta = EntryMeta {
            sha256: "aa".into(),
            size: 3,
            checksums: BTreeMap::new(),
            sources: BTreeMap::new(),
            fetched_at: now,
            last_used: now,
        };
        fs::write(layout.data("aa"), b"abc").unwrap();
        write_json(&layout.meta("aa"), &meta).unwrap();
        // Orphans: data without metadata, metadata without data, wrong size, temp file.
        fs::write(layout.data("bb"), b"x").unwrap();
        write_json(
            &layout.meta("cc"),
            &EntryMeta {
                sha256: "cc".into(),
                ..meta.clone()
            },
        )
        .unwrap();
        fs::write(layout.data("dd"), b"too long").unwrap();
        write_json(
            &layout.meta("dd"),
            &EntryMeta {
                sha256: "dd".into(),
                ..meta.clone()
            },
        )
        .unwrap();
        fs::write(layout.entries().join("ee.json.tmp"), b"{").unwrap();
        for p in ["bb", "cc.json", "dd", "dd.json", "ee.json.tmp"] {
            age(&layout.entries().join(p), 3600);
        }
        // A young orphan may be a commit in progress by another process: kept for now.
        fs::write(layout.data("ff"), b"x").unwrap();
        // Partial downloads: resumable (sidecar) kept, bare ones removed.
        fs::write(layout.part("k1"), b"12").unwrap();
        let pm = PartMeta {
            url: "http://x/y".into(),
            etag: Some("\"e\"".into()),
            last_modified: None,
            total: Some(10),
            started_at: now,
        };
        write_json(&layout.part_meta("k1"), &pm).unwrap();
        fs::write(layout.part("k2"), b"12").unwrap();
        let scan = scan(&layout, true, chrono::Duration::hours(1)).unwrap();
        assert_eq!(scan.entries, vec![meta]);
        let mut left: Vec<String> = fs::read_dir(layout.entries())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["aa", "aa.json", "ff"]);
        assert!(layout.part("k1").exists() && layout.part_meta("k1").exists());
        assert!(!layout.part("k2").exists());
    }
}
