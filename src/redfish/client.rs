//! HTTP to one BMC: auth (session with Basic fallback), retries, ETag/If-Match, JSON bodies.
//!
//! Every path comes from the BMC (`@odata.id`, action `target`, `Location`); the only path this
//! module knows by heart is the service root, `/redfish/v1/` (DSP0266 §6.3). Logging shows
//! method, URL and status, never headers or bodies (they carry credentials and tokens).

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, ETAG, IF_MATCH, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::{Mutex, OnceCell};

use super::address::{Credentials, RedfishTarget, TlsVerify};
use super::config::{Durations, RedfishConfig};
use super::error::{RedfishError, Result};
use super::model::{error_detail, ServiceRoot};
use super::retry::{self, Outcome};

/// The service root, the one well-known URI (DSP0266 §6.3).
pub const SERVICE_ROOT: &str = "/redfish/v1/";

/// An answer from the BMC with a success status.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Value,
    /// `X-Auth-Token` of a session-creation answer; `Debug` masks it.
    session_token: Option<Secret>,
}

/// A token that `Debug` does not show.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

#[derive(Clone)]
enum Auth {
    /// Not decided yet: login happens on the first request.
    Unknown,
    /// No credentials configured.
    Anonymous,
    Basic,
    Session {
        token: String,
        location: Option<String>,
    },
}

/// A connection to one BMC. Cheap to share behind an `Arc`; logs out of its session on drop.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credentials: Option<Credentials>,
    auth: Mutex<Auth>,
    root: OnceCell<ServiceRoot>,
    d: Durations,
    retries: u32,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

fn reason_of(e: &reqwest::Error) -> String {
    // The innermost cause says what went wrong (refused, reset, certificate …).
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl Client {
    /// Builds the HTTP client for `target` (reads the CA bundle file if one is configured).
    pub fn new(target: &RedfishTarget, cfg: &RedfishConfig) -> Result<Self> {
        let d = cfg.durations()?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(d.connect_timeout)
            .timeout(d.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ironcast/", env!("CARGO_PKG_VERSION")));
        let bundle = match &target.tls {
            TlsVerify::Insecure => {
                b = b.danger_accept_invalid_certs(true);
                None
            }
            TlsVerify::CaBundle(p) => Some(p.clone()),
            TlsVerify::Verify => cfg.ca_bundle.clone(),
            TlsVerify::Default => {
                if !cfg.verify_tls {
                    b = b.danger_accept_invalid_certs(true);
                }
                cfg.ca_bundle.clone()
            }
        };
        if let Some(path) = bundle {
            let pem = std::fs::read(&path).map_err(|e| {
                RedfishError::Config(format!("cannot read CA bundle {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RedfishError::Config(format!("CA bundle {} is not PEM: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(RedfishError::Config(format!(
                    "CA bundle {} holds no certificate",
                    path.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(|e| {
            RedfishError::Config(format!("cannot build HTTP client: {}", reason_of(&e)))
        })?;
        Ok(Self {
            http,
            base: target.base.clone(),
            credentials: target.credentials.clone(),
            auth: Mutex::new(Auth::Unknown),
            root: OnceCell::new(),
            d,
            retries: cfg.retries,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub(crate) fn durations(&self) -> &Durations {
        &self.d
    }

    /// Resolves a BMC-given path (or absolute URL) against the BMC's base URL. A link to
    /// another origin (scheme, host, port) is refused: it would carry our session token or
    /// credentials to whoever the BMC names.
    pub fn url(&self, path: &str) -> Result<Url> {
        let url = self.base.join(path).map_err(|e| RedfishError::Protocol {
            url: self.base.to_string(),
            reason: format!("bad link {path:?}: {e}"),
        })?;
        if url.origin() != self.base.origin() {
            return Err(RedfishError::Protocol {
                url: self.base.to_string(),
                reason: format!(
                    "link {path:?} leads to another origin ({}); refused so that credentials \
                     stay with the BMC",
                    url.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }

    /// The service root, read once (unauthenticated, as DSP0266 §13.3.1 allows; with Basic
    /// when the BMC insists).
    pub async fn service_root(&self) -> Result<&ServiceRoot> {
        self.root
            .get_or_try_init(|| async {
                let url = self.url(SERVICE_ROOT)?;
                let r = match self
                    .send_raw(Method::GET, &url, None, None, &Auth::Anonymous)
                    .await
                {
                    // Some BMCs guard even the root: ask again with Basic.
                    Err(RedfishError::Auth { .. }) if self.credentials.is_some() => {
                        self.send_raw(Method::GET, &url, None, None, &Auth::Basic)
                            .await?
                    }
                    other => other?,
                };
                parse(&url, r.body)
            })
            .await
    }

    pub async fn get(&self, path: &str) -> Result<Response> {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path)?;
        let r = self.send(Method::GET, path, None, None).await?;
        parse(&url, r.body)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Response> {
        self.send(Method::POST, path, Some(body), None).await
    }

    pub async fn patch(
        &self,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Response> {
        self.send(Method::PATCH, path, Some(body), if_match).await
    }

    pub async fn delete(&self, path: &str) -> Result<Response> {
        self.send(Method::DELETE, path, None, None).await
    }

    /// PATCH guarded by the resource's current ETag; on 412 (someone else changed it in the
    /// meantime) re-reads the resource and tries again, twice at most.
    pub async fn patch_with_etag(&self, path: &str, body: &Value) -> Result<Response> {
        let mut conflicts = 0;
        loop {
            let current = self.get(path).await?;
            let etag = current
                .etag
                .clone()
                .or_else(|| current.body["@odata.etag"].as_str().map(str::to_string));
            match self.patch(path, body, etag.as_deref()).await {
                Err(e) if e.status() == Some(412) && conflicts < 2 => {
                    conflicts += 1;
                    tracing::debug!(path, "412 precondition failed, re-reading the resource");
                }
                other => return other,
            }
        }
    }

    /// Ends the session, if one was opened. Also done (in the background) on drop.
    pub async fn logout(&self) {
        let old = std::mem::replace(&mut *self.auth.lock().await, Auth::Unknown);
        if let Auth::Session {
            token,
            location: Some(loc),
        } = old
        {
            if let Ok(url) = self.url(&loc) {
                let _ = self
                    .http
                    .delete(url)
                    .header("X-Auth-Token", token)
                    .send()
                    .await;
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Response> {
        let url = self.url(path)?;
        let mut relogged = false;
        loop {
            let auth = self.ensure_auth().await?;
            match self
                .send_raw(method.clone(), &url, body, if_match, &auth)
                .await
            {
                Err(RedfishError::Auth { .. })
                    if matches!(auth, Auth::Session { .. }) && !relogged =>
                {
                    // The session expired or was deleted on the BMC: log in again once.
                    tracing::debug!(url = %url, "session rejected, logging in again");
                    relogged = true;
                    let mut guard = self.auth.lock().await;
                    if let (Auth::Session { token: a, .. }, Auth::Session { token: b, .. }) =
                        (&*guard, &auth)
                    {
                        if a == b {
                            *guard = Auth::Unknown;
                        }
                    }
                }
                other => return other,
            }
        }
    }

    async fn ensure_auth(&self) -> Result<Auth> {
        let mut guard = self.auth.lock().await;
        if matches!(*guard, Auth::Unknown) {
            *guard = self.login().await?;
        }
        Ok(guard.clone())
    }

    async fn login(&self) -> Result<Auth> {
        let Some(creds) = &self.credentials else {
            return Ok(Auth::Anonymous);
        };
        let root = self.service_root().await?;
        let Some(sessions) = root.links.sessions.clone() else {
            tracing::debug!(bmc = %self.base, "no session service, using Basic auth");
            return Ok(Auth::Basic);
        };
        let url = self.url(&sessions.odata_id)?;
        let body = json!({"UserName": creds.username, "Password": creds.password()});
        match self
            .send_raw(Method::POST, &url, Some(&body), None, &Auth::Anonymous)
            .await
        {
            Ok(r) => match r.session_token {
                Some(Secret(token)) => Ok(Auth::Session {
                    token,
                    location: r.location,
                }),
                None => {
                    tracing::debug!(bmc = %self.base, "session created without a token, using Basic auth");
                    Ok(Auth::Basic)
                }
            },
            Err(e @ RedfishError::Auth { .. }) => Err(e),
            Err(e)
                if e.status()
                    .is_some_and(|s| (400..500).contains(&s) || s == 501) =>
            {
                tracing::debug!(bmc = %self.base, "session login refused ({e}), using Basic auth");
                Ok(Auth::Basic)
            }
            Err(e) => Err(e),
        }
    }

    /// One request with retries; no login logic.
    async fn send_raw(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        if_match: Option<&str>,
        auth: &Auth,
    ) -> Result<Response> {
        let idempotent = method != Method::POST;
        let mut attempt = 0u32;
        loop {
            let mut rb = self
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, "application/json")
                .header("OData-Version", "4.0");
            match auth {
                Auth::Session { token, .. } => rb = rb.header("X-Auth-Token", token.as_str()),
                Auth::Basic => {
                    if let Some(c) = &self.credentials {
                        rb = rb.basic_auth(&c.username, Some(c.password()));
                    }
                }
                Auth::Anonymous | Auth::Unknown => {}
            }
            if let Some(b) = body {
                rb = rb
                    .header(CONTENT_TYPE, "application/json")
                    .body(b.to_string());
            }
            if let Some(tag) = if_match {
                rb = rb.header(IF_MATCH, tag);
            }
            let (outcome, result) = match rb.send().await {
                Err(e) => classify(url, &e, self.d.request_timeout),
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match read_capped(resp, MAX_BODY).await {
                        Err(Some(e)) => classify(url, &e, self.d.request_timeout),
                        Err(None) => (Outcome::Status(status.as_u16()), Ok(Capped::TooLarge)),
                        Ok(bytes) => {
                            tracing::debug!(method = %method, url = %url, status = status.as_u16(), "redfish");
                            (
                                Outcome::Status(status.as_u16()),
                                Ok(Capped::Whole(status, headers, bytes)),
                            )
                        }
                    }
                }
            };
            let retry_after = match &result {
                Ok(Capped::Whole(_, h, _)) => header_str(h, RETRY_AFTER)
                    .and_then(|v| retry::parse_retry_after(&v, SystemTime::now())),
                _ => None,
            };
            if attempt < self.retries && retry::should_retry(outcome, idempotent) {
                attempt += 1;
                let wait = retry::delay(
                    self.d.retry_backoff,
                    attempt,
                    retry_after,
                    self.d.retry_after_max,
                );
                tracing::debug!(url = %url, ?outcome, ?wait, attempt, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            let (status, headers, bytes) = match result? {
                Capped::Whole(s, h, b) => (s, h, b),
                Capped::TooLarge => {
                    return Err(RedfishError::Protocol {
                        url: url.to_string(),
                        reason: format!("the answer is larger than {MAX_BODY} bytes"),
                    })
                }
            };
            let parsed = decode_body(url.as_str(), status.is_success(), &bytes)?;
            if status == StatusCode::UNAUTHORIZED {
                return Err(RedfishError::Auth {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            if !status.is_success() {
                return Err(RedfishError::Http {
                    method: method.to_string(),
                    url: url.to_string(),
                    status: status.as_u16(),
                    detail: error_detail(&parsed),
                });
            }
            return Ok(Response {
                status: status.as_u16(),
                etag: header_str(&headers, ETAG),
                location: header_str(&headers, LOCATION),
                retry_after,
                body: parsed,
                session_token: header_str(&headers, "x-auth-token").map(Secret),
            });
        }
    }
}

/// Largest answer read from a BMC: Redfish documents are kilobytes; a BMC that sends more
/// is broken or hostile.
const MAX_BODY: usize = 16 << 20;

enum Capped {
    Whole(StatusCode, HeaderMap, bytes::Bytes),
    TooLarge,
}

type Raw = Capped;

/// Reads an answer's body, stopping once it passes `limit`.
async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> std::result::Result<bytes::Bytes, Option<reqwest::Error>> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(None);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(Some)? {
        if body.len() + chunk.len() > limit {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn classify(url: &Url, e: &reqwest::Error, timeout: Duration) -> (Outcome, Result<Raw>) {
    if e.is_timeout() {
        (
            Outcome::Timeout,
            Err(RedfishError::Timeout {
                url: url.to_string(),
                after: timeout,
            }),
        )
    } else {
        // A connect error means nothing reached the BMC; anything else (connection reset
        // mid-way) may have been carried out, so it is retried like a timeout.
        let outcome = if e.is_connect() {
            Outcome::ConnectError
        } else {
            Outcome::Timeout
        };
        (
            outcome,
            Err(RedfishError::Unreachable {
                url: url.to_string(),
                reason: reason_of(e),
            }),
        )
    }
}

fn header_str(h: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_string)
}

/// A BMC's answer body as JSON (pure): empty is `Null`, and so is a non-JSON error page (its
/// status still says what happened); invalid JSON in a success is a protocol error carrying
/// the parser's message.
pub fn decode_body(url: &str, success: bool, bytes: &[u8]) -> Result<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(_) if !success => Ok(Value::Null),
        Err(e) => Err(RedfishError::Protocol {
            url: url.to_string(),
            reason: format!("the answer is not valid JSON: {e}"),
        }),
    }
}

/// A JSON body as the Redfish resource `T`.
pub fn parse<T: DeserializeOwned>(url: &Url, body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| RedfishError::Protocol {
        url: url.to_string(),
        reason: format!("not the expected Redfish resource: {e}"),
    })
}

impl Drop for Client {
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let auth = std::mem::replace(self.auth.get_mut(), Auth::Unknown);
        if let Auth::Session {
            token,
            location: Some(loc),
        } = auth
        {
            if let Ok(url) = self.url(&loc) {
                let http = self.http.clone();
                handle.spawn(async move {
                    let _ = http.delete(url).header("X-Auth-Token", token).send().await;
                });
            }
        }
    }
}
