//! Adoption (Ironic's `adopt` verb, 1.17): a node deployed by other means becomes `active`
//! without a deploy. baremetal-operator adopts its externally provisioned hosts, and hosts it
//! registers again after Ironic's database was lost.
//!
//! As Ironic's `_do_adoption`: a node whose instance boots from the conductor (the ramdisk
//! deploy interface, a live ISO) must say what it boots, since that is what its boot interface
//! validates; a node that boots from its own disk (direct, fake) needs nothing. Then the deploy
//! driver adopts it (the ramdisk driver serves the ISO from here and points the node's virtual
//! CD at it). Nothing is written to the node's disk, powered or rebooted.

use deploy_drivers::{DeployEvents, NodeView};
use serde_json::Value;

use super::Composed;
use crate::store::Node;

pub(super) async fn adopt(
    node: &Node,
    composed: &Composed,
    view: &NodeView,
    events: &dyn DeployEvents,
) -> Result<(), String> {
    check(node)?;
    events.step("adopt", "boot information checked").await;
    composed
        .deploy
        .adopt(view, &composed.ports, events)
        .await
        .map_err(|e| e.to_string())?;
    events.step("adopt", "taken over").await;
    Ok(())
}

/// Ironic's boot validation for an adopted node: only a node booting its instance from the
/// conductor needs to name it.
pub(super) fn check(node: &Node) -> Result<(), String> {
    if node.deploy_interface != "ramdisk" {
        return Ok(());
    }
    let named = node
        .instance_info
        .get("boot_iso")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty());
    if named {
        return Ok(());
    }
    Err(format!(
        "node {} uses deploy_interface ramdisk, so its instance boots from the conductor, but instance_info has no boot_iso: set instance_info/boot_iso to the ISO the node runs, then adopt again",
        node.uuid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(deploy: &str, info: Value) -> Node {
        let mut n = Node::new("u".into(), "fake-hardware".into(), |_| "fake");
        n.deploy_interface = deploy.into();
        n.instance_info = info.as_object().cloned().unwrap_or_default();
        n
    }

    #[test]
    fn a_live_iso_node_must_name_its_iso_a_disk_booting_node_nothing() {
        assert!(check(&node("direct", json!({}))).is_ok());
        assert!(check(&node("fake", json!({}))).is_ok());
        let err = check(&node("ramdisk", json!({}))).unwrap_err();
        assert!(err.contains("instance_info has no boot_iso"), "{err}");
        assert!(check(&node("ramdisk", json!({"boot_iso": " "}))).is_err());
        let image_source = json!({"image_source": "http://x/live.iso"});
        assert!(check(&node("ramdisk", image_source)).is_err());
        assert!(check(&node("ramdisk", json!({"boot_iso": "http://x/live.iso"}))).is_ok());
    }
}
