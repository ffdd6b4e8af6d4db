//! Allocations (Ironic's): a request for one node of a resource class with some traits,
//! optionally among candidate nodes and within a project. Creating one answers at once
//! ("allocating") and a task picks a node: free candidates in random order, each claimed by
//! one conditional transaction (`Store::fill_allocation`) so two allocations never share a
//! node, retried a few times while candidates are locked by running tasks. Backfilling gives
//! an allocation a node that is already deployed. Tearing a node down, or removing its
//! instance_uuid, deletes its allocation, as in Ironic.

use std::time::Duration;

use super::states::ProvisionState;
use super::{Conductor, ConductorError, ConductorResult};
use crate::store::{Allocation, Node, NodeCriteria};

/// How many free candidates one attempt tries, and how many attempts while they are locked.
const CANDIDATES_PER_ATTEMPT: usize = 50;
const ATTEMPTS: usize = 5;
const RETRY_WAIT: Duration = Duration::from_millis(300);

/// Why a backfill does not fit the node, in Ironic's words (empty: it fits).
pub fn backfill_errors(a: &Allocation, node: &Node, node_traits: &[String]) -> Vec<String> {
    let mut errors = Vec::new();
    if node.provision_state != ProvisionState::Active.as_str() {
        errors.push(format!(
            "Node must be in the \"active\" state, but the current state is \"{}\"",
            node.provision_state
        ));
    }
    if let Some(rc) = &a.resource_class {
        if node.resource_class.as_ref() != Some(rc) {
            errors.push(format!(
                "Resource class {} does not match the requested resource class {rc}",
                node.resource_class.as_deref().unwrap_or("None")
            ));
        }
    }
    if !a.traits.iter().all(|t| node_traits.contains(t)) {
        errors.push(format!(
            "List of traits {node_traits:?} does not match the requested traits {:?}",
            a.traits
        ));
    }
    if !a.candidate_nodes.is_empty() && !a.candidate_nodes.contains(&node.uuid) {
        errors.push(format!(
            "Candidate nodes must be empty or contain the target node, but got {:?}",
            a.candidate_nodes
        ));
    }
    errors
}

impl Conductor {
    /// Node UUIDs for candidate node names or UUIDs, in the given order; an unknown one is
    /// `Invalid`.
    pub async fn resolve_candidates(&self, idents: &[String]) -> ConductorResult<Vec<String>> {
        let mut out = Vec::with_capacity(idents.len());
        for ident in idents {
            match self.store.node(ident).await {
                Ok(n) => out.push(n.uuid),
                Err(crate::store::StoreError::NotFound { .. }) => {
                    return Err(ConductorError::Invalid(format!(
                        "Node {ident} could not be found: candidate_nodes must name existing nodes"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Saves a new allocation and starts looking for a node for it; the answer is the
    /// allocation as saved ("allocating").
    pub async fn create_allocation(&self, a: Allocation) -> ConductorResult<Allocation> {
        let made = self.store.create_allocation(&a).await?;
        let this = self.clone();
        let uuid = made.uuid.clone();
        tokio::spawn(async move {
            if let Err(why) = this.allocate(&uuid).await {
                tracing::info!(allocation = %uuid, error = %why, "allocation failed");
                if let Err(e) = this.store.fail_allocation(&uuid, &why).await {
                    tracing::error!(allocation = %uuid, error = %e, "cannot save failed allocation");
                }
            }
        });
        Ok(made)
    }

    /// Saves a new allocation holding deployed `node` (backfill); refuses one that does not fit.
    pub async fn backfill_allocation(
        &self,
        mut a: Allocation,
        node: &Node,
    ) -> ConductorResult<Allocation> {
        let traits = self.store.node_traits(&node.uuid).await?;
        let errors = backfill_errors(&a, node, &traits);
        if !errors.is_empty() {
            return Err(ConductorError::Invalid(format!(
                "Cannot backfill an allocation for node {}: {}",
                node.uuid,
                errors.join("; ")
            )));
        }
        a.node_uuid = Some(node.uuid.clone());
        a.state = "active".into();
        Ok(self.store.create_backfilled_allocation(&a).await?)
    }

    /// Finds and claims a node for allocating allocation `uuid`; the error is its last_error.
    async fn allocate(&self, uuid: &str) -> Result<(), String> {
        let a = self
            .store
            .allocation(uuid)
            .await
            .map_err(|e| e.to_string())?;
        let rc = a.resource_class.clone().unwrap_or_default();
        let criteria = NodeCriteria {
            resource_class: a.resource_class.clone(),
            traits: a.traits.clone(),
            candidates: a.candidate_nodes.clone(),
            project: a.owner.clone(),
        };
        for attempt in 0..ATTEMPTS {
            let nodes = self
                .store
                .allocation_candidates(&criteria, CANDIDATES_PER_ATTEMPT)
                .await
                .map_err(|e| e.to_string())?;
            if nodes.is_empty() && attempt == 0 {
                return Err(self.why_no_candidates(&criteria, &rc).await);
            }
            for node in &nodes {
                match self.store.fill_allocation(uuid, node).await {
                    Ok(true) => {
                        tracing::info!(allocation = %uuid, %node, "node reserved for allocation");
                        return Ok(());
                    }
                    Ok(false) => {}
                    // Deleted meanwhile: nothing to fill, nothing to report.
                    Err(crate::store::StoreError::NotFound { .. }) => return Ok(()),
                    Err(e) => return Err(e.to_string()),
                }
            }
            tokio::time::sleep(RETRY_WAIT).await;
        }
        Err("all nodes were filtered out during reservation".into())
    }

    /// Ironic's message for an allocation no node matches: by resource class, else by traits.
    async fn why_no_candidates(&self, criteria: &NodeCriteria, rc: &str) -> String {
        let without_traits = NodeCriteria {
            traits: Vec::new(),
            ..criteria.clone()
        };
        let some = self
            .store
            .allocation_candidates(&without_traits, 1)
            .await
            .map(|n| !n.is_empty())
            .unwrap_or(false);
        if some {
            format!(
                "no suitable nodes have the requested traits {}",
                criteria.traits.join(", ")
            )
        } else if criteria.candidates.is_empty() {
            format!("no available nodes match the resource class {rc}")
        } else {
            format!("none of the requested nodes are available and match the resource class {rc}")
        }
    }

    /// Deletes an allocation and frees its node, unless the node is deployed or busy (and not
    /// in maintenance).
    pub async fn delete_allocation(&self, a: &Allocation) -> ConductorResult<()> {
        if let Some(node_uuid) = &a.node_uuid {
            if let Some(node) = self.store.node_by_uuid(node_uuid).await? {
                let busy = node.target_provision_state.is_some();
                let active = node.provision_state == ProvisionState::Active.as_str();
                if !node.maintenance && (busy || active) {
                    let why = if active {
                        "the node is active".to_string()
                    } else {
                        format!("the node is in state {}", node.provision_state)
                    };
                    return Err(ConductorError::Conflict(format!(
                        "Cannot remove allocation {} for node {}, because {why} (and maintenance \
                         mode is off): undeploy the node or set maintenance first",
                        a.uuid, node.uuid
                    )));
                }
            }
        }
        Ok(self.store.delete_allocation(&a.uuid).await?)
    }

    /// After a node lost its instance_uuid (JSON-Patch) or was torn down: its allocation goes.
    pub async fn drop_allocation_of(&self, node: &mut Node) -> ConductorResult<()> {
        if let Some(a) = node.allocation_uuid.take() {
            match self.store.delete_allocation(&a).await {
                Ok(()) | Err(crate::store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            node.instance_uuid = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed() -> Node {
        let mut n = Node::new("n1".into(), "fake-hardware".into(), |_| "fake");
        n.provision_state = "active".into();
        n.resource_class = Some("gold".into());
        n
    }

    #[test]
    fn backfill_fits_only_a_matching_deployed_node() {
        let mut a = Allocation {
            resource_class: Some("gold".into()),
            traits: vec!["CUSTOM_A".into()],
            ..Allocation::default()
        };
        let traits = vec!["CUSTOM_A".to_string(), "CUSTOM_B".to_string()];
        assert!(backfill_errors(&a, &deployed(), &traits).is_empty());
        let mut available = deployed();
        available.provision_state = "available".into();
        assert!(backfill_errors(&a, &available, &traits)[0].contains("\"active\" state"));
        a.resource_class = Some("silver".into());
        a.traits.push("CUSTOM_C".into());
        a.candidate_nodes = vec!["other".into()];
        let errors = backfill_errors(&a, &deployed(), &traits);
        assert_eq!(errors.len(), 3, "{errors:?}");
        a.resource_class = None;
        a.traits.clear();
        a.candidate_nodes = vec!["n1".into()];
        assert!(backfill_errors(&a, &deployed(), &[]).is_empty());
    }
}
