//! HTTP basic auth from an htpasswd file of bcrypt entries (`htpasswd -B`), like Ironic's
//! `auth_strategy = http_basic`. GET / and /v1 stay public (version discovery).
//!
//! An unknown user costs the same bcrypt as a known one (a dummy hash of the file's highest
//! cost), so timing does not tell which names exist; [`AuthGuard`] remembers verified
//! credentials briefly and answers 429 to a client that keeps failing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::auth_guard::AuthGuard;
use super::error::ApiError;
use super::AppState;

/// Users and their bcrypt hashes.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// Verified for unknown users: a hash of the file's highest cost.
    dummy: String,
    guard: AuthGuard,
}

#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    #[error("cannot read htpasswd file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("htpasswd file {path} line {line}: {why}")]
    Entry {
        path: String,
        line: usize,
        why: String,
    },
    #[error("htpasswd file {path} has no users: add one with `htpasswd -B {path} USER`")]
    Empty { path: String },
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, HtpasswdError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: shown.clone(),
            source,
        })?;
        Htpasswd::parse(&text, &shown)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Htpasswd, HtpasswdError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry_err = |why: &str| HtpasswdError::Entry {
                path: origin.to_string(),
                line: i + 1,
                why: why.to_string(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| entry_err("expected USER:HASH"))?;
            if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
                return Err(entry_err(
                    "only bcrypt entries are supported: create them with `htpasswd -B`",
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err(HtpasswdError::Empty {
                path: origin.to_string(),
            });
        }
        let cost = users
            .values()
            .filter_map(|h| bcrypt_cost(h))
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let dummy =
            bcrypt::hash("ironcast: no such user", cost).map_err(|e| HtpasswdError::Entry {
                path: origin.to_string(),
                line: 0,
                why: format!("cannot make a bcrypt hash of cost {cost}: {e}"),
            })?;
        Ok(Htpasswd {
            users,
            dummy,
            guard: AuthGuard::default(),
        })
    }

    /// Checks a user's password against the bcrypt hash (CPU-bound: run off the async threads).
    /// An unknown user costs the same: the password is checked against a dummy hash.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, &self.dummy);
                false
            }
        }
    }
}

/// The cost of a `$2y$NN$…` hash.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.get(4..6)?.parse().ok()
}

fn credentials(req: &Request) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(auth) = state.auth.clone() else {
        return next.run(req).await;
    };
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ok = match credentials(&req) {
        Some((user, password)) if auth.guard.is_verified(&user, &password, Instant::now()) => true,
        Some((user, password)) => {
            let wait = client.and_then(|c| auth.guard.retry_after(c, Instant::now()));
            if let Some(wait) = wait {
                return too_many_failures(wait);
            }
            let a = auth.clone();
            let ok = tokio::task::spawn_blocking(move || {
                let ok = a.verify(&user, &password);
                if ok {
                    a.guard.remember(&user, &password, Instant::now());
                }
                ok
            })
            .await
            .unwrap_or(false);
            if !ok {
                if let Some(c) = client {
                    auth.guard.record_failure(c, Instant::now());
                }
            }
            ok
        }
        None => false,
    };
    if ok {
        return next.run(req).await;
    }
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Authentication required: send HTTP basic credentials of a user in the conductor's htpasswd file",
    )
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"ironcast\""),
    );
    resp
}

/// 429 with `Retry-After`: this client sent too many wrong passwords.
fn too_many_failures(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "Too many failed logins from this address: try again in {secs} s with the right \
             credentials"
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_entries_verify_and_others_are_refused() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let h = Htpasswd::parse(&format!("# users\nalice:{hash}\n"), "f").unwrap();
        assert!(h.verify("alice", "pw"));
        assert!(!h.verify("alice", "nope"));
        assert!(!h.verify("bob", "pw"));
        assert_eq!(
            bcrypt_cost(&h.dummy),
            Some(4),
            "the dummy costs what a real entry does"
        );
        let e = Htpasswd::parse("bob:{SHA}abc", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only bcrypt"), "{e}");
        let e = Htpasswd::parse("\n", "f").unwrap_err().to_string();
        assert!(e.contains("no users"), "{e}");
    }
}
