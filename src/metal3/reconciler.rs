//! The reconciler inside `serve`: every due host gets one pass — read the host, its Secrets
//! and its node; [`decide`]; perform the action through the conductor's own functions (never
//! HTTP to itself); write the status in BMO's shape and when to look again (poll, resync, or
//! BMO's error backoff).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::conductor::states::Event;
use crate::conductor::{
    default_interface, Conductor, ConductorError, CLEAN_STEPS_KEY, TARGET_RAID_KEY,
};
use crate::store::{Metal3Host, Node, Port};

use super::decide::{decide, Action, Creds, Decision, HostView, NodeObs, Outcome, Verb};
use super::manifest::BareMetalHost;
use super::node::{self, BmcCredentials, ConfigData};
use super::status::{CredentialsStatus, ErrorType, HostStatus, Internal, SecretName, State};
use super::{hardware, Settings};

/// Wakes the reconciler (an apply or delete made a host due).
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Starts the reconciler loop; it runs until the process ends.
pub fn spawn(conductor: Conductor, settings: Settings, wake: Wake) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let r = Reconciler {
            conductor,
            settings,
        };
        loop {
            let again = match r.pass().await {
                Ok(again) => again,
                Err(e) => {
                    tracing::warn!(error = %e, "metal3 reconcile pass failed");
                    false
                }
            };
            if again {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(r.settings.poll_interval) => {}
                _ = wake.0.notified() => {}
            }
        }
    })
}

struct Reconciler {
    conductor: Conductor,
    settings: Settings,
}

/// BMO's calculateBackoff: 2^count units (count capped at 9), less up to half as jitter.
pub fn backoff(error_count: u32, unit: Duration) -> Duration {
    let base = 2f64.powi(error_count.min(9) as i32);
    let jitter = rand::random::<f64>() * base * 0.5;
    unit.mul_f64(base - jitter)
}

impl Reconciler {
    /// One pass over every due host; true when some host wants another pass at once.
    async fn pass(&self) -> Result<bool, super::Metal3Error> {
        let due = self.conductor.store().metal3_hosts_due(Utc::now()).await?;
        let again = futures::stream::iter(due)
            .map(|h| self.reconcile(h))
            .buffer_unordered(self.settings.concurrency.max(1))
            .fold(false, |acc, again| async move { acc || again })
            .await;
        Ok(again)
    }

    /// One host's pass; true when it should be looked at again at once.
    async fn reconcile(&self, row: Metal3Host) -> bool {
        match self.reconcile_inner(&row).await {
            Ok(again) => again,
            Err(e) => {
                tracing::warn!(host = %format!("{}/{}", row.namespace, row.name), error = %e, "metal3 host pass failed");
                let mut internal = Internal::from_map(&row.internal);
                internal.last_transient_error = e.to_string();
                let _ = self
                    .conductor
                    .store()
                    .metal3_save_status(
                        row.id,
                        row.generation,
                        &row.status,
                        &internal.to_map(),
                        Some(Utc::now() + self.settings.poll_interval),
                    )
                    .await;
                false
            }
        }
    }

    async fn reconcile_inner(&self, row: &Metal3Host) -> Result<bool, super::Metal3Error> {
        let store = self.conductor.store();
        let host = BareMetalHost::from_stored(&row.manifest)?;
        let mut status = HostStatus::from_map(&row.status);
        let mut internal = Internal::from_map(&row.internal);
        let creds = self.credentials(&host).await?;
        let node = self.find_node(&host, &status).await?;
        if let Some(n) = &node {
            status.provisioning.id = n.uuid.clone();
        }
        let obs = node.as_ref().map(observe);
        let creds_state = match &creds {
            Err(why) => Creds::Missing(why.clone()),
            Ok(c) => Creds::Present {
                changed: status
                    .good_credentials
                    .as_ref()
                    .is_some_and(|g| g.credentials_version != c.version()),
            },
        };
        let d = decide(&HostView {
            spec: &host.spec,
            annotations: &host.metadata.annotations,
            status: &status,
            internal: &internal,
            deleting: row.deleting,
            creds: creds_state,
            node: obs.as_ref(),
        });
        if d.outcome == Outcome::Paused {
            return Ok(false);
        }
        let mut d = d;
        let transient = match self
            .act(row, &host, creds.as_ref().ok(), node.as_ref(), &d)
            .await
        {
            Ok(Acted::Forgotten) => return Ok(false),
            Ok(Acted::Done) => None,
            Err(e) if e.permanent => {
                let kind = error_type_for(status.provisioning.state, &d.action);
                d = Decision {
                    next: status.provisioning.state,
                    outcome: Outcome::Failed(kind, e.message),
                    ..d
                };
                None
            }
            Err(e) => Some(e.message),
        };
        let now = Utc::now();
        let requeue = match (&transient, &d.outcome) {
            (Some(_), _) => Some(now + self.settings.poll_interval),
            (None, Outcome::Complete) => None,
            (None, Outcome::Continue) => Some(now + self.settings.poll_interval),
            (None, Outcome::Idle) => Some(now + self.settings.resync_interval),
            (None, Outcome::Failed(..)) => {
                Some(now + backoff(status.error_count + 1, self.settings.backoff_unit))
            }
            (None, Outcome::Paused) => None,
        };
        match transient {
            Some(e) => {
                tracing::debug!(host = %host.name(), error = %e, "metal3 action failed, retrying");
                internal.last_transient_error = e;
            }
            None => {
                internal.last_transient_error.clear();
                self.update_status(
                    &host,
                    &mut status,
                    &mut internal,
                    &d,
                    creds.as_ref().ok(),
                    node.as_ref(),
                    now,
                )
                .await;
            }
        }
        if let Some(n) = &node {
            status.powered_on = n.power_state.as_deref() == Some("power on");
        }
        store
            .metal3_save_status(
                row.id,
                row.generation,
                &status.to_map(),
                &internal.to_map(),
                requeue,
            )
            .await?;
        Ok(requeue.is_none())
    }

    /// The host's BMC credentials, or why they cannot be read.
    async fn credentials(
        &self,
        host: &BareMetalHost,
    ) -> Result<Result<BmcCredentials, String>, super::Metal3Error> {
        let name = &host.spec.bmc.credentials_name;
        if name.is_empty() {
            return Ok(Err(
                "spec.bmc.credentialsName is empty: name a Secret with keys username and password"
                    .into(),
            ));
        }
        let ns = host.namespace();
        let Some(secret) = self.conductor.store().metal3_secret(ns, name).await? else {
            return Ok(Err(format!(
                "BMC credentials Secret {ns}/{name} not found: apply a Secret with keys username and password"
            )));
        };
        let get = |k: &str| {
            secret
                .data
                .get(k)
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .trim_end_matches('\n')
                        .to_string()
                })
        };
        Ok(match (get("username"), get("password")) {
            (Some(username), Some(password)) => Ok(BmcCredentials { username, password }),
            _ => Err(format!(
                "BMC credentials Secret {ns}/{name} lacks the key username or password"
            )),
        })
    }

    /// The host's node: by the ID in its status, else by BMO's node name.
    async fn find_node(
        &self,
        host: &BareMetalHost,
        status: &HostStatus,
    ) -> Result<Option<Node>, super::Metal3Error> {
        let store = self.conductor.store();
        if !status.provisioning.id.is_empty() {
            if let Some(n) = store.node_by_uuid(&status.provisioning.id).await? {
                return Ok(Some(n));
            }
        }
        Ok(store
            .node_by_name(&node::node_name(host.namespace(), host.name()))
            .await?)
    }

    /// Reads a Secret's key named by `r` (or BMO's fallback key `value`).
    async fn secret_value(
        &self,
        host: &BareMetalHost,
        r: Option<&super::manifest::SecretRef>,
        key: &str,
    ) -> Result<Option<String>, String> {
        let Some(r) = r else { return Ok(None) };
        let ns = r.namespace.as_deref().unwrap_or(host.namespace());
        let secret = self
            .conductor
            .store()
            .metal3_secret(ns, &r.name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{key} Secret {ns}/{} not found: apply it", r.name))?;
        let b64 = secret
            .data
            .get(key)
            .or_else(|| secret.data.get("value"))
            .and_then(Value::as_str);
        let Some(b64) = b64 else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("{key} Secret {ns}/{}: {e}", r.name))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn act(
        &self,
        row: &Metal3Host,
        host: &BareMetalHost,
        creds: Option<&BmcCredentials>,
        node: Option<&Node>,
        d: &Decision,
    ) -> Result<Acted, ActError> {
        let c = &self.conductor;
        let err = ActError::from;
        let uuid = node.map(|n| n.uuid.clone()).unwrap_or_default();
        match &d.action {
            Action::Nothing => {}
            Action::Register => {
                let creds = creds.ok_or("no BMC credentials")?;
                self.register(host, creds).await?;
            }
            Action::UpdateCredentials => {
                let creds = creds.ok_or("no BMC credentials")?.clone();
                let info = node::driver_info(host, &creds);
                c.update_node(&uuid, move |n| {
                    n.driver_info.extend(info);
                    Ok(())
                })
                .await
                .map_err(err)?;
            }
            Action::Verb(v) => {
                let event = match v {
                    Verb::Manage => Event::Manage,
                    Verb::Inspect => Event::Inspect,
                    Verb::Provide => Event::Provide,
                    Verb::Undeploy => Event::Undeploy,
                    Verb::Adopt => Event::Adopt,
                };
                if *v == Verb::Provide || *v == Verb::Inspect {
                    // Preparing's settings reach the node before it is cleaned or deployed.
                    let mut props = serde_json::Map::new();
                    node::apply_properties(host, &mut props);
                    let clean = node::automated_clean(host);
                    c.update_node(&uuid, move |n| {
                        n.properties.extend(props);
                        n.automated_clean = Some(clean);
                        Ok(())
                    })
                    .await
                    .map_err(err)?;
                }
                c.provision(&uuid, event).await.map_err(err)?;
            }
            Action::Deploy => self.deploy(row, host, &uuid).await?,
            Action::Prepare => self.prepare(row, host, node).await?,
            Action::Power(on) => {
                let target = if *on { "power on" } else { "power off" };
                c.set_power(&uuid, target).await.map_err(err)?;
            }
            Action::SetAutomatedClean(v) => {
                let v = *v;
                c.update_node(&uuid, move |n| {
                    n.automated_clean = Some(v);
                    Ok(())
                })
                .await
                .map_err(err)?;
            }
            Action::ClearMaintenance => {
                c.update_node(&uuid, |n| {
                    n.maintenance = false;
                    n.maintenance_reason = None;
                    Ok(())
                })
                .await
                .map_err(err)?;
            }
            Action::DeleteNode => {
                let n = node.ok_or("no node to delete")?;
                let quiet = matches!(
                    n.provision_state.as_str(),
                    "enroll" | "manageable" | "available" | "clean failed" | "inspect failed"
                );
                if !quiet && !n.maintenance {
                    c.update_node(&uuid, |n| {
                        n.maintenance = true;
                        n.maintenance_reason =
                            Some("forcing deletion in baremetal-operator".into());
                        Ok(())
                    })
                    .await
                    .map_err(err)?;
                }
                c.delete_node(&uuid).await.map_err(err)?;
            }
            Action::RemoveAnnotation(key) => {
                let mut edited = host.clone();
                edited.metadata.annotations.remove(key);
                c.store()
                    .metal3_edit_manifest(row.id, row.generation, &edited.to_stored())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Action::Forget => {
                c.store()
                    .metal3_forget_host(row.id)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(host = %format!("{}/{}", host.namespace(), host.name()), "BareMetalHost deleted");
                return Ok(Acted::Forgotten);
            }
        }
        Ok(Acted::Done)
    }

    /// BMO's Prepare: the node's target RAID configuration, then a manual clean with the steps
    /// that apply it.
    async fn prepare(
        &self,
        row: &Metal3Host,
        host: &BareMetalHost,
        node: Option<&Node>,
    ) -> Result<(), ActError> {
        let Some(n) = node else {
            return Ok(());
        };
        let applied = HostStatus::from_map(&row.status).provisioning.raid;
        let Some(plan) = super::raid::plan(&host.spec, applied.as_ref(), &n.raid_interface)? else {
            return Ok(());
        };
        self.conductor
            .provision_with(&n.uuid, Event::Clean, move |n| {
                if let Some(t) = plan.target {
                    n.driver_internal_info.insert(TARGET_RAID_KEY.into(), t);
                }
                n.driver_internal_info
                    .insert(CLEAN_STEPS_KEY.into(), plan.steps);
            })
            .await
            .map_err(ActError::from)?;
        Ok(())
    }

    /// Creates the host's node (and its boot MAC's port) as BMO registers it.
    async fn register(&self, host: &BareMetalHost, creds: &BmcCredentials) -> Result<(), ActError> {
        let access = super::bmc::access(&host.spec.bmc.address)?;
        let mut n = Node::new(uuid::Uuid::new_v4().to_string(), "redfish".into(), |i| {
            default_interface("redfish", i)
        });
        n.name = Some(node::node_name(host.namespace(), host.name()));
        n.driver_info = node::driver_info(host, creds);
        n.boot_interface = access.boot_interface.into();
        n.deploy_interface = "direct".into();
        // Out of band through the BMC: inspection needs no agent ramdisk.
        n.inspect_interface = "redfish".into();
        // BMO's RAIDInterface and FirmwareInterface for every Redfish type.
        n.raid_interface = super::decide::RAID_INTERFACE.into();
        n.firmware_interface = "redfish".into();
        n.automated_clean = Some(node::automated_clean(host));
        if !host.spec.description.is_empty() {
            n.description = Some(host.spec.description.clone());
        }
        node::apply_properties(host, &mut n.properties);
        let created = self.conductor.create_node(n).await?;
        if !host.spec.boot_mac_address.is_empty() {
            let mac = host
                .spec
                .boot_mac_address
                .replace('-', ":")
                .to_ascii_lowercase();
            let port = Port::new(uuid::Uuid::new_v4().to_string(), mac, created.uuid.clone());
            if let Err(e) = self.conductor.store().create_port(&port).await {
                // The node without its port would never match the MAC: undo.
                let _ = self.conductor.delete_node(&created.uuid).await;
                return Err(format!("cannot create the port for bootMACAddress: {e}").into());
            }
        }
        tracing::info!(host = %format!("{}/{}", host.namespace(), host.name()), node = %created.uuid, "registered BareMetalHost");
        Ok(())
    }

    /// Sets the image, then deploys with the config drive built from the Secrets.
    async fn deploy(
        &self,
        row: &Metal3Host,
        host: &BareMetalHost,
        uuid: &str,
    ) -> Result<(), ActError> {
        let image = host.spec.image.clone().ok_or("no image to deploy")?;
        let data = ConfigData {
            user_data: self
                .secret_value(host, host.spec.user_data.as_ref(), "userData")
                .await?,
            network_data: self
                .secret_value(host, host.spec.network_data.as_ref(), "networkData")
                .await?,
            meta_data: self
                .secret_value(host, host.spec.meta_data.as_ref(), "metaData")
                .await?,
        };
        let drive = node::config_drive(host, &row.uid, &data)?;
        let (iface, info) = node::image_instance_info(&image);
        let mut props = serde_json::Map::new();
        node::apply_properties(host, &mut props);
        let c = &self.conductor;
        c.update_node(uuid, move |n| {
            n.deploy_interface = iface.into();
            for k in [
                "boot_iso",
                "image_source",
                "image_checksum",
                "image_os_hash_algo",
                "image_os_hash_value",
                "image_disk_format",
                "configdrive",
            ] {
                n.instance_info.remove(k);
            }
            n.instance_info.extend(info);
            n.properties.extend(props);
            Ok(())
        })
        .await?;
        c.provision_with(uuid, Event::Deploy, move |n| {
            if let Some(d) = drive {
                n.instance_info.insert("configdrive".into(), d);
            }
        })
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_status(
        &self,
        host: &BareMetalHost,
        status: &mut HostStatus,
        internal: &mut Internal,
        d: &Decision,
        creds: Option<&BmcCredentials>,
        node: Option<&Node>,
        now: DateTime<Utc>,
    ) {
        let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let from = status.provisioning.state;
        if d.next != from {
            if let Some(m) = status.operation_history.for_state(from) {
                if m.start.is_some() && m.end.is_none() {
                    m.end = Some(stamp.clone());
                }
            }
            if let Some(m) = status.operation_history.for_state(d.next) {
                if m.start.is_none() || m.end.is_some() {
                    *m = super::status::OperationMetric {
                        start: Some(stamp.clone()),
                        end: None,
                    };
                }
            }
            status.provisioning.state = d.next;
            tracing::info!(host = %format!("{}/{}", host.namespace(), host.name()), from = from.as_str(), to = d.next.as_str(), "BareMetalHost state");
        }
        // Registering has no handler of its own to close it: registration ends once the node
        // answers.
        if from == State::Registering && d.next != State::Registering {
            if let Some(m) = status.operation_history.for_state(State::Registering) {
                m.end.get_or_insert(stamp.clone());
            }
        }
        if d.clear_error {
            status.error_type.clear();
            status.error_message.clear();
        }
        if d.reset_error_count {
            status.error_count = 0;
        }
        if let Outcome::Failed(kind, message) = &d.outcome {
            status.error_type = kind.as_str().into();
            status.error_message = message.clone();
            status.error_count += 1;
        }
        if let Some(v) = d.inspect_started {
            internal.inspect_started = v;
        }
        if let Some(v) = d.prepare_started {
            internal.prepare_started = v;
        }
        if let Some(v) = d.rebooting {
            internal.rebooting = v;
        }
        if d.good_credentials {
            if let Some(c) = creds {
                status.good_credentials = Some(CredentialsStatus {
                    credentials: Some(SecretName {
                        name: host.spec.bmc.credentials_name.clone(),
                        namespace: host.namespace().into(),
                    }),
                    credentials_version: c.version(),
                });
            }
        }
        if d.read_hardware {
            if let Some(n) = node {
                let inventory = self.inventory(n).await;
                status.hardware = Some(hardware::details(inventory.as_ref(), &n.properties));
                status.hardware_profile = "unknown".into();
            }
        }
        if d.save_settings {
            status.provisioning.root_device_hints = host.spec.root_device_hints.clone();
            status.provisioning.boot_mode = host
                .spec
                .boot_mode
                .map(|m| m.as_str())
                .unwrap_or("UEFI")
                .into();
            status.provisioning.raid = host.spec.raid.clone();
        }
        if d.record_image {
            status.provisioning.image = host.spec.image.clone().unwrap_or_default();
        }
        if d.clear_image {
            status.provisioning.image = Default::default();
        }
        status.operational_status = match (d.operational, status.error_type.is_empty()) {
            (Some(op), _) => op.into(),
            (None, false) => "error".into(),
            (None, true) if status.operational_status == "detached" => "detached".into(),
            (None, true) => "OK".into(),
        };
        match (&d.message, &d.outcome) {
            (Some(m), _) => status.error_message = m.clone(),
            (None, _) if status.error_type.is_empty() => status.error_message.clear(),
            _ => {}
        }
        if from != d.next || d.outcome != Outcome::Idle {
            status.last_updated = Some(stamp);
        }
    }

    /// The node's inventory from its last inspection (what `GET /v1/nodes/{id}/inventory`
    /// serves), if any: hardware then comes from the node's properties.
    async fn inventory(&self, node: &Node) -> Option<Value> {
        let fact = self
            .conductor
            .store()
            .fact(&node.uuid, crate::store::FactKind::Inspection)
            .await
            .ok()??;
        fact.data.get("inventory").cloned()
    }
}

enum Acted {
    Done,
    Forgotten,
}

/// A failed action: transient (retry after the poll interval, as BMO requeues) or refused by
/// the conductor as invalid (an error on the host, with BMO's backoff).
struct ActError {
    message: String,
    permanent: bool,
}

impl From<ConductorError> for ActError {
    fn from(e: ConductorError) -> Self {
        let permanent = matches!(e, ConductorError::Invalid(_));
        ActError {
            message: e.to_string(),
            permanent,
        }
    }
}

impl From<String> for ActError {
    fn from(message: String) -> Self {
        ActError {
            message,
            permanent: false,
        }
    }
}

impl From<&str> for ActError {
    fn from(message: &str) -> Self {
        ActError::from(message.to_string())
    }
}

/// The error type BMO gives a failure in `state` (or of a power action).
fn error_type_for(state: State, action: &Action) -> ErrorType {
    match (state, action) {
        (_, Action::Power(_)) => ErrorType::PowerManagement,
        (State::None | State::Unmanaged | State::Registering, _) => ErrorType::Registration,
        (State::Inspecting, _) => ErrorType::Inspection,
        (State::Preparing, _) => ErrorType::Preparation,
        _ => ErrorType::Provisioning,
    }
}

/// What the decision needs of a node.
fn observe(n: &Node) -> NodeObs {
    let image = |k: &str| {
        n.instance_info
            .get(k)
            .and_then(Value::as_str)
            .map(String::from)
    };
    NodeObs {
        state: n.provision_state.clone(),
        powered_on: match n.power_state.as_deref() {
            Some("power on") => Some(true),
            Some("power off") => Some(false),
            _ => None,
        },
        power_pending: n.target_power_state.is_some(),
        last_error: n.last_error.clone().filter(|e| !e.is_empty()),
        maintenance: n.maintenance,
        image_url: image("boot_iso").or_else(|| image("image_source")),
        automated_clean: n.automated_clean,
    }
}

/// The API's view of a host: the manifest with its status (what `get bmh` prints).
pub fn host_object(row: &Metal3Host) -> Value {
    let mut obj = Value::Object(row.manifest.clone());
    obj["metadata"]["uid"] = json!(row.uid);
    obj["metadata"]["generation"] = json!(row.generation);
    obj["metadata"]["creationTimestamp"] = json!(row
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    if row.deleting {
        obj["metadata"]["deletionTimestamp"] = json!(row
            .updated_at
            .unwrap_or(row.created_at)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    let status = HostStatus::from_map(&row.status);
    obj["status"] = Value::Object(status.to_map());
    let internal = Internal::from_map(&row.internal);
    if !internal.last_transient_error.is_empty() {
        obj["status"]["lastError"] = json!(internal.last_transient_error);
    }
    obj
}
