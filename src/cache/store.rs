//! The on-disk layout; the filesystem is the truth and memory is only an index of it.
//!
//! ```text
//! <dir>/entries/<sha256>        the verified bytes (read-only once renamed here)
//! <dir>/entries/<sha256>.json   its metadata (written first; an entry exists iff both do)
//! <dir>/tmp/<key>.part          a download in progress (or interrupted: resumable)
//! <dir>/tmp/<key>.part.json     what the .part is: URL and validators, for Range resume
//! <dir>/tmp/<key>.lock          flock held by the process downloading <key>
//! <dir>/tmp/<key>.reserve       bytes of the quota that download holds (live while the lock is)
//! <dir>/leases/<id>.json        a lease: this entry is in use, never evict it
//! <dir>/leases/<id>.lock        flock held by the owner of a process lease (live while held)
//! <dir>/cache.lock              flock held for every scan, reservation, eviction and commit
//! ```
//!
//! Several processes may share one directory. Everything that decides what the quota holds or
//! removes files is done under [`CacheLock`] from a fresh [`scan`], so the decision sees every
//! process's entries, leases and reservations. Liveness is an flock, never a pid: the kernel
//! drops it when its owner dies however it dies, and nothing can reuse it.
//!
//! Blocking functions: call them from `spawn_blocking`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::CacheError;
use crate::durable;

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

/// How long a lease lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseScope {
    /// Until released, across restarts: a deploy records its lease id with the node and
    /// releases it at undeploy, whichever conductor process is alive then.
    #[default]
    Durable,
    /// Until released or until the owning process dies: the owner holds an flock on
    /// `leases/<id>.lock`, and a lease whose lock is free no longer pins.
    Process,
}

/// A lease protecting an entry from eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub sha256: String,
    pub holder: String,
    pub created_at: DateTime<Utc>,
    /// Absent in leases written before scopes existed: those are durable.
    #[serde(default)]
    pub scope: LeaseScope,
}

/// Quota held by one download in progress, in `tmp/<key>.reserve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationFile {
    pub bytes: u64,
    /// For people reading the directory; liveness is the key's flock.
    pub pid: u32,
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
    pub fn lease_lock(&self, id: &str) -> PathBuf {
        self.leases().join(format!("{id}.lock"))
    }
    pub fn reservation(&self, key: &str) -> PathBuf {
        self.tmp().join(format!("{key}.reserve"))
    }
    pub fn cache_lock(&self) -> PathBuf {
        self.root.join("cache.lock")
    }

    pub fn create_dirs(&self) -> Result<(), CacheError> {
        for d in [self.entries(), self.tmp(), self.leases()] {
            fs::create_dir_all(&d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        Ok(())
    }
}

/// Writes `value` as JSON to `path` with [`durable::write`], readable by the owner only
/// (publication records hold tokens, metadata holds URLs).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CacheError> {
    let data = serde_json::to_vec_pretty(value).map_err(|e| CacheError::Io {
        context: format!("encoding {}", path.display()),
        message: e.to_string(),
    })?;
    Ok(durable::write(path, &data, durable::Mode::Private)?)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let data = fs::read(path).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Removes a scratch file (a `.part`, a lock, a reservation), logging what is not "not found".
pub fn remove_quiet(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove file");
        }
    }
}

pub use crate::durable::FileLock;

impl From<durable::DurableError> for CacheError {
    fn from(e: durable::DurableError) -> Self {
        CacheError::Io {
            context: e.context,
            message: e.source.to_string(),
        }
    }
}

/// The cache-wide lock: held while reading the directory for a decision and carrying it out
/// (reserve, evict, lease, commit, GC), never during a download.
pub struct CacheLock {
    _lock: FileLock,
}

impl CacheLock {
    /// Blocks until held.
    pub fn acquire(layout: &Layout) -> Result<Self, CacheError> {
        Ok(Self {
            _lock: FileLock::acquire(&layout.cache_lock())?,
        })
    }
}

/// Quota held by a live download, as found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub key: String,
    pub bytes: u64,
}

/// What `scan` found: complete entries, live leases and reservations, and what it removed.
#[derive(Debug, Default)]
pub struct Scan {
    pub entries: Vec<EntryMeta>,
    pub leases: Vec<Lease>,
    pub reservations: Vec<Reserved>,
    pub removed: Vec<PathBuf>,
}

impl Scan {
    /// Bytes reserved by live downloads other than `except` (the caller's own key).
    pub fn reserved_except(&self, except: Option<&str>) -> u64 {
        self.reservations
            .iter()
            .filter(|r| Some(r.key.as_str()) != except)
            .map(|r| r.bytes)
            .sum()
    }
}

/// The entry `sha256` when it is complete on disk (metadata readable, data of its size).
pub fn read_entry(layout: &Layout, sha256: &str) -> Option<EntryMeta> {
    let path = layout.meta(sha256);
    let mut meta: EntryMeta = read_json(&path)?;
    let len = fs::metadata(layout.data(sha256)).ok()?.len();
    if meta.sha256 != sha256 || len != meta.size {
        return None;
    }
    // Hits record themselves in the file's mtime (`mark_used`), not in its JSON.
    let touched = fs::metadata(&path).and_then(|m| m.modified()).ok();
    if let Some(t) = touched.map(chrono::DateTime::<Utc>::from) {
        meta.last_used = meta.last_used.max(t);
    }
    Some(meta)
}

/// Records a use of entry `sha256` now by setting its metadata file's mtime: atomic, no
/// rewrite, no fsync (a lost update after a crash only makes the entry look older).
pub fn mark_used(layout: &Layout, sha256: &str) -> Result<EntryMeta, CacheError> {
    let path = layout.meta(sha256);
    let gone = || CacheError::NotFound(sha256.to_string());
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|_| gone())?;
    file.set_modified(std::time::SystemTime::now())
        .map_err(io_err(format!("marking {} used", path.display())))?;
    read_entry(layout, sha256).ok_or_else(gone)
}

/// Removes an entry's files, data first: without its data it is no entry any more.
pub fn remove_entry(layout: &Layout, sha256: &str) {
    remove_quiet(&layout.data(sha256));
    remove_quiet(&layout.meta(sha256));
}

/// Reads the cache directory under the cache lock (so removing what is dead is safe): process
/// leases whose owner's flock is free and reservations whose download key's flock is free are
/// removed, not returned. With `clean`, also deletes orphans (data without metadata, metadata
/// without data or unreadable, temp files) and `.part` files nobody is downloading that cannot
/// be resumed (no readable `.part.json`, no validator) or are older than `part_max_age`.
/// `.part` files it keeps count as reserved, so the quota covers every byte on disk.
pub fn scan(
    _held: &CacheLock,
    layout: &Layout,
    clean: bool,
    part_max_age: chrono::Duration,
) -> Result<Scan, CacheError> {
    let mut scan = Scan::default();
    let entries_dir = layout.entries();
    let names = list_names(&entries_dir)?;
    let mut good = std::collections::HashSet::new();
    for name in &names {
        if let Some(hash) = name.strip_suffix(".json") {
            if let Some(m) = read_entry(layout, hash) {
                good.insert(hash.to_string());
                scan.entries.push(m)
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
    scan_leases(layout, clean, &mut scan)?;
    scan_reservations(layout, &mut scan)?;
    if clean {
        clean_parts(layout, part_max_age, &mut scan.removed)?;
    }
    count_idle_parts(layout, &mut scan)?;
    Ok(scan)
}

/// Every byte on disk counts against the quota: a `.part` kept for a later resume, with no
/// live download reserving it, is counted as reserved by its key (its own download then
/// reuses that room).
fn count_idle_parts(layout: &Layout, scan: &mut Scan) -> Result<(), CacheError> {
    let tmp = layout.tmp();
    for name in list_names(&tmp)? {
        let Some(key) = name.strip_suffix(".part") else {
            continue;
        };
        if scan.reservations.iter().any(|r| r.key == key) {
            continue;
        }
        let bytes = fs::metadata(tmp.join(&name)).map_or(0, |m| m.len());
        scan.reservations.push(Reserved {
            key: key.to_string(),
            bytes,
        });
    }
    Ok(())
}

/// Whether a download could go on from its `.part`: resuming needs a strong validator to
/// check that the origin still has the same bytes (as `fetch` asks with If-Range).
pub fn resumable(meta: &PartMeta) -> bool {
    meta.etag.as_ref().is_some_and(|e| !e.starts_with("W/")) || meta.last_modified.is_some()
}

fn list_names(dir: &Path) -> Result<Vec<String>, CacheError> {
    Ok(fs::read_dir(dir)
        .map_err(io_err(format!("listing {}", dir.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect())
}

/// A file younger than this may belong to a write in progress in another process that does
/// not take the cache lock for it (a `.part.json`, a lease being written): not an orphan yet.
fn young(p: &Path) -> bool {
    let settling = std::time::Duration::from_secs(300);
    fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < settling)
}

fn scan_leases(layout: &Layout, clean: bool, scan: &mut Scan) -> Result<(), CacheError> {
    let dir = layout.leases();
    for name in list_names(&dir)? {
        let path = dir.join(&name);
        if let Some(id) = name.strip_suffix(".lock") {
            // A process lease's lock whose lease is gone (released, or its owner died while
            // creating it) and that nobody holds.
            if !layout.lease(id).exists() && !FileLock::is_held(&path)? {
                remove_quiet(&path);
                scan.removed.push(path);
            }
            continue;
        }
        let Some(id) = name.strip_suffix(".json") else {
            if clean && !young(&path) {
                remove_quiet(&path);
                scan.removed.push(path);
            }
            continue;
        };
        match read_json::<Lease>(&path) {
            Some(l)
                if l.scope == LeaseScope::Process
                    && !FileLock::is_held(&layout.lease_lock(id))? =>
            {
                tracing::info!(lease = %l.id, holder = %l.holder, sha256 = %l.sha256, "dropping the lease of a process that ended");
                remove_quiet(&path);
                remove_quiet(&layout.lease_lock(id));
                scan.removed.push(path);
            }
            Some(l) => scan.leases.push(l),
            None if clean && !young(&path) => {
                remove_quiet(&path);
                scan.removed.push(path);
            }
            None => {}
        }
    }
    Ok(())
}

fn scan_reservations(layout: &Layout, scan: &mut Scan) -> Result<(), CacheError> {
    let tmp = layout.tmp();
    for name in list_names(&tmp)? {
        let Some(key) = name.strip_suffix(".reserve") else {
            continue;
        };
        let path = tmp.join(&name);
        // Written under the cache lock by a downloader holding the key's lock: if the key's
        // lock is free, that downloader is gone.
        if !FileLock::is_held(&layout.lock(key))? {
            remove_quiet(&path);
            scan.removed.push(path);
            continue;
        }
        match read_json::<ReservationFile>(&path) {
            Some(r) => scan.reservations.push(Reserved {
                key: key.to_string(),
                bytes: r.bytes,
            }),
            // Written atomically under the cache lock, so never half-written: unreadable means
            // damaged; the live download's next reservation rewrites it.
            None => tracing::warn!(path = %path.display(), "unreadable reservation ignored"),
        }
    }
    Ok(())
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
            // A young temp file may be a `.part.json` being written by a downloader now.
            if name.ends_with(".tmp") && !young(&e.path()) {
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
        let keep = meta.is_some_and(|m| resumable(&m) && now - m.started_at <= max_age);
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
        let f = std::fs::File::options().write(true).open(path).unwrap();
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
        let held = CacheLock::acquire(&layout).unwrap();
        let scan = scan(&held, &layout, true, chrono::Duration::hours(1)).unwrap();
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

    fn lease(id: &str, scope: LeaseScope) -> Lease {
        Lease {
            id: id.into(),
            sha256: "aa".into(),
            holder: format!("holder-{id}"),
            created_at: Utc::now(),
            scope,
        }
    }

    // flock belongs to an open file description, so a second open in this process stands in
    // for another process: held means some live owner, free means its owner is gone.
    #[test]
    fn scan_drops_leases_and_reservations_whose_owner_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: dir.path().to_path_buf(),
        };
        layout.create_dirs().unwrap();
        for (id, scope) in [
            ("durable", LeaseScope::Durable),
            ("alive", LeaseScope::Process),
            ("dead", LeaseScope::Process),
        ] {
            write_json(&layout.lease(id), &lease(id, scope)).unwrap();
        }
        let owner = FileLock::try_acquire(&layout.lease_lock("alive"))
            .unwrap()
            .unwrap();
        drop(
            FileLock::try_acquire(&layout.lease_lock("dead"))
                .unwrap()
                .unwrap(),
        );
        // A lease written before scopes existed is durable.
        fs::write(
            layout.lease("old"),
            r#"{"id":"old","sha256":"aa","holder":"n","created_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let downloading = FileLock::try_acquire(&layout.lock("k1")).unwrap().unwrap();
        for key in ["k1", "k2"] {
            let r = ReservationFile { bytes: 7, pid: 1 };
            write_json(&layout.reservation(key), &r).unwrap();
        }
        let held = CacheLock::acquire(&layout).unwrap();
        let s = scan(&held, &layout, false, chrono::Duration::hours(1)).unwrap();
        let mut ids: Vec<&str> = s.leases.iter().map(|l| l.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["alive", "durable", "old"]);
        assert_eq!(
            s.reservations,
            vec![Reserved {
                key: "k1".into(),
                bytes: 7
            }]
        );
        assert_eq!(
            (s.reserved_except(None), s.reserved_except(Some("k1"))),
            (7, 0)
        );
        assert!(!layout.lease("dead").exists() && !layout.lease_lock("dead").exists());
        assert!(!layout.reservation("k2").exists());
        // Once their owners end, they stop pinning too.
        drop((owner, downloading));
        let s = scan(&held, &layout, false, chrono::Duration::hours(1)).unwrap();
        assert_eq!(s.leases.len(), 2);
        assert!(s.reservations.is_empty());
    }
}
