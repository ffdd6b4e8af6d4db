//! Image cache against a real HTTP origin: a small axum server in this file (127.0.0.1:0) that
//! counts requests, honours Range/If-Range/If-None-Match with ETag and Last-Modified, can be
//! slow, and can drop a connection mid-body (a fault a well-behaved peer will not produce on
//! demand, hence project-owned).

mod common;

use common::pseudo_random;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as AxPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use deploy_drivers::ports::{ChecksumSpec, ImageRequest, Images};
use ironcast::cache::{Cache, CacheConfig, CacheError};
use sha2::Digest as _;

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn sha(data: &[u8]) -> ChecksumSpec {
    ChecksumSpec::Value {
        algorithm: "sha256".into(),
        hex: sha256(data),
    }
}

#[derive(Clone)]
struct File {
    data: Arc<Vec<u8>>,
    etag: String,
    last_modified: String,
}

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    range: Option<String>,
    conditional: bool,
    status: u16,
}

#[derive(Default)]
struct OriginState {
    files: Mutex<HashMap<String, File>>,
    seen: Mutex<Vec<Seen>>,
    /// The next image response is cut after this many bytes, once the receiver reads true (the
    /// test saw them reach the client's `.part`): a dropped connection without timing.
    drop_after: Mutex<Option<(usize, tokio::sync::watch::Receiver<bool>)>>,
    chunk_delay: Mutex<Option<Duration>>,
    /// The next image response stops after this many bytes until the receiver reads true:
    /// a download held mid-flight for as long as a test needs, without timing.
    pause_after: Mutex<Option<(usize, tokio::sync::watch::Receiver<bool>)>>,
    /// Behave like an origin that honours Range but ignores If-Range.
    ignore_if_range: std::sync::atomic::AtomicBool,
    /// Send bodies chunked, with no Content-Length.
    no_length: std::sync::atomic::AtomicBool,
    version: AtomicUsize,
}

#[derive(Clone)]
struct Origin {
    state: Arc<OriginState>,
    base: String,
}

impl Origin {
    async fn start() -> Self {
        let state = Arc::new(OriginState::default());
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::get(serve_origin))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { state, base }
    }
    fn put(&self, path: &str, data: Vec<u8>) -> String {
        let v = self.state.version.fetch_add(1, Ordering::SeqCst);
        let file = File {
            data: Arc::new(data),
            etag: format!("\"v{v}\""),
            last_modified: httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000 + v as u64),
            ),
        };
        self.state
            .files
            .lock()
            .unwrap()
            .insert(path.to_string(), file);
        format!("{}/{path}", self.base)
    }
    fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

async fn serve_origin(
    State(st): State<Arc<OriginState>>,
    AxPath(path): AxPath<String>,
    headers: HeaderMap,
) -> Response {
    let h = |n: header::HeaderName| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let file = st.files.lock().unwrap().get(&path).cloned();
    let mut seen = Seen {
        path: path.clone(),
        range: h(header::RANGE),
        conditional: h(header::IF_NONE_MATCH).is_some() || h(header::IF_MODIFIED_SINCE).is_some(),
        status: 404,
    };
    let Some(file) = file else {
        st.seen.lock().unwrap().push(seen);
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = file.data.len();
    if h(header::IF_NONE_MATCH).as_deref() == Some(file.etag.as_str()) {
        seen.status = 304;
        st.seen.lock().unwrap().push(seen);
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, file.etag.clone())],
        )
            .into_response();
    }
    let if_range_ok = st.ignore_if_range.load(Ordering::SeqCst)
        || h(header::IF_RANGE).is_none_or(|v| v == file.etag || v == file.last_modified);
    let asked = match (h(header::RANGE), if_range_ok) {
        (Some(r), true) => r
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok()),
        _ => None,
    };
    if asked.is_some_and(|n| n >= len) {
        // As nginx answers a range that starts at or past the end.
        seen.status = 416;
        st.seen.lock().unwrap().push(seen);
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [
                (header::CONTENT_RANGE, format!("bytes */{len}")),
                (header::ETAG, file.etag.clone()),
            ],
        )
            .into_response();
    }
    let start = asked;
    let from = start.unwrap_or(0);
    seen.status = if start.is_some() { 206 } else { 200 };
    st.seen.lock().unwrap().push(seen);
    let drop_after = st.drop_after.lock().unwrap().take();
    let delay = *st.chunk_delay.lock().unwrap();
    let pause = st.pause_after.lock().unwrap().take();
    let data = file.data.clone();
    let stream = async_stream_chunks(data, from, drop_after, delay, pause);
    let mut resp = Response::builder()
        .header(header::ETAG, file.etag.clone())
        .header(header::LAST_MODIFIED, file.last_modified.clone())
        .header(header::ACCEPT_RANGES, "bytes");
    if !st.no_length.load(Ordering::SeqCst) {
        resp = resp.header(header::CONTENT_LENGTH, len - from);
    }
    if start.is_some() {
        resp = resp.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {from}-{}/{len}", len - 1),
        );
    }
    resp.body(Body::from_stream(stream)).unwrap()
}

fn async_stream_chunks(
    data: Arc<Vec<u8>>,
    from: usize,
    drop_after: Option<(usize, tokio::sync::watch::Receiver<bool>)>,
    delay: Option<Duration>,
    pause: Option<(usize, tokio::sync::watch::Receiver<bool>)>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    const CHUNK: usize = 64 << 10;
    futures::stream::unfold((from, 0usize), move |(pos, sent)| {
        let data = data.clone();
        let pause = pause.clone();
        let drop_after = drop_after.clone();
        async move {
            if pos >= data.len() {
                return None;
            }
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if let Some((n, mut open)) = pause.clone() {
                if sent >= n {
                    let _ = open.wait_for(|o| *o).await;
                }
            }
            let pause_at = pause.map(|(n, _)| n).filter(|n| sent < *n);
            if let Some((n, mut cut)) = drop_after.clone().filter(|(n, _)| sent >= *n) {
                // Once the client has the first n bytes, cut the connection mid-body.
                let _ = cut.wait_for(|c| *c).await;
                debug_assert!(sent == n);
                return Some((
                    Err(std::io::Error::other("origin drops the connection")),
                    (data.len(), sent),
                ));
            }
            let end = (pos + CHUNK).min(data.len());
            let end = drop_after.map_or(end, |(n, _)| end.min(pos + (n - sent)));
            let end = pause_at.map_or(end, |n| end.min(pos + (n - sent)));
            Some((
                Ok(Bytes::copy_from_slice(&data[pos..end])),
                (end, sent + end - pos),
            ))
        }
    })
}

/// Fetches `url` through `cache` while the origin cuts the connection once the first `bytes`
/// have reached the download's `.part` (seen on disk, not waited for); returns the fetch's error.
async fn fetch_cut_after(origin: &Origin, cache: &Cache, url: &str, bytes: usize) -> CacheError {
    let (cut, when) = tokio::sync::watch::channel(false);
    *origin.state.drop_after.lock().unwrap() = Some((bytes, when));
    let fetching = {
        let (cache, url) = (cache.clone(), url.to_string());
        tokio::spawn(async move { cache.fetch(&url, None).await })
    };
    let tmp = cache.config().dir.join("tmp");
    common::wait_until("the first bytes reach the .part", || {
        files_ending(&tmp, ".part")
            .iter()
            .any(|p| std::fs::metadata(tmp.join(p)).is_ok_and(|m| m.len() >= bytes as u64))
    })
    .await;
    cut.send(true).unwrap();
    fetching.await.unwrap().unwrap_err()
}

fn cfg(dir: &Path) -> CacheConfig {
    CacheConfig {
        dir: dir.to_path_buf(),
        quota_bytes: 100 << 20,
        ..CacheConfig::default()
    }
}

/// Rewrites entry `sha`'s metadata as if it had been downloaded an hour ago.
fn backdate(dir: &Path, sha: &str) {
    let path = dir.join("entries").join(format!("{sha}.json"));
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    meta["fetched_at"] = serde_json::json!(chrono::Utc::now() - chrono::Duration::hours(1));
    std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
}

fn entry_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("entries"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_make_one_origin_request() {
    let origin = Origin::start().await;
    let data = pseudo_random(3 << 20, 1);
    let url = origin.put("img/one.iso", data.clone());
    *origin.state.chunk_delay.lock().unwrap() = Some(Duration::from_millis(5));
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cfg(dir.path())).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (cache, url) = (cache.clone(), url.clone());
        tasks.push(tokio::spawn(async move { cache.fetch(&url, None).await }));
    }
    let mut shas = Vec::new();
    for t in tasks {
        shas.push(t.await.unwrap().unwrap().sha256);
    }
    assert!(shas.iter().all(|s| *s == sha256(&data)));
    assert_eq!(
        origin.requests("img/one.iso").len(),
        1,
        "exactly one request reaches the origin"
    );
    assert_eq!(std::fs::read(cache.path_of(&shas[0])).unwrap(), data);
    let m = cache.metrics();
    assert_eq!(
        (m.misses, m.bytes_fetched, m.entries),
        (1, data.len() as u64, 1)
    );
    // A later request is a hit: still one origin request.
    cache.fetch(&url, Some(&sha(&data))).await.unwrap();
    assert_eq!(origin.requests("img/one.iso").len(), 1);
    assert_eq!(cache.metrics().hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_checksum_never_becomes_an_entry() {
    let origin = Origin::start().await;
    let data = pseudo_random(200_000, 2);
    let url = origin.put("img/bad.iso", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cfg(dir.path())).await.unwrap();
    let wrong = "0".repeat(64);
    let spec = ChecksumSpec::Value {
        algorithm: "sha256".into(),
        hex: wrong.clone(),
    };
    let err = cache.fetch(&url, Some(&spec)).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CacheError::ChecksumMismatch { .. }), "{msg}");
    assert!(
        msg.contains(&format!("expected sha256 {wrong}"))
            && msg.contains(&format!("got {}", sha256(&data))),
        "{msg}"
    );
    assert!(cache.list().is_empty());
    assert!(entry_files(dir.path()).is_empty());
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".part"))
        .collect();
    assert!(tmp.is_empty(), "the bad download is discarded");
    // sha512 given as value, and a SHA256SUMS file matched by name, both verify.
    let d512 = hex::encode(sha2::Sha512::digest(&data));
    let e = cache
        .fetch(
            &url,
            Some(&ChecksumSpec::Value {
                algorithm: "auto".into(),
                hex: d512.clone(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(e.checksums.get("sha512"), Some(&d512));
    let sums = origin.put(
        "img/SHA256SUMS",
        format!(
            "{}  other.iso\n{} *bad.iso\n",
            "1".repeat(64),
            sha256(&data)
        )
        .into_bytes(),
    );
    let e2 = cache
        .fetch(&url, Some(&ChecksumSpec::FileUrl(sums.clone())))
        .await
        .unwrap();
    assert_eq!(e2.sha256, sha256(&data));
    let url_other = origin.put("img/missing.iso", b"x".to_vec());
    let err = cache
        .fetch(&url_other, Some(&ChecksumSpec::FileUrl(sums)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("has no line for missing.iso"),
        "{err}"
    );
    // md5 only when enabled.
    let md5 = ChecksumSpec::Value {
        algorithm: "md5".into(),
        hex: "0".repeat(32),
    };
    assert!(cache
        .fetch(&url, Some(&md5))
        .await
        .unwrap_err()
        .to_string()
        .contains("md5 checksums are disabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_urls_only_under_allowed_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    let data = pseudo_random(10_000, 3);
    std::fs::write(allowed.join("a.iso"), &data).unwrap();
    std::fs::write(dir.path().join("secret"), b"nope").unwrap();
    let cache = Cache::open(CacheConfig {
        allowed_file_dirs: vec![allowed.clone()],
        ..cfg(&dir.path().join("c"))
    })
    .await
    .unwrap();
    let e = cache
        .fetch(
            &format!("file://{}/a.iso", allowed.display()),
            Some(&sha(&data)),
        )
        .await
        .unwrap();
    assert_eq!(e.size, 10_000);
    for sneaky in [
        format!("file://{}/secret", dir.path().display()),
        format!("file://{}/../secret", allowed.display()),
    ] {
        let err = cache.fetch(&sneaky, None).await.unwrap_err();
        assert!(
            matches!(err, CacheError::FileNotAllowed { .. }),
            "{sneaky}: {err}"
        );
    }
    assert!(matches!(
        cache.fetch("ftp://x/y", None).await.unwrap_err(),
        CacheError::InvalidUrl { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_is_clear_and_evicts_nothing_pinned() {
    let origin = Origin::start().await;
    let (a, b, c) = (
        pseudo_random(1000, 10),
        pseudo_random(1000, 11),
        pseudo_random(1500, 12),
    );
    let (ua, ub, uc) = (
        origin.put("a", a.clone()),
        origin.put("b", b.clone()),
        origin.put("c", c.clone()),
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(CacheConfig {
        quota_bytes: 2500,
        ..cfg(dir.path())
    })
    .await
    .unwrap();
    let images: &dyn Images = &cache;
    let la = images
        .acquire(
            &ImageRequest {
                url: ua.clone(),
                checksum: Some(sha(&a)),
            },
            "node-a",
            "lease-a",
        )
        .await
        .unwrap();
    let lb = images
        .acquire(
            &ImageRequest {
                url: ub.clone(),
                checksum: Some(sha(&b)),
            },
            "node-b",
            "lease-b",
        )
        .await
        .unwrap();
    assert_eq!(la.digest, format!("sha256:{}", sha256(&a)));
    assert_eq!(
        (la.lease.as_str(), lb.lease.as_str()),
        ("lease-a", "lease-b")
    );
    assert_eq!(std::fs::read(&la.path).unwrap(), a);
    let err = cache.fetch(&uc, Some(&sha(&c))).await.unwrap_err();
    assert_eq!(
        err,
        CacheError::QuotaExceeded {
            needed: 1500,
            free: 500,
            pinned: 2000,
            reserved: 0,
            quota: 2500
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("needed 1500 bytes, free 500 bytes, pinned by leases 2000 bytes")
            && msg.contains("nothing was evicted"),
        "{msg}"
    );
    let port_err = images
        .acquire(
            &ImageRequest {
                url: uc.clone(),
                checksum: None,
            },
            "node-c",
            "lease-c",
        )
        .await
        .unwrap_err();
    assert_eq!(port_err.kind, deploy_drivers::ports::PortErrorKind::NoSpace);
    assert_eq!(cache.list().len(), 2, "nothing evicted for nothing");
    assert_eq!(cache.metrics().evictions, 0);
    assert_eq!(
        origin
            .requests("c")
            .iter()
            .filter(|s| s.status == 200)
            .count(),
        2,
        "refused before any byte was written"
    );
    // Leases survive a restart: a reopened cache still refuses.
    drop(cache);
    let cache = Cache::open(CacheConfig {
        quota_bytes: 2500,
        ..cfg(dir.path())
    })
    .await
    .unwrap();
    assert!(matches!(
        cache.fetch(&uc, Some(&sha(&c))).await.unwrap_err(),
        CacheError::QuotaExceeded { .. }
    ));
    assert!(matches!(
        cache.evict(&sha256(&a)).await.unwrap_err(),
        CacheError::Leased { .. }
    ));
    // Release one: now c fits by evicting b only.
    let images: &dyn Images = &cache;
    images.release(&lb.lease).await.unwrap();
    images.release(&lb.lease).await.unwrap();
    cache.fetch(&uc, Some(&sha(&c))).await.unwrap();
    let mut left: Vec<String> = cache.list().into_iter().map(|e| e.meta.sha256).collect();
    left.sort();
    let mut want = vec![sha256(&a), sha256(&c)];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(cache.metrics().evictions, 1);
    assert!(!cache.path_of(&sha256(&b)).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_first_then_lru_and_cron_gc() {
    let origin = Origin::start().await;
    let blobs: Vec<Vec<u8>> = (0..5).map(|i| pseudo_random(1000, 20 + i)).collect();
    let urls: Vec<String> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| origin.put(&format!("t{i}"), b.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = CacheConfig {
        quota_bytes: 3000,
        ttl: Duration::from_secs(3),
        ..cfg(dir.path())
    };
    let cache = Cache::open(config.clone()).await.unwrap();
    let get = |i: usize| {
        let (cache, url, spec) = (cache.clone(), urls[i].clone(), sha(&blobs[i]));
        async move { cache.fetch(&url, Some(&spec)).await.unwrap() }
    };
    let has = |i: usize| {
        cache
            .list()
            .iter()
            .any(|e| e.meta.sha256 == sha256(&blobs[i]))
    };
    get(0).await;
    // Downloaded an hour ago, as far as the cache can tell (its decisions read the directory).
    backdate(dir.path(), &sha256(&blobs[0]));
    get(1).await;
    get(2).await;
    // 0 is used most recently but was downloaded more than the TTL ago: it is expired.
    get(0).await;
    get(1).await;
    // LRU order now: 2, 1, 0. Expired: 0.
    get(3).await;
    assert!(
        !has(0) && has(1) && has(2) && has(3),
        "the expired entry goes first, though recently used"
    );
    get(4).await;
    assert!(
        !has(2) && has(1) && has(3) && has(4),
        "then the least recently used"
    );
    assert_eq!(cache.metrics().evictions, 2);
    assert_eq!(
        origin.requests("t0").len(),
        1,
        "hits do not reach the origin"
    );

    // GC on a cron schedule (every second here) removes expired unleased entries.
    let leased = cache.lease(&sha256(&blobs[1]), "node-keep").await.unwrap();
    for i in [1, 3, 4] {
        backdate(dir.path(), &sha256(&blobs[i]));
    }
    let gc = ironcast::cache::start(CacheConfig {
        gc_schedule: "* * * * * *".into(),
        ..config
    })
    .await
    .unwrap();
    // Nothing else runs GC here: only the schedule can empty the cache of expired entries.
    // (Files are deleted just after the index drops an entry: wait for both.)
    common::wait_until("the schedule drops the expired entries", || {
        gc.cache.list().len() <= 1 && entry_files(dir.path()).len() <= 2
    })
    .await;
    let left: Vec<String> = gc.cache.list().into_iter().map(|e| e.meta.sha256).collect();
    assert_eq!(
        left,
        vec![sha256(&blobs[1])],
        "only the leased entry outlives its TTL"
    );
    assert!(gc.cache.metrics().evictions >= 2);
    assert_eq!(
        entry_files(dir.path()),
        vec![sha256(&blobs[1]), format!("{}.json", sha256(&blobs[1]))]
    );
    gc.cache.release(&leased.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_resumes_with_range_and_revalidation_uses_conditional_get() {
    let origin = Origin::start().await;
    let data = pseudo_random(1 << 20, 30);
    let url = origin.put("img/r.iso", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(CacheConfig {
        revalidate_after: Duration::ZERO,
        ..cfg(dir.path())
    })
    .await
    .unwrap();
    let err = fetch_cut_after(&origin, &cache, &url, 300_000).await;
    assert!(matches!(err, CacheError::Unreachable { .. }), "{err}");
    assert!(
        cache.list().is_empty(),
        "a partial download is never an entry"
    );
    let e = cache.fetch(&url, None).await.unwrap();
    assert_eq!(e.sha256, sha256(&data));
    let reqs = origin.requests("img/r.iso");
    assert_eq!(reqs.len(), 2);
    let resumed = reqs[1].range.as_deref().unwrap();
    let offset: u64 = resumed
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert_eq!(
        offset, 300_000,
        "resumed where the cut left the .part: {resumed}"
    );
    assert_eq!(reqs[1].status, 206);
    assert_eq!(cache.metrics().bytes_fetched, data.len() as u64);

    // Unchanged: the conditional GET gets 304 and nothing is downloaded again.
    let e2 = cache.fetch(&url, None).await.unwrap();
    assert_eq!(e2.sha256, e.sha256);
    let reqs = origin.requests("img/r.iso");
    assert_eq!(
        (reqs.len(), reqs[2].conditional, reqs[2].status),
        (3, true, 304)
    );
    // Changed at the origin: the next fetch gets the new bytes.
    let new = pseudo_random(5000, 31);
    origin.put("img/r.iso", new.clone());
    let e3 = cache.fetch(&url, None).await.unwrap();
    assert_eq!(e3.sha256, sha256(&new));
    assert_eq!(origin.requests("img/r.iso")[3].status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_download_then_restart_resumes() {
    let origin = Origin::start().await;
    let data = pseudo_random(4 << 20, 40);
    let url = origin.put("img/slow.iso", data.clone());
    // The origin holds the body after 1 MiB, so the kill lands mid-download whatever the pace.
    let (_never, held) = tokio::sync::watch::channel(false);
    *origin.state.pause_after.lock().unwrap() = Some((1 << 20, held));
    let dir = tempfile::tempdir().unwrap();
    let checksum = format!("sha256:{}", sha256(&data));
    let mut child = std::process::Command::new(common::ironcast_bin())
        .args([
            "cache",
            "fetch",
            &url,
            "--checksum",
            &checksum,
            "--cache-dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the download is well under way, then kill -9.
    let part_size = || -> u64 {
        std::fs::read_dir(dir.path().join("tmp"))
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    common::wait_until("the first MiB is written", || part_size() >= 1 << 20).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(part_size(), 1 << 20, "killed mid-download");

    // Restart: no partial entry is served; the next request resumes with Range.
    let cache = Cache::open(cfg(dir.path())).await.unwrap();
    assert!(cache.list().is_empty());
    assert!(entry_files(dir.path()).is_empty());
    let e = cache.fetch(&url, Some(&sha(&data))).await.unwrap();
    assert_eq!(std::fs::read(cache.path_of(&e.sha256)).unwrap(), data);
    let reqs = origin.requests("img/slow.iso");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].status, 206, "resumed, not restarted");
    let offset: u64 = reqs[1]
        .range
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert_eq!(offset, 1 << 20, "resumed from {offset}");
    assert!(cache.metrics().bytes_fetched < data.len() as u64);

    // The CLI sees it too.
    let out = std::process::Command::new(common::ironcast_bin())
        .args(["cache", "list", "--json", "--cache-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["sha256"], sha256(&data));
}

/// A crash between the `.part`'s fsync and its rename (the `cache-commit` fail point, in a
/// `cache fetch` child) leaves the whole object in the `.part`. The next fetch asks for the
/// bytes after it, the origin answers 416 with `Content-Range: bytes */<length>` as nginx does,
/// and the cache verifies the `.part` and commits it instead of failing.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_complete_part_answered_416_is_verified_and_committed() {
    let origin = Origin::start().await;
    let data = pseudo_random(1 << 20, 41);
    let url = origin.put("img/whole.iso", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let checksum = format!("sha256:{}", sha256(&data));
    let status = tokio::process::Command::new(common::ironcast_bin())
        .args([
            "cache",
            "fetch",
            &url,
            "--checksum",
            &checksum,
            "--cache-dir",
        ])
        .arg(dir.path())
        .env("IRONCAST_FAILPOINTS", "cache-commit=abort")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(!status.success(), "the fail point killed the fetch");
    let part: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert_eq!(part.len(), 1);
    assert_eq!(part[0].metadata().unwrap().len(), data.len() as u64);
    assert!(entry_files(dir.path()).is_empty(), "nothing committed yet");

    let cache = Cache::open(cfg(dir.path())).await.unwrap();
    let e = cache.fetch(&url, Some(&sha(&data))).await.unwrap();
    assert_eq!(std::fs::read(cache.path_of(&e.sha256)).unwrap(), data);
    let statuses: Vec<u16> = origin
        .requests("img/whole.iso")
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [200, 416]);
    assert_eq!(cache.metrics().bytes_fetched, 0, "no byte fetched again");

    // A complete .part whose bytes are wrong fails the checksum and is dropped, so the next
    // fetch starts over.
    let bad = dir.path().join("bad");
    let other = origin.put("img/other.iso", data.clone());
    let status = tokio::process::Command::new(common::ironcast_bin())
        .args([
            "cache",
            "fetch",
            &other,
            "--checksum",
            &checksum,
            "--cache-dir",
        ])
        .arg(&bad)
        .env("IRONCAST_FAILPOINTS", "cache-commit=abort")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(!status.success());
    for e in std::fs::read_dir(bad.join("tmp")).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".part") {
            let mut bytes = std::fs::read(e.path()).unwrap();
            bytes[0] ^= 0xff;
            std::fs::write(e.path(), bytes).unwrap();
        }
    }
    let cache = Cache::open(cfg(&bad)).await.unwrap();
    let err = cache.fetch(&other, Some(&sha(&data))).await.unwrap_err();
    assert!(matches!(err, CacheError::ChecksumMismatch { .. }), "{err}");
    let e = cache.fetch(&other, Some(&sha(&data))).await.unwrap();
    assert_eq!(std::fs::read(cache.path_of(&e.sha256)).unwrap(), data);
}

#[test]
fn cli_fetch_show_evict_gc() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data = pseudo_random(50_000, 50);
    std::fs::write(src.join("x.iso"), &data).unwrap();
    let cache_dir = dir.path().join("cache");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::ironcast_bin())
            .arg("cache")
            .args(args)
            .arg("--cache-dir")
            .arg(&cache_dir)
            .arg("--allow-file-dir")
            .arg(&src)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let url = format!("file://{}/x.iso", src.display());
    let digest = sha256(&data);
    let (ok, _, err) = run(&["fetch", &url, "--checksum", &"f".repeat(64)]);
    assert!(
        !ok && err.contains("checksum mismatch") && err.contains(&digest),
        "{err}"
    );
    let (ok, out, err) = run(&["fetch", &url, "--checksum", &digest]);
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("sha256:{digest}")), "{out}");
    let (ok, out, _) = run(&["show", &digest[..12]]);
    assert!(
        ok && out.contains(&url) && out.contains("50000 bytes"),
        "{out}"
    );
    let (ok, out, _) = run(&["list"]);
    assert!(ok && out.contains(&digest[..16]), "{out}");
    let (ok, out, _) = run(&["gc"]);
    assert!(ok && out.starts_with("evicted 0 entries"), "{out}");
    let (ok, out, _) = run(&["evict", &digest]);
    assert!(ok && out.contains(&digest), "{out}");
    let (ok, _, err) = run(&["show", &digest]);
    assert!(!ok && err.contains("no cache entry"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_never_splices_changed_bytes() {
    let origin = Origin::start().await;
    let old = pseudo_random(1 << 20, 60);
    let url = origin.put("img/m.iso", old);
    origin.state.ignore_if_range.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cfg(dir.path())).await.unwrap();
    fetch_cut_after(&origin, &cache, &url, 200_000).await;
    // The image changes at the origin, which ignores If-Range: the 206 carries a new ETag.
    let new = pseudo_random(1 << 20, 61);
    origin.put("img/m.iso", new.clone());
    let err = cache.fetch(&url, None).await.unwrap_err();
    assert!(
        err.to_string().contains("validators changed: true"),
        "{err}"
    );
    assert!(cache.list().is_empty());
    let e = cache.fetch(&url, None).await.unwrap();
    assert_eq!(e.sha256, sha256(&new));
    assert_eq!(origin.requests("img/m.iso").last().unwrap().status, 200);
}

// Cross-process tests: each `ironcast cache …` child is a separate process sharing the cache
// directory with the others and with the `Cache` opened in this test (which stands for a
// long-running `ironcast serve`, opened before the others act).

/// `ironcast cache ARGS --cache-dir DIR --quota-bytes QUOTA`.
fn cache_cli(dir: &Path, quota: u64, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(common::ironcast_bin());
    cmd.arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(dir)
        .arg("--quota-bytes")
        .arg(quota.to_string());
    cmd
}

/// Names in `dir` ending with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Starts `cache fetch URL --checksum … --hold` and returns once it has printed its entry,
/// which it does only after its lease exists.
fn hold(dir: &Path, quota: u64, url: &str, data: &[u8]) -> std::process::Child {
    use std::io::BufRead as _;
    let checksum = format!("sha256:{}", sha256(data));
    let mut child = cache_cli(
        dir,
        quota,
        &["fetch", url, "--checksum", &checksum, "--hold"],
    )
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with(&format!("sha256:{}", sha256(data))),
        "{line:?}"
    );
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_in_flight_in_another_process_holds_its_quota_until_killed() {
    let origin = Origin::start().await;
    let (a, b) = (pseudo_random(2 << 20, 70), pseudo_random(1536 << 10, 71));
    let (ua, ub) = (
        origin.put("a.iso", a.clone()),
        origin.put("b.iso", b.clone()),
    );
    let (open, gate) = tokio::sync::watch::channel(false);
    *origin.state.pause_after.lock().unwrap() = Some((256 << 10, gate));
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let quota = 3 << 20;
    let mut downloader = cache_cli(
        dir.path(),
        quota,
        &[
            "fetch",
            &ua,
            "--checksum",
            &format!("sha256:{}", sha256(&a)),
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // The downloader has reserved its 2 MiB and is held mid-body by the origin.
    common::wait_until("the first download reserves and writes", || {
        let part = files_ending(&tmp, ".part");
        files_ending(&tmp, ".reserve").len() == 1
            && part.len() == 1
            && std::fs::metadata(tmp.join(&part[0])).map_or(0, |m| m.len()) >= 256 << 10
    })
    .await;

    // Another process needs 1.5 MiB: 3 MiB minus the 2 MiB in flight leaves 1 MiB.
    let fetch_b = || {
        cache_cli(
            dir.path(),
            quota,
            &[
                "fetch",
                &ub,
                "--checksum",
                &format!("sha256:{}", sha256(&b)),
            ],
        )
        .output()
        .unwrap()
    };
    let out = fetch_b();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(
            "needed 1572864 bytes, free 1048576 bytes, pinned by leases 0 bytes, \
             reserved by downloads in progress 2097152 bytes (quota 3145728)"
        ),
        "{err}"
    );
    assert!(entry_files(dir.path()).is_empty(), "nothing committed");
    assert_eq!(files_ending(&tmp, ".part").len(), 1, "b wrote no byte");
    assert_eq!(origin.requests("a.iso").len(), 1);

    // Killed: its reservation stops counting, and the next decision removes it.
    downloader.kill().unwrap(); // SIGKILL
    downloader.wait().unwrap();
    let out = fetch_b();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        entry_files(dir.path()),
        vec![sha256(&b), format!("{}.json", sha256(&b))]
    );
    assert!(files_ending(&tmp, ".reserve").is_empty());
    assert_eq!(
        files_ending(&tmp, ".part").len(),
        1,
        "the killed download stays resumable"
    );
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_held_by_another_process_pins_until_it_ends_or_is_killed() {
    let origin = Origin::start().await;
    let blobs: Vec<Vec<u8>> = [1000, 1000, 2000, 2000]
        .iter()
        .enumerate()
        .map(|(i, n)| pseudo_random(*n, 80 + i as u64))
        .collect();
    let urls: Vec<String> = blobs
        .iter()
        .enumerate()
        .map(|(i, b)| origin.put(&format!("l{i}"), b.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let leases = dir.path().join("leases");
    let quota = 2500;
    // Everything is expired at once for this process: only leases keep entries.
    let serve = Cache::open(CacheConfig {
        quota_bytes: quota,
        ttl: Duration::ZERO,
        ..cfg(dir.path())
    })
    .await
    .unwrap();
    for i in [0, 1] {
        serve.fetch(&urls[i], Some(&sha(&blobs[i]))).await.unwrap();
    }
    let mut holder = hold(dir.path(), quota, &urls[0], &blobs[0]);
    assert_eq!(files_ending(&leases, ".json").len(), 1);

    // GC in the long-running process sees the other process's lease.
    let report = serve.gc().await.unwrap();
    assert_eq!(report.evicted, vec![sha256(&blobs[1])]);
    assert!(serve.path_of(&sha256(&blobs[0])).exists());
    // So does a reservation: 2000 needed, 1500 free, the rest pinned.
    let err = serve
        .fetch(&urls[2], Some(&sha(&blobs[2])))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CacheError::QuotaExceeded {
            needed: 2000,
            free: 1500,
            pinned: 1000,
            reserved: 0,
            quota: 2500
        }
    );
    let err = serve.evict(&sha256(&blobs[0])).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "ironcast cache fetch --hold (pid {})",
            holder.id()
        )),
        "{err}"
    );

    // Released when its stdin closes: the entry can go.
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    assert!(
        files_ending(&leases, "").is_empty(),
        "lease and its lock removed"
    );
    serve.fetch(&urls[2], Some(&sha(&blobs[2]))).await.unwrap();
    assert!(!serve.path_of(&sha256(&blobs[0])).exists());

    // A holder killed with SIGKILL releases nothing, yet stops pinning.
    let mut holder = hold(dir.path(), quota, &urls[2], &blobs[2]);
    assert!(matches!(
        serve
            .fetch(&urls[3], Some(&sha(&blobs[3])))
            .await
            .unwrap_err(),
        CacheError::QuotaExceeded { pinned: 2000, .. }
    ));
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(files_ending(&leases, ".json").len(), 1, "left behind");
    serve.fetch(&urls[3], Some(&sha(&blobs[3]))).await.unwrap();
    assert!(!serve.path_of(&sha256(&blobs[2])).exists());
    assert!(
        files_ending(&leases, "").is_empty(),
        "the dead lease removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_evicted_by_another_process_is_fetched_again() {
    let origin = Origin::start().await;
    let data = pseudo_random(100_000, 90);
    let url = origin.put("e.iso", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let serve = Cache::open(cfg(dir.path())).await.unwrap();
    let e = serve.fetch(&url, Some(&sha(&data))).await.unwrap();
    let out = cache_cli(dir.path(), 100 << 20, &["evict", &e.sha256])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!serve.path_of(&e.sha256).exists());
    // This process's index still lists it; the hit is checked on disk and downloads again.
    let again = serve.fetch(&url, Some(&sha(&data))).await.unwrap();
    assert_eq!(std::fs::read(serve.path_of(&again.sha256)).unwrap(), data);
    assert_eq!(origin.requests("e.iso").len(), 2);
}

/// Bytes of every file under `dir`.
fn bytes_on_disk(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            bytes_on_disk(&e.path())
        } else {
            m.len()
        };
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_length_downloads_stop_at_the_quota_and_leave_nothing_behind() {
    let origin = Origin::start().await;
    origin.state.no_length.store(true, Ordering::SeqCst);
    let quota: u64 = 100 << 20;
    let data = pseudo_random(150 << 20, 77);
    let urls: Vec<String> = (0..3)
        .map(|i| origin.put(&format!("big{i}"), data.clone()))
        .collect();
    drop(data);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(CacheConfig {
        quota_bytes: quota,
        ..cfg(dir.path())
    })
    .await
    .unwrap();
    for url in &urls {
        let err = cache.fetch(url, None).await.unwrap_err();
        let CacheError::QuotaExceeded { free, .. } = err else {
            panic!("{url}: {err}");
        };
        let on_disk = bytes_on_disk(dir.path());
        assert!(on_disk < 1 << 20, "{url}: {on_disk} bytes left on disk");
        assert_eq!(free, quota, "{url}: free space reported");
    }
    assert!(files_ending(&dir.path().join("tmp"), ".part").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_partial_download_counts_against_the_quota_and_gc_removes_one_that_cannot_resume() {
    let dir = tempfile::tempdir().unwrap();
    let quota: u64 = 10_000;
    let cache = Cache::open(CacheConfig {
        quota_bytes: quota,
        ..cfg(dir.path())
    })
    .await
    .unwrap();
    let tmp = dir.path().join("tmp");
    // A resumable partial download (a validator) and one that is not (none).
    let meta = |etag: Option<&str>| {
        serde_json::json!({"url": "http://origin.invalid/x", "etag": etag, "last_modified": null,
                           "total": null, "started_at": chrono::Utc::now()})
    };
    std::fs::write(tmp.join("k1.part"), vec![1u8; 4000]).unwrap();
    std::fs::write(tmp.join("k1.part.json"), meta(Some("\"v1\"")).to_string()).unwrap();
    std::fs::write(tmp.join("k2.part"), vec![2u8; 3000]).unwrap();
    std::fs::write(tmp.join("k2.part.json"), meta(None).to_string()).unwrap();
    let origin = Origin::start().await;
    let small = pseudo_random(5000, 3);
    let url = origin.put("small", small.clone());
    let err = cache.fetch(&url, Some(&sha(&small))).await.unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::QuotaExceeded {
                free: 3000,
                reserved: 7000,
                ..
            }
        ),
        "{err}"
    );
    cache.gc().await.unwrap();
    assert_eq!(files_ending(&tmp, ".part"), vec!["k1.part".to_string()]);
    cache.fetch(&url, Some(&sha(&small))).await.unwrap();
}
