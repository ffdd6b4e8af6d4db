//! HTTP publishing of images and ISO overlays to BMCs: tokens, HEAD/Range/ETag.
//!
//! Job: serve a cache entry, or a base file with an ISO patch set applied on the fly, under
//! `/<token>/<name>.iso` (or a disk image's name, `disk.qcow2`, for the agent) — a token of 192
//! random bits, no query string — until it expires or is revoked; log every fetch against its
//! node.
//!
//! - GET and HEAD with Content-Length, Accept-Ranges, ETag, Last-Modified; single and multiple
//!   ranges (206, multipart/byteranges), 416 when unsatisfiable, If-Range, If-None-Match
//!   (RFC 9110 §13–§15; [`range`]).
//! - Its own small HTTP/1.1 server ([`http1`], [`conn`]): base-file bytes go out with
//!   `sendfile(2)`, the patch set's bytes are written between them, so memory per connection
//!   does not grow with the image or the transfer ([`transport`]). Keep-alive, pipelining,
//!   timeouts for slow heads, idle connections and stalled readers.
//! - Its own listener; optional TLS (rustls; the bytes then go through one bounded buffer) and
//!   optional basic auth; an external URL for what BMCs see (IPv6 literals in brackets).
//! - Publications are JSON files in [`ServerConfig::dir`], so they survive a restart.
//!
//! Non-goals: directory listings, uploads, compression, caching headers for browsers
//! (`Cache-Control: no-store`: the ISO holds secrets).

pub mod config;
mod conn;
pub mod http1;
pub mod publish;
pub mod range;
pub mod serve;
mod transport;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::Router;
use chrono::{DateTime, Utc};
use deploy_drivers::ports::{
    Artifact, MediaAuth, PortError, PortErrorKind, PortResult, Publication, Publisher,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use config::ServerConfig;
pub use publish::Record;

use conn::Reply;
use http1::Head;
use publish::Live;
use transport::Conn;

/// Fetch records kept in memory for inspection (the log has them all).
const FETCH_LOG_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("invalid publication name {0:?}: use letters, digits, '-', '_' and '.', up to 100 characters")]
    BadName(String),
    #[error("invalid publication id: {0}")]
    BadId(String),
    #[error("cannot publish: {0}")]
    Artifact(String),
    #[error("invalid image server configuration: {0}")]
    Config(String),
    #[error("{context}: {message}")]
    Io { context: String, message: String },
}

impl From<ServerError> for PortError {
    fn from(e: ServerError) -> Self {
        let kind = match e {
            ServerError::BadName(_) | ServerError::BadId(_) | ServerError::Artifact(_) => {
                PortErrorKind::InvalidInput
            }
            _ => PortErrorKind::Other,
        };
        PortError::new(kind, e.to_string())
    }
}

/// One fetch of a published image, as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FetchRecord {
    pub publication: String,
    pub node: String,
    pub remote: String,
    pub method: String,
    /// The Range header as sent ("" when none).
    pub range: String,
    pub status: u16,
    /// Body bytes handed to the connection.
    pub bytes: u64,
    /// Whether the whole body was sent.
    pub complete: bool,
    pub at: DateTime<Utc>,
}

/// Per-publication counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublicationStats {
    pub fetches: u64,
    pub bytes: u64,
}

/// Counters for /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    pub fetches: u64,
    pub bytes_served: u64,
    pub publications: u64,
}

impl MetricsSnapshot {
    pub fn render_prometheus(&self) -> String {
        format!(
            "# TYPE ironcast_imageserver_fetches_total counter\nironcast_imageserver_fetches_total {}\n\
             # TYPE ironcast_imageserver_served_bytes_total counter\nironcast_imageserver_served_bytes_total {}\n\
             # TYPE ironcast_imageserver_publications gauge\nironcast_imageserver_publications {}\n",
            self.fetches, self.bytes_served, self.publications
        )
    }
}

/// The image server's state: publications, counters, settings. Implements [`Publisher`].
pub struct ImageServer {
    cfg: ServerConfig,
    base_url: RwLock<String>,
    /// token → publication.
    pubs: RwLock<HashMap<String, Arc<Live>>>,
    log: Mutex<VecDeque<FetchRecord>>,
    stats: Mutex<HashMap<String, PublicationStats>>,
    fetches: AtomicU64,
    bytes_served: AtomicU64,
    /// Expected Authorization header value, when basic auth is on.
    auth: Option<String>,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.into();
    move |e| ServerError::Io {
        context,
        message: e.to_string(),
    }
}

fn rlock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn wlock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
fn mlock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks an external URL and returns it without a trailing slash.
pub fn check_external_url(url: &str) -> Result<String, ServerError> {
    let bad = |why: &str| ServerError::Config(format!("external_url {url:?}: {why}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        bad(&format!(
            "{e} (write IPv6 literals in brackets, e.g. http://[fd00::1]:8081)"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("must have no query or fragment"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl ImageServer {
    /// Loads the stored publications (dropping expired ones) and checks the settings.
    pub fn open(cfg: ServerConfig) -> Result<Arc<Self>, ServerError> {
        std::fs::create_dir_all(&cfg.dir).map_err(io(format!("creating {}", cfg.dir.display())))?;
        // Records hold the tokens: the directory is the owner's alone, whatever the umask.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&cfg.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("making {} private", cfg.dir.display())))?;
        let base_url = match &cfg.external_url {
            Some(u) => check_external_url(u)?,
            None => String::new(),
        };
        let auth = match (&cfg.basic_auth_user, &cfg.basic_auth_password) {
            (Some(u), Some(p)) => {
                use base64::Engine as _;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                ))
            }
            (None, None) => None,
            _ => {
                return Err(ServerError::Config(
                    "set both basic_auth_user and basic_auth_password, or neither".into(),
                ))
            }
        };
        if cfg.tls_cert.is_some() != cfg.tls_key.is_some() {
            return Err(ServerError::Config(
                "set both tls_cert and tls_key, or neither".into(),
            ));
        }
        let pubs = publish::load_all(&cfg.dir)
            .into_iter()
            .map(|l| {
                (
                    publish::path_key(&l.record.token, &l.record.name),
                    Arc::new(l),
                )
            })
            .collect();
        Ok(Arc::new(Self {
            cfg,
            base_url: RwLock::new(base_url),
            pubs: RwLock::new(pubs),
            log: Mutex::new(VecDeque::new()),
            stats: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
            bytes_served: AtomicU64::new(0),
            auth,
        }))
    }

    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The base URL publications are made under.
    pub fn base_url(&self) -> String {
        rlock(&self.base_url).clone()
    }

    /// Publishes `artifact` for `node` as `<name>.iso`, or under `name` when it ends like a
    /// disk image (`publish::KEPT_ENDINGS`); under a fresh token, or under `token` (beside the
    /// publications already there, as a URL directory).
    async fn publish_files(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
        token: Option<String>,
    ) -> Result<Publication, ServerError> {
        self.sweep_expired().await;
        let base_url = self.base_url();
        if base_url.is_empty() {
            return Err(ServerError::Config(
                "the image server is not listening yet and has no external_url".into(),
            ));
        }
        let (base, patch_set, len) = (
            artifact.base.clone(),
            artifact.patch_set.clone(),
            artifact.len,
        );
        publish::check_id(id)?;
        let (id, node, name, ttl, dir) = (
            id.to_string(),
            node.to_string(),
            name.to_string(),
            self.cfg.token_ttl,
            self.cfg.dir.clone(),
        );
        let (record, plan) = tokio::task::spawn_blocking(move || {
            if publish::record_path(&dir, &id).exists() {
                return Err(ServerError::BadId(format!("{id:?} is already in use")));
            }
            let (mut record, plan) =
                publish::make_record(&id, &base, patch_set.as_deref(), len, &node, &name, ttl)?;
            if let Some(token) = token {
                record.token = token;
            }
            publish::save(&dir, &record)?;
            Ok::<_, ServerError>((record, plan))
        })
        .await
        .map_err(|e| ServerError::Io {
            context: "publish task".into(),
            message: e.to_string(),
        })??;
        let publication = Publication {
            id: record.id.clone(),
            url: format!("{base_url}/{}/{}", record.token, record.name),
            auth: self.media_auth(),
        };
        tracing::info!(node = %record.node, publication = %record.id, name = %record.name, expires_at = %record.expires_at, "published image");
        let key = publish::path_key(&record.token, &record.name);
        wlock(&self.pubs).insert(key, Arc::new(Live::new(record, Arc::new(plan))));
        Ok(publication)
    }

    /// Revokes a publication by id; unknown ids are fine.
    pub async fn revoke_id(&self, id: &str) -> Result<(), ServerError> {
        let removed = {
            let mut pubs = wlock(&self.pubs);
            let token = pubs
                .iter()
                .find(|(_, l)| l.record.id == id)
                .map(|(t, _)| t.clone());
            token.and_then(|t| pubs.remove(&t))
        };
        if let Some(l) = removed {
            l.ended.cancel();
            tracing::info!(node = %l.record.node, publication = %id, "revoked image");
            // Durably: a revoked URL must not come back after a power loss.
            let path = publish::record_path(&self.cfg.dir, &l.record.id);
            tokio::task::spawn_blocking(move || crate::durable::remove(&path))
                .await
                .map_err(|e| ServerError::Io {
                    context: "revoke task".into(),
                    message: e.to_string(),
                })?
                .map_err(|e| ServerError::Io {
                    context: format!("revoking publication {id}"),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Forgets expired publications and deletes their files.
    pub async fn sweep_expired(&self) {
        let now = Utc::now();
        let expired: Vec<Arc<Live>> = {
            let mut pubs = wlock(&self.pubs);
            let tokens: Vec<String> = pubs
                .iter()
                .filter(|(_, l)| l.record.expires_at <= now)
                .map(|(t, _)| t.clone())
                .collect();
            tokens.iter().filter_map(|t| pubs.remove(t)).collect()
        };
        if expired.is_empty() {
            return;
        }
        for l in &expired {
            l.ended.cancel();
        }
        let dir = self.cfg.dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for l in expired {
                tracing::info!(node = %l.record.node, publication = %l.record.id, "publication expired");
                if let Err(e) = crate::durable::remove(&publish::record_path(&dir, &l.record.id)) {
                    tracing::warn!(publication = %l.record.id, error = %e, "cannot remove an expired publication's record");
                }
            }
        })
        .await;
    }

    /// The live publication for a request path, if its token is valid and the name matches.
    fn lookup(&self, token: &str, name: &str) -> Option<Arc<Live>> {
        let live = rlock(&self.pubs)
            .get(&publish::path_key(token, name))
            .cloned()?;
        (live.record.expires_at > Utc::now()).then_some(live)
    }

    /// The credentials a BMC must send, when basic auth is on.
    fn media_auth(&self) -> Option<MediaAuth> {
        match (&self.cfg.basic_auth_user, &self.cfg.basic_auth_password) {
            (Some(username), Some(password)) => Some(MediaAuth {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(want) = &self.auth else {
            return true;
        };
        let got = headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // Constant time over the expected length.
        let want = want.as_bytes();
        got.len() == want.len() && got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Publications currently valid.
    pub fn publications(&self) -> Vec<Record> {
        let now = Utc::now();
        rlock(&self.pubs)
            .values()
            .filter(|l| l.record.expires_at > now)
            .map(|l| l.record.clone())
            .collect()
    }

    /// The most recent fetches, oldest first.
    pub fn fetch_log(&self) -> Vec<FetchRecord> {
        mlock(&self.log).iter().cloned().collect()
    }

    pub fn stats(&self, publication: &str) -> PublicationStats {
        mlock(&self.stats)
            .get(publication)
            .copied()
            .unwrap_or_default()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            fetches: self.fetches.load(Ordering::Relaxed),
            bytes_served: self.bytes_served.load(Ordering::Relaxed),
            publications: self.publications().len() as u64,
        }
    }

    fn record_fetch(&self, rec: FetchRecord) {
        tracing::info!(
            node = %rec.node, publication = %rec.publication, remote = %rec.remote,
            method = %rec.method, range = %rec.range, status = rec.status, bytes = rec.bytes,
            complete = rec.complete, "image fetch"
        );
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.bytes_served.fetch_add(rec.bytes, Ordering::Relaxed);
        {
            let mut stats = mlock(&self.stats);
            let s = stats.entry(rec.publication.clone()).or_default();
            s.fetches += 1;
            s.bytes += rec.bytes;
        }
        let mut log = mlock(&self.log);
        if log.len() == FETCH_LOG_LEN {
            log.pop_front();
        }
        log.push_back(rec);
    }
}

/// Logs one fetch when the response is done (or abandoned).
pub(crate) struct FetchGuard {
    server: Arc<ImageServer>,
    publication: String,
    node: String,
    remote: String,
    range: String,
    method: Method,
    pub status: u16,
    pub bytes: u64,
    pub complete: bool,
    pub error: Option<String>,
}

impl FetchGuard {
    fn new(
        server: &Arc<ImageServer>,
        rec: &Record,
        remote: String,
        range: String,
        method: Method,
    ) -> Self {
        Self {
            server: server.clone(),
            publication: rec.id.clone(),
            node: rec.node.clone(),
            remote,
            range,
            complete: method == Method::HEAD,
            method,
            status: 0,
            bytes: 0,
            error: None,
        }
    }
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        if let Some(e) = &self.error {
            tracing::warn!(publication = %self.publication, error = %e, "image fetch failed");
        }
        self.server.record_fetch(FetchRecord {
            publication: self.publication.clone(),
            node: self.node.clone(),
            remote: std::mem::take(&mut self.remote),
            method: self.method.to_string(),
            range: std::mem::take(&mut self.range),
            status: self.status,
            bytes: self.bytes,
            complete: self.complete || self.status == 304 || self.status == 416,
            at: Utc::now(),
        });
    }
}

#[async_trait]
impl Publisher for ImageServer {
    async fn publish_as(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
    ) -> PortResult<Publication> {
        let published = self.publish_files(id, artifact, node, name, None).await?;
        // The URL is live; the deploy recorded its id before asking, so a crash here leaves
        // nothing unknown.
        crate::fail_point!("publication-made");
        Ok(published)
    }

    async fn publish_beside(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
        beside: &str,
    ) -> PortResult<Publication> {
        let token = rlock(&self.pubs)
            .values()
            .find(|l| l.record.id == beside)
            .map(|l| l.record.token.clone())
            .ok_or_else(|| ServerError::BadId(format!("publication {beside:?} is not live")))?;
        let served = publish::publication_name(name)?;
        if rlock(&self.pubs).contains_key(&publish::path_key(&token, &served)) {
            return Err(ServerError::BadName(format!(
                "{served} is already published beside {beside}"
            ))
            .into());
        }
        Ok(self
            .publish_files(id, artifact, node, name, Some(token))
            .await?)
    }

    async fn revoke(&self, id: &str) -> PortResult<()> {
        Ok(self.revoke_id(id).await?)
    }
}

/// The image server's routing: publications at `/{token}/{name}`, everything else to the
/// `extra` router (netboot's iPXE scripts), whose small responses are buffered.
struct App {
    server: Arc<ImageServer>,
    extra: Option<Router>,
}

/// Largest body an `extra` route may answer with.
const EXTRA_BODY_LIMIT: usize = 1 << 20;

impl conn::Dispatch for App {
    async fn dispatch(&self, head: Head, remote: SocketAddr) -> Reply {
        if head.method != Method::GET && head.method != Method::HEAD {
            let mut r = Reply::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD are served here\n",
            );
            r.headers
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        if let Some((token, name)) = publication_path(head.path()) {
            return serve::handle(&self.server, token, name, &head, remote).await;
        }
        match &self.extra {
            // The extra routes (iPXE scripts name kernels, args and tokens) sit behind the
            // same basic auth as the images.
            Some(_) if !self.server.authorized(&head.headers) => serve::unauthorized(),
            Some(router) => route_extra(router.clone(), head, remote).await,
            None => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// `(token, name)` when `path` is `/{token}/{name}` with a token-shaped first segment.
fn publication_path(path: &str) -> Option<(&str, &str)> {
    let (token, name) = path.strip_prefix('/')?.split_once('/')?;
    (publish::is_token(token) && !name.is_empty() && !name.contains('/')).then_some((token, name))
}

async fn route_extra(router: Router, head: Head, remote: SocketAddr) -> Reply {
    use tower::ServiceExt as _;
    let mut req = axum::http::Request::new(axum::body::Body::empty());
    *req.method_mut() = head.method;
    *req.headers_mut() = head.headers;
    match head.target.parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return Reply::text(StatusCode::BAD_REQUEST, "invalid request target\n"),
    }
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(remote));
    let Ok(resp) = router.oneshot(req).await;
    let (parts, body) = resp.into_parts();
    match axum::body::to_bytes(body, EXTRA_BODY_LIMIT).await {
        Ok(bytes) => Reply::new(parts.status, parts.headers, conn::Body::Bytes(bytes)),
        Err(e) => {
            tracing::warn!(error = %e, "image server route failed to produce its body");
            Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

/// How long responses in flight may go on after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running image server.
pub struct ServerHandle {
    pub server: Arc<ImageServer>,
    pub local_addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The `Publisher` port, for the conductor.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        self.server.clone()
    }

    /// Stops accepting connections, lets responses in flight finish (for a few seconds) and
    /// waits for the server task.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts the image server on its own listener: what `ironcast serve` calls. Requests that are
/// not for a publication go to `extra` (e.g. netboot's routes).
pub async fn start(cfg: ServerConfig, extra: Option<Router>) -> Result<ServerHandle, ServerError> {
    let server = ImageServer::open(cfg)?;
    let listener = std::net::TcpListener::bind(server.cfg.bind)
        .map_err(io(format!("binding image server to {}", server.cfg.bind)))?;
    listener
        .set_nonblocking(true)
        .map_err(io("configuring the image server listener"))?;
    let local_addr = listener
        .local_addr()
        .map_err(io("reading the image server address"))?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(io("registering the image server listener"))?;
    let tls = match (&server.cfg.tls_cert, &server.cfg.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k)?),
        _ => None,
    };
    if server.cfg.external_url.is_none() {
        if local_addr.ip().is_unspecified() {
            return Err(ServerError::Config(format!(
                "bind is {local_addr}, a wildcard address BMCs cannot use: set external_url"
            )));
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        *wlock(&server.base_url) = format!("{scheme}://{local_addr}");
    }
    let app = Arc::new(App {
        server: server.clone(),
        extra,
    });
    let stop = CancellationToken::new();
    let limiter = crate::listen::ConnLimiter::new(server.cfg.conn_limits());
    let task = tokio::spawn(accept_loop(listener, tls, app, limiter, stop.clone()));
    tracing::info!(%local_addr, base_url = %server.base_url(), "image server listening");
    Ok(ServerHandle {
        server,
        local_addr,
        stop,
        task,
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    limiter: Arc<crate::listen::ConnLimiter>,
    stop: CancellationToken,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "image server connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((sock, remote)) => {
                    let permit = match limiter.try_acquire(remote.ip()) {
                        Ok(p) => p,
                        Err(why) => {
                            tracing::debug!(%remote, %why, "image server connection refused");
                            continue;
                        }
                    };
                    let _ = sock.set_nodelay(true);
                    let conn = connection(sock, remote, tls.clone(), app.clone(), stop.clone());
                    conns.spawn(async move {
                        conn.await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of descriptors, most likely: back off instead of spinning.
                    tracing::warn!(error = %e, "image server cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            left = conns.len(),
            "image server shutdown cut transfers in flight"
        );
        conns.shutdown().await;
    }
}

async fn connection(
    sock: tokio::net::TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    stop: CancellationToken,
) {
    let conn = match tls {
        None => Conn::Plain(sock),
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                Ok(Ok(s)) => Conn::Tls(Box::new(s)),
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    conn::serve(conn, remote, app, stop).await
}

fn tls_config(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServerError::Config(format!("tls_cert {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Config(format!("tls_key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| ServerError::Config(format!("TLS certificate/key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
