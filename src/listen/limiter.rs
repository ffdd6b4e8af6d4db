//! Counting open connections per client and in total; a [`Permit`] gives its slot back when
//! dropped, so a connection task cannot forget to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::ConnLimits;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the listener has {0} connections open, its limit")]
    Total(usize),
    #[error("this client has {0} connections open, its limit")]
    PerClient(usize),
}

/// Open-connection counts of one listener.
#[derive(Debug)]
pub struct ConnLimiter {
    limits: ConnLimits,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One admitted connection's slot.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<ConnLimiter>,
    client: IpAddr,
}

/// The key a client is counted under: the IPv4 address (also when mapped into IPv6), or the
/// /64 of an IPv6 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

impl ConnLimiter {
    pub fn new(limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(Open::default()),
        })
    }

    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip`, or says which cap it would pass.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let client = client_key(ip);
        let mut open = self.lock();
        if open.total >= self.limits.total {
            return Err(Refused::Total(open.total));
        }
        let mine = open.by_client.entry(client).or_insert(0);
        if *mine >= self.limits.per_client {
            return Err(Refused::PerClient(*mine));
        }
        *mine += 1;
        open.total += 1;
        Ok(Permit {
            limiter: self.clone(),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_per_client_and_in_total_and_frees_on_drop() {
        let l = ConnLimiter::new(ConnLimits {
            total: 3,
            per_client: 2,
        });
        let a1 = l.try_acquire(ip("10.0.0.1")).unwrap();
        let _a2 = l.try_acquire(ip("10.0.0.1")).unwrap();
        assert_eq!(
            l.try_acquire(ip("10.0.0.1")).unwrap_err(),
            Refused::PerClient(2)
        );
        let _b = l.try_acquire(ip("10.0.0.2")).unwrap();
        assert_eq!(
            l.try_acquire(ip("10.0.0.3")).unwrap_err(),
            Refused::Total(3)
        );
        drop(a1);
        assert_eq!(l.open(), 2);
        let _c = l.try_acquire(ip("10.0.0.3")).unwrap();
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
