//! The address range of `dhcp = "range"`: one address per MAC, kept while its lease lasts and
//! given back to the same MAC after. In memory: a restart forgets leases, and clients renewing
//! get the same address back when it is still free (labs, not a site DHCP server).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::netboot::render::Mac;

#[derive(Debug)]
pub struct Pool {
    start: u32,
    end: u32,
    lease: Duration,
    by_mac: HashMap<Mac, (Ipv4Addr, Instant)>,
}

impl Pool {
    /// Addresses `start..=end`, each lease lasting `lease`.
    pub fn new(start: Ipv4Addr, end: Ipv4Addr, lease: Duration) -> Pool {
        Pool {
            start: start.into(),
            end: end.into(),
            lease,
            by_mac: HashMap::new(),
        }
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.start..=self.end).contains(&u32::from(ip))
    }

    fn taken_by_other(&self, ip: Ipv4Addr, mac: &Mac, now: Instant) -> bool {
        self.by_mac
            .iter()
            .any(|(m, (a, until))| m != mac && *a == ip && *until > now)
    }

    /// The address to offer `mac`: its own, else `wanted` if free, else the first free one.
    pub fn offer(&self, mac: &Mac, wanted: Option<Ipv4Addr>, now: Instant) -> Option<Ipv4Addr> {
        if let Some((ip, _)) = self.by_mac.get(mac) {
            if !self.taken_by_other(*ip, mac, now) {
                return Some(*ip);
            }
        }
        if let Some(w) = wanted.filter(|w| self.contains(*w)) {
            if !self.taken_by_other(w, mac, now) {
                return Some(w);
            }
        }
        (self.start..=self.end)
            .map(Ipv4Addr::from)
            .find(|ip| !self.taken_by_other(*ip, mac, now))
    }

    /// Binds `ip` to `mac` for a lease when it is in the range and free; false: NAK.
    pub fn bind(&mut self, mac: &Mac, ip: Ipv4Addr, now: Instant) -> bool {
        if !self.contains(ip) || self.taken_by_other(ip, mac, now) {
            return false;
        }
        self.by_mac.insert(*mac, (ip, now + self.lease));
        true
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_binds_and_expires() {
        let t0 = Instant::now();
        let ip = |d| Ipv4Addr::new(10, 0, 0, d);
        let mut p = Pool::new(ip(10), ip(11), Duration::from_secs(60));
        let a = Mac::parse("52:54:00:00:00:0a").unwrap();
        let b = Mac::parse("52:54:00:00:00:0b").unwrap();
        let c = Mac::parse("52:54:00:00:00:0c").unwrap();
        assert_eq!(
            p.offer(&a, Some(ip(11)), t0),
            Some(ip(11)),
            "the wanted address"
        );
        assert_eq!(
            p.offer(&a, Some(ip(99)), t0),
            Some(ip(10)),
            "outside the range"
        );
        assert!(p.bind(&a, ip(11), t0));
        assert_eq!(p.offer(&a, None, t0), Some(ip(11)), "its own address again");
        assert!(!p.bind(&b, ip(11), t0), "taken");
        assert!(!p.bind(&b, ip(12), t0), "outside");
        assert!(p.bind(&b, ip(10), t0));
        assert_eq!(p.offer(&c, None, t0), None, "range full");
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            p.offer(&c, None, later),
            Some(ip(10)),
            "expired leases free up"
        );
    }
}
