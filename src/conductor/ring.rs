//! A consistent hash ring over the live conductors: which conductor owns which node, as in
//! Ironic (`ironic.common.hash_ring`), computed by every conductor from the same list of live
//! names in PostgreSQL, so they agree without talking to each other.
//!
//! Each conductor has [`POINTS_PER_CONDUCTOR`] points on a 64-bit ring; a node belongs to the
//! first point at or after its own hash. When a conductor leaves, only its nodes move.

use sha2::{Digest, Sha256};

/// Points per conductor: enough that three conductors share nodes within a few percent.
pub const POINTS_PER_CONDUCTOR: usize = 128;

#[derive(Debug, Clone)]
pub struct HashRing {
    /// (point, conductor index), sorted by point.
    points: Vec<(u64, usize)>,
    names: Vec<String>,
}

fn hash(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("a sha256 digest has 8 bytes"))
}

impl HashRing {
    /// The ring of `names` (order and duplicates do not matter).
    pub fn new(names: &[String]) -> HashRing {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        let mut points: Vec<(u64, usize)> = names
            .iter()
            .enumerate()
            .flat_map(|(i, name)| {
                (0..POINTS_PER_CONDUCTOR).map(move |p| (hash(&format!("{name}-{p}")), i))
            })
            .collect();
        points.sort_unstable();
        HashRing { points, names }
    }

    /// The conductor that owns `key` (a node UUID); None on an empty ring.
    pub fn owner(&self, key: &str) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash(key);
        let at = self.points.partition_point(|(p, _)| *p < h);
        let (_, i) = self.points[at % self.points.len()];
        Some(&self.names[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn keys() -> Vec<String> {
        (0..3000).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn shares_nodes_evenly_and_agrees_whatever_the_order() {
        let a = HashRing::new(&names(&["c1", "c2", "c3"]));
        let b = HashRing::new(&names(&["c3", "c1", "c2", "c1"]));
        let mut counts = std::collections::HashMap::new();
        for k in keys() {
            assert_eq!(a.owner(&k), b.owner(&k));
            *counts.entry(a.owner(&k).unwrap().to_string()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3);
        for (name, n) in counts {
            assert!((700..=1300).contains(&n), "{name} owns {n} of 3000");
        }
    }

    #[test]
    fn a_leaving_conductor_moves_only_its_nodes() {
        let before = HashRing::new(&names(&["c1", "c2", "c3"]));
        let after = HashRing::new(&names(&["c1", "c3"]));
        for k in keys() {
            let (was, is) = (before.owner(&k).unwrap(), after.owner(&k).unwrap());
            if was != "c2" {
                assert_eq!(was, is, "{k} moved though its owner stayed");
            } else {
                assert_ne!(is, "c2");
            }
        }
        assert_eq!(HashRing::new(&[]).owner("x"), None);
    }
}
