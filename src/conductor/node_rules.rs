//! Rules between node fields that a JSON-Patch must keep (Ironic's conductor `update_node`):
//! only a deployed node can be protected, a reason needs its flag, clearing a flag clears its
//! reason, and leaving maintenance clears its reason and fault.

use super::states::ProvisionState;
use super::{ConductorError, ConductorResult};
use crate::store::Node;

/// Checks `after` (the patched node) against `before` and clears what a cleared flag leaves.
pub fn check_update(before: &Node, after: &mut Node) -> ConductorResult<()> {
    if after.protected != before.protected {
        let state = after.provision_state.as_str();
        if !after.protected {
            after.protected_reason = None;
        } else if state != ProvisionState::Active.as_str() && state != "rescue" {
            return Err(ConductorError::Conflict(format!(
                "Node {} can only be made protected in provision states 'active' or 'rescue', \
                 the current state is '{state}'",
                after.uuid
            )));
        }
    }
    if after.protected_reason != before.protected_reason
        && after.protected_reason.is_some()
        && !after.protected
    {
        return Err(ConductorError::Invalid(
            "The protected_reason field can only be set when protected is True".into(),
        ));
    }
    if after.retired != before.retired {
        if !after.retired {
            after.retired_reason = None;
        } else if after.provision_state == ProvisionState::Available.as_str() {
            return Err(ConductorError::Conflict(format!(
                "Node {} can not have 'retired' set in provision state 'available'",
                after.uuid
            )));
        }
    }
    if after.retired_reason != before.retired_reason
        && after.retired_reason.is_some()
        && !after.retired
    {
        return Err(ConductorError::Invalid(
            "The retired_reason field can only be set when retired is True".into(),
        ));
    }
    if before.maintenance && !after.maintenance {
        after.maintenance_reason = None;
        after.fault = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(state: &str) -> Node {
        let mut n = Node::new("n".into(), "fake-hardware".into(), |_| "fake");
        n.provision_state = state.into();
        n
    }

    #[test]
    fn protected_only_when_deployed_and_reason_follows_the_flag() {
        let before = node("available");
        let mut after = before.clone();
        after.protected = true;
        assert!(matches!(
            check_update(&before, &mut after),
            Err(ConductorError::Conflict(_))
        ));
        let before = node("active");
        let mut after = before.clone();
        after.protected = true;
        after.protected_reason = Some("why".into());
        check_update(&before, &mut after).unwrap();
        let before = after.clone();
        after.protected = false;
        check_update(&before, &mut after).unwrap();
        assert_eq!(after.protected_reason, None, "cleared with its flag");
        let before = node("active");
        let mut after = before.clone();
        after.protected_reason = Some("why".into());
        assert!(matches!(
            check_update(&before, &mut after),
            Err(ConductorError::Invalid(_))
        ));
    }

    #[test]
    fn leaving_maintenance_clears_its_reason_and_fault() {
        let mut before = node("manageable");
        before.maintenance = true;
        before.maintenance_reason = Some("r".into());
        before.fault = Some("power failure".into());
        let mut after = before.clone();
        after.maintenance = false;
        check_update(&before, &mut after).unwrap();
        assert_eq!((after.maintenance_reason, after.fault), (None, None));
    }
}
