//! Background work on a locked node: the transient states' tasks (verify, clean, deploy,
//! undeploy, inspect) and power actions. Each task owns the node's lock and releases it at
//! the end; each driver step becomes a node history event. A task that panics (a bug) moves
//! its node to the state's failure state with the reason, then releases the lock: no node is
//! left locked, or in a transient state nobody works on.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use deploy_drivers::{
    AgentProgress, BootMode, CleanStep, DeployEvents, DeployOutcome, NodeView, PortError,
    PortResult, PowerAction,
};
use serde_json::{json, Value};

use super::metrics::Metrics;
use super::states::{self, Event, ProvisionState};
use super::{compose, release, Conductor};
use crate::hardware::steps::ManualStep;
use crate::store::{Node, NodeLock};

/// Maps Ironic's power targets to the port's actions.
pub(crate) fn power_action(target: &str) -> Option<PowerAction> {
    Some(match target {
        "power on" => PowerAction::On,
        "power off" => PowerAction::Off,
        "rebooting" => PowerAction::Reboot,
        "soft power off" => PowerAction::SoftOff,
        "soft rebooting" => PowerAction::SoftReboot,
        _ => return None,
    })
}

/// The driver's view of a node.
/// The node as a driver sees it when it boots the node: with its ports' MACs, which a network
/// boot needs (checked here, before anything is powered).
pub(crate) async fn booting_view(conductor: &Conductor, node: &Node) -> Result<NodeView, String> {
    let ports = conductor
        .store
        .ports(Some(&node.uuid))
        .await
        .map_err(|e| e.to_string())?;
    if matches!(node.boot_interface.as_str(), "ipxe" | "pxe") {
        check_boot_macs(node, &ports)?;
    }
    let macs: Vec<String> = ports.into_iter().map(|p| p.address).collect();
    Ok(node_view(node, &macs))
}

pub(crate) fn node_view(node: &Node, macs: &[String]) -> NodeView {
    NodeView {
        uuid: node.uuid.clone(),
        name: node.name.clone(),
        driver_info: node.driver_info.clone(),
        instance_info: node.instance_info.clone(),
        properties: node.properties.clone(),
        driver_internal_info: node.driver_internal_info.clone(),
        boot_mode: node
            .boot_mode
            .as_deref()
            .or_else(|| {
                node.properties
                    .get("capabilities")
                    .and_then(Value::as_str)
                    .and_then(|c| c.split(',').find_map(|kv| kv.strip_prefix("boot_mode:")))
            })
            .and_then(BootMode::parse),
        macs: macs.to_vec(),
    }
}

/// Runs the work of the node's (transient) state in a tokio task that owns `lock`.
pub(crate) fn spawn(conductor: Conductor, lock: NodeLock, node: Node) {
    tokio::spawn(async move {
        let uuid = node.uuid.clone();
        let run = std::panic::AssertUnwindSafe(run_states(&conductor, &lock, node));
        if let Err(panic) = futures::FutureExt::catch_unwind(run).await {
            fail_after_panic(&conductor, &lock, &panic_text(&*panic)).await;
        }
        release(lock).await;
        tracing::debug!(node = %uuid, "task finished, lock released");
    });
}

pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// After a worker panicked: the node goes from its transient state to that state's failure
/// state, with the reason, so it is not left in a state nobody works on.
async fn fail_after_panic(conductor: &Conductor, lock: &NodeLock, why: &str) {
    let uuid = lock.uuid();
    tracing::error!(node = %uuid, panic = %why, "node task panicked");
    let Ok(Some(mut node)) = conductor.store.node_by_uuid(uuid).await else {
        return;
    };
    let Some(from) = ProvisionState::parse(&node.provision_state) else {
        return;
    };
    let Some(to) = from.failure_state().filter(|_| !from.is_stable()) else {
        return;
    };
    let why = format!(
        "internal error while in \"{from}\": {why}; the operation did not finish: retry it"
    );
    node.provision_state = to.as_str().into();
    node.target_provision_state = None;
    node.last_error = Some(why.clone());
    node.provision_updated_at = Some(Utc::now());
    match conductor.store.save_node(lock, &node).await {
        Ok(_) => {
            conductor
                .history(
                    uuid,
                    "provisioning",
                    "ERROR",
                    &format!("{why} : {from} -> {to}"),
                )
                .await
        }
        Err(e) => tracing::error!(node = %uuid, error = %e, "cannot save node after panic"),
    }
}

/// After `abort` in wait call-back (the node is already in deploy failed): the deploy
/// driver's tear down runs in a task that owns `lock`, so what the deploy served and held
/// (published ISO, agent boot, virtual media, power) is undone, as the node's undeploy would.
/// A failure is recorded on the node; the node stays in deploy failed either way.
pub(crate) fn spawn_abort_undo(conductor: Conductor, lock: NodeLock, node: Node) {
    tokio::spawn(async move {
        let uuid = node.uuid.clone();
        let undo = async {
            let composed = compose(&node, &conductor.settings, &conductor.services)
                .map_err(|e| e.to_string())?;
            let events = Events {
                conductor: &conductor,
                lock: &lock,
                phase: Phase::Deploy,
            };
            composed
                .deploy
                .undeploy(&node_view(&node, &[]), &composed.ports, &events)
                .await
                .map_err(|e| e.to_string())
        };
        let run = std::panic::AssertUnwindSafe(undo);
        let result = match futures::FutureExt::catch_unwind(run).await {
            Ok(r) => r,
            Err(panic) => Err(format!("internal error: {}", panic_text(&*panic))),
        };
        match result {
            Ok(()) => {
                conductor
                    .history(
                        &uuid,
                        "provisioning",
                        "INFO",
                        "abort: the deploy was undone",
                    )
                    .await
            }
            Err(e) => {
                let why = format!("abort: undoing the deploy failed: {e}; run undeploy (target \"deleted\") to tear it down");
                if let Ok(Some(mut n)) = conductor.store.node_by_uuid(&uuid).await {
                    n.last_error = Some(why.clone());
                    if let Err(e) = conductor.store.save_node(&lock, &n).await {
                        tracing::error!(node = %uuid, error = %e, "cannot save the abort's failure");
                    }
                }
                conductor
                    .history(&uuid, "provisioning", "ERROR", &why)
                    .await;
            }
        }
        release(lock).await;
    });
}

/// Runs a power action in a tokio task that owns `lock`.
pub(crate) fn spawn_power(conductor: Conductor, lock: NodeLock, node: Node, action: PowerAction) {
    tokio::spawn(async move {
        let result = match compose(&node, &conductor.settings, &conductor.services) {
            Ok(c) => match c.ports.power.set_power(action).await {
                Ok(()) => c.ports.power.power_state().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let uuid = node.uuid.clone();
        if let Ok(Some(mut n)) = conductor.store.node_by_uuid(&uuid).await {
            n.target_power_state = None;
            match &result {
                Ok(state) => {
                    n.power_state = Some(state.as_ironic().into());
                    conductor
                        .history(
                            &uuid,
                            "power",
                            "INFO",
                            &format!("{action:?}: {}", state.as_ironic()),
                        )
                        .await;
                }
                Err(e) => {
                    n.last_error = Some(format!("power action {action:?} failed: {e}"));
                    conductor
                        .history(&uuid, "power", "ERROR", &format!("{action:?} failed: {e}"))
                        .await;
                }
            }
            if let Err(e) = conductor.store.save_node(&lock, &n).await {
                tracing::error!(node = %uuid, error = %e, "cannot save power result");
            }
        }
        release(lock).await;
    });
}

/// Drives the node through transient states until it rests (or waits for a call-back).
async fn run_states(conductor: &Conductor, lock: &NodeLock, mut node: Node) {
    loop {
        let Some(state) = ProvisionState::parse(&node.provision_state) else {
            return;
        };
        if !state.has_worker() {
            return;
        }
        let timeout = Duration::from_secs(conductor.settings.deploy_timeout_s);
        let run = tokio::time::timeout(timeout, work(conductor, lock, &node, state));
        let outcome = tokio::select! {
            r = run => r,
            () = lock.lost() => {
                // Another conductor took the node over (it thought us dead): stop at once.
                tracing::warn!(node = %node.uuid, %state, "node lock lost to a takeover: work stopped");
                return;
            }
        };
        let outcome = match outcome {
            Ok(r) => r,
            Err(_) => Err(format!(
                "{state} timed out after {} s ({TIMED_OUT_BY})",
                timeout.as_secs()
            )),
        };
        // Re-read: the driver may have saved driver_internal_info meanwhile.
        node = match conductor.store.node_by_uuid(&node.uuid).await {
            Ok(Some(n)) => n,
            _ => return,
        };
        if state == ProvisionState::Deploying && timed_out(&outcome) {
            abandon(conductor, lock, &node).await;
            node = match conductor.store.node_by_uuid(&node.uuid).await {
                Ok(Some(n)) => n,
                _ => return,
            };
        }
        let target = node
            .target_provision_state
            .as_deref()
            .and_then(ProvisionState::parse);
        let (event, severity, message) = match outcome {
            Ok(Work::Done(power)) => {
                if let Some(p) = power {
                    node.power_state = Some(p);
                }
                (
                    states::done_event(state, target),
                    "INFO",
                    format!("{state} done"),
                )
            }
            Ok(Work::Wait) => (
                Event::Wait,
                "INFO",
                format!("{state}: waiting for call-back"),
            ),
            Err(e) => (Event::Fail, "ERROR", e),
        };
        let Some(to) = states::next(state, event) else {
            return;
        };
        if event == Event::Fail {
            node.last_error = Some(message.clone());
        }
        let m = &conductor.metrics;
        match (to, event) {
            (ProvisionState::Active, _) => Metrics::bump(&m.deploys_succeeded),
            (ProvisionState::DeployFailed, _) => Metrics::bump(&m.deploys_failed),
            _ => {}
        }
        node.provision_state = to.as_str().into();
        node.target_provision_state = if to.is_stable() {
            None
        } else {
            states::target_of(to).map(|s| s.as_str().into())
        };
        node.provision_updated_at = Some(Utc::now());
        // This conductor now serves the node (takeover finds it by this key).
        node.driver_internal_info.insert(
            super::AFFINITY_KEY.into(),
            Value::String(conductor.name().to_string()),
        );
        if to == ProvisionState::Active {
            node.deploy_step = Default::default();
        }
        if state == ProvisionState::Deleting && event != Event::Fail {
            // Ironic's tear down forgets the instance; BMO relies on it (no extra PATCH). The
            // config drive (the instance's user data and secrets) goes with it, as in Ironic,
            // whose tear down empties instance_info; the rest of instance_info is kept here.
            node.instance_uuid = None;
            node.instance_name = None;
            node.instance_info.remove("configdrive");
        }
        if state == ProvisionState::Adopting && event == Event::Fail {
            // As Ironic: a power state read while adopting is likely wrong.
            node.power_state = None;
        }
        if state == ProvisionState::Servicing {
            // A service's steps are used up either way; the last step stays on failure.
            node.driver_internal_info.remove(SERVICE_STEPS_KEY);
            if event != Event::Fail {
                node.driver_internal_info.remove(SERVICE_STEP_KEY);
            }
        }
        if state == ProvisionState::Cleaning {
            // A manual clean's steps are used up either way; the last step stays on failure.
            node.driver_internal_info.remove(CLEAN_STEPS_KEY);
            if event != Event::Fail {
                node.clean_step = Default::default();
            }
        }
        conductor
            .history(
                &node.uuid,
                "provisioning",
                severity,
                &format!("{message} : {state} -> {to}"),
            )
            .await;
        match conductor.store.save_node(lock, &node).await {
            Ok(n) => node = n,
            Err(e) => {
                tracing::error!(node = %node.uuid, error = %e, "cannot save node state");
                return;
            }
        }
        if state == ProvisionState::Deleting && event != Event::Fail {
            // As Ironic: a torn-down node's allocation goes, and with it its instance_uuid.
            if let Err(e) = conductor.drop_allocation_of(&mut node).await {
                tracing::error!(node = %node.uuid, error = %e, "cannot delete the allocation of a torn-down node");
            }
        }
    }
}

enum Work {
    /// Finished; the power state read back, if any.
    Done(Option<String>),
    Wait,
}

/// Tells the node's deploy driver that the node, waiting for its call-back, has booted.
pub(crate) async fn booted(
    conductor: &Conductor,
    lock: &NodeLock,
    node: &Node,
) -> Result<(), String> {
    let composed =
        compose(node, &conductor.settings, &conductor.services).map_err(|e| e.to_string())?;
    let events = Events {
        conductor,
        lock,
        phase: Phase::Deploy,
    };
    composed
        .deploy
        .booted(&node_view(node, &[]), &composed.ports, &events)
        .await
        .map_err(|e| e.to_string())
}

/// Asks the node's deploy driver whether the node, waiting for its call-back, finished on its
/// own or ran out of time.
pub(crate) async fn poll_wait(
    conductor: &Conductor,
    lock: &NodeLock,
    node: &Node,
    now: u64,
) -> Result<deploy_drivers::WaitCheck, String> {
    let composed =
        compose(node, &conductor.settings, &conductor.services).map_err(|e| e.to_string())?;
    let events = Events {
        conductor,
        lock,
        phase: Phase::Deploy,
    };
    composed
        .deploy
        .poll_wait(&node_view(node, &[]), &composed.ports, &events, now)
        .await
        .map_err(|e| e.to_string())
}

/// Names the outer timeout in the error of a deploy it cut short.
const TIMED_OUT_BY: &str = "conductor.deploy_timeout_s";

fn timed_out(outcome: &Result<Work, String>) -> bool {
    matches!(outcome, Err(e) if e.ends_with(&format!("({TIMED_OUT_BY})")))
}

/// After the outer timeout dropped a deploy mid-step, or a crash interrupted it: the driver
/// undoes what it recorded.
pub(crate) async fn abandon(conductor: &Conductor, lock: &NodeLock, node: &Node) {
    let Ok(composed) = compose(node, &conductor.settings, &conductor.services) else {
        return;
    };
    let events = Events {
        conductor,
        lock,
        phase: Phase::Deploy,
    };
    if let Err(e) = composed
        .deploy
        .abandon(&node_view(node, &[]), &composed.ports, &events)
        .await
    {
        tracing::error!(node = %node.uuid, error = %e, "cannot undo a timed-out deploy");
    }
}

/// Asks the node's deploy driver to serve the node from this conductor (its conductor died).
pub(crate) async fn take_over(
    conductor: &Conductor,
    lock: &NodeLock,
    node: &Node,
) -> Result<(), String> {
    let composed =
        compose(node, &conductor.settings, &conductor.services).map_err(|e| e.to_string())?;
    let events = Events {
        conductor,
        lock,
        phase: Phase::Deploy,
    };
    composed
        .deploy
        .take_over(&node_view(node, &[]), &composed.ports, &events)
        .await
        .map_err(|e| e.to_string())
}

async fn work(
    conductor: &Conductor,
    lock: &NodeLock,
    node: &Node,
    state: ProvisionState,
) -> Result<Work, String> {
    crate::fail_point!("worker-step");
    let composed =
        compose(node, &conductor.settings, &conductor.services).map_err(|e| e.to_string())?;
    let view = booting_view(conductor, node).await?;
    let events = Events {
        conductor,
        lock,
        phase: Phase::Deploy,
    };
    let power = |c: &super::Composed| {
        let p = c.ports.power.clone();
        async move {
            p.power_state()
                .await
                .ok()
                .map(|s| s.as_ironic().to_string())
        }
    };
    match state {
        ProvisionState::Verifying => {
            // Verifying checks that the power interface answers (Ironic: validate power).
            let p = composed
                .ports
                .power
                .power_state()
                .await
                .map_err(|e| format!("verifying power credentials failed: {e}"))?;
            super::inspection::cache_settings(conductor, node, &composed).await;
            Ok(Work::Done(Some(p.as_ironic().into())))
        }
        ProvisionState::Inspecting => {
            super::inspection::inspect(conductor, lock, node, &composed, &events).await?;
            super::inspection::cache_settings(conductor, node, &composed).await;
            Ok(Work::Done(power(&composed).await))
        }
        ProvisionState::Cleaning => {
            let events = Events {
                phase: Phase::Clean,
                ..events
            };
            if let Some(saved) = node.driver_internal_info.get(CLEAN_STEPS_KEY) {
                let steps = parse_clean_steps(saved)?;
                super::manual_steps::run(conductor, node, &composed, &view, &steps, &events)
                    .await
                    .map_err(|e| format!("cleaning failed at {e}"))?;
                return Ok(Work::Done(power(&composed).await));
            }
            let steps = automated_clean_steps(conductor, node);
            if steps.is_empty() {
                events
                    .step("clean", "automated cleaning is off for this node")
                    .await;
                return Ok(Work::Done(None));
            }
            composed
                .deploy
                .clean(&view, &composed.ports, &steps, &events)
                .await
                .map_err(|e| format!("cleaning failed at step {e}"))?;
            Ok(Work::Done(power(&composed).await))
        }
        ProvisionState::Deploying => {
            Metrics::bump(&conductor.metrics.deploys_started);
            composed
                .deploy
                .validate(&view, &composed.ports)
                .map_err(|e| e.to_string())?;
            match composed
                .deploy
                .deploy(&view, &composed.ports, &events)
                .await
                .map_err(|e| format!("deploy failed at step {e}"))?
            {
                DeployOutcome::Active => Ok(Work::Done(power(&composed).await)),
                DeployOutcome::WaitCallback => Ok(Work::Wait),
            }
        }
        ProvisionState::Adopting => {
            super::adoption::adopt(node, &composed, &view, &events)
                .await
                .map_err(|e| format!("Error while attempting to adopt node {}: {e}.", node.uuid))?;
            Ok(Work::Done(power(&composed).await))
        }
        ProvisionState::Servicing => {
            let events = Events {
                phase: Phase::Service,
                ..events
            };
            let saved = node.driver_internal_info.get(SERVICE_STEPS_KEY).ok_or_else(|| {
                "servicing started without service_steps: start it again with PUT /states/provision {\"target\": \"service\", \"service_steps\": [...]}".to_string()
            })?;
            let steps = crate::hardware::steps::parse_service(saved)?;
            super::manual_steps::run(conductor, node, &composed, &view, &steps, &events)
                .await
                .map_err(|e| format!("servicing failed at {e}"))?;
            Ok(Work::Done(power(&composed).await))
        }
        ProvisionState::Deleting => {
            composed
                .deploy
                .undeploy(&view, &composed.ports, &events)
                .await
                .map_err(|e| format!("undeploy failed at step {e}"))?;
            Ok(Work::Done(power(&composed).await))
        }
        other => Err(format!("no work defined for state {other}")),
    }
}

/// The driver_internal_info key holding a manual clean's steps (Ironic's `clean_steps`).
pub const CLEAN_STEPS_KEY: &str = "clean_steps";

/// The driver_internal_info keys of a service's steps (Ironic's `service_steps`) and of the
/// step running now (shown as the node's `service_step`).
pub const SERVICE_STEPS_KEY: &str = "service_steps";
pub const SERVICE_STEP_KEY: &str = "service_step";

/// The automated clean steps when automated cleaning is on for the node (its
/// `automated_clean`, else the config); none for a manual clean.
fn automated_clean_steps(conductor: &Conductor, node: &Node) -> Vec<CleanStep> {
    let manual =
        node.target_provision_state.as_deref() == Some(ProvisionState::Manageable.as_str());
    let automated = node
        .automated_clean
        .unwrap_or(conductor.settings.automated_clean);
    if automated && !manual {
        CleanStep::AUTOMATED.to_vec()
    } else {
        Vec::new()
    }
}

/// Reads Ironic's `clean_steps` list (`[{"interface": "deploy", "step": "…"}]`), naming the
/// first step that is not known.
pub fn parse_clean_steps(list: &Value) -> Result<Vec<ManualStep>, String> {
    crate::hardware::steps::parse(list, "clean_steps")
}

/// Whether the driver works on a deploy (deploy_step), a clean (clean_step), a service
/// (driver_internal_info `service_step`) or a capture (driver_internal_info `capture`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Deploy,
    Clean,
    Service,
    Capture,
}

/// Reports driver steps as node history and saves internal values on the node, under the
/// task's lock.
pub(super) struct Events<'a> {
    pub(super) conductor: &'a Conductor,
    pub(super) lock: &'a NodeLock,
    pub(super) phase: Phase,
}

impl Events<'_> {
    /// Shows `step` (with `progress` when given) as the node's current deploy or clean step.
    async fn show_step(&self, step: &str, progress: Option<Value>) {
        if let Ok(Some(mut n)) = self.conductor.store.node_by_uuid(self.lock.uuid()).await {
            // A hardware step ("bios.apply_configuration") shows its own interface, as Ironic.
            let (interface, name) = step
                .split_once('.')
                .filter(|(i, _)| matches!(*i, "bios" | "firmware" | "raid"))
                .unwrap_or(("deploy", step));
            let mut shown = json!({"step": name, "interface": interface});
            if let Some(p) = progress {
                shown["progress"] = p;
            }
            let shown = shown.as_object().cloned().unwrap_or_default();
            match self.phase {
                Phase::Deploy => n.deploy_step = shown,
                Phase::Clean => n.clean_step = shown,
                Phase::Service => {
                    n.driver_internal_info
                        .insert(SERVICE_STEP_KEY.into(), Value::Object(shown));
                }
                Phase::Capture => {
                    if let Some(Value::Object(record)) =
                        n.driver_internal_info.get_mut(super::capture::CAPTURE_KEY)
                    {
                        record.insert("step".into(), json!(step));
                        match shown.get("progress") {
                            Some(p) => record.insert("progress".into(), p.clone()),
                            None => record.remove("progress"),
                        };
                    }
                }
            }
            if let Err(e) = self.conductor.store.save_node(self.lock, &n).await {
                tracing::warn!(node = %self.lock.uuid(), error = %e, "cannot save the current step");
            }
        }
    }
}

#[async_trait]
impl DeployEvents for Events<'_> {
    async fn step(&self, step: &str, detail: &str) {
        let text = if detail.is_empty() {
            step.to_string()
        } else {
            format!("{step}: {detail}")
        };
        let event_type = match self.phase {
            Phase::Deploy => "deploy_step",
            Phase::Clean => "clean_step",
            Phase::Service => "service_step",
            Phase::Capture => "capture",
        };
        self.conductor
            .history(self.lock.uuid(), event_type, "INFO", &text)
            .await;
        self.show_step(step, None).await;
    }

    async fn progress(&self, step: &str, progress: AgentProgress) {
        let percent = progress
            .total_bytes
            .filter(|t| *t > 0)
            .map(|t| (progress.done_bytes as u128 * 100 / t as u128).min(100) as u64);
        let shown = json!({
            "done_bytes": progress.done_bytes,
            "total_bytes": progress.total_bytes,
            "percent": percent,
        });
        self.show_step(step, Some(shown)).await;
    }

    async fn save_internal(&self, key: &str, value: Value) {
        if let Err(e) = self.save(key, value).await {
            tracing::error!(node = %self.lock.uuid(), key, error = %e, "cannot save driver_internal_info");
        }
    }

    async fn save_intent(&self, key: &str, value: Value) -> PortResult<()> {
        crate::fail_point!(
            "intent-save",
            Err(PortError::other(format!(
                "fail point intent-save refused to save driver_internal_info/{key}"
            )))
        );
        self.save(key, value).await
    }
}

impl Events<'_> {
    /// Sets (or, with `Value::Null`, removes) `key` in the node's driver_internal_info, under
    /// the task's lock.
    async fn save(&self, key: &str, value: Value) -> PortResult<()> {
        let uuid = self.lock.uuid();
        let mut n = match self.conductor.store.node_by_uuid(uuid).await {
            Ok(Some(n)) => n,
            Ok(None) => return Err(PortError::other(format!("node {uuid} vanished"))),
            Err(e) => return Err(PortError::other(format!("cannot read node {uuid}: {e}"))),
        };
        // Null removes the key: a driver forgetting what it no longer holds.
        if value.is_null() {
            n.driver_internal_info.remove(key);
        } else {
            n.driver_internal_info.insert(key.to_string(), value);
        }
        self.conductor
            .store
            .save_node(self.lock, &n)
            .await
            .map(|_| ())
            .map_err(|e| PortError::other(format!("cannot save node {uuid}: {e}")))
    }
}

/// A network-booting node is found by the MACs of its ports: each must have one, and there
/// must be at least one.
fn check_boot_macs(node: &Node, ports: &[crate::store::Port]) -> Result<(), String> {
    let iface = &node.boot_interface;
    if ports.is_empty() {
        return Err(format!(
            "boot_interface {iface} needs the node's ports: enrol a port with the MAC of the NIC it boots from (baremetal port create MAC --node {})",
            node.uuid
        ));
    }
    for p in ports {
        if crate::netboot::Mac::parse(&p.address).is_err() {
            return Err(format!(
                "boot_interface {iface}: port {} has no valid MAC address ({:?}): set its address to the NIC's MAC",
                p.uuid, p.address
            ));
        }
    }
    Ok(())
}
