//! Takeover of a dead conductor's nodes, coordinated through the database alone.
//!
//! Every heartbeat, each conductor looks for conductors that are online but whose heartbeat is
//! older than `heartbeat_timeout_s`. The nodes such a conductor left behind are shared among
//! the live conductors by the hash ring (`ring.rs`); each survivor handles only its share, and
//! each step is a conditional UPDATE, so two survivors with different views never both act:
//! - a node it held locked: the lock moves to the survivor (`steal_lock`), work it was doing
//!   fails as Ironic does (deploying → deploy failed, with a reason naming the dead conductor);
//! - a node it deployed and serves (`active`, or waiting for its call-back), whose
//!   `driver_internal_info.conductor_affinity` names it: the survivor locks it and asks the
//!   deploy driver to take it over (re-publish from its own cache and image server, point the
//!   BMC at the new URL). Nothing is redeployed, rebooted or written.
//!
//! When no node refers to the dead conductor any more, its row is marked offline.

use std::collections::HashSet;
use std::time::Instant;

use chrono::Utc;
use serde_json::Value;

use super::ring::HashRing;
use super::states::ProvisionState;
use super::{release, worker, Conductor, ConductorResult};
use crate::store::{Node, NodeLock};

/// driver_internal_info key: the conductor that last worked on the node, and serves it.
pub const AFFINITY_KEY: &str = "conductor_affinity";

/// The conductor a node belongs to, if recorded.
pub fn affinity(node: &Node) -> Option<&str> {
    node.driver_internal_info
        .get(AFFINITY_KEY)
        .and_then(Value::as_str)
}

/// Whether a node resting in `state` may be served by its conductor (and so needs a takeover).
fn served(state: &str) -> bool {
    matches!(
        ProvisionState::parse(state),
        Some(ProvisionState::Active | ProvisionState::WaitCallback)
    )
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Takeover {
    /// Dead conductors seen.
    pub dead: Vec<String>,
    /// Nodes whose interrupted work was failed.
    pub failed: usize,
    /// Nodes now served by this conductor.
    pub adopted: usize,
    /// Dead conductors with nothing left, marked offline.
    pub retired: Vec<String>,
}

impl Conductor {
    /// One takeover pass (see the module docs).
    pub async fn take_over_dead(&self) -> ConductorResult<Takeover> {
        let me = self.name().to_string();
        let timeout = chrono::Duration::seconds(self.settings.heartbeat_timeout_s as i64);
        let cutoff = Utc::now() - timeout;
        let rows = self.store.conductors().await?;
        let dead: HashSet<String> = rows
            .iter()
            .filter(|r| r.online && r.heartbeat_at < cutoff && r.hostname != me)
            .map(|r| r.hostname.clone())
            .collect();
        let mut report = Takeover::default();
        if dead.is_empty() {
            return Ok(report);
        }
        let started = Instant::now();
        let mut live: Vec<String> = rows
            .iter()
            .filter(|r| r.online && r.heartbeat_at >= cutoff)
            .map(|r| r.hostname.clone())
            .collect();
        live.push(me.clone());
        let ring = HashRing::new(&live);
        report.dead = dead.iter().cloned().collect();
        report.dead.sort();
        for node in self.store.nodes().await? {
            let Some(from) = left_by(&node, &dead) else {
                continue;
            };
            if ring.owner(&node.uuid) != Some(me.as_str()) {
                continue;
            }
            let from = from.to_string();
            let lock = if node.reservation.as_deref() == Some(from.as_str()) {
                self.store.steal_lock(&node.uuid, &from, &me).await?
            } else {
                self.store.lock_node(&node.uuid, &me).await?
            };
            let Some(lock) = lock else {
                continue; // someone else got there first, or it is busy: next pass
            };
            let (failed, adopted) = self.take_over_node(&lock, &from).await;
            report.failed += usize::from(failed);
            report.adopted += usize::from(adopted);
            release(lock).await;
        }
        let left: Vec<Node> = self.store.nodes().await?;
        for d in &report.dead {
            let one: HashSet<String> = [d.clone()].into();
            if !left.iter().any(|n| left_by(n, &one).is_some()) {
                self.store.conductor_offline(d).await?;
                report.retired.push(d.clone());
                tracing::warn!(conductor = %d, "dead conductor fully taken over, marked offline");
            }
        }
        if report.failed + report.adopted > 0 {
            tracing::warn!(
                dead = ?report.dead,
                failed = report.failed,
                adopted = report.adopted,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "took over nodes of dead conductors"
            );
        }
        Ok(report)
    }

    /// Under `lock` (just taken from dead conductor `from`): fail the node's interrupted work,
    /// take over what it serves, record this conductor as its own. (failed, adopted).
    async fn take_over_node(&self, lock: &NodeLock, from: &str) -> (bool, bool) {
        let me = self.name().to_string();
        let Ok(Some(mut node)) = self.store.node_by_uuid(lock.uuid()).await else {
            return (false, false);
        };
        let mut failed = false;
        let state = ProvisionState::parse(&node.provision_state);
        // Work the dead conductor was running (its task died with it) fails; a node waiting for
        // a call-back keeps waiting (the call-back may reach any conductor).
        if let Some(to) = state
            .filter(|s| s.has_worker())
            .and_then(|s| s.failure_state())
        {
            let why = format!(
                "conductor {from} stopped heartbeating while the node was in \"{}\" (target \"{}\"); conductor {me} took the node over: the operation did not finish, retry it",
                node.provision_state,
                node.target_provision_state.as_deref().unwrap_or("none")
            );
            let event = format!("{why} : {} -> {to}", node.provision_state);
            self.history(&node.uuid, "takeover", "ERROR", &event).await;
            if state == Some(ProvisionState::Deploying) {
                node = self.abandon_interrupted(lock, node).await;
            }
            node.provision_state = to.as_str().into();
            node.target_provision_state = None;
            node.last_error = Some(why);
            node.provision_updated_at = Some(Utc::now());
            failed = true;
        }
        node.target_power_state = None;
        let mut adopted = false;
        if !failed && served(&node.provision_state) {
            match worker::take_over(self, lock, &node).await {
                Ok(()) => {
                    adopted = true;
                    super::metrics::Metrics::bump(&self.metrics.nodes_taken_over);
                    self.history(
                        &node.uuid,
                        "takeover",
                        "INFO",
                        &format!("conductor {from} stopped heartbeating; conductor {me} serves the node now"),
                    )
                    .await;
                }
                Err(e) => {
                    let why = format!("conductor {me} could not take the node over from dead conductor {from}: {e}");
                    self.history(&node.uuid, "takeover", "ERROR", &why).await;
                    tracing::error!(node = %node.uuid, error = %e, "takeover failed");
                }
            }
            // The driver recorded its new resources meanwhile.
            if let Ok(Some(fresh)) = self.store.node_by_uuid(lock.uuid()).await {
                node = fresh;
                node.target_power_state = None;
            }
        }
        node.driver_internal_info
            .insert(AFFINITY_KEY.into(), Value::String(me.clone()));
        if let Err(e) = self.store.save_node(lock, &node).await {
            tracing::error!(node = %node.uuid, error = %e, "cannot save a taken-over node");
        }
        (failed, adopted)
    }
}

/// The dead conductor (one of `dead`) that left this node behind: it holds its lock, or the
/// node rests served by it.
fn left_by<'a>(node: &'a Node, dead: &HashSet<String>) -> Option<&'a str> {
    if let Some(holder) = node.reservation.as_deref() {
        return dead.contains(holder).then_some(holder);
    }
    affinity(node).filter(|a| dead.contains(*a) && served(&node.provision_state))
}
