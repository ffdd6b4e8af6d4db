//! Start-up reconciliation: cache leases and image-server publications that no node records.
//!
//! Deploy drivers record a lease's or publication's id on the node before making it, so
//! anything the cache or the image server holds that its node does not record was made by a
//! deploy that died before it could save, or outlived its record. And a publication serves a
//! node only while the node rests where it is used (active, waiting for its call-back) or has
//! work running: anything else (deploy failed, available …) is a URL nobody should fetch.
//! Both are given back at start-up, logged, and counted in `/metrics`.
//!
//! Order matters with other conductors running: the holdings are listed *before* the nodes
//! are read, so a holding a live deploy is making right now is already recorded on its node.

use std::collections::HashMap;

use deploy_drivers::records::{recorded, Recorded};

use super::metrics::Metrics;
use super::states::ProvisionState;
use super::{Conductor, ConductorResult};

/// A lease or publication held for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub id: String,
    /// The node it is held for (the lease's holder, the publication's node).
    pub node: String,
}

/// What one reconciliation gave back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub leases_released: Vec<String>,
    pub publications_revoked: Vec<String>,
}

/// A node as reconciliation sees it: whether its state uses deploy resources, and its records.
#[derive(Debug, Clone, Default)]
pub struct NodeUse {
    pub in_use: bool,
    pub recorded: Recorded,
}

/// Whether a node resting in (or working in) `state` may use its leases and publications.
pub fn uses_resources(state: &str) -> bool {
    ProvisionState::parse(state).is_none_or(|s| {
        matches!(s, ProvisionState::Active | ProvisionState::WaitCallback) || !s.is_stable()
    })
}

/// The holdings to give back: those whose node is unknown, does not record them, or rests in a
/// state that uses none. `ids` picks the lease or publication ids of a node's records.
pub fn orphans(
    holdings: &[Holding],
    nodes: &HashMap<String, NodeUse>,
    ids: fn(&Recorded) -> &Vec<String>,
) -> Vec<String> {
    holdings
        .iter()
        .filter(|h| {
            nodes
                .get(&h.node)
                .is_none_or(|n| !n.in_use || !ids(&n.recorded).contains(&h.id))
        })
        .map(|h| h.id.clone())
        .collect()
}

impl Conductor {
    /// Releases the `leases` and revokes the `publications` (listed just before) that no node
    /// records, through this conductor's cache and image server ports.
    pub async fn reconcile(
        &self,
        leases: &[Holding],
        publications: &[Holding],
    ) -> ConductorResult<Reconciled> {
        let nodes: HashMap<String, NodeUse> = self
            .store
            .nodes()
            .await?
            .into_iter()
            .map(|n| {
                let usage = NodeUse {
                    in_use: uses_resources(&n.provision_state),
                    recorded: recorded(&n.driver_internal_info),
                };
                (n.uuid, usage)
            })
            .collect();
        let mut done = Reconciled::default();
        if let Some(images) = &self.services.images {
            for id in orphans(leases, &nodes, |r| &r.leases) {
                match images.release(&id).await {
                    Ok(()) => {
                        tracing::warn!(lease = %id, "released a cache lease no node records");
                        Metrics::bump(&self.metrics.leases_reconciled);
                        done.leases_released.push(id);
                    }
                    Err(e) => {
                        tracing::error!(lease = %id, error = %e, "cannot release an orphaned lease")
                    }
                }
            }
        }
        if let Some(publisher) = &self.services.publisher {
            for id in orphans(publications, &nodes, |r| &r.publications) {
                match publisher.revoke(&id).await {
                    Ok(()) => {
                        tracing::warn!(publication = %id, "revoked a publication no node in use records");
                        Metrics::bump(&self.metrics.publications_reconciled);
                        done.publications_revoked.push(id);
                    }
                    Err(e) => {
                        tracing::error!(publication = %id, error = %e, "cannot revoke an orphaned publication")
                    }
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(id: &str, node: &str) -> Holding {
        Holding {
            id: id.into(),
            node: node.into(),
        }
    }

    #[test]
    fn orphans_are_unrecorded_unknown_or_unused() {
        let node = |in_use, leases: &[&str]| NodeUse {
            in_use,
            recorded: Recorded {
                leases: leases.iter().map(|s| s.to_string()).collect(),
                publications: vec![],
            },
        };
        let nodes: HashMap<String, NodeUse> = [
            ("active".to_string(), node(true, &["kept"])),
            ("failed".to_string(), node(false, &["stale"])),
        ]
        .into();
        let holdings = [
            holding("kept", "active"),
            holding("unrecorded", "active"),
            holding("stale", "failed"),
            holding("ghost", "deleted-node"),
        ];
        assert_eq!(
            orphans(&holdings, &nodes, |r| &r.leases),
            ["unrecorded", "stale", "ghost"]
        );
    }

    #[test]
    fn resources_are_used_while_served_or_working() {
        for (state, used) in [
            ("active", true),
            ("wait call-back", true),
            ("deploying", true),
            ("cleaning", true),
            ("deploy failed", false),
            ("available", false),
            ("manageable", false),
            ("error", false),
        ] {
            assert_eq!(uses_resources(state), used, "{state}");
        }
    }
}
