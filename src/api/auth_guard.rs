//! What keeps basic auth cheap for users and expensive for guessers: verified credentials
//! are remembered briefly (bcrypt runs once a minute per user, not per request), and a client
//! that keeps failing is refused with 429 and `Retry-After` before bcrypt runs at all.
//!
//! Pure apart from the clock, which callers pass in, so the rules are tested without waiting.
//! Both maps are bounded: expired entries are dropped when they grow past [`MAX_TRACKED`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long verified credentials are trusted without running bcrypt again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Wrong passwords one client may send per [`FAILURE_WINDOW`] before it is refused.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in; a refused client waits for its end.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Entries kept per map before expired ones are dropped (and, past twice this, all).
const MAX_TRACKED: usize = 10_000;

/// Remembered credentials and failure counts of one API.
#[derive(Debug, Default)]
pub struct AuthGuard {
    /// SHA-256 of "user:password" → when it stops being trusted.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

fn key(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AuthGuard {
    /// Whether these credentials were verified less than [`CACHE_TTL`] ago.
    pub fn is_verified(&self, user: &str, password: &str, now: Instant) -> bool {
        lock(&self.verified)
            .get(&key(user, password))
            .is_some_and(|until| *until > now)
    }

    pub fn remember(&self, user: &str, password: &str, now: Instant) {
        let mut v = lock(&self.verified);
        if v.len() >= MAX_TRACKED {
            v.retain(|_, until| *until > now);
            if v.len() >= MAX_TRACKED {
                v.clear();
            }
        }
        v.insert(key(user, password), now + CACHE_TTL);
    }

    /// How long `client` must wait before it may try again, when it has failed too often.
    pub fn retry_after(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let f = lock(&self.failures).get(&client).copied()?;
        let end = f.since + FAILURE_WINDOW;
        (f.count >= MAX_FAILURES && end > now).then(|| end - now)
    }

    pub fn record_failure(&self, client: IpAddr, now: Instant) {
        let mut all = lock(&self.failures);
        if all.len() >= MAX_TRACKED {
            all.retain(|_, f| f.since + FAILURE_WINDOW > now);
            if all.len() >= MAX_TRACKED {
                all.clear();
            }
        }
        let f = all.entry(client).or_insert(Failures {
            count: 0,
            since: now,
        });
        if f.since + FAILURE_WINDOW <= now {
            *f = Failures {
                count: 0,
                since: now,
            };
        }
        f.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_credentials_are_trusted_for_the_ttl_only() {
        let g = AuthGuard::default();
        let t0 = Instant::now();
        assert!(!g.is_verified("op", "pw", t0));
        g.remember("op", "pw", t0);
        assert!(g.is_verified("op", "pw", t0 + Duration::from_secs(1)));
        assert!(!g.is_verified("op", "other", t0));
        assert!(!g.is_verified("op", "pw", t0 + CACHE_TTL));
    }

    #[test]
    fn repeated_failures_are_refused_until_the_window_ends() {
        let g = AuthGuard::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(g.retry_after(a, t0), None, "after {i} failures");
            g.record_failure(a, t0);
        }
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            g.retry_after(a, t1),
            Some(FAILURE_WINDOW - Duration::from_secs(10))
        );
        assert_eq!(g.retry_after(b, t1), None, "another client is not affected");
        assert_eq!(g.retry_after(a, t0 + FAILURE_WINDOW), None);
        // A new window starts from zero.
        g.record_failure(a, t0 + FAILURE_WINDOW);
        assert_eq!(g.retry_after(a, t0 + FAILURE_WINDOW), None);
    }
}
