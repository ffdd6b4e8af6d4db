//! Capture (an ironcast extension, no Ironic counterpart): the agent reads the node's root
//! disk and uploads it to the conductor's image cache, which registers it under a name that a
//! later `direct` deploy takes as its `image_source`; then the node goes back to what it was.
//!
//! Prepare (in the API request, before anything is booted): the agent's ports and the capture
//! service are there, and when the root disk's size is known (the disk the deploy wrote,
//! saved in driver_internal_info `root_disk`; an exact `size` root device hint; properties
//! `local_gb`) room for it is reserved in the cache — a capture that cannot fit is refused
//! there, naming the sizes. Capture: check BMC → boot the agent → root disk (the deployed one,
//! else the hints, else the smallest disk of at least 4 GiB) → reserve (again, with the size
//! the agent reports) → `capture_disk` (progress on the node) → register → an `active` node
//! boots its disk again (persistent disk boot, eject, reboot); any other is powered off. A
//! failure discards the upload and the reservation and still returns the node to its state.

use serde_json::{json, Value};

use super::DirectDeploy;
use crate::driver::*;
use crate::ports::*;
use crate::root_device::{self, Hints};
use crate::steps::{keep_first, missing_port, run_step};

/// The driver_internal_info key of the disk a deploy wrote: `{"name": …, "size": …}`.
pub const ROOT_DISK_KEY: &str = "root_disk";

/// The root disk as a deploy recorded it (pure).
fn saved_root_disk(node: &NodeView) -> Option<(String, u64)> {
    let v = node.driver_internal_info.get(ROOT_DISK_KEY)?;
    Some((
        v.get("name")?.as_str()?.to_string(),
        v.get("size")?.as_u64()?,
    ))
}

/// The node's root device hints (instance_info, else properties).
fn hints(node: &NodeView) -> Result<Hints, DeployError> {
    match node
        .instance_info
        .get("root_device")
        .or_else(|| node.properties.get("root_device"))
        .filter(|v| !v.is_null())
    {
        Some(v) => Hints::parse(v).map_err(|e| DeployError::invalid(e.to_string())),
        None => Ok(Hints::default()),
    }
}

/// The root disk's size when it is known before the agent boots (pure).
fn known_size(node: &NodeView) -> Result<Option<u64>, DeployError> {
    if let Some((_, size)) = saved_root_disk(node) {
        return Ok(Some(size));
    }
    let gib = |v: Option<&Value>| {
        let v = v?;
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?
            .checked_mul(1 << 30)
            .filter(|b| *b > 0)
    };
    Ok(hints(node)?
        .exact_size()
        .or_else(|| gib(node.properties.get("local_gb"))))
}

/// The record saved after a deploy chose its root disk.
pub(super) fn root_disk_record(disk: &InventoryDisk) -> Value {
    json!({"name": disk.name, "size": disk.size})
}

impl DirectDeploy {
    fn check_capture_ports(&self, ports: &Ports) -> Result<(), DeployError> {
        self.check_agent_ports(ports)?;
        if ports.captures.is_none() {
            return Err(missing_port("image cache for captures"));
        }
        Ok(())
    }

    pub(super) async fn prepare_capture_now(
        &self,
        node: &NodeView,
        ports: &Ports,
        request: &CaptureRequest,
    ) -> Result<(), DeployError> {
        self.check_capture_ports(ports)?;
        self.boot_mode(node)?;
        let captures = ports
            .captures
            .as_ref()
            .ok_or_else(|| missing_port("image cache for captures"))?;
        if let Some(size) = known_size(node)? {
            run_step(
                "reserve cache",
                self.policy.local_timeout,
                captures.reserve(&node.uuid, request, size),
            )
            .await?;
        }
        Ok(())
    }

    pub(super) async fn capture_now(
        &self,
        node: &NodeView,
        ports: &Ports,
        request: &CaptureRequest,
        active: bool,
        events: &dyn DeployEvents,
    ) -> Result<CapturedImage, DeployError> {
        self.check_capture_ports(ports)?;
        let mode = self.boot_mode(node)?;
        let captures = ports
            .captures
            .as_ref()
            .ok_or_else(|| missing_port("image cache for captures"))?;
        events
            .step(
                "capture",
                &format!(
                    "{} as {} ({})",
                    node.uuid,
                    request.name,
                    request.format.name()
                ),
            )
            .await;
        let mut held = super::Held::default();
        let result = self
            .capture_steps(node, ports, request, mode, &mut held, events)
            .await;
        if result.is_err() {
            captures.discard(&node.uuid).await;
        }
        let back = if active {
            self.boot_disk(node, ports, mode, &mut held, events).await
        } else {
            Ok(())
        };
        // A node that was not active is left powered off, as after cleaning.
        let released = self.release(node, ports, &mut held, !active, events).await;
        let image = result?;
        back.and(released)?;
        Ok(image)
    }

    async fn capture_steps(
        &self,
        node: &NodeView,
        ports: &Ports,
        request: &CaptureRequest,
        mode: BootMode,
        held: &mut super::Held,
        events: &dyn DeployEvents,
    ) -> Result<CapturedImage, DeployError> {
        let p = &self.policy;
        let captures = ports
            .captures
            .as_ref()
            .ok_or_else(|| missing_port("image cache for captures"))?;
        run_step("check BMC", p.bmc_timeout, ports.power.power_state()).await?;
        events.step("check BMC", "BMC answered").await;
        let known = known_size(node)?;
        let inventory = self.boot_agent(node, ports, mode, held, events).await?;
        let agent = ports.agent.as_ref().ok_or_else(|| missing_port("agent"))?;
        let saved = saved_root_disk(node)
            .and_then(|(name, _)| inventory.disks.iter().find(|d| d.name == name).cloned());
        let disk = match saved {
            Some(d) => d,
            None => root_device::choose(&hints(node)?, &inventory.disks)
                .map_err(|e| {
                    DeployError::new(
                        "root device",
                        PortError::new(PortErrorKind::InvalidInput, e.to_string()),
                    )
                })?
                .clone(),
        };
        events
            .step(
                "root device",
                &format!("{} ({} bytes)", disk.name, disk.size),
            )
            .await;
        if known != Some(disk.size) {
            run_step(
                "reserve cache",
                p.local_timeout,
                captures.reserve(&node.uuid, request, disk.size),
            )
            .await?;
            events
                .step(
                    "reserve cache",
                    &format!("room for the {}-byte disk", disk.size),
                )
                .await;
        }
        let command = AgentCommand::CaptureDisk(CaptureCommand {
            device: disk.name.clone(),
            format: request.format,
            zstd_level: p.capture_zstd_level,
        });
        events
            .step(
                "capture disk",
                &format!("{} as {}", disk.name, request.format.name()),
            )
            .await;
        super::progress::run_reporting(
            agent.as_ref(),
            &node.uuid,
            &command,
            p.write_timeout,
            "capture disk",
            p.progress_interval,
            events,
        )
        .await
        .map_err(|e| DeployError::new("capture disk", e))?;
        let image = run_step(
            "register image",
            p.local_timeout,
            captures.finish(&node.uuid),
        )
        .await?;
        events
            .step(
                "register image",
                &format!(
                    "{} ({}, {} bytes of a {}-byte disk, {})",
                    image.name,
                    image.format.name(),
                    image.size,
                    image.virtual_size,
                    image.digest
                ),
            )
            .await;
        Ok(image)
    }

    /// Boots the node from its disk again: persistent disk boot, eject, end the agent,
    /// reboot. Best effort after a failure; the first error is returned.
    pub(super) async fn boot_disk(
        &self,
        node: &NodeView,
        ports: &Ports,
        mode: BootMode,
        held: &mut super::Held,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let p = &self.policy;
        let mut first = None;
        if ports.vmedia.is_some() {
            let r = run_step(
                "boot from disk",
                p.bmc_timeout,
                ports.boot.set_boot_device(BootTarget::Disk, true, mode),
            )
            .await;
            let done = format!("disk, persistent, {}", mode.as_ironic());
            keep_first(&mut first, r, events, "boot from disk", &done).await;
        }
        if let Some(vmedia) = &ports.vmedia {
            let r = run_step("eject agent", p.bmc_timeout, vmedia.eject_all()).await;
            if r.is_ok() {
                held.inserted = false;
            }
            keep_first(
                &mut first,
                r,
                events,
                "eject agent",
                "virtual media ejected",
            )
            .await;
        }
        if let Some(agent) = &ports.agent {
            agent.end(&node.uuid).await;
            held.agent = false;
            events
                .step("end agent", "the agent's token is forgotten")
                .await;
        }
        let r = run_step(
            "reboot",
            p.bmc_timeout,
            ports.power.set_power(PowerAction::Reboot),
        )
        .await;
        if r.is_ok() {
            held.powered = false;
        }
        keep_first(&mut first, r, events, "reboot", "into its disk").await;
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(internal: Value, properties: Value) -> NodeView {
        NodeView {
            uuid: "n1".into(),
            driver_internal_info: internal.as_object().cloned().unwrap_or_default(),
            properties: properties.as_object().cloned().unwrap_or_default(),
            ..NodeView::default()
        }
    }

    #[test]
    fn the_deployed_disk_then_hints_then_local_gb_give_the_size() {
        let deployed = node(
            json!({"root_disk": {"name": "/dev/vda", "size": 5u64 << 30}}),
            json!({"local_gb": 100}),
        );
        assert_eq!(known_size(&deployed).unwrap(), Some(5 << 30));
        let hinted = node(
            json!({}),
            json!({"root_device": {"size": 20}, "local_gb": 100}),
        );
        assert_eq!(known_size(&hinted).unwrap(), Some(20 << 30));
        let local = node(json!({}), json!({"local_gb": "8"}));
        assert_eq!(known_size(&local).unwrap(), Some(8 << 30));
        assert_eq!(known_size(&node(json!({}), json!({}))).unwrap(), None);
    }
}
