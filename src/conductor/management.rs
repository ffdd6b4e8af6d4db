//! Node management outside provisioning (Ironic's management and console interfaces): the
//! next boot device, set through the node's BootDevice port under the node's lock and
//! remembered in driver_internal_info, and the console flag.

use deploy_drivers::{BootMode, BootTarget};
use serde_json::{json, Value};

use super::{compose, release, worker, Conductor, ConductorError, ConductorResult};
use crate::store::Node;

/// driver_internal_info key of the last boot device set: `{"boot_device", "persistent"}`.
pub const BOOT_DEVICE_KEY: &str = "boot_device";

/// Boot devices a node can be set to, as Ironic spells them.
pub const BOOT_DEVICES: &[(&str, BootTarget)] = &[
    ("pxe", BootTarget::Pxe),
    ("disk", BootTarget::Disk),
    ("cdrom", BootTarget::Cd),
    ("uefi http", BootTarget::UefiHttp),
];

/// The boot device last set on `node` and whether it persists; a node never set boots as its
/// driver does by default (fake hardware: PXE; others: disk).
pub fn boot_device(node: &Node) -> (String, bool) {
    if let Some(saved) = node.driver_internal_info.get(BOOT_DEVICE_KEY) {
        if let Some(device) = saved.get("boot_device").and_then(Value::as_str) {
            let persistent = saved
                .get("persistent")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return (device.to_string(), persistent);
        }
    }
    let default = if node.management_interface == "fake" {
        "pxe"
    } else {
        "disk"
    };
    (default.to_string(), false)
}

impl Conductor {
    /// Sets the node's next boot device (`persistent`: every boot, else the next one).
    pub async fn set_boot_device(
        &self,
        ident: &str,
        device: &str,
        persistent: bool,
    ) -> ConductorResult<()> {
        let target = BOOT_DEVICES
            .iter()
            .find(|(name, _)| *name == device)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = BOOT_DEVICES.iter().map(|(n, _)| *n).collect();
                ConductorError::Invalid(format!(
                    "Invalid boot device {device}, supported boot devices are {}",
                    names.join(", ")
                ))
            })?;
        let (this, ident, device) = (self.clone(), ident.to_string(), device.to_string());
        Conductor::detached(async move {
            let (lock, mut node) = this.lock(&ident).await?;
            let result = async {
                let composed = compose(&node, &this.settings, &this.services)?;
                let mode = worker::node_view(&node, &[])
                    .boot_mode
                    .unwrap_or(BootMode::Uefi);
                composed
                    .ports
                    .boot
                    .set_boot_device(target, persistent, mode)
                    .await
                    .map_err(|e| {
                        ConductorError::Conflict(format!(
                            "Setting the boot device of node {} to {device} failed: {e}",
                            node.uuid
                        ))
                    })?;
                node.driver_internal_info.insert(
                    BOOT_DEVICE_KEY.into(),
                    json!({"boot_device": device, "persistent": persistent}),
                );
                this.store.save_node(&lock, &node).await?;
                Ok(())
            }
            .await;
            release(lock).await;
            result
        })
        .await
    }

    /// Turns the node's console on or off; a node without a console interface refuses.
    pub async fn set_console(&self, ident: &str, enabled: bool) -> ConductorResult<Node> {
        self.update_node(ident, move |n| {
            if enabled && n.console_interface == "no-console" {
                return Err(ConductorError::Invalid(format!(
                    "Node {} has no console (console_interface is no-console): set a console_interface first",
                    n.uuid
                )));
            }
            n.console_enabled = enabled;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_boot_device_set_is_shown() {
        let mut n = Node::new("n".into(), "fake-hardware".into(), |_| "fake");
        assert_eq!(boot_device(&n), ("pxe".to_string(), false));
        n.driver_internal_info.insert(
            BOOT_DEVICE_KEY.into(),
            json!({"boot_device": "cdrom", "persistent": true}),
        );
        assert_eq!(boot_device(&n), ("cdrom".to_string(), true));
    }
}
