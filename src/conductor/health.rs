//! Ironic's hardware health monitoring (API 1.109): every `[conductor] health_interval_s` each
//! node this conductor owns on the hash ring, not in maintenance, not busy and not in a state
//! Ironic's power sync leaves alone, is asked for its BMC's health through its `Hardware` port.
//! A change is saved under the node's lock and recorded in its history ("monitoring"); a
//! node whose driver cannot tell (fake-hardware) is skipped, as Ironic skips a driver without
//! `get_node_health`.

use std::time::Duration;

use chrono::Utc;

use super::ring::HashRing;
use super::states::ProvisionState;
use super::{compose, release, Conductor, ConductorResult};
use crate::hardware::HardwareError;
use crate::store::{Filter, ListQuery, Node};

/// States Ironic's power sync skips (`SYNC_EXCLUDED_STATES`).
const EXCLUDED: &[ProvisionState] = &[
    ProvisionState::WaitCallback,
    ProvisionState::CleanWait,
    ProvisionState::Enroll,
    ProvisionState::AdoptFailed,
];

/// Nodes read per store query during a round.
const PAGE: usize = 200;

/// Whether a round leaves `node` alone: in maintenance, busy, changing power, or resting where
/// Ironic does not sync.
fn skipped(node: &Node) -> bool {
    node.maintenance
        || node.reservation.is_some()
        || node.target_power_state.is_some()
        || ProvisionState::parse(&node.provision_state).is_some_and(|s| EXCLUDED.contains(&s))
}

/// The history entry for a change, in Ironic's words.
pub fn change_event(new: Option<&str>, old: Option<&str>) -> String {
    format!(
        "Node health status changed: health='{}' (previously '{}')",
        new.unwrap_or("None"),
        old.unwrap_or("None")
    )
}

impl Conductor {
    /// Syncs health every `every` until the process ends.
    pub fn spawn_health_sync(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = this.sync_health().await {
                    tracing::warn!(error = %e, "health monitoring round failed");
                }
            }
        })
    }

    /// One round: returns how many nodes' health changed.
    pub async fn sync_health(&self) -> ConductorResult<usize> {
        let ring = self.live_ring().await?;
        let mut changed = 0;
        let mut marker = None;
        loop {
            let query = ListQuery {
                filters: vec![Filter::Eq("maintenance", false.into())],
                marker: marker.take(),
                limit: PAGE,
                ..ListQuery::default()
            };
            let page = self.store.list_nodes(&query).await?;
            for node in &page.rows {
                if ring.owner(&node.uuid) != Some(self.name()) || skipped(node) {
                    continue;
                }
                match self.sync_node_health(node).await {
                    Ok(true) => changed += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(node = %node.uuid, error = %e, "could not retrieve health status")
                    }
                }
            }
            match (page.more, page.rows.last()) {
                (true, Some(last)) => marker = Some(last.uuid.clone()),
                _ => return Ok(changed),
            }
        }
    }

    /// The ring of live conductors (this one included) that shares the nodes out.
    async fn live_ring(&self) -> ConductorResult<HashRing> {
        let cutoff =
            Utc::now() - chrono::Duration::seconds(self.settings.heartbeat_timeout_s as i64);
        let mut live: Vec<String> = self
            .store
            .conductors()
            .await?
            .into_iter()
            .filter(|r| r.online && r.heartbeat_at >= cutoff)
            .map(|r| r.hostname)
            .collect();
        live.push(self.name().to_string());
        live.sort();
        live.dedup();
        Ok(HashRing::new(&live))
    }

    /// Reads one node's health; saves and records it when it changed.
    async fn sync_node_health(&self, node: &Node) -> ConductorResult<bool> {
        let composed = compose(node, &self.settings, &self.services)?;
        let health = match composed.hardware.health().await {
            Ok(h) => h,
            Err(HardwareError::Unsupported(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if health == node.health.as_deref() {
            return Ok(false);
        }
        let Some(lock) = self.store.lock_node(&node.uuid, self.name()).await? else {
            return Ok(false); // busy: the next round
        };
        let mut fresh = match self.store.node_by_uuid(&node.uuid).await? {
            Some(n) if !n.maintenance => n,
            _ => {
                release(lock).await;
                return Ok(false);
            }
        };
        let old = fresh.health.take();
        fresh.health = health.map(str::to_string);
        let saved = self.store.save_node(&lock, &fresh).await;
        release(lock).await;
        saved?;
        self.history(
            &node.uuid,
            "monitoring",
            "INFO",
            &change_event(health, old.as_deref()),
        )
        .await;
        if matches!(health, Some("Warning" | "Critical")) {
            tracing::warn!(node = %node.uuid, health = ?health, "node health status indicates a problem");
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_skip_what_ironics_power_sync_skips() {
        let mut n = Node::new("u".into(), "redfish".into(), |_| "redfish");
        n.provision_state = "active".into();
        assert!(!skipped(&n));
        for state in ["wait call-back", "clean wait", "enroll", "adopt failed"] {
            n.provision_state = state.into();
            assert!(skipped(&n), "{state}");
        }
        n.provision_state = "manageable".into();
        n.maintenance = true;
        assert!(skipped(&n));
        n.maintenance = false;
        n.reservation = Some("c".into());
        assert!(skipped(&n));
        n.reservation = None;
        n.target_power_state = Some("power on".into());
        assert!(skipped(&n));
    }

    #[test]
    fn history_says_what_changed() {
        assert_eq!(
            change_event(Some("Critical"), Some("OK")),
            "Node health status changed: health='Critical' (previously 'OK')"
        );
        assert_eq!(
            change_event(None, Some("Warning")),
            "Node health status changed: health='None' (previously 'Warning')"
        );
    }
}
