//! The deploy-driver interface: what the conductor calls, and what a driver gets to work with.
//!
//! A driver is pure orchestration: it sees a [`NodeView`] (plain data), calls the [`Ports`] it
//! needs, reports each step through [`DeployEvents`] and returns the outcome or a
//! [`DeployError`] naming the step that failed. The conductor maps outcomes to provision states.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::ports::*;

/// The node as a driver sees it: a snapshot of its fields, no store handle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeView {
    pub uuid: String,
    pub name: Option<String>,
    pub driver_info: Map<String, Value>,
    pub instance_info: Map<String, Value>,
    pub properties: Map<String, Value>,
    pub driver_internal_info: Map<String, Value>,
    pub boot_mode: Option<BootMode>,
    /// MAC addresses of the node's ports.
    pub macs: Vec<String>,
}

/// The ports composed for one node. Drivers check the optional ones in `validate`.
#[derive(Clone)]
pub struct Ports {
    pub power: Arc<dyn Power>,
    pub boot: Arc<dyn BootDevice>,
    pub vmedia: Option<Arc<dyn VirtualMedia>>,
    pub images: Option<Arc<dyn Images>>,
    pub remaster: Option<Arc<dyn Remaster>>,
    pub publisher: Option<Arc<dyn Publisher>>,
    pub netboot: Option<Arc<dyn Netboot>>,
    pub agent: Option<Arc<dyn Agent>>,
    pub config_drives: Option<Arc<dyn ConfigDrives>>,
    pub captures: Option<Arc<dyn Captures>>,
    /// Identification, unattended remaster and automation files of installer ISOs.
    pub install_media: Option<Arc<dyn InstallMedia>>,
}

/// Where a driver reports progress. Each step becomes a node history event; saved internal
/// values land in the node's driver_internal_info so an undeploy after a restart can clean up.
#[async_trait]
pub trait DeployEvents: Send + Sync {
    async fn step(&self, step: &str, detail: &str);
    /// Persists `key` in driver_internal_info; `Value::Null` removes it.
    async fn save_internal(&self, key: &str, value: Value);
    /// Persists `key` as [`DeployEvents::save_internal`] does, for the id of a lease or
    /// publication the driver is about to make: an error means the record may be missing, so
    /// the driver makes nothing and fails the step. The default cannot fail.
    async fn save_intent(&self, key: &str, value: Value) -> PortResult<()> {
        self.save_internal(key, value).await;
        Ok(())
    }
    /// The running `step`'s progress (bytes written of a total), shown on the node while it
    /// runs. Drivers call it at a bounded rate; the default shows nothing.
    async fn progress(&self, _step: &str, _progress: AgentProgress) {}
}

/// How a deploy ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployOutcome {
    /// The node is deployed.
    Active,
    /// The node is booting and will call back (Ironic's "wait call-back").
    WaitCallback,
}

/// What a node waiting in wait call-back is doing, as its driver sees it from the outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitCheck {
    /// Nothing decided yet.
    Waiting,
    /// The node finished (e.g. powered itself off): finish the deploy.
    Finished(String),
    /// The wait failed (a watchdog fired); the driver has undone what it served.
    Failed(String),
}

/// A failed deploy step: which step, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step} failed: {source}")]
pub struct DeployError {
    pub step: String,
    #[source]
    pub source: PortError,
}

impl DeployError {
    pub fn new(step: impl Into<String>, source: PortError) -> Self {
        Self {
            step: step.into(),
            source,
        }
    }
    /// A validation failure: the node's fields are wrong; nothing was touched.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            "validate",
            PortError::new(PortErrorKind::InvalidInput, message),
        )
    }
}

/// The first port in `needed` (what it is, whether the node has it) that is absent, as the
/// validation error of the `driver` deploy; `hint` says which interfaces provide them all.
pub fn require_ports(driver: &str, needed: &[(&str, bool)], hint: &str) -> Result<(), DeployError> {
    match needed.iter().find(|(_, present)| !present) {
        Some((name, _)) => Err(DeployError::invalid(format!(
            "the {driver} deploy needs {name}, which this node's interfaces do not provide: {hint}"
        ))),
        None => Ok(()),
    }
}

/// A clean step of the deploy interface (Ironic's `{"interface": "deploy", "step": …}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanStep {
    /// Erase partition tables at both ends of every disk and filesystem signatures.
    EraseDevicesMetadata,
    /// Overwrite every disk.
    EraseDevices,
}

impl CleanStep {
    pub const ALL: [CleanStep; 2] = [CleanStep::EraseDevicesMetadata, CleanStep::EraseDevices];
    /// Automated cleaning (on provide and after undeploy) runs these, as Ironic does by
    /// default when whole-disk erasure is not asked for.
    pub const AUTOMATED: &'static [CleanStep] = &[CleanStep::EraseDevicesMetadata];

    /// The step's name as Ironic spells it.
    pub fn name(self) -> &'static str {
        match self {
            CleanStep::EraseDevicesMetadata => "erase_devices_metadata",
            CleanStep::EraseDevices => "erase_devices",
        }
    }

    pub fn parse(name: &str) -> Option<CleanStep> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A deploy interface (Ironic's `deploy_interface`): ramdisk, direct, fake …
#[async_trait]
pub trait DeployDriver: Send + Sync {
    /// The interface name as the API shows it ("ramdisk", "direct", "fake").
    fn name(&self) -> &'static str;
    /// Checks the node's fields and the ports present, touching nothing.
    fn validate(&self, node: &NodeView, ports: &Ports) -> Result<(), DeployError>;
    async fn deploy(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<DeployOutcome, DeployError>;
    /// The node, left in wait call-back by [`DeployDriver::deploy`], reported that it booted
    /// (Ironic's heartbeat). The default has nothing to finish.
    async fn booted(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        Ok(())
    }
    /// Looks at a node waiting in wait call-back (the conductor asks periodically): has it
    /// finished on its own, or has a watchdog run out? `now` is Unix seconds. The default
    /// waits for the call-back alone.
    async fn poll_wait(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _events: &dyn DeployEvents,
        _now: u64,
    ) -> Result<WaitCheck, DeployError> {
        Ok(WaitCheck::Waiting)
    }
    /// The conductor that deployed this node (active, or waiting for its call-back) died, and
    /// with it whatever it served the node: this conductor takes the node over and serves it
    /// from its own resources (re-publish, point the BMC at the new URL). Never redeploys: no
    /// reboot, no disk write. The default serves nothing, so has nothing to take over.
    async fn take_over(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        Ok(())
    }
    /// The node was deployed by other means and is being adopted (Ironic's `adopt`): serve
    /// what its instance boots from, as [`DeployDriver::take_over`] does, although this
    /// conductor never recorded serving it. Never redeploys. The default is the take-over.
    async fn adopt(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        self.take_over(node, ports, events).await
    }
    /// The conductor's outer timeout cut [`DeployDriver::deploy`] short (its future was dropped
    /// mid-step, so its own undo never ran): undo what the deploy recorded in
    /// driver_internal_info, touching no hardware. The default recorded nothing.
    async fn abandon(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        Ok(())
    }
    /// Tears a deploy down (also after a failed or aborted deploy): must be idempotent.
    async fn undeploy(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError>;
    /// Boots the node into the agent and returns the agent's inventory, leaving the node
    /// powered off and holding nothing (Ironic's `agent` inspect interface). The default has
    /// no agent to boot.
    async fn inspect(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _events: &dyn DeployEvents,
    ) -> Result<Inventory, DeployError> {
        Err(DeployError::invalid(format!(
            "the {} deploy interface boots no agent, so inspect_interface agent cannot inspect: use deploy_interface direct, or inspect_interface redfish",
            self.name()
        )))
    }
    /// Checks that the node can be captured and reserves room for the image when the disk's
    /// size is known before boot; touches no hardware. The default cannot capture.
    async fn prepare_capture(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _request: &CaptureRequest,
    ) -> Result<(), DeployError> {
        Err(DeployError::invalid(format!(
            "the {} deploy interface cannot capture a disk: use deploy_interface direct",
            self.name()
        )))
    }
    /// Captures the node's root disk as an image (after [`DeployDriver::prepare_capture`]),
    /// then returns the node to what it was: back into its OS when `active`, powered off
    /// otherwise. The default cannot capture.
    async fn capture(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _request: &CaptureRequest,
        _active: bool,
        _events: &dyn DeployEvents,
    ) -> Result<CapturedImage, DeployError> {
        Err(DeployError::invalid(format!(
            "the {} deploy interface cannot capture a disk: use deploy_interface direct",
            self.name()
        )))
    }
    /// Runs clean `steps` on the node (automated cleaning on provide and after undeploy, or the
    /// manual `clean` verb). The default has no disk to clean: a no-op, as Ironic's drivers
    /// without an agent.
    async fn clean(
        &self,
        _node: &NodeView,
        _ports: &Ports,
        _steps: &[CleanStep],
        _events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        Ok(())
    }
}
