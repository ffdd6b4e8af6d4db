//! Content-addressed image cache: fetch, verify, quota, leases, GC.
//!
//! Job: make an image named by URL (+ checksum) available as a verified local file, once,
//! under a hard byte quota, and keep it while someone uses it.
//!
//! - Sources: `http(s)://` streamed with reqwest; `file://` only under
//!   [`CacheConfig::allowed_file_dirs`].
//! - Checksums ([`checksum`]): a value with its algorithm (sha256, sha512; md5 only with
//!   `allow_md5`), a checksum-file URL (SHA256SUMS style, matched by the image's file name), or a
//!   bare value whose algorithm is guessed from its length. Verified while streaming; a mismatch
//!   discards the bytes and the error says expected vs got.
//! - Entries are addressed by sha256; the filesystem is the truth ([`store`]): `.part` → fsync →
//!   rename, metadata beside; orphans and stale `.part` files are removed at open.
//! - Single flight: concurrent requests for one image share one download (in-process through a
//!   shared future, across processes through an flock per download key).
//! - An interrupted download resumes with Range + If-Range (ETag or Last-Modified); entries
//!   fetched without a checksum are revalidated with a conditional GET after `revalidate_after`.
//! - Hard quota ([`quota`]): room is reserved before a download starts (Content-Length), by
//!   evicting expired entries, then least recently used ones; leased entries are never evicted,
//!   and when the room cannot be made nothing is evicted and the error names
//!   needed/free/pinned/reserved.
//! - GC on a cron schedule and under pressure; metrics counters.
//!
//! Across processes (a `serve` and an operator's `ironcast cache …`, or two conductors on one
//! host, sharing one directory) the quota and leases hold as they do within one:
//!
//! - Every decision (reserve room and evict for it, evict one entry, GC, take a lease, commit a
//!   download) runs on the blocking pool under one flock on `<dir>/cache.lock`,
//!   from a fresh scan of the directory, and carries out its removals before letting go. The
//!   lock is never held during a download or an fsync of image bytes.
//! - A download's reservation is the file `tmp/<key>.reserve` (its byte count), written under
//!   the cache lock by the process holding the key's download flock and removed at commit in
//!   the same locked step that makes the entry appear. It counts while that flock is held: a
//!   downloader killed with SIGKILL stops counting at once, and the next scan removes the file.
//! - Leases are files in `leases/`. [`LeaseScope::Durable`] leases (the `Images` port, i.e.
//!   deploys) pin until released, across restarts, since the node records the lease and
//!   releases it at undeploy. [`LeaseScope::Process`] leases (`cache fetch --hold`) pin while
//!   their owner holds an flock on `leases/<id>.lock`; once it is free the lease is removed.
//!   Liveness is always an flock, never a pid: no reuse, no boot id, released by the kernel.
//! - A lease is written under the cache lock only if the entry is still on disk, so a
//!   concurrent eviction either happened first (the lease fails with NotFound and `acquire`
//!   fetches again) or sees the lease. A hit needs no lock: it sets the metadata file's mtime
//!   (the entry's last use, for LRU) and re-reads the entry, so an entry another process
//!   evicted is downloaded again, never served as a missing file.
//! - This process's in-memory index is only a copy of the last scan: `list`, `find` and
//!   `metrics` may lag other processes until the next locked operation; decisions never do.
//! - Each process enforces its own `quota_bytes`: processes sharing a directory must be given
//!   the same quota. The directory must be on a local filesystem, where flock is reliable.
//! - A plain [`Cache::fetch`] pins nothing: a caller that keeps using the file leases it
//!   ([`Cache::acquire`]), or another process may evict it under pressure.
//!
//! Entries can also be built locally ([`Ingest`]: a captured disk) and named; a name is a
//! durable lease (`image:<name>`), so named images are never evicted.
//!
//! Non-goals: decompressing or converting images (the writer does that); caching the ISO
//! engine's patch sets (they are small and owned by their node).

pub mod checksum;
pub mod config;
mod fetch;
mod images;
mod ingest;
pub mod quota;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::future::{BoxFuture, FutureExt, Shared};
use sha2::Digest as _;

pub use checksum::{Algorithm, Expected};
pub use config::CacheConfig;
pub use deploy_drivers::ports::ChecksumSpec;
pub use ingest::{is_name_lease, lease_name, Ingest};
pub use store::{EntryMeta, Lease, LeaseScope};

use store::{CacheLock, FileLock, Layout, Scan};

/// Why a cache operation failed. Cloneable: one download's error is shared by every waiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("invalid image URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("file {path} is not under an allowed directory; add its directory to allowed_file_dirs in [cache]")]
    FileNotAllowed { path: String },
    #[error("{0}")]
    BadChecksum(String),
    #[error("checksum mismatch for {url}: expected {algorithm} {expected}, got {got}; the download was discarded")]
    ChecksumMismatch {
        url: String,
        algorithm: String,
        expected: String,
        got: String,
    },
    #[error("checksum file {checksum_url} has no line for {file_name}")]
    ChecksumNotListed {
        checksum_url: String,
        file_name: String,
    },
    #[error("cache quota exceeded: needed {needed} bytes, free {free} bytes, pinned by leases {pinned} bytes, reserved by downloads in progress {reserved} bytes (quota {quota}); nothing was evicted. Release leases, wait for the downloads, raise quota_bytes or free space")]
    QuotaExceeded {
        needed: u64,
        free: u64,
        pinned: u64,
        /// Held by downloads in progress in any process sharing the directory.
        reserved: u64,
        quota: u64,
    },
    #[error("origin answered {status} for {url}")]
    Origin { url: String, status: u16 },
    #[error("cannot fetch {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url} sent {got} bytes but announced {expected}")]
    Truncated {
        url: String,
        expected: u64,
        got: u64,
    },
    #[error("no cache entry {0}")]
    NotFound(String),
    #[error("entry {sha256} is leased by {holders}; release the leases first")]
    Leased { sha256: String, holders: String },
    #[error("invalid cache configuration: {0}")]
    Config(String),
    #[error("{context}: {message}")]
    Io { context: String, message: String },
}

pub type Result<T, E = CacheError> = std::result::Result<T, E>;

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub evictions: AtomicU64,
}

/// A point-in-time copy of the metrics, with quota use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    pub hits: u64,
    pub misses: u64,
    pub bytes_fetched: u64,
    pub evictions: u64,
    pub used_bytes: u64,
    pub pinned_bytes: u64,
    pub quota_bytes: u64,
    pub entries: u64,
}

impl MetricsSnapshot {
    /// Prometheus text exposition, for the lead's /metrics.
    pub fn render_prometheus(&self) -> String {
        let mut s = String::new();
        for (name, kind, v) in [
            ("ironcast_cache_hits_total", "counter", self.hits),
            ("ironcast_cache_misses_total", "counter", self.misses),
            (
                "ironcast_cache_fetched_bytes_total",
                "counter",
                self.bytes_fetched,
            ),
            ("ironcast_cache_evictions_total", "counter", self.evictions),
            ("ironcast_cache_used_bytes", "gauge", self.used_bytes),
            ("ironcast_cache_pinned_bytes", "gauge", self.pinned_bytes),
            ("ironcast_cache_quota_bytes", "gauge", self.quota_bytes),
            ("ironcast_cache_entries", "gauge", self.entries),
        ] {
            s.push_str(&format!("# TYPE {name} {kind}\n{name} {v}\n"));
        }
        s
    }
}

/// One entry as listed by `cache list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EntryInfo {
    #[serde(flatten)]
    pub meta: EntryMeta,
    pub path: PathBuf,
    pub leases: Vec<Lease>,
}

/// What a GC run removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub evicted: Vec<String>,
    pub freed_bytes: u64,
    pub removed_files: Vec<PathBuf>,
}

/// Called with (bytes so far, total when known) while a download streams.
pub type Progress = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

type Flight = Shared<BoxFuture<'static, Result<EntryMeta>>>;

/// This process's index of the directory as of its last locked scan: answers lookups, lists and
/// metrics; every decision reads the directory again under the cache lock.
#[derive(Default)]
struct State {
    entries: HashMap<String, EntryMeta>,
    leases: HashMap<String, Lease>,
    /// Bytes reserved by downloads in progress, in every process.
    reserved: u64,
}

struct Inner {
    cfg: CacheConfig,
    layout: Layout,
    client: reqwest::Client,
    allowed_dirs: Vec<PathBuf>,
    state: Mutex<State>,
    flights: Mutex<HashMap<String, Flight>>,
    /// The flocks that keep this process's [`LeaseScope::Process`] leases alive.
    process_leases: Mutex<HashMap<String, FileLock>>,
    metrics: Metrics,
}

/// The image cache; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

/// How a request relates to what is cached.
enum Lookup {
    Hit(EntryMeta),
    Revalidate(EntryMeta),
    Miss,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CacheError::Io {
            context: "cache worker thread".into(),
            message: e.to_string(),
        })?
}

impl Cache {
    /// Opens (creating) the cache directory, removes orphans and stale partial downloads, and
    /// indexes the entries and leases found there.
    pub async fn open(cfg: CacheConfig) -> Result<Self> {
        cron_schedule(&cfg.gc_schedule)?;
        let layout = Layout {
            root: cfg.dir.clone(),
        };
        let mut allowed_dirs = Vec::new();
        for d in &cfg.allowed_file_dirs {
            match std::fs::canonicalize(d) {
                Ok(p) => allowed_dirs.push(p),
                Err(e) => {
                    tracing::warn!(dir = %d.display(), error = %e, "allowed_file_dirs entry is not usable")
                }
            }
        }
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(cfg.read_timeout)
            .user_agent(concat!("ironcast/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CacheError::Config(format!("HTTP client: {e}")))?;
        let ttl = chrono_ttl(&cfg);
        let l2 = layout.clone();
        let scan = blocking(move || {
            l2.create_dirs()?;
            let held = CacheLock::acquire(&l2)?;
            store::scan(&held, &l2, true, ttl)
        })
        .await?;
        for p in &scan.removed {
            tracing::info!(path = %p.display(), "removed stray cache file");
        }
        let inner = Inner {
            cfg,
            layout,
            client,
            allowed_dirs,
            state: Mutex::new(State::default()),
            flights: Mutex::new(HashMap::new()),
            process_leases: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
        };
        inner.refresh(&scan);
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    pub fn config(&self) -> &CacheConfig {
        &self.inner.cfg
    }

    /// Path of the bytes of entry `sha256`.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.inner.layout.data(sha256)
    }

    /// Makes the image available and verified; returns its metadata (data at [`Cache::path_of`]).
    pub async fn fetch(&self, url: &str, checksum: Option<&ChecksumSpec>) -> Result<EntryMeta> {
        self.fetch_with_progress(url, checksum, None).await
    }

    /// [`Cache::fetch`], reporting download progress to `progress` (when this call downloads).
    pub async fn fetch_with_progress(
        &self,
        url: &str,
        checksum: Option<&ChecksumSpec>,
        progress: Option<Progress>,
    ) -> Result<EntryMeta> {
        fetch::check_url(&self.inner, url)?;
        let expected = self.resolve_checksum(url, checksum).await?;
        if let Lookup::Hit(meta) = self.inner.lookup(url, expected.as_ref()) {
            match self.inner.touch(&meta.sha256, None).await {
                Ok(meta) => {
                    self.inner.metrics.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(meta);
                }
                // Evicted by another process since this one last looked: download it again.
                Err(CacheError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let key = download_key(url, expected.as_ref());
        let flight = {
            let mut flights = lock(&self.inner.flights);
            match flights.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let inner = self.inner.clone();
                    let (u, k) = (url.to_string(), key.clone());
                    let task = tokio::spawn(async move {
                        let out =
                            fetch::download(&inner, &u, expected.as_ref(), &k, progress).await;
                        lock(&inner.flights).remove(&k);
                        out
                    });
                    let f = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(CacheError::Io {
                                context: "download task".into(),
                                message: e.to_string(),
                            })
                        })
                    }
                    .boxed()
                    .shared();
                    flights.insert(key, f.clone());
                    f
                }
            }
        };
        flight.await
    }

    async fn resolve_checksum(
        &self,
        url: &str,
        spec: Option<&ChecksumSpec>,
    ) -> Result<Option<Expected>> {
        let allow_md5 = self.inner.cfg.allow_md5;
        match spec {
            None => Ok(None),
            Some(ChecksumSpec::Value { algorithm, hex }) => {
                Expected::parse(algorithm, hex, allow_md5).map(Some)
            }
            Some(ChecksumSpec::FileUrl(sums_url)) => {
                fetch::check_url(&self.inner, sums_url)?;
                let text = fetch::read_small(&self.inner, sums_url).await?;
                let file_name = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| u.path_segments()?.next_back().map(str::to_string))
                    .unwrap_or_default();
                let hex = checksum::find_in_sums(&text, &file_name).ok_or_else(|| {
                    CacheError::ChecksumNotListed {
                        checksum_url: sums_url.clone(),
                        file_name: file_name.clone(),
                    }
                })?;
                Expected::parse("auto", &hex, allow_md5).map(Some)
            }
        }
    }

    /// Fetches and leases the image to `holder` in one step, so GC cannot slip in between.
    pub async fn acquire(
        &self,
        url: &str,
        checksum: Option<&ChecksumSpec>,
        holder: &str,
    ) -> Result<(Lease, EntryMeta)> {
        let id = uuid::Uuid::new_v4().to_string();
        self.acquire_as(&id, url, checksum, holder).await
    }

    /// [`Cache::acquire`] under the lease id `lease_id`, chosen (and recorded) by the caller.
    pub async fn acquire_as(
        &self,
        lease_id: &str,
        url: &str,
        checksum: Option<&ChecksumSpec>,
        holder: &str,
    ) -> Result<(Lease, EntryMeta)> {
        for _ in 0..3 {
            let meta = self.fetch(url, checksum).await?;
            match self
                .lease_as(lease_id, &meta.sha256, holder, LeaseScope::Durable)
                .await
            {
                Ok(lease) => return Ok((lease, meta)),
                // Evicted between fetch and lease: fetch again.
                Err(CacheError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(CacheError::Io {
            context: format!("leasing {url}"),
            message: "the entry kept being evicted under quota pressure".into(),
        })
    }

    /// Leases entry `sha256` to `holder` until released, across restarts
    /// ([`LeaseScope::Durable`]): it is not evicted meanwhile, by any process.
    pub async fn lease(&self, sha256: &str, holder: &str) -> Result<Lease> {
        self.lease_with(sha256, holder, LeaseScope::Durable).await
    }

    /// Leases entry `sha256` to `holder` with the given scope. A [`LeaseScope::Process`] lease
    /// also ends when this `Cache` is dropped or the process dies.
    pub async fn lease_with(&self, sha256: &str, holder: &str, scope: LeaseScope) -> Result<Lease> {
        let id = uuid::Uuid::new_v4().to_string();
        self.lease_as(&id, sha256, holder, scope).await
    }

    /// [`Cache::lease_with`] under the id `id`, chosen by the caller (a plain name: letters,
    /// digits, `-`, `_`).
    pub async fn lease_as(
        &self,
        id: &str,
        sha256: &str,
        holder: &str,
        scope: LeaseScope,
    ) -> Result<Lease> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(CacheError::Io {
                context: format!("leasing {sha256}"),
                message: format!("lease id {id:?} is not a plain name (letters, digits, - and _)"),
            });
        }
        let lease = Lease {
            id: id.to_string(),
            sha256: sha256.to_string(),
            holder: holder.to_string(),
            created_at: Utc::now(),
            scope,
        };
        let layout = self.inner.layout.clone();
        let id = lease.id.clone();
        // The owner's flock exists before the lease file does, so no scan sees the lease
        // without a live owner.
        let owner = match scope {
            LeaseScope::Durable => None,
            LeaseScope::Process => Some(
                blocking(move || {
                    let path = layout.lease_lock(&id);
                    FileLock::try_acquire(&path)?.ok_or_else(|| CacheError::Io {
                        context: format!("locking {}", path.display()),
                        message: "a fresh lease lock is held by someone else".into(),
                    })
                })
                .await?,
            ),
        };
        let l2 = lease.clone();
        // Under the cache lock: an eviction deciding now either ran before (and the entry is
        // gone: NotFound) or runs after and sees the lease.
        let res = self
            .inner
            .with_lock(move |_, layout| {
                if store::read_entry(layout, &l2.sha256).is_none() {
                    return Err(CacheError::NotFound(l2.sha256.clone()));
                }
                store::write_json(&layout.lease(&l2.id), &l2)
            })
            .await;
        match res {
            Ok(()) => {
                lock(&self.inner.state)
                    .leases
                    .insert(lease.id.clone(), lease.clone());
                if let Some(owner) = owner {
                    lock(&self.inner.process_leases).insert(lease.id.clone(), owner);
                }
                Ok(lease)
            }
            Err(e) => {
                if let Some(owner) = owner {
                    let path = self.inner.layout.lease_lock(&lease.id);
                    drop(owner);
                    blocking(move || {
                        store::remove_quiet(&path);
                        Ok(())
                    })
                    .await?;
                }
                if let CacheError::NotFound(_) = e {
                    lock(&self.inner.state).entries.remove(sha256);
                }
                Err(e)
            }
        }
    }

    /// Releases a lease; unknown ids are fine.
    pub async fn release(&self, lease_id: &str) -> Result<()> {
        if lease_id.contains(['/', '\\']) || lease_id.starts_with('.') {
            return Ok(());
        }
        lock(&self.inner.state).leases.remove(lease_id);
        let owner = lock(&self.inner.process_leases).remove(lease_id);
        let (path, lock_path) = (
            self.inner.layout.lease(lease_id),
            self.inner.layout.lease_lock(lease_id),
        );
        blocking(move || {
            let removed = crate::durable::remove(&path).map(drop);
            // The lease file goes first: a scan never sees it with its owner's lock free.
            if owner.is_some() {
                drop(owner);
                store::remove_quiet(&lock_path);
            }
            Ok(removed?)
        })
        .await
    }

    /// Every entry with its leases, most recently used first.
    pub fn list(&self) -> Vec<EntryInfo> {
        let st = lock(&self.inner.state);
        let mut out: Vec<EntryInfo> = st
            .entries
            .values()
            .map(|m| EntryInfo {
                meta: m.clone(),
                path: self.inner.layout.data(&m.sha256),
                leases: st
                    .leases
                    .values()
                    .filter(|l| l.sha256 == m.sha256)
                    .cloned()
                    .collect(),
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.meta.last_used));
        out
    }

    /// Finds an entry by sha256 (or a unique prefix of it, at least 8 digits).
    pub fn find(&self, prefix: &str) -> Result<EntryInfo> {
        let prefix = prefix.trim_start_matches("sha256:").to_ascii_lowercase();
        let found: Vec<EntryInfo> = self
            .list()
            .into_iter()
            .filter(|e| prefix.len() >= 8 && e.meta.sha256.starts_with(&prefix))
            .collect();
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one")),
            _ => Err(CacheError::NotFound(prefix)),
        }
    }

    /// Evicts one entry now; refuses one leased by any process.
    pub async fn evict(&self, sha256: &str) -> Result<()> {
        let sha = sha256.to_string();
        let scan = self
            .inner
            .with_lock(move |held, layout| {
                let mut scan = store::scan(held, layout, false, chrono::Duration::MAX)?;
                let holders: Vec<String> = scan
                    .leases
                    .iter()
                    .filter(|l| l.sha256 == sha)
                    .map(|l| format!("{} (lease {})", l.holder, l.id))
                    .collect();
                if !holders.is_empty() {
                    return Err(CacheError::Leased {
                        sha256: sha,
                        holders: holders.join(", "),
                    });
                }
                if !scan.entries.iter().any(|e| e.sha256 == sha) {
                    return Err(CacheError::NotFound(sha));
                }
                evict_locked(layout, &mut scan, std::slice::from_ref(&sha))?;
                Ok(scan)
            })
            .await?;
        self.inner.refresh(&scan);
        self.inner.count_evictions(&[sha256.to_string()]);
        Ok(())
    }

    /// Removes expired unleased entries (and LRU ones while above quota) and stale partial
    /// downloads, deciding from the directory as every process sharing it left it.
    pub async fn gc(&self) -> Result<GcReport> {
        let now = Utc::now();
        let ttl = chrono_ttl(&self.inner.cfg);
        let quota = self.inner.cfg.quota_bytes;
        let (report, scan) = self
            .inner
            .with_lock(move |held, layout| {
                let mut scan = store::scan(held, layout, true, ttl)?;
                let candidates = candidates(&scan);
                let plan = quota::gc_plan(&candidates, scan.reserved_except(None), quota, now, ttl);
                let freed = candidates
                    .iter()
                    .filter(|c| plan.contains(&c.digest))
                    .map(|c| c.size)
                    .sum();
                evict_locked(layout, &mut scan, &plan)?;
                let report = GcReport {
                    evicted: plan,
                    freed_bytes: freed,
                    removed_files: std::mem::take(&mut scan.removed),
                };
                Ok((report, scan))
            })
            .await?;
        self.inner.refresh(&scan);
        self.inner.count_evictions(&report.evicted);
        Ok(report)
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.inner.metrics;
        let st = lock(&self.inner.state);
        let pinned: std::collections::HashSet<&str> =
            st.leases.values().map(|l| l.sha256.as_str()).collect();
        MetricsSnapshot {
            hits: m.hits.load(Ordering::Relaxed),
            misses: m.misses.load(Ordering::Relaxed),
            bytes_fetched: m.bytes_fetched.load(Ordering::Relaxed),
            evictions: m.evictions.load(Ordering::Relaxed),
            used_bytes: st.used(),
            pinned_bytes: st
                .entries
                .values()
                .filter(|e| pinned.contains(e.sha256.as_str()))
                .map(|e| e.size)
                .sum(),
            quota_bytes: self.inner.cfg.quota_bytes,
            entries: st.entries.len() as u64,
        }
    }

    /// Runs [`Cache::gc`] on the configured cron schedule until the task is aborted.
    pub fn spawn_gc(&self) -> Result<tokio::task::JoinHandle<()>> {
        let schedule = cron_schedule(&self.inner.cfg.gc_schedule)?;
        let cache = self.clone();
        Ok(tokio::spawn(async move {
            for next in schedule.upcoming_owned(Utc) {
                let wait = (next - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                match cache.gc().await {
                    Ok(r) => tracing::info!(
                        evicted = r.evicted.len(),
                        freed_bytes = r.freed_bytes,
                        "cache gc"
                    ),
                    Err(e) => tracing::warn!(error = %e, "cache gc failed"),
                }
            }
        }))
    }
}

/// A running cache: the cache plus its GC task. Dropping it stops GC.
pub struct CacheHandle {
    pub cache: Cache,
    gc: tokio::task::JoinHandle<()>,
}

impl CacheHandle {
    /// The `Images` port over this cache, for the conductor.
    pub fn images(&self) -> Arc<dyn deploy_drivers::ports::Images> {
        Arc::new(self.cache.clone())
    }
}

impl Drop for CacheHandle {
    fn drop(&mut self) {
        self.gc.abort();
    }
}

/// Opens the cache and starts its GC schedule: what `ironcast serve` calls.
pub async fn start(cfg: CacheConfig) -> Result<CacheHandle> {
    let cache = Cache::open(cfg).await?;
    let gc = cache.spawn_gc()?;
    Ok(CacheHandle { cache, gc })
}

fn cron_schedule(expr: &str) -> Result<cron::Schedule> {
    expr.parse().map_err(|e| {
        CacheError::Config(format!(
            "gc_schedule {expr:?} is not a cron expression (sec min hour day month weekday): {e}"
        ))
    })
}

fn chrono_ttl(cfg: &CacheConfig) -> chrono::Duration {
    chrono::Duration::from_std(cfg.ttl).unwrap_or(chrono::Duration::MAX)
}

/// Names the download of `url` verified against `expected`: the single-flight and `.part` key.
fn download_key(url: &str, expected: Option<&Expected>) -> String {
    let mut h = sha2::Sha256::new();
    h.update(url.as_bytes());
    h.update(b"\n");
    if let Some(e) = expected {
        h.update(e.label().as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

impl State {
    fn used(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum::<u64>() + self.reserved
    }
}

/// The planner's view of a scan: pinned means leased by any live lease.
fn candidates(scan: &Scan) -> Vec<quota::Candidate> {
    scan.entries
        .iter()
        .map(|e| quota::Candidate {
            digest: e.sha256.clone(),
            size: e.size,
            last_used: e.last_used,
            fetched_at: e.fetched_at,
            pinned: scan.leases.iter().any(|l| l.sha256 == e.sha256),
        })
        .collect()
}

/// Removes entries under the cache lock and drops them from `scan`.
fn evict_locked(layout: &Layout, scan: &mut Scan, shas: &[String]) -> Result<()> {
    if shas.is_empty() {
        return Ok(());
    }
    for s in shas {
        tracing::info!(sha256 = %s, "evicting cache entry");
        store::remove_entry(layout, s);
    }
    scan.entries.retain(|e| !shas.contains(&e.sha256));
    Ok(crate::durable::sync_dir(&layout.meta("x"))?)
}

/// The quota held by this process's download of one key, in `tmp/<key>.reserve`; the file is
/// removed when the download ends (and ignored by every scan once the key's flock is free).
struct Reservation {
    path: PathBuf,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // One unlink, usually of a file the commit already removed; a leftover is harmless
        // because the key's flock is released right after.
        store::remove_quiet(&self.path);
    }
}

impl Inner {
    fn lookup(&self, url: &str, expected: Option<&Expected>) -> Lookup {
        let st = lock(&self.state);
        match expected {
            Some(e) if e.algorithm == Algorithm::Sha256 => match st.entries.get(&e.hex) {
                Some(m) => Lookup::Hit(m.clone()),
                None => Lookup::Miss,
            },
            Some(e) => st
                .entries
                .values()
                .find(|m| m.checksums.get(e.algorithm.name()) == Some(&e.hex))
                .map_or(Lookup::Miss, |m| Lookup::Hit(m.clone())),
            None => {
                let found = st
                    .entries
                    .values()
                    .filter_map(|m| Some((m, m.sources.get(url)?)))
                    .max_by_key(|(m, _)| m.fetched_at);
                match found {
                    None => Lookup::Miss,
                    Some((m, src)) => {
                        let fresh = src.validated_at.is_some_and(|t| {
                            (Utc::now() - t).to_std().unwrap_or_default()
                                < self.cfg.revalidate_after
                        });
                        if fresh {
                            Lookup::Hit(m.clone())
                        } else {
                            Lookup::Revalidate(m.clone())
                        }
                    }
                }
            }
        }
    }

    /// Runs `f` on the blocking pool holding the cache-wide lock.
    async fn with_lock<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CacheLock, &Layout) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let layout = self.layout.clone();
        blocking(move || {
            let held = CacheLock::acquire(&layout)?;
            f(&held, &layout)
        })
        .await
    }

    /// Replaces this process's index with what a locked scan found.
    fn refresh(&self, scan: &Scan) {
        let mut st = lock(&self.state);
        st.entries = scan
            .entries
            .iter()
            .map(|m| (m.sha256.clone(), m.clone()))
            .collect();
        st.leases = scan
            .leases
            .iter()
            .map(|l| (l.id.clone(), l.clone()))
            .collect();
        st.reserved = scan.reserved_except(None);
    }

    fn count_evictions(&self, shas: &[String]) {
        self.metrics
            .evictions
            .fetch_add(shas.len() as u64, Ordering::Relaxed);
    }

    /// Records a use of entry `sha256` (for LRU), and that `validated` (a URL) was just
    /// revalidated, on the metadata as on disk now (another process may have added sources).
    /// NotFound when another process evicted it.
    async fn touch(&self, sha256: &str, validated: Option<&str>) -> Result<EntryMeta> {
        let (sha, url) = (sha256.to_string(), validated.map(str::to_string));
        let res = match url {
            // A plain hit only moves the entry up the LRU order: the metadata file's mtime
            // says so (see `store::read_entry`), with no lock, rewrite or fsync, so a fleet
            // deploying one image does not queue on the cache lock.
            None => {
                let layout = self.layout.clone();
                blocking(move || store::mark_used(&layout, &sha)).await
            }
            Some(url) => {
                self.with_lock(move |_, layout| {
                    let mut meta =
                        store::read_entry(layout, &sha).ok_or(CacheError::NotFound(sha))?;
                    let now = Utc::now();
                    meta.last_used = now;
                    if let Some(src) = meta.sources.get_mut(&url) {
                        src.validated_at = Some(now);
                    }
                    store::write_json(&layout.meta(&meta.sha256), &meta)?;
                    Ok(meta)
                })
                .await
            }
        };
        let mut st = lock(&self.state);
        match &res {
            Ok(m) => {
                st.entries.insert(m.sha256.clone(), m.clone());
            }
            Err(CacheError::NotFound(_)) => {
                st.entries.remove(sha256);
            }
            Err(_) => {}
        }
        res
    }

    /// Reserves quota for the download of `key`, `total` bytes in all (replacing what it held),
    /// evicting by the quota plan from a fresh scan of every process's entries, leases and
    /// reservations; evicts nothing when the room cannot be made.
    async fn reserve(&self, key: &str, total: u64) -> Result<Reservation> {
        let (quota, ttl, now) = (self.cfg.quota_bytes, chrono_ttl(&self.cfg), Utc::now());
        let k = key.to_string();
        let (plan, scan) = self
            .with_lock(move |held, layout| {
                let mut scan = store::scan(held, layout, false, chrono::Duration::MAX)?;
                let plan = quota::plan(
                    &candidates(&scan),
                    scan.reserved_except(Some(&k)),
                    quota,
                    total,
                    now,
                    ttl,
                )
                .map_err(|s| CacheError::QuotaExceeded {
                    needed: s.needed,
                    free: s.free,
                    pinned: s.pinned,
                    reserved: s.reserved,
                    quota: s.quota,
                })?;
                evict_locked(layout, &mut scan, &plan)?;
                let file = store::ReservationFile {
                    bytes: total,
                    pid: std::process::id(),
                };
                store::write_json(&layout.reservation(&k), &file)?;
                scan.reservations.retain(|r| r.key != k);
                scan.reservations.push(store::Reserved {
                    key: k,
                    bytes: total,
                });
                Ok((plan, scan))
            })
            .await?;
        self.refresh(&scan);
        self.count_evictions(&plan);
        Ok(Reservation {
            path: self.layout.reservation(key),
            bytes: total,
        })
    }

    /// Re-reads the directory (other processes add, evict, lease and release) without cleaning.
    async fn rescan(&self) -> Result<()> {
        let scan = self
            .with_lock(|held, layout| store::scan(held, layout, false, chrono::Duration::MAX))
            .await?;
        self.refresh(&scan);
        Ok(())
    }

    fn is_allowed_file(&self, path: &Path) -> bool {
        self.allowed_dirs.iter().any(|d| path.starts_with(d))
    }
}
