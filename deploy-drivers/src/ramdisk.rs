//! The `ramdisk` deploy interface: boot a user's live ISO through Redfish virtual media.
//!
//! Steps: check the BMC answers → cache and lease the ISO → remaster it with the node's kernel
//! args (none: served byte-identical) → publish → eject all → insert → one-time boot from CD in
//! the node's boot mode → power on (or reset) → active. With instance_info
//! `boot_iso_one_shot`, the node waits in wait call-back instead, and the publication is
//! revoked when the booted ISO calls back (Ironic's heartbeat), so the ISO with its secrets is
//! served for one boot only. The call-back must carry the token the `Agent` port minted for
//! this boot, given to the ISO in its kernel args (`ironcast.url= ironcast.node=
//! ironcast.token=`); the token is forgotten once the node has called back, on failure and at
//! undeploy. Undeploy: power off → eject → revoke → discard the remaster →
//! release the lease. A failure at any step undoes what the deploy made
//! (publication, remaster, lease), so nothing leaks; the error names the step.
//!
//! Every step runs under a timeout from [`RamdiskPolicy`], so a BMC or origin that hangs fails
//! the deploy with a clear message instead of leaving the node in `deploying`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::boot_iso;
use crate::driver::*;
use crate::ports::*;
use crate::steps::{
    give_back, keep_first, missing_port, record_intent, restore_records, run_step, str_field,
};

/// driver_internal_info keys this driver owns.
pub(crate) const LEASE_KEY: &str = "ramdisk_lease";
pub(crate) const PUBLICATION_KEY: &str = "ramdisk_publication";
const PUBLICATION_URL_KEY: &str = "ramdisk_publication_url";

/// Operator policy for ramdisk deploys (from the conductor's config).
#[derive(Debug, Clone)]
pub struct RamdiskPolicy {
    /// Refuse a boot_iso without a checksum unless this is set.
    pub allow_unverified: bool,
    /// Kernel args when neither instance_info nor driver_info give `kernel_append_params`.
    pub default_kernel_args: Option<String>,
    /// Boot mode when the node does not say; `None` makes validate refuse such a node.
    pub default_boot_mode: Option<BootMode>,
    /// Longest wait for the image to be cached (download + verify).
    pub image_timeout: Duration,
    /// Longest wait for each BMC call (eject, insert, boot device, power).
    pub bmc_timeout: Duration,
    /// Longest wait for the remaster and publish steps.
    pub local_timeout: Duration,
}

impl RamdiskPolicy {
    /// The longest a deploy can take when every step uses its whole timeout: the undo of a
    /// previous deploy (revoke, discard, release), check BMC, cache image, remaster, publish,
    /// eject, insert, set boot device, read and set power, then the undo after a failure. The
    /// conductor's outer deploy timeout must not be shorter, or it cuts a step short.
    pub fn longest_deploy(&self) -> Duration {
        self.image_timeout + self.local_timeout * 8 + self.bmc_timeout * 6
    }
}

impl Default for RamdiskPolicy {
    /// Ironic-like defaults: image downloads may take long, BMC calls a few minutes.
    fn default() -> Self {
        Self {
            allow_unverified: false,
            default_kernel_args: None,
            default_boot_mode: Some(BootMode::Uefi),
            image_timeout: Duration::from_secs(30 * 60),
            bmc_timeout: Duration::from_secs(5 * 60),
            local_timeout: Duration::from_secs(2 * 60),
        }
    }
}

/// What a validated node asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RamdiskPlan {
    pub image: ImageRequest,
    /// Empty: publish the ISO unchanged.
    pub kernel_args: String,
    pub boot_mode: BootMode,
    /// Revoke the publication once the node has booted (it calls back).
    pub one_shot: bool,
}

pub struct RamdiskDeploy {
    pub policy: RamdiskPolicy,
}

impl RamdiskDeploy {
    pub fn new(policy: RamdiskPolicy) -> Self {
        Self { policy }
    }

    /// Reads and checks the node's fields (pure).
    pub fn plan(&self, node: &NodeView) -> Result<RamdiskPlan, DeployError> {
        let url = str_field(&node.instance_info, "boot_iso").ok_or_else(|| {
            DeployError::invalid(
                "instance_info/boot_iso is not set: give the URL of the ISO to boot",
            )
        })?;
        if !(url.starts_with("http://")
            || url.starts_with("https://")
            || url.starts_with("file://"))
        {
            return Err(DeployError::invalid(format!(
                "instance_info/boot_iso {url:?} is not an http(s):// or file:// URL"
            )));
        }
        let checksum = match str_field(&node.instance_info, "boot_iso_checksum")
            .or_else(|| str_field(&node.instance_info, "image_checksum"))
        {
            Some(text) => Some(parse_checksum(text).map_err(DeployError::invalid)?),
            None if self.policy.allow_unverified => None,
            None => {
                return Err(DeployError::invalid(
                    "instance_info/boot_iso_checksum is not set: give \"sha256:<hex>\" (or the URL of a SHA256SUMS file); the operator's policy refuses unverified images",
                ))
            }
        };
        let kernel_args = str_field(&node.instance_info, "kernel_append_params")
            .or_else(|| str_field(&node.driver_info, "kernel_append_params"))
            .map(str::to_string)
            .or_else(|| self.policy.default_kernel_args.clone())
            .unwrap_or_default();
        if let Some(c) = kernel_args.chars().find(|c| c.is_control()) {
            return Err(DeployError::invalid(format!(
                "kernel_append_params holds the control character {c:?}: kernel args must be one line"
            )));
        }
        let boot_mode = node.boot_mode.or(self.policy.default_boot_mode).ok_or_else(|| {
            DeployError::invalid(
                "the node's boot mode is unknown: set properties/capabilities boot_mode:uefi or boot_mode:bios",
            )
        })?;
        let one_shot = match node.instance_info.get("boot_iso_one_shot") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                return Err(DeployError::invalid(format!(
                    "instance_info/boot_iso_one_shot is {other}: use true or false"
                )))
            }
        };
        Ok(RamdiskPlan {
            image: ImageRequest {
                url: url.to_string(),
                checksum,
            },
            kernel_args: kernel_args.trim().to_string(),
            boot_mode,
            one_shot,
        })
    }

    /// Undoes what a deploy made locally (publication, remaster, lease), best effort, and
    /// returns the first error.
    async fn release_local(
        &self,
        node: &str,
        ports: &Ports,
        publication: Option<&str>,
        lease: Option<&str>,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let mut first = None;
        if let (Some(id), Some(publisher)) = (publication, &ports.publisher) {
            let r = self
                .step("revoke", self.policy.local_timeout, publisher.revoke(id))
                .await;
            keep_first(&mut first, r, events, "revoke", "publication revoked").await;
            events.save_internal(PUBLICATION_KEY, Value::Null).await;
            events.save_internal(PUBLICATION_URL_KEY, Value::Null).await;
        }
        if let Some(remaster) = &ports.remaster {
            let r = self
                .step(
                    "discard remaster",
                    self.policy.local_timeout,
                    remaster.discard(node),
                )
                .await;
            keep_first(
                &mut first,
                r,
                events,
                "discard remaster",
                "remastered ISO dropped",
            )
            .await;
        }
        if let (Some(lease), Some(images)) = (lease, &ports.images) {
            let r = self
                .step(
                    "release image",
                    self.policy.local_timeout,
                    images.release(lease),
                )
                .await;
            keep_first(
                &mut first,
                r,
                events,
                "release image",
                "image lease released",
            )
            .await;
            events.save_internal(LEASE_KEY, Value::Null).await;
        }
        first.map_or(Ok(()), Err)
    }

    /// Caches and leases the plan's image under an id recorded on the node first; a failed
    /// acquire releases that id (there may be a lease behind a timeout) and forgets it.
    async fn lease_image(
        &self,
        node: &NodeView,
        ports: &Ports,
        plan: &RamdiskPlan,
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
        let acquired = self
            .step(
                "cache image",
                self.policy.image_timeout,
                images.acquire(&plan.image, &node.uuid, &lease),
            )
            .await;
        match acquired {
            Ok(image) => Ok(image),
            Err(e) => {
                let _ = self
                    .release_local(&node.uuid, ports, None, Some(&lease), events)
                    .await;
                Err(e)
            }
        }
    }

    /// Runs one port call under `limit`, naming the step in the error.
    async fn step<T>(
        &self,
        name: &str,
        limit: Duration,
        call: impl std::future::Future<Output = PortResult<T>>,
    ) -> Result<T, DeployError> {
        run_step(name, limit, call).await
    }

    /// Remaster (when there are kernel args) and publish the leased ISO under an id recorded
    /// (on the node and in `publication`) before the URL exists.
    async fn publish_iso(
        &self,
        node: &NodeView,
        ports: &Ports,
        plan: &RamdiskPlan,
        image: &LeasedImage,
        publication: &mut Option<String>,
        events: &dyn DeployEvents,
    ) -> Result<(String, Option<MediaAuth>), DeployError> {
        let args = &plan.kernel_args;
        let artifact = if args.is_empty() {
            events
                .step("remaster", "no kernel args: the ISO is served unchanged")
                .await;
            Artifact {
                base: image.path.clone(),
                patch_set: None,
                len: image.size,
            }
        } else {
            let remaster = ports
                .remaster
                .as_ref()
                .ok_or_else(|| missing_port("remaster"))?;
            let call = remaster.remaster(image, args, &node.uuid);
            let artifact = self
                .step("remaster", self.policy.local_timeout, call)
                .await?;
            // The token is a secret: history shows the args without it.
            events
                .step("remaster", &format!("appended {:?}", mask_token(args)))
                .await;
            artifact
        };
        let publisher = ports
            .publisher
            .as_ref()
            .ok_or_else(|| missing_port("publisher"))?;
        let id = fresh_id();
        record_intent(
            events,
            "publish",
            PUBLICATION_KEY,
            Value::String(id.clone()),
        )
        .await?;
        *publication = Some(id.clone());
        let published = self
            .step(
                "publish",
                self.policy.local_timeout,
                publisher.publish_as(&id, &artifact, &node.uuid, "boot"),
            )
            .await?;
        events
            .save_internal(PUBLICATION_URL_KEY, Value::String(published.url.clone()))
            .await;
        events.step("publish", &published.url).await;
        Ok((published.url, published.auth))
    }

    /// The steps after the lease, so that one place undoes them on failure.
    async fn boot_from_iso(
        &self,
        node: &NodeView,
        ports: &Ports,
        plan: &RamdiskPlan,
        image: &LeasedImage,
        publication: &mut Option<String>,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let (url, auth) = self
            .publish_iso(node, ports, plan, image, publication, events)
            .await?;
        let bmc = self.policy.bmc_timeout;
        let target = boot_iso::attach(
            "insert",
            node,
            ports,
            &url,
            auth.as_ref(),
            plan.boot_mode,
            (bmc, self.policy.local_timeout),
            events,
        )
        .await?;
        boot_iso::boot_once(ports, target, plan.boot_mode, bmc, events).await?;
        let action = boot_iso::power_on_or_reset(ports, "power", bmc).await?;
        events.step("power", &format!("{action:?}")).await;
        Ok(())
    }
}

#[async_trait]
impl DeployDriver for RamdiskDeploy {
    fn name(&self) -> &'static str {
        "ramdisk"
    }

    fn validate(&self, node: &NodeView, ports: &Ports) -> Result<(), DeployError> {
        let plan = self.plan(node)?;
        let needed = [
            (
                "virtual media or network boot",
                boot_iso::check(ports).is_ok(),
            ),
            ("image cache", ports.images.is_some()),
            ("image server", ports.publisher.is_some()),
            (
                "ISO remaster",
                (plan.kernel_args.is_empty() && !plan.one_shot) || ports.remaster.is_some(),
            ),
        ];
        if plan.one_shot && ports.agent.is_none() {
            return Err(DeployError::invalid(
                "boot_iso_one_shot needs the agent token service to authenticate the node's call-back, which this node's interfaces do not provide",
            ));
        }
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
        self.validate(node, ports)?;
        let plan = self.plan(node)?;
        // A rebuild, or a retry after a crash, may find the previous deploy's resources.
        self.release_local(
            &node.uuid,
            ports,
            str_field(&node.driver_internal_info, PUBLICATION_KEY),
            str_field(&node.driver_internal_info, LEASE_KEY),
            events,
        )
        .await?;

        self.step(
            "check BMC",
            self.policy.bmc_timeout,
            ports.power.power_state(),
        )
        .await?;
        events.step("check BMC", "BMC answered").await;

        let image = self.lease_image(node, ports, &plan, events).await?;
        events
            .step(
                "cache image",
                &format!(
                    "{} ({} bytes, {}{})",
                    plan.image.url,
                    image.size,
                    image.digest,
                    if plan.image.checksum.is_none() {
                        "; unverified: no boot_iso_checksum was given, this is the digest fetched"
                    } else {
                        ""
                    }
                ),
            )
            .await;

        // A one-shot ISO calls back with a token minted for this boot.
        let callback_args = match (&ports.agent, plan.one_shot) {
            (Some(agent), true) => {
                let minted = self
                    .step(
                        "agent token",
                        self.policy.local_timeout,
                        agent.begin(&node.uuid),
                    )
                    .await;
                match minted {
                    Ok(args) => Some(args),
                    Err(e) => {
                        let _ = self
                            .release_local(&node.uuid, ports, None, Some(&image.lease), events)
                            .await;
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        let mut boot_plan = plan.clone();
        if let Some(extra) = &callback_args {
            boot_plan.kernel_args = format!("{} {extra}", plan.kernel_args).trim().to_string();
        }
        let mut publication = None;
        match self
            .boot_from_iso(node, ports, &boot_plan, &image, &mut publication, events)
            .await
        {
            Ok(()) if plan.one_shot => {
                events
                    .step(
                        "wait call-back",
                        "one-shot: the ISO is revoked when the node calls back",
                    )
                    .await;
                Ok(DeployOutcome::WaitCallback)
            }
            Ok(()) => Ok(DeployOutcome::Active),
            Err(err) => {
                if let (Some(agent), true) = (&ports.agent, plan.one_shot) {
                    agent.end(&node.uuid).await;
                }
                let id = publication.as_deref();
                // The deploy's own error is what the operator needs; cleanup errors are logged
                // as history events by release_local.
                let _ = self
                    .release_local(&node.uuid, ports, id, Some(&image.lease), events)
                    .await;
                Err(err)
            }
        }
    }

    async fn booted(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        // The node has called back: its token has served its purpose.
        if let Some(agent) = &ports.agent {
            agent.end(&node.uuid).await;
        }
        let (Some(id), Some(publisher)) = (
            str_field(&node.driver_internal_info, PUBLICATION_KEY),
            &ports.publisher,
        ) else {
            return Ok(());
        };
        self.step("revoke", self.policy.local_timeout, publisher.revoke(id))
            .await?;
        events.save_internal(PUBLICATION_KEY, Value::Null).await;
        events.save_internal(PUBLICATION_URL_KEY, Value::Null).await;
        events
            .step("revoke", "one-shot publication revoked: the node booted")
            .await;
        Ok(())
    }

    /// Releases the publication, remaster and lease the cut-short deploy recorded.
    async fn abandon(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        self.release_local(
            &node.uuid,
            ports,
            str_field(&node.driver_internal_info, PUBLICATION_KEY),
            str_field(&node.driver_internal_info, LEASE_KEY),
            events,
        )
        .await
    }

    /// Serves the node's ISO from this conductor: lease it in our cache, remaster, publish,
    /// then eject and insert the new URL. Nothing is powered or rebooted: the running node keeps
    /// reading its CD, now from us. The old publication and lease lived in the dead conductor's
    /// cache and image server, which died with it; their records are replaced.
    async fn take_over(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        if str_field(&node.driver_internal_info, PUBLICATION_KEY).is_none() {
            // Nothing served (a one-shot ISO already revoked): nothing to take over.
            return Ok(());
        }
        self.serve_here(node, ports, events, "take over").await
    }

    /// An adopted live-ISO node (deployed elsewhere, or before this conductor's database was
    /// lost) keeps running from its virtual CD: serve its ISO from here and point the CD at it,
    /// touching neither power nor the boot device, as Ironic's prepare_instance does on adopt.
    async fn adopt(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        self.serve_here(node, ports, events, "adopt").await
    }

    async fn undeploy(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
    ) -> Result<(), DeployError> {
        let bmc = self.policy.bmc_timeout;
        let mut first = None;
        if let (Some(agent), Ok(RamdiskPlan { one_shot: true, .. })) =
            (&ports.agent, self.plan(node))
        {
            agent.end(&node.uuid).await;
        }
        let r = self
            .step("power off", bmc, ports.power.set_power(PowerAction::Off))
            .await;
        keep_first(&mut first, r, events, "power off", "powered off").await;
        let r = boot_iso::detach(node, ports, (bmc, self.policy.local_timeout)).await;
        match r {
            Ok(done) => events.step("eject", done).await,
            Err(e) => keep_first(&mut first, Err::<(), _>(e), events, "eject", "").await,
        }
        let local = self
            .release_local(
                &node.uuid,
                ports,
                str_field(&node.driver_internal_info, PUBLICATION_KEY),
                str_field(&node.driver_internal_info, LEASE_KEY),
                events,
            )
            .await;
        match (first, local) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        }
    }
}

/// Kernel args with the value of `ironcast.token=` replaced by `******`, for history.
pub fn mask_token(args: &str) -> String {
    args.split(' ')
        .map(|word| match word.split_once('=') {
            Some(("ironcast.token", _)) => "ironcast.token=******".to_string(),
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses a checksum as users write it: "sha256:<hex>", "<hex>" (algorithm by length), or the
/// http(s) URL of a checksum file.
pub fn parse_checksum(text: &str) -> Result<ChecksumSpec, String> {
    let text = text.trim();
    if text.starts_with("http://") || text.starts_with("https://") || text.starts_with("file://") {
        return Ok(ChecksumSpec::FileUrl(text.to_string()));
    }
    let (algorithm, hex) = match text.split_once(':') {
        Some((algo, hex)) => (algo.to_ascii_lowercase(), hex),
        None => {
            let algo = match text.len() {
                32 => "md5",
                64 => "sha256",
                128 => "sha512",
                n => return Err(format!("checksum {text:?} has {n} hex digits: give \"sha256:<hex>\", or 64 (sha256) / 128 (sha512) digits")),
            };
            (algo.to_string(), text)
        }
    };
    let want_len = match algorithm.as_str() {
        "md5" => 32,
        "sha256" => 64,
        "sha512" => 128,
        other => {
            return Err(format!(
                "checksum algorithm {other:?} is not supported: use sha256 or sha512"
            ))
        }
    };
    if hex.len() != want_len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "checksum {text:?} is not {want_len} hex digits as {algorithm} needs"
        ));
    }
    Ok(ChecksumSpec::Value {
        algorithm,
        hex: hex.to_ascii_lowercase(),
    })
}

impl RamdiskDeploy {
    /// Leases, remasters and publishes the node's ISO on this conductor and inserts it into
    /// the node's virtual CD; gives back what the records named before. Undoes what it made
    /// on failure, leaving the records as they were. `step` names it in history.
    async fn serve_here(
        &self,
        node: &NodeView,
        ports: &Ports,
        events: &dyn DeployEvents,
        step: &str,
    ) -> Result<(), DeployError> {
        let plan = self.plan(node)?;
        let recorded = &node.driver_internal_info;
        let replaced: Vec<String> = str_field(recorded, PUBLICATION_KEY)
            .map(str::to_string)
            .into_iter()
            .collect();
        let replaced_lease = str_field(recorded, LEASE_KEY);
        let image = self.lease_image(node, ports, &plan, events).await?;
        let mut publication = None;
        let served = async {
            let (url, auth) = self
                .publish_iso(node, ports, &plan, &image, &mut publication, events)
                .await?;
            let timeouts = (self.policy.bmc_timeout, self.policy.local_timeout);
            boot_iso::attach(
                "insert",
                node,
                ports,
                &url,
                auth.as_ref(),
                plan.boot_mode,
                timeouts,
                events,
            )
            .await
            .map(|_| ())
        }
        .await;
        if let Err(err) = served {
            let id = publication.as_deref();
            let _ = self
                .release_local(&node.uuid, ports, id, Some(&image.lease), events)
                .await;
            let keys = [PUBLICATION_KEY, PUBLICATION_URL_KEY, LEASE_KEY];
            restore_records(node, &keys, events).await;
            return Err(err);
        }
        events
            .step(step, "the ISO is served by this conductor now")
            .await;
        // What the records named before lived on the dead conductor, where giving it back is a
        // no-op; unless that was this host under another name (a restart with a fresh name on
        // the same state directory), where it would otherwise stay served with no record.
        let limit = self.policy.local_timeout;
        give_back(ports, &replaced, replaced_lease, limit, events).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
