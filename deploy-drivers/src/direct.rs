//! The `direct` deploy interface (Ironic's): ironcast's agent writes a whole-disk image onto
//! the node's root disk, then the node boots it locally.
//!
//! Deploy: validate (image source, checksum, whole-disk, format, hints, config drive) → check
//! the BMC answers → cache and verify the image on the conductor (an unreachable URL fails
//! here, before any power action) → check its virtual size against the root disk when both
//! are known → publish it → build and publish the config drive → boot the agent
//! ([`agent_boot`]: agent ISO remastered with a fresh token, virtual media, one-time CD boot,
//! power) → wait for its inventory → root device from hints ([`crate::root_device`]) → size
//! check against that disk → write the image (progress on the node) → write the config drive
//! → boot from disk persistently (netboot nodes: a local-boot config) → eject → end the agent
//! → reboot → release what the deploy held → `active`.
//!
//! Clean: boot the agent, run the clean steps (`erase_devices_metadata`, `erase_devices`),
//! power off, release. Undeploy: power off, eject, release; the conductor cleans next.
//!
//! Every step runs under a timeout from [`DirectPolicy`] and is a history event; a failure
//! names the step and undoes what was made (agent token, publications, remaster, config drive,
//! leases; powers the node off when the deploy powered it on). What is held is saved in
//! driver_internal_info (`direct_held`) as it grows, so an undeploy after a crash releases it.

mod agent_boot;
mod capture;
mod plan;
mod progress;

use std::time::Duration;

use crate::boot_iso::{self, with_auth};
use crate::driver::*;
use crate::image_kind::check_fits;
use crate::ports::*;
use crate::root_device;
use crate::steps::{keep_first, missing_port, run_step};
use async_trait::async_trait;

pub use agent_boot::Held;
pub use capture::ROOT_DISK_KEY;
pub use plan::{ConfigDrive, DirectPlan, DiskFormat};

/// Operator policy for direct deploys (from the conductor's config).
#[derive(Debug, Clone)]
pub struct DirectPolicy {
    /// Deploy an image that has no checksum; off: such a node fails validation.
    pub allow_unverified: bool,
    /// Boot mode when the node does not say; `None` makes validate refuse such a node.
    pub default_boot_mode: Option<BootMode>,
    /// Longest wait for the image to be cached (download + verify).
    pub image_timeout: Duration,
    /// Longest wait for each BMC call.
    pub bmc_timeout: Duration,
    /// Longest wait for local steps: remaster, publish, config drive build, revoke.
    pub local_timeout: Duration,
    /// Longest wait from power-on to the agent's first call.
    pub agent_timeout: Duration,
    /// Longest image write or whole-disk erase.
    pub write_timeout: Duration,
    /// Longest other agent command (config drive, metadata erase).
    pub command_timeout: Duration,
    /// How often a running write's progress is saved on the node.
    pub progress_interval: Duration,
    /// zstd level the agent compresses a captured disk with.
    pub capture_zstd_level: i32,
}

impl DirectPolicy {
    /// The longest a deploy can take when every step uses its whole timeout: the undo of a
    /// previous run (power off, eject: 2 BMC calls; 3 revokes, 2 discards, 2 releases: 7 local
    /// steps), the deploy (image; size check, 3 publications, config drive, agent ISO, token,
    /// remaster: 8 local; 9 BMC calls; the agent's first call, the write and the config drive
    /// write, the agent waits with their backstops), then the undo after a failure (2 BMC, 7
    /// local). The conductor's outer deploy timeout must not be shorter, or it cuts a step short.
    pub fn longest_deploy(&self) -> Duration {
        use crate::steps::backstop;
        self.image_timeout
            + backstop(self.agent_timeout)
            + backstop(self.write_timeout)
            + self.command_timeout
            + self.bmc_timeout * 13
            + self.local_timeout * 22
    }
}

impl Default for DirectPolicy {
    fn default() -> Self {
        Self {
            allow_unverified: false,
            default_boot_mode: Some(BootMode::Uefi),
            image_timeout: Duration::from_secs(30 * 60),
            bmc_timeout: Duration::from_secs(5 * 60),
            local_timeout: Duration::from_secs(2 * 60),
            agent_timeout: Duration::from_secs(15 * 60),
            write_timeout: Duration::from_secs(60 * 60),
            command_timeout: Duration::from_secs(10 * 60),
            progress_interval: Duration::from_secs(2),
            capture_zstd_level: 3,
        }
    }
}

pub struct DirectDeploy {
    pub policy: DirectPolicy,
}

impl DirectDeploy {
    pub fn new(policy: DirectPolicy) -> Self {
        Self { policy }
    }

    /// Checks that the ports an agent boot needs are present.
    fn check_agent_ports(&self, ports: &Ports) -> Result<(), DeployError> {
        let needed = [
            ("agent", ports.agent.is_some()),
            (
                "virtual media or network boot",
                boot_iso::check(ports).is_ok(),
            ),
            ("ISO remaster", ports.remaster.is_some()),
            ("image server", ports.publisher.is_some()),
        ];
        require_ports(
            self.name(),
            &needed,
            "use boot_interface redfish-virtual-media, ipxe or pxe and configure the agent ([agent] section)",
        )
    }

    /// The steps after validation; `held` records what they made, for the undo.
    async fn deploy_steps(
        &self,
        node: &NodeView,
        ports: &Ports,
        plan: &DirectPlan,
        held: &mut Held,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let p = &self.policy;
        run_step("check BMC", p.bmc_timeout, ports.power.power_state()).await?;
        events.step("check BMC", "BMC answered").await;

        let images = ports
            .images
            .as_ref()
            .ok_or_else(|| missing_port("image cache"))?;
        // Recorded before it exists: a crash after the acquire leaves no unknown lease. The
        // caller's release gives back a recorded lease whether or not the acquire made it.
        let lease = fresh_id();
        held.image_lease = Some(lease.clone());
        held.record(events, "cache image").await?;
        let image = run_step(
            "cache image",
            p.image_timeout,
            images.acquire(&plan.image, &node.uuid, &lease),
        )
        .await?;
        events
            .step(
                "cache image",
                &format!(
                    "{} ({} bytes, {})",
                    plan.image.url, image.size, image.digest
                ),
            )
            .await;

        let virtual_size =
            run_step("check size", p.local_timeout, images.virtual_size(&image)).await?;
        match (virtual_size, plan.root_bytes) {
            (Some(v), Some(disk)) => {
                check_fits(v, disk).map_err(|e| too_big("check size", e))?;
                events
                    .step(
                        "check size",
                        &format!("{v} bytes fit the {disk}-byte root disk"),
                    )
                    .await;
            }
            (Some(v), None) => {
                events
                    .step(
                        "check size",
                        &format!("{v} bytes; checked against the disk the agent reports"),
                    )
                    .await
            }
            (None, _) => {
                events
                    .step(
                        "check size",
                        "virtual size unknown (compressed image): the agent checks it",
                    )
                    .await
            }
        }

        let publisher = ports
            .publisher
            .as_ref()
            .ok_or_else(|| missing_port("image server"))?;
        let artifact = Artifact {
            base: image.path.clone(),
            patch_set: None,
            len: image.size,
        };
        let published = held
            .publish(
                events,
                "publish image",
                p.local_timeout,
                publisher.as_ref(),
                &artifact,
                &node.uuid,
                plan.published_name(),
            )
            .await?;
        events.step("publish image", &published.url).await;
        let image_url = with_auth(&published.url, published.auth.as_ref());

        let config_drive_url = match &plan.config_drive {
            None => None,
            Some(ConfigDrive::Url(url)) => Some(url.clone()),
            Some(ConfigDrive::Build(source)) => {
                let builder = ports
                    .config_drives
                    .as_ref()
                    .ok_or_else(|| missing_port("config drive builder"))?;
                held.config_drive = true;
                held.save(events).await;
                let drive = run_step(
                    "build config drive",
                    p.local_timeout,
                    builder.build(&node.uuid, source),
                )
                .await?;
                events
                    .step("build config drive", &format!("{} bytes", drive.len))
                    .await;
                let published = held
                    .publish(
                        events,
                        "publish config drive",
                        p.local_timeout,
                        publisher.as_ref(),
                        &drive,
                        &node.uuid,
                        "configdrive",
                    )
                    .await?;
                events.step("publish config drive", &published.url).await;
                Some(with_auth(&published.url, published.auth.as_ref()))
            }
        };

        let inventory = self
            .boot_agent(node, ports, plan.boot_mode, held, events)
            .await?;
        let agent = ports.agent.as_ref().ok_or_else(|| missing_port("agent"))?;

        let disk = root_device::choose(&plan.hints, &inventory.disks)
            .map_err(|e| DeployError::new("root device", invalid(e.to_string())))?;
        events
            .step(
                "root device",
                &format!(
                    "{} ({} bytes){}",
                    disk.name,
                    disk.size,
                    if plan.hints.is_empty() {
                        ", the smallest disk of at least 4 GiB"
                    } else {
                        ", matching the root_device hints"
                    }
                ),
            )
            .await;
        if let Some(v) = virtual_size {
            check_fits(v, disk.size).map_err(|e| too_big("root device", e))?;
        }

        let write = AgentCommand::WriteImage(WriteCommand {
            image_url,
            checksum: digest_checksum(&image.digest).or_else(|| plan.image.checksum.clone()),
            root_device: Some(disk.name.clone()),
        });
        events
            .step(
                "write image",
                &format!("{} to {}", plan.image.url, disk.name),
            )
            .await;
        progress::run_reporting(
            agent.as_ref(),
            &node.uuid,
            &write,
            p.write_timeout,
            "write image",
            p.progress_interval,
            events,
        )
        .await
        .map_err(|e| DeployError::new("write image", e))?;
        events.step("write image", "done, checksum verified").await;

        if let Some(url) = config_drive_url {
            let command = AgentCommand::WriteConfigDrive {
                device: disk.name.clone(),
                url,
            };
            run_step(
                "write config drive",
                p.command_timeout,
                agent.run(&node.uuid, &command, p.command_timeout, &NoProgress),
            )
            .await?;
            events
                .step(
                    "write config drive",
                    &format!("a partition at the end of {}", disk.name),
                )
                .await;
        }

        match &ports.vmedia {
            Some(_) => {
                run_step(
                    "boot from disk",
                    p.bmc_timeout,
                    ports
                        .boot
                        .set_boot_device(BootTarget::Disk, true, plan.boot_mode),
                )
                .await?;
                events
                    .step(
                        "boot from disk",
                        &format!("disk, persistent, {}", plan.boot_mode.as_ironic()),
                    )
                    .await;
            }
            None => {
                let netboot = ports
                    .netboot
                    .as_ref()
                    .ok_or_else(|| missing_port("netboot"))?;
                let boot = LocalBoot {
                    macs: node.macs.clone(),
                    mode: plan.boot_mode,
                };
                run_step(
                    "local boot config",
                    p.local_timeout,
                    netboot.write_local_boot(&node.uuid, &boot),
                )
                .await?;
                events
                    .step("local boot config", "the node's MACs boot the local disk")
                    .await;
                // The local-boot configs replaced the agent's: nothing left to detach.
                held.inserted = false;
                // Every boot asks the network, which answers with the local-boot config.
                run_step(
                    "boot from network",
                    p.bmc_timeout,
                    ports
                        .boot
                        .set_boot_device(BootTarget::Pxe, true, plan.boot_mode),
                )
                .await?;
                events
                    .step(
                        "boot from network",
                        &format!("pxe, persistent, {}", plan.boot_mode.as_ironic()),
                    )
                    .await;
            }
        }
        if let Some(vmedia) = &ports.vmedia {
            run_step("eject agent", p.bmc_timeout, vmedia.eject_all()).await?;
            events.step("eject agent", "virtual media ejected").await;
            held.inserted = false;
        }
        agent.end(&node.uuid).await;
        held.agent = false;
        events
            .step("end agent", "the agent's token is forgotten")
            .await;
        run_step(
            "reboot",
            p.bmc_timeout,
            ports.power.set_power(PowerAction::Reboot),
        )
        .await?;
        held.powered = false;
        events.step("reboot", "into the written disk").await;
        // A capture later reads the disk this deploy wrote.
        events
            .save_internal(ROOT_DISK_KEY, capture::root_disk_record(disk))
            .await;
        Ok(())
    }
}

#[async_trait]
impl DeployDriver for DirectDeploy {
    fn name(&self) -> &'static str {
        "direct"
    }

    fn validate(&self, node: &NodeView, ports: &Ports) -> Result<(), DeployError> {
        let plan = self.plan(node)?;
        self.check_agent_ports(ports)?;
        if ports.images.is_none() {
            return Err(missing_port("image cache"));
        }
        if matches!(plan.config_drive, Some(ConfigDrive::Build(_))) && ports.config_drives.is_none()
        {
            return Err(missing_port("config drive builder"));
        }
        Ok(())
    }

    async fn deploy(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<DeployOutcome, DeployError> {
        self.validate(node, ports)?;
        let plan = self.plan(node)?;
        events
            .step("validate", &format!("whole-disk image {}", plan.image.url))
            .await;
        // A rebuild, or a retry after a crash, may find what the previous deploy held.
        let mut previous = Held::load(node);
        self.release(node, ports, &mut previous, false, events)
            .await?;

        let mut held = Held::default();
        match self
            .deploy_steps(node, ports, &plan, &mut held, events)
            .await
        {
            Ok(()) => {
                // The node runs its own OS now: a failed revoke stays recorded for undeploy.
                let _ = self.release(node, ports, &mut held, false, events).await;
                Ok(DeployOutcome::Active)
            }
            Err(err) => {
                // The step's error is what the operator needs; cleanup failures are history.
                let _ = self.release(node, ports, &mut held, true, events).await;
                Err(err)
            }
        }
    }

    /// Gives back what the cut-short deploy recorded (token, publications, remaster, config
    /// drive, leases) without touching hardware: the media and power flags stay recorded for
    /// the undeploy.
    async fn abandon(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let mut held = Held::load(node);
        let (inserted, powered) = (held.inserted, held.powered);
        held.inserted = false;
        held.powered = false;
        let released = self.release(node, ports, &mut held, false, events).await;
        held.inserted = inserted;
        held.powered = powered;
        held.save(events).await;
        released
    }

    async fn undeploy(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let bmc = self.policy.bmc_timeout;
        let mut first = None;
        let r = run_step("power off", bmc, ports.power.set_power(PowerAction::Off)).await;
        keep_first(&mut first, r, events, "power off", "powered off").await;
        match (&ports.vmedia, &ports.netboot) {
            (Some(vmedia), _) => {
                let r = run_step("eject", bmc, vmedia.eject_all()).await;
                keep_first(&mut first, r, events, "eject", "virtual media ejected").await;
            }
            (None, Some(netboot)) => {
                let r = run_step(
                    "remove local boot config",
                    self.policy.local_timeout,
                    netboot.remove(&node.uuid),
                )
                .await;
                keep_first(
                    &mut first,
                    r,
                    events,
                    "remove local boot config",
                    "netboot configs removed",
                )
                .await;
            }
            (None, None) => {}
        }
        let mut held = Held::load(node);
        let local = self.release(node, ports, &mut held, false, events).await;
        match (first, local) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        }
    }

    async fn inspect(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<Inventory, DeployError> {
        self.check_agent_ports(ports)?;
        let mode = self.boot_mode(node)?;
        let mut previous = Held::load(node);
        self.release(node, ports, &mut previous, false, events)
            .await?;
        let mut held = Held::default();
        let inventory = self.boot_agent(node, ports, mode, &mut held, events).await;
        // Ironic leaves an inspected node powered off.
        let released = self.release(node, ports, &mut held, true, events).await;
        let inventory = inventory?;
        released.map(|()| inventory)
    }

    async fn prepare_capture(
        &self,
        node: &NodeView,
        ports: &Ports,
        request: &CaptureRequest,
    ) -> Result<(), DeployError> {
        self.prepare_capture_now(node, ports, request).await
    }

    async fn capture(
        &self,
        node: &NodeView,
        ports: &Ports,
        request: &CaptureRequest,
        active: bool,
        events: &dyn DeployEvents,
    ) -> Result<CapturedImage, DeployError> {
        self.capture_now(node, ports, request, active, events).await
    }

    async fn clean(
        &self,
        node: &NodeView,
        ports: &Ports,
        steps: &[CleanStep],
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        self.check_agent_ports(ports)?;
        let mode = self.boot_mode(node)?;
        let mut previous = Held::load(node);
        self.release(node, ports, &mut previous, false, events)
            .await?;
        let mut held = Held::default();
        let result = self
            .clean_steps(node, ports, mode, steps, &mut held, events)
            .await;
        // Ironic leaves a cleaned node powered off.
        let released = self.release(node, ports, &mut held, true, events).await;
        result.and(released)
    }
}

impl DirectDeploy {
    async fn clean_steps(
        &self,
        node: &NodeView,
        ports: &Ports,
        mode: BootMode,
        steps: &[CleanStep],
        held: &mut Held,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let names: Vec<&str> = steps.iter().map(|s| s.name()).collect();
        events.step("clean", &names.join(", ")).await;
        if steps.is_empty() {
            return Ok(());
        }
        self.boot_agent(node, ports, mode, held, events).await?;
        let agent = ports.agent.as_ref().ok_or_else(|| missing_port("agent"))?;
        let p = &self.policy;
        for step in steps {
            let name = step.name();
            match step {
                CleanStep::EraseDevicesMetadata => {
                    let command = AgentCommand::EraseMetadata { device: None };
                    run_step(
                        name,
                        p.command_timeout,
                        agent.run(&node.uuid, &command, p.command_timeout, &NoProgress),
                    )
                    .await?;
                    events
                        .step(name, "partition tables and filesystem signatures erased")
                        .await;
                }
                CleanStep::EraseDevices => {
                    let command = AgentCommand::EraseDisk { device: None };
                    events.step(name, "every disk").await;
                    progress::run_reporting(
                        agent.as_ref(),
                        &node.uuid,
                        &command,
                        p.write_timeout,
                        name,
                        p.progress_interval,
                        events,
                    )
                    .await
                    .map_err(|e| DeployError::new(name, e))?;
                    events.step(name, "every disk overwritten").await;
                }
            }
        }
        Ok(())
    }
}

/// A sink for commands whose progress nobody shows.
struct NoProgress;

impl ProgressSink for NoProgress {
    fn progress(&self, _progress: AgentProgress) {}
}

fn invalid(message: String) -> PortError {
    PortError::new(PortErrorKind::InvalidInput, message)
}

fn too_big(step: &str, e: crate::image_kind::ImageTooBig) -> DeployError {
    DeployError::new(step, PortError::new(PortErrorKind::NoSpace, e.to_string()))
}

/// The cache's content address ("sha256:<hex>") as the checksum the agent verifies: the bytes
/// it streams are the bytes the conductor verified.
fn digest_checksum(digest: &str) -> Option<ChecksumSpec> {
    let (algorithm, hex) = digest.split_once(':')?;
    let ok = matches!(algorithm, "sha256" | "sha512")
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| ChecksumSpec::Value {
        algorithm: algorithm.to_string(),
        hex: hex.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests;
