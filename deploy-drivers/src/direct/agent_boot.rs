//! Booting the agent (shared by deploy and clean) and undoing what a run holds.
//!
//! [`Held`] is the record of what a deploy or clean made: the agent's token, publications,
//! the remastered agent ISO, the config drive, leases, inserted media, a node powered on. It
//! is saved in driver_internal_info (`direct_held`) each time it grows, so a later run (an
//! undeploy after a crash, a rebuild) can release it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DirectDeploy;
use crate::boot_iso;
use crate::driver::*;
use crate::ports::*;
use crate::steps::{backstop, keep_first, missing_port, record_intent, run_step};

/// The driver_internal_info key of the [`Held`] record.
pub const HELD_KEY: &str = "direct_held";

/// What a deploy or clean holds and must give back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The agent's token is live (`Agent::begin` without `end`).
    #[serde(default)]
    pub agent: bool,
    #[serde(default)]
    pub publications: Vec<String>,
    /// A remastered agent ISO is stored for the node.
    #[serde(default)]
    pub remastered: bool,
    /// A config drive image is stored for the node.
    #[serde(default)]
    pub config_drive: bool,
    #[serde(default)]
    pub image_lease: Option<String>,
    #[serde(default)]
    pub agent_lease: Option<String>,
    /// The agent ISO is in the virtual drive.
    #[serde(default)]
    pub inserted: bool,
    /// The run powered the node on into the agent.
    #[serde(default)]
    pub powered: bool,
}

impl Held {
    /// The record a previous run left on the node (nothing when absent or unreadable).
    pub fn load(node: &NodeView) -> Held {
        node.driver_internal_info
            .get(HELD_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        *self == Held::default()
    }

    /// Publishes `artifact` as step `step` under an id recorded here (and saved on the node)
    /// before the URL exists, so a crash in between leaves no publication nobody knows.
    #[allow(clippy::too_many_arguments)]
    pub async fn publish(
        &mut self,
        events: &dyn DeployEvents,
        step: &str,
        limit: std::time::Duration,
        publisher: &dyn Publisher,
        artifact: &Artifact,
        node: &str,
        name: &str,
    ) -> Result<Publication, DeployError> {
        let id = fresh_id();
        self.publications.push(id.clone());
        self.record(events, step).await?;
        run_step(step, limit, publisher.publish_as(&id, artifact, node, name)).await
    }

    /// Persists the record on the node (removes the key when nothing is held).
    pub async fn save(&self, events: &dyn DeployEvents) {
        events.save_internal(HELD_KEY, self.as_value()).await;
    }

    /// Persists the record before step `step` makes the lease or publication just added to
    /// it; a failed save fails the step (see [`record_intent`]).
    pub async fn record(&self, events: &dyn DeployEvents, step: &str) -> Result<(), DeployError> {
        record_intent(events, step, HELD_KEY, self.as_value()).await
    }

    fn as_value(&self) -> Value {
        if self.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(self).unwrap_or(Value::Null)
        }
    }
}

impl DirectDeploy {
    /// Boots the node into the agent and returns its inventory: agent ISO → fresh token →
    /// remaster with the token's args → publish → eject → insert → one-time CD boot → power
    /// on (or reset) → wait for the agent.
    pub(super) async fn boot_agent(
        &self,
        node: &NodeView,
        ports: &Ports,
        mode: BootMode,
        held: &mut Held,
        events: &dyn DeployEvents,
    ) -> Result<Inventory, DeployError> {
        let p = &self.policy;
        let agent = ports.agent.as_ref().ok_or_else(|| missing_port("agent"))?;
        let remaster = ports
            .remaster
            .as_ref()
            .ok_or_else(|| missing_port("ISO remaster"))?;
        let publisher = ports
            .publisher
            .as_ref()
            .ok_or_else(|| missing_port("image server"))?;

        let iso = run_step("agent ramdisk", p.local_timeout, agent.ramdisk()).await?;
        if !iso.lease.is_empty() {
            held.agent_lease = Some(iso.lease.clone());
            held.save(events).await;
        }
        events
            .step(
                "agent ramdisk",
                &format!("{} bytes, {}", iso.size, iso.digest),
            )
            .await;
        held.agent = true;
        held.save(events).await;
        let args = run_step("agent token", p.local_timeout, agent.begin(&node.uuid)).await?;
        events
            .step("agent token", "a fresh token for this boot")
            .await;
        held.remastered = true;
        held.save(events).await;
        let artifact = run_step(
            "remaster agent",
            p.local_timeout,
            remaster.remaster(&iso, &args, &node.uuid),
        )
        .await?;
        events
            .step("remaster agent", "the agent ISO carries the node's args")
            .await;
        let published = held
            .publish(
                events,
                "publish agent",
                p.local_timeout,
                publisher.as_ref(),
                &artifact,
                &node.uuid,
                "agent",
            )
            .await?;
        events.step("publish agent", &published.url).await;

        held.inserted = true;
        held.save(events).await;
        let target = boot_iso::attach(
            "insert agent",
            node,
            ports,
            &published.url,
            published.auth.as_ref(),
            mode,
            (p.bmc_timeout, p.local_timeout),
            events,
        )
        .await?;
        boot_iso::boot_once(ports, target, mode, p.bmc_timeout, events).await?;
        let action = match run_step("power on", p.bmc_timeout, ports.power.power_state()).await? {
            PowerState::On => PowerAction::Reboot,
            PowerState::Off => PowerAction::On,
        };
        held.powered = true;
        held.save(events).await;
        run_step("power on", p.bmc_timeout, ports.power.set_power(action)).await?;
        events
            .step("power on", &format!("{action:?} into the agent"))
            .await;

        let inventory = run_step(
            "wait for agent",
            backstop(p.agent_timeout),
            agent.wait_ready(&node.uuid, p.agent_timeout),
        )
        .await?;
        events
            .step(
                "wait for agent",
                &format!(
                    "the agent called in: {} disks, {} CPUs, {} MiB",
                    inventory.disks.len(),
                    inventory.cpu_count,
                    inventory.memory_mb
                ),
            )
            .await;
        Ok(inventory)
    }

    /// Gives back everything `held` records, best effort and in reverse order of making,
    /// powering the node off first when `power_off` and the run powered it on. Returns the
    /// first failure; what could not be released stays recorded on the node.
    pub(super) async fn release(
        &self,
        node: &NodeView,
        ports: &Ports,
        held: &mut Held,
        power_off: bool,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        if held.is_empty() {
            return Ok(());
        }
        let p = &self.policy;
        let mut first = None;
        if held.agent {
            if let Some(agent) = &ports.agent {
                agent.end(&node.uuid).await;
                events
                    .step("end agent", "the agent's token is forgotten")
                    .await;
            }
            held.agent = false;
        }
        if held.powered && power_off {
            let r = run_step(
                "power off",
                p.bmc_timeout,
                ports.power.set_power(PowerAction::Off),
            )
            .await;
            held.powered = r.is_err();
            keep_first(&mut first, r, events, "power off", "powered off").await;
        }
        held.powered = false;
        if held.inserted {
            match boot_iso::detach(node, ports, (p.bmc_timeout, p.local_timeout)).await {
                Ok(done) => {
                    held.inserted = false;
                    events.step("eject", done).await;
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        if let Some(publisher) = &ports.publisher {
            let mut kept = Vec::new();
            for id in std::mem::take(&mut held.publications) {
                let r = run_step("revoke", p.local_timeout, publisher.revoke(&id)).await;
                if r.is_err() {
                    kept.push(id.clone());
                }
                keep_first(&mut first, r, events, "revoke", "publication revoked").await;
            }
            held.publications = kept;
        }
        if held.remastered {
            if let Some(remaster) = &ports.remaster {
                let r = run_step(
                    "discard remaster",
                    p.local_timeout,
                    remaster.discard(&node.uuid),
                )
                .await;
                held.remastered = r.is_err();
                keep_first(
                    &mut first,
                    r,
                    events,
                    "discard remaster",
                    "remastered agent ISO dropped",
                )
                .await;
            }
        }
        if held.config_drive {
            if let Some(drives) = &ports.config_drives {
                let r = run_step(
                    "discard config drive",
                    p.local_timeout,
                    drives.discard(&node.uuid),
                )
                .await;
                held.config_drive = r.is_err();
                keep_first(
                    &mut first,
                    r,
                    events,
                    "discard config drive",
                    "config drive dropped",
                )
                .await;
            }
        }
        if let Some(images) = &ports.images {
            for slot in [&mut held.image_lease, &mut held.agent_lease] {
                if let Some(lease) = slot.clone() {
                    let r =
                        run_step("release image", p.local_timeout, images.release(&lease)).await;
                    if r.is_ok() {
                        *slot = None;
                    }
                    keep_first(
                        &mut first,
                        r,
                        events,
                        "release image",
                        "image lease released",
                    )
                    .await;
                }
            }
        }
        held.save(events).await;
        first.map_or(Ok(()), Err)
    }
}
