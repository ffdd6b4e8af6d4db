//! The `iso-install` deploy interface: install an OS from its own installer ISO onto the
//! node's blank disk, unattended, then boot the disk.
//!
//! Steps: check the BMC → cache and lease the ISO → identify its OS → the automation file (the
//! user's, inline or fetched, else the built-in template of the installer's mechanism) rendered
//! with the node's values, at most 1 MiB → published under its own unguessable URL (or, for
//! installers that read it from a medium, a small FAT image) → the ISO remastered with the
//! mechanism's kernel args and its install entry made the default with a short timeout →
//! published → eject, insert (and the medium in a removable slot) → boot CD once → power on →
//! wait call-back. The node finishes by calling back (`POST /v1/heartbeat/{node}` with the
//! token of this install, which the automation file gets as `{{ callback_token }}`) or by
//! powering itself off, which [`IsoInstallDeploy::poll_wait`] sees through the BMC; a watchdog
//! fails the deploy when neither happens in time, naming both. Finishing ejects, revokes the
//! publications, sets a persistent boot from disk and powers the node on: active.
//!
//! `interactive=true` serves the ISO as it is, with no automation file and no watchdog: the
//! node waits for power-off while an operator installs at the BMC console.
//!
//! Undeploy powers off, ejects and releases; cleaning (after undeploy, on provide) and capture
//! of the installed disk (a golden image) are the direct deploy's, through the agent, as for
//! whole-disk images.

mod plan;
mod template;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::boot_iso;
use crate::direct::DirectDeploy;
use crate::driver::*;
use crate::ports::*;
use crate::steps::{
    give_back, keep_first, missing_port, record_intent, restore_records, run_step, str_field,
};

pub use plan::{plan, AutomationSource, InstallPlan, MAX_AUTOMATION_BYTES};
pub use template::{render, VARIABLES};

/// driver_internal_info keys this driver owns.
pub(crate) const LEASE_KEY: &str = "iso_install_lease";
pub(crate) const PUBLICATIONS_KEY: &str = "iso_install_publications";
/// The kernel args the installer ISO was remastered with, so that a takeover serves the same
/// bytes the node booted.
const ARGS_KEY: &str = "iso_install_args";
/// Unix seconds after which the watchdog fails the install; absent when interactive.
const DEADLINE_KEY: &str = "iso_install_deadline";
/// Present while the node installs: what the install waits for, in words.
const WAITING_KEY: &str = "iso_install_waiting";

/// Operator policy for iso-install deploys (from the conductor's config).
#[derive(Debug, Clone)]
pub struct IsoInstallPolicy {
    pub allow_unverified: bool,
    pub default_boot_mode: Option<BootMode>,
    /// Longest wait for the ISO (or a fetched automation file) to be cached.
    pub image_timeout: Duration,
    /// Longest wait for each BMC call.
    pub bmc_timeout: Duration,
    /// Longest wait for identify, remaster, store, publish.
    pub local_timeout: Duration,
    /// The watchdog: the longest an unattended install may take (instance_info
    /// `install_timeout` overrides it per node).
    pub install_timeout: Duration,
}

impl IsoInstallPolicy {
    /// The longest [`IsoInstallDeploy::deploy`] can take when every step uses its whole
    /// timeout (the install itself is the watchdog's, after it): the undo of a previous attempt
    /// (three revokes, two discards, a release), check BMC, the ISO and a fetched automation
    /// file, identify, token, store or medium, a companion file stored and published, two
    /// publishes, remaster, eject both slots, insert both, set boot device, read and set power,
    /// then the undo after a failure. The conductor's outer deploy timeout must not be shorter,
    /// or it cuts a step short.
    pub fn longest_deploy(&self) -> Duration {
        self.image_timeout * 2 + self.local_timeout * 20 + self.bmc_timeout * 8
    }
}

impl Default for IsoInstallPolicy {
    fn default() -> Self {
        Self {
            allow_unverified: false,
            default_boot_mode: Some(BootMode::Uefi),
            image_timeout: Duration::from_secs(30 * 60),
            bmc_timeout: Duration::from_secs(5 * 60),
            local_timeout: Duration::from_secs(2 * 60),
            install_timeout: Duration::from_secs(2 * 3600),
        }
    }
}

pub struct IsoInstallDeploy {
    pub policy: IsoInstallPolicy,
    /// Cleans and captures the disk as the whole-disk path does.
    pub cleaner: DirectDeploy,
}

/// What a deploy holds, to undo on failure.
#[derive(Default)]
struct Held {
    lease: Option<String>,
    publications: Vec<String>,
    token: bool,
}

/// The automation file's way into the installer, once chosen.
struct Way {
    mechanism: AutomationWay,
    /// The built-in template's text when the user gave no file.
    template: Option<String>,
}

impl IsoInstallDeploy {
    pub fn new(policy: IsoInstallPolicy, cleaner: DirectDeploy) -> Self {
        Self { policy, cleaner }
    }

    fn media<'a>(&self, ports: &'a Ports) -> Result<&'a dyn InstallMedia, DeployError> {
        ports
            .install_media
            .as_deref()
            .ok_or_else(|| missing_port("installer ISO support (install media)"))
    }

    /// Chooses how the automation file reaches the installer, from the identification.
    fn way(
        &self,
        plan: &InstallPlan,
        found: &Identified,
        media: &dyn InstallMedia,
    ) -> Result<Option<Way>, DeployError> {
        let user_file = matches!(
            plan.automation,
            AutomationSource::Inline(_) | AutomationSource::Url(_)
        );
        if plan.automation == AutomationSource::Interactive {
            return Ok(None);
        }
        let invalid = |m: String| {
            DeployError::new("identify", PortError::new(PortErrorKind::InvalidInput, m))
        };
        let mechanism = match (found, &plan.automation_kernel_args) {
            (_, Some(args)) if user_file => AutomationWay {
                name: "custom".into(),
                kernel_args: args.clone(),
                file_name: "automation.cfg".into(),
                medium: false,
                companions: Default::default(),
            },
            (Identified::Known(os), _) => match os.automation.first() {
                Some(m) => m.clone(),
                None => {
                    return Err(invalid(format!(
                        "{} ({}) installs with {}, which takes no automation file: set instance_info/interactive=true to install at the BMC console",
                        os.distro, os.id, os.installer
                    )))
                }
            },
            (Identified::Unknown { looked_for }, _) if user_file => {
                return Err(invalid(format!(
                    "the OS on install_iso cannot be identified (looked for: {looked_for}), so the kernel args that take automation_file are unknown: give them in instance_info/automation_kernel_args with {{url}}, e.g. \"inst.ks={{url}}\""
                )))
            }
            (Identified::Unknown { looked_for }, _) => {
                return Err(invalid(format!(
                    "the OS on install_iso cannot be identified and no automation_file is given; looked for: {looked_for}. Give instance_info/automation_file (and automation_kernel_args), or interactive=true"
                )))
            }
        };
        let template = if user_file {
            None
        } else {
            Some(media.template(&mechanism.name).ok_or_else(|| {
                invalid(format!(
                    "there is no built-in {} template: give instance_info/automation_file",
                    mechanism.name
                ))
            })?)
        };
        Ok(Some(Way {
            mechanism,
            template,
        }))
    }

    /// The automation file's text: the user's (inline or fetched) or the template, rendered.
    async fn automation_text(
        &self,
        plan: &InstallPlan,
        way: &Way,
        media: &dyn InstallMedia,
        values: &std::collections::BTreeMap<&'static str, String>,
    ) -> Result<String, DeployError> {
        let raw = match (&plan.automation, &way.template) {
            (AutomationSource::Inline(t), _) => t.clone(),
            (AutomationSource::Url(url), _) => {
                let bytes = run_step(
                    "fetch automation file",
                    self.policy.image_timeout,
                    media.fetch(url, MAX_AUTOMATION_BYTES as u64),
                )
                .await?;
                String::from_utf8(bytes).map_err(|_| {
                    DeployError::new(
                        "fetch automation file",
                        PortError::new(
                            PortErrorKind::InvalidInput,
                            format!("the automation file at {url} is not UTF-8 text"),
                        ),
                    )
                })?
            }
            (_, Some(t)) => t.clone(),
            (_, None) => String::new(),
        };
        let bad = |m: String| {
            DeployError::new(
                "render automation file",
                PortError::new(PortErrorKind::InvalidInput, m),
            )
        };
        let text = render(&raw, values).map_err(bad)?;
        if text.len() > MAX_AUTOMATION_BYTES {
            return Err(bad(format!(
                "the rendered automation file is {} bytes, more than the {MAX_AUTOMATION_BYTES} (1 MiB) accepted",
                text.len()
            )));
        }
        Ok(text)
    }

    /// Caches and leases the installer ISO under an id recorded on the node first; a failed
    /// acquire releases that id (there may be a lease behind a timeout) and forgets it.
    async fn lease(
        &self,
        node: &NodeView,
        ports: &Ports,
        plan: &InstallPlan,
        events: &dyn DeployEvents,
    ) -> Result<LeasedImage, DeployError> {
        let images = ports
            .images
            .as_ref()
            .ok_or_else(|| missing_port("image cache"))?;
        let lease = fresh_id();
        record_intent(
            events,
            "cache image",
            LEASE_KEY,
            Value::String(lease.clone()),
        )
        .await?;
        let acquired = run_step(
            "cache image",
            self.policy.image_timeout,
            images.acquire(&plan.image, &node.uuid, &lease),
        )
        .await;
        if acquired.is_err() {
            let limit = self.policy.local_timeout;
            give_back(ports, &[], Some(&lease), limit, events).await;
            events.save_internal(LEASE_KEY, Value::Null).await;
        }
        acquired
    }

    /// The ISO to serve: remastered by the installer support when unattended (its install
    /// entry made the default), by the plain remaster when there are only `args` to append,
    /// else the ISO as it is.
    async fn installer_iso(
        &self,
        ports: &Ports,
        iso: &LeasedImage,
        unattended: bool,
        args: &str,
        node: &str,
    ) -> Result<Artifact, DeployError> {
        let local = self.policy.local_timeout;
        if unattended {
            let media = self.media(ports)?;
            run_step("remaster", local, media.remaster(iso, args, node)).await
        } else if !args.is_empty() {
            let remaster = ports
                .remaster
                .as_ref()
                .ok_or_else(|| missing_port("remaster"))?;
            run_step("remaster", local, remaster.remaster(iso, args, node)).await
        } else {
            Ok(Artifact {
                base: iso.path.clone(),
                patch_set: None,
                len: iso.size,
            })
        }
    }

    /// Publishes `artifact` under an id recorded on the node (and in `held`) first.
    async fn publish(
        &self,
        ports: &Ports,
        node: &str,
        artifact: &Artifact,
        name: &str,
        held: &mut Held,
        events: &dyn DeployEvents,
    ) -> Result<Publication, DeployError> {
        let publisher = ports
            .publisher
            .as_ref()
            .ok_or_else(|| missing_port("image server"))?;
        let id = Self::publication_id(held, events).await?;
        run_step(
            "publish",
            self.policy.local_timeout,
            publisher.publish_as(&id, artifact, node, name),
        )
        .await
    }

    /// A fresh publication id, recorded before the publication exists: a crash in between
    /// leaves a record of nothing.
    async fn publication_id(
        held: &mut Held,
        events: &dyn DeployEvents,
    ) -> Result<String, DeployError> {
        let id = fresh_id();
        held.publications.push(id.clone());
        let ids = serde_json::json!(held.publications);
        if let Err(e) = record_intent(events, "publish", PUBLICATIONS_KEY, ids).await {
            held.publications.pop();
            return Err(e);
        }
        Ok(id)
    }

    /// The mechanism's companion files, rendered and published in the automation file's URL
    /// directory (`beside`, its publication).
    #[allow(clippy::too_many_arguments)]
    async fn publish_companions(
        &self,
        ports: &Ports,
        node: &str,
        way: &AutomationWay,
        values: &std::collections::BTreeMap<&'static str, String>,
        beside: &str,
        held: &mut Held,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let (media, local) = (self.media(ports)?, self.policy.local_timeout);
        let publisher = ports
            .publisher
            .as_ref()
            .ok_or_else(|| missing_port("image server"))?;
        for (name, template) in &way.companions {
            let text = render(template, values).map_err(|m| {
                DeployError::new(
                    "render automation file",
                    PortError::new(PortErrorKind::InvalidInput, m),
                )
            })?;
            let file = run_step(
                "store automation file",
                local,
                media.store(node, name, text.as_bytes()),
            )
            .await?;
            let id = Self::publication_id(held, events).await?;
            run_step(
                "publish",
                local,
                publisher.publish_beside(&id, &file, node, name, beside),
            )
            .await?;
            events
                .step(
                    "publish automation file",
                    &format!("{name} ({} bytes) beside it", text.len()),
                )
                .await;
        }
        Ok(())
    }

    /// Everything after the lease, so one place undoes it on failure.
    async fn start_install(
        &self,
        node: &NodeView,
        ports: &Ports,
        plan: &InstallPlan,
        iso: &LeasedImage,
        held: &mut Held,
        events: &dyn DeployEvents,
    ) -> Result<String, DeployError> {
        let media = self.media(ports)?;
        let local = self.policy.local_timeout;
        let found = run_step("identify", local, media.identify(iso)).await?;
        match &found {
            Identified::Known(os) => {
                let version = os.version.as_deref().unwrap_or("unknown version");
                events
                    .step(
                        "identify",
                        &format!(
                            "{} {version} ({}), installer {}",
                            os.distro, os.id, os.installer
                        ),
                    )
                    .await
            }
            Identified::Unknown { .. } => events.step("identify", "not a known installer").await,
        }
        let way = self.way(plan, &found, media)?;
        let mut values = plan.values.clone();
        let mut kernel_args = String::new();
        let mut medium_url = None;
        if let Some(way) = &way {
            let agent = ports
                .agent
                .as_ref()
                .ok_or_else(|| missing_port("agent token service"))?;
            let minted = run_step("call-back token", local, agent.begin(&node.uuid)).await?;
            held.token = true;
            let (url, token) = plan::callback(&minted, &node.uuid);
            if let Some(url) = url {
                values.insert("callback_url", url);
            }
            if let Some(token) = token {
                values.insert("callback_token", token);
            }
            let text = self.automation_text(plan, way, media, &values).await?;
            let m = &way.mechanism;
            if m.medium {
                let image = run_step(
                    "automation medium",
                    local,
                    media.medium(&node.uuid, &m.file_name, text.as_bytes()),
                )
                .await?;
                let p = self
                    .publish(ports, &node.uuid, &image, "automation.img", held, events)
                    .await?;
                events
                    .step(
                        "automation medium",
                        &format!("{} on a FAT image", m.file_name),
                    )
                    .await;
                medium_url = Some((p.url, p.auth));
                kernel_args = m.kernel_args.clone();
            } else {
                let file = run_step(
                    "store automation file",
                    local,
                    media.store(&node.uuid, &m.file_name, text.as_bytes()),
                )
                .await?;
                let p = self
                    .publish(ports, &node.uuid, &file, &m.file_name, held, events)
                    .await?;
                self.publish_companions(ports, &node.uuid, m, &values, &p.id, held, events)
                    .await?;
                let url = media.installer_url(&p.url);
                kernel_args = plan::fill_args(&m.kernel_args, &url, &values).map_err(|e| {
                    DeployError::new(
                        "kernel args",
                        PortError::new(PortErrorKind::InvalidInput, e),
                    )
                })?;
                events
                    .step(
                        "publish automation file",
                        &format!("{} ({} bytes, {})", m.file_name, text.len(), m.name),
                    )
                    .await;
            }
        }
        let args = format!("{kernel_args} {}", plan.extra_args)
            .trim()
            .to_string();
        // The args, saved before the remaster: a takeover remasters the same bytes from them.
        events
            .save_internal(ARGS_KEY, Value::String(args.clone()))
            .await;
        let artifact = self
            .installer_iso(ports, iso, way.is_some(), &args, &node.uuid)
            .await?;
        if way.is_some() {
            events
                .step(
                    "remaster",
                    &format!("appended {args:?}; the install entry boots by default"),
                )
                .await;
        }
        let p = self
            .publish(ports, &node.uuid, &artifact, "install", held, events)
            .await?;
        events.step("publish", &p.url).await;

        let vmedia = ports
            .vmedia
            .as_ref()
            .ok_or_else(|| missing_port("virtual media"))?;
        let bmc = self.policy.bmc_timeout;
        run_step("eject", bmc, vmedia.eject_removable()).await?;
        let timeouts = (bmc, local);
        let auth = p.auth.as_ref();
        let target = boot_iso::attach(
            "insert",
            node,
            ports,
            &p.url,
            auth,
            plan.boot_mode,
            timeouts,
            events,
        )
        .await?;
        if let Some((url, auth)) = &medium_url {
            run_step(
                "insert medium",
                bmc,
                vmedia.insert_removable(url, auth.as_ref()),
            )
            .await?;
            events
                .step(
                    "insert medium",
                    "automation medium inserted in a removable slot",
                )
                .await;
        }
        boot_iso::boot_once(ports, target, plan.boot_mode, bmc, events).await?;
        let action = boot_iso::power_on_or_reset(ports, "power", bmc).await?;
        events.step("power", &format!("{action:?}")).await;
        Ok(match &way {
            Some(_) => "a call-back or the node powering off".to_string(),
            None => "the node powering off (interactive install)".to_string(),
        })
    }

    /// Undoes what the deploy holds locally (token, publications, stored files, remaster,
    /// lease) and forgets the install, best effort; returns the first error.
    async fn release_local(
        &self,
        node: &str,
        ports: &Ports,
        held: &Held,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let released = self.release_made(node, ports, held, events).await;
        for key in [DEADLINE_KEY, WAITING_KEY, ARGS_KEY] {
            events.save_internal(key, Value::Null).await;
        }
        released
    }

    /// Gives back what `held` names (token, publications, stored files, remaster, lease) and
    /// forgets their ids; returns the first error.
    async fn release_made(
        &self,
        node: &str,
        ports: &Ports,
        held: &Held,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let local = self.policy.local_timeout;
        let mut first = None;
        if held.token {
            if let Some(agent) = &ports.agent {
                agent.end(node).await;
            }
        }
        if let Some(publisher) = &ports.publisher {
            for id in &held.publications {
                let r = run_step("revoke", local, publisher.revoke(id)).await;
                keep_first(&mut first, r, events, "revoke", "publication revoked").await;
            }
        }
        events.save_internal(PUBLICATIONS_KEY, Value::Null).await;
        if let Some(media) = &ports.install_media {
            let r = run_step("discard", local, media.discard(node)).await;
            keep_first(
                &mut first,
                r,
                events,
                "discard",
                "automation file and remaster dropped",
            )
            .await;
        }
        if let Some(remaster) = &ports.remaster {
            let r = run_step("discard remaster", local, remaster.discard(node)).await;
            keep_first(
                &mut first,
                r,
                events,
                "discard remaster",
                "remaster dropped",
            )
            .await;
        }
        if let (Some(lease), Some(images)) = (&held.lease, &ports.images) {
            let r = run_step("release image", local, images.release(lease)).await;
            keep_first(
                &mut first,
                r,
                events,
                "release image",
                "image lease released",
            )
            .await;
        }
        events.save_internal(LEASE_KEY, Value::Null).await;
        first.map_or(Ok(()), Err)
    }

    /// What the node's driver_internal_info says the deploy holds.
    fn held(node: &NodeView) -> Held {
        Held {
            lease: str_field(&node.driver_internal_info, LEASE_KEY).map(str::to_string),
            publications: node
                .driver_internal_info
                .get(PUBLICATIONS_KEY)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            token: true,
        }
    }

    /// Ejects both kinds of slot.
    async fn eject(&self, ports: &Ports) -> Result<(), DeployError> {
        if let Some(vmedia) = &ports.vmedia {
            let bmc = self.policy.bmc_timeout;
            run_step("eject", bmc, vmedia.eject_all()).await?;
            run_step("eject", bmc, vmedia.eject_removable()).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl DeployDriver for IsoInstallDeploy {
    fn name(&self) -> &'static str {
        "iso-install"
    }

    fn validate(&self, node: &NodeView, ports: &Ports) -> Result<(), DeployError> {
        let plan = plan(node, &self.policy)?;
        let unattended = plan.automation != AutomationSource::Interactive;
        let needed = [
            ("virtual media", ports.vmedia.is_some()),
            ("image cache", ports.images.is_some()),
            ("image server", ports.publisher.is_some()),
            ("installer ISO support", ports.install_media.is_some()),
            (
                "the agent token service",
                !unattended || ports.agent.is_some(),
            ),
        ];
        require_ports(
            self.name(),
            &needed,
            "use boot_interface redfish-virtual-media",
        )
    }

    async fn deploy(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<DeployOutcome, DeployError> {
        let plan = plan(node, &self.policy)?;
        self.validate(node, ports)?;
        // A retry finds what the previous attempt held.
        self.release_local(&node.uuid, ports, &Self::held(node), events)
            .await?;
        run_step(
            "check BMC",
            self.policy.bmc_timeout,
            ports.power.power_state(),
        )
        .await?;
        events.step("check BMC", "BMC answered").await;
        let iso = self.lease(node, ports, &plan, events).await?;
        events
            .step(
                "cache image",
                &format!("{} ({} bytes, {})", plan.image.url, iso.size, iso.digest),
            )
            .await;
        let mut held = Held {
            lease: Some(iso.lease.clone()),
            ..Held::default()
        };
        match self
            .start_install(node, ports, &plan, &iso, &mut held, events)
            .await
        {
            Ok(waits_for) => {
                if let Some(limit) = plan.watchdog {
                    let deadline = unix_now() + limit.as_secs();
                    events.save_internal(DEADLINE_KEY, deadline.into()).await;
                }
                events
                    .save_internal(WAITING_KEY, Value::String(waits_for.clone()))
                    .await;
                let watchdog = match plan.watchdog {
                    Some(l) => format!("watchdog {} s", l.as_secs()),
                    None => "no watchdog".into(),
                };
                events
                    .step(
                        "wait call-back",
                        &format!("installing: waiting for {waits_for} ({watchdog})"),
                    )
                    .await;
                Ok(DeployOutcome::WaitCallback)
            }
            Err(err) => {
                let _ = self.release_local(&node.uuid, ports, &held, events).await;
                Err(err)
            }
        }
    }

    async fn poll_wait(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
        now: u64,
    ) -> Result<WaitCheck, DeployError> {
        let Some(waits_for) = str_field(&node.driver_internal_info, WAITING_KEY) else {
            return Ok(WaitCheck::Waiting);
        };
        // A BMC that does not answer now may answer next time; the watchdog bounds the wait.
        if let Ok(Ok(PowerState::Off)) =
            tokio::time::timeout(self.policy.bmc_timeout, ports.power.power_state()).await
        {
            return Ok(WaitCheck::Finished(
                "the node powered itself off: the installer finished".into(),
            ));
        }
        let deadline = node
            .driver_internal_info
            .get(DEADLINE_KEY)
            .and_then(Value::as_u64);
        match deadline {
            Some(d) if now >= d => {
                let why = format!(
                    "watchdog: the install did not finish in time; waited for {waits_for} (POST /v1/heartbeat/{} with the install's token, or power off seen through the BMC) until the deadline (instance_info/install_timeout, else [iso_install] install_timeout_s)",
                    node.uuid
                );
                events.step("watchdog", &why).await;
                let bmc = self.policy.bmc_timeout;
                let _ = run_step("power off", bmc, ports.power.set_power(PowerAction::Off)).await;
                let _ = self.eject(ports).await;
                let _ = self
                    .release_local(&node.uuid, ports, &Self::held(node), events)
                    .await;
                Ok(WaitCheck::Failed(why))
            }
            _ => Ok(WaitCheck::Waiting),
        }
    }

    /// The install finished (call-back, or power-off seen by `poll_wait`): eject, revoke,
    /// boot from disk, power on.
    async fn booted(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let plan = plan(node, &self.policy)?;
        self.eject(ports).await?;
        events.step("eject", "installer ISO ejected").await;
        self.release_local(&node.uuid, ports, &Self::held(node), events)
            .await?;
        let bmc = self.policy.bmc_timeout;
        run_step(
            "set boot device",
            bmc,
            ports
                .boot
                .set_boot_device(BootTarget::Disk, true, plan.boot_mode),
        )
        .await?;
        events
            .step(
                "set boot device",
                &format!("disk, persistent, {}", plan.boot_mode.as_ironic()),
            )
            .await;
        let action = boot_iso::power_on_or_reset(ports, "power", bmc).await?;
        events
            .step("power", &format!("{action:?}: booting the installed disk"))
            .await;
        Ok(())
    }

    async fn abandon(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        self.release_local(&node.uuid, ports, &Self::held(node), events)
            .await
    }

    /// Serves a node still installing from this conductor: its conductor died, and with it
    /// the image server the installer reads its CD from. The ISO is leased in this cache,
    /// remastered with the recorded args (the bytes the node booted), published, and inserted
    /// in place of the dead URL. Nothing is powered or rebooted, and the call-back token stays.
    /// The automation file is not served again: it holds that token, which only the dead
    /// conductor saw, and installers read it as they start. An installed (active) node is
    /// served nothing, so has nothing to take over.
    async fn take_over(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        if str_field(&node.driver_internal_info, WAITING_KEY).is_none() {
            return Ok(());
        }
        let plan = plan(node, &self.policy)?;
        let unattended = plan.automation != AutomationSource::Interactive;
        let args = str_field(&node.driver_internal_info, ARGS_KEY).unwrap_or_default();
        // The ISO's publication is the last one made; those before it serve the automation
        // file, which stays recorded (it may still answer where it is; `booted` revokes it).
        let before = Self::held(node);
        let (kept, replaced) = before
            .publications
            .split_at(before.publications.len().saturating_sub(1));
        let mut held = Held {
            publications: kept.to_vec(),
            ..Held::default()
        };
        let served = async {
            let iso = self.lease(node, ports, &plan, events).await?;
            held.lease = Some(iso.lease.clone());
            let artifact = self
                .installer_iso(ports, &iso, unattended, args, &node.uuid)
                .await?;
            let p = self
                .publish(ports, &node.uuid, &artifact, "install", &mut held, events)
                .await?;
            let timeouts = (self.policy.bmc_timeout, self.policy.local_timeout);
            let auth = p.auth.as_ref();
            let insert = boot_iso::attach(
                "insert",
                node,
                ports,
                &p.url,
                auth,
                plan.boot_mode,
                timeouts,
                events,
            );
            insert.await.map(|_| p.url)
        }
        .await;
        let limit = self.policy.local_timeout;
        match served {
            Ok(url) => {
                events
                    .step(
                        "take over",
                        &format!("the installer ISO is served by this conductor now, at {url} (the automation file is not served again)"),
                    )
                    .await;
                // The replaced ISO publication and lease lived on the dead conductor, where
                // giving them back is a no-op; unless that was this host under another name (a
                // restart with a fresh name on the same state directory).
                give_back(ports, replaced, before.lease.as_deref(), limit, events).await;
                Ok(())
            }
            Err(err) => {
                // The install still waits (its watchdog stays): the lease and publication this
                // takeover made go, and the records name what they named before. The remaster
                // stays with the node's install files, which may serve its automation file,
                // until the install ends.
                let made = &held.publications[kept.len()..];
                give_back(ports, made, held.lease.as_deref(), limit, events).await;
                restore_records(node, &[PUBLICATIONS_KEY, LEASE_KEY], events).await;
                Err(err)
            }
        }
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
        let r = self.eject(ports).await;
        keep_first(&mut first, r, events, "eject", "virtual media ejected").await;
        let local = self
            .release_local(&node.uuid, ports, &Self::held(node), events)
            .await;
        match (first, local) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        }
    }

    /// The installed disk is captured as the whole-disk path captures it: through the agent.
    async fn prepare_capture(
        &self,
        node: &NodeView,
        ports: &Ports,
        request: &CaptureRequest,
    ) -> Result<(), DeployError> {
        self.cleaner.prepare_capture(node, ports, request).await
    }

    async fn capture(
        &self,
        node: &NodeView,
        ports: &Ports,
        request: &CaptureRequest,
        active: bool,
        events: &dyn DeployEvents,
    ) -> Result<CapturedImage, DeployError> {
        self.cleaner
            .capture(node, ports, request, active, events)
            .await
    }

    /// The disk is cleaned as the whole-disk path cleans it: through the agent.
    async fn clean(
        &self,
        node: &NodeView,
        ports: &Ports,
        steps: &[CleanStep],
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        self.cleaner.clean(node, ports, steps, events).await
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
