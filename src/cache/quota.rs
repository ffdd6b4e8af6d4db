//! Eviction planning under a hard quota: pure, so the order (expired first, then least recently
//! used; leased entries never) is table-tested without a disk.
//!
//! An entry is expired when its bytes were downloaded longer than the TTL ago, however often
//! it is used since: a copy does not live forever, and a busy expired entry is still the first
//! to go. Least recently used counts from its last use.
//!
//! The inputs come from a fresh scan of the cache directory taken under the cache-wide lock:
//! `pinned` means a live lease in any process, `reserved` the bytes held by downloads in
//! progress in any process (other than the one asking). Quota use is entries plus reservations.

use chrono::{DateTime, Duration, Utc};

/// What the planner needs to know about one cached entry.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub digest: String,
    pub size: u64,
    pub last_used: DateTime<Utc>,
    /// When the bytes were downloaded: the TTL counts from here.
    pub fetched_at: DateTime<Utc>,
    /// Held by a lease (a deploy or a publication): never evicted.
    pub pinned: bool,
}

/// Why `needed` bytes cannot be made free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub needed: u64,
    pub free: u64,
    pub pinned: u64,
    /// Held by other downloads in progress: given back when they end.
    pub reserved: u64,
    pub quota: u64,
}

/// Bytes counted against the quota: entries plus reservations.
pub fn used(entries: &[Candidate], reserved: u64) -> u64 {
    entries.iter().map(|c| c.size).sum::<u64>() + reserved
}

fn expired(c: &Candidate, now: DateTime<Utc>, ttl: Duration) -> bool {
    now - c.fetched_at > ttl
}

/// Eviction order: unpinned expired entries (oldest use first), then unpinned live ones by least
/// recent use.
pub fn eviction_order(entries: &[Candidate], now: DateTime<Utc>, ttl: Duration) -> Vec<&Candidate> {
    let mut order: Vec<&Candidate> = entries.iter().filter(|c| !c.pinned).collect();
    order.sort_by_key(|c| {
        let exp = expired(c, now, ttl);
        // Expired first (oldest download first), then by least recent use.
        let when = if exp { c.fetched_at } else { c.last_used };
        (!exp, when, c.digest.clone())
    });
    order
}

/// The entries to evict so that `needed` more bytes fit under `quota`, given the entries and the
/// bytes `reserved` by other downloads. Evicts nothing when it cannot succeed.
pub fn plan(
    entries: &[Candidate],
    reserved: u64,
    quota: u64,
    needed: u64,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Vec<String>, Shortfall> {
    let free = quota.saturating_sub(used(entries, reserved));
    if needed <= free {
        return Ok(Vec::new());
    }
    let mut freed = 0u64;
    let mut evict = Vec::new();
    for c in eviction_order(entries, now, ttl) {
        if free + freed >= needed {
            break;
        }
        freed += c.size;
        evict.push(c.digest.clone());
    }
    if free + freed >= needed {
        Ok(evict)
    } else {
        Err(Shortfall {
            needed,
            free,
            pinned: entries.iter().filter(|c| c.pinned).map(|c| c.size).sum(),
            reserved,
            quota,
        })
    }
}

/// Entries a periodic GC removes: every unpinned expired one, then least recently used ones
/// while entries plus `reserved` are above `quota` (the quota may have been lowered).
pub fn gc_plan(
    entries: &[Candidate],
    reserved: u64,
    quota: u64,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Vec<String> {
    let mut used = used(entries, reserved);
    let mut out = Vec::new();
    for c in eviction_order(entries, now, ttl) {
        if expired(c, now, ttl) || used > quota {
            used = used.saturating_sub(c.size);
            out.push(c.digest.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(d: &str, size: u64, age_h: i64, pinned: bool) -> Candidate {
        Candidate {
            digest: d.into(),
            size,
            last_used: now() - Duration::hours(age_h),
            fetched_at: now() - Duration::hours(age_h),
            pinned,
        }
    }
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }
    fn ttl() -> Duration {
        Duration::hours(24)
    }

    #[test]
    fn expired_first_then_lru_never_pinned() {
        let e = vec![
            c("recent", 10, 1, false),
            c("old-pinned", 10, 100, true),
            c("middle", 10, 5, false),
            c("expired", 10, 30, false),
        ];
        assert_eq!(
            plan(&e, 0, 40, 0, now(), ttl()).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(plan(&e, 0, 40, 10, now(), ttl()).unwrap(), vec!["expired"]);
        assert_eq!(
            plan(&e, 0, 40, 25, now(), ttl()).unwrap(),
            vec!["expired", "middle", "recent"]
        );
        let err = plan(&e, 0, 45, 40, now(), ttl()).unwrap_err();
        assert_eq!(
            err,
            Shortfall {
                needed: 40,
                free: 5,
                pinned: 10,
                reserved: 0,
                quota: 45
            }
        );
    }

    #[test]
    fn expired_goes_first_even_when_recently_used() {
        let mut busy_old = c("busy-old", 10, 0, false);
        busy_old.fetched_at = now() - Duration::hours(48);
        let e = vec![c("lru", 10, 5, false), busy_old, c("fresh", 10, 1, false)];
        assert_eq!(plan(&e, 0, 30, 10, now(), ttl()).unwrap(), vec!["busy-old"]);
        assert_eq!(
            plan(&e, 0, 30, 20, now(), ttl()).unwrap(),
            vec!["busy-old", "lru"]
        );
    }

    #[test]
    fn gc_removes_expired_and_shrinks_to_quota() {
        let e = vec![
            c("a", 10, 1, false),
            c("b", 10, 2, false),
            c("x", 10, 48, false),
            c("p", 10, 48, true),
        ];
        assert_eq!(gc_plan(&e, 0, 100, now(), ttl()), vec!["x"]);
        assert_eq!(gc_plan(&e, 0, 20, now(), ttl()), vec!["x", "b"]);
    }

    #[test]
    fn other_downloads_reservations_count_and_are_never_evicted() {
        let e = vec![c("pinned", 30, 1, true), c("lru", 20, 5, false)];
        // 30 + 20 entries + 40 in flight elsewhere = 90 of 100: 10 free.
        assert_eq!(used(&e, 40), 90);
        assert_eq!(
            plan(&e, 40, 100, 10, now(), ttl()).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(plan(&e, 40, 100, 30, now(), ttl()).unwrap(), vec!["lru"]);
        // Evicting every unpinned entry frees 20: 31 cannot fit, and the reservation is named.
        assert_eq!(
            plan(&e, 40, 100, 31, now(), ttl()).unwrap_err(),
            Shortfall {
                needed: 31,
                free: 10,
                pinned: 30,
                reserved: 40,
                quota: 100
            }
        );
        // Without the reservation the same request fits by evicting "lru": what a process
        // that cannot see the other's download would wrongly do.
        assert_eq!(
            plan(&e, 0, 100, 31, now(), ttl()).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(plan(&e, 0, 100, 60, now(), ttl()).unwrap(), vec!["lru"]);
        // GC shrinks below a lowered quota counting reservations, but never pinned entries.
        assert_eq!(gc_plan(&e, 40, 80, now(), ttl()), vec!["lru"]);
        assert_eq!(gc_plan(&e, 10, 80, now(), ttl()), Vec::<String>::new());
    }
}
