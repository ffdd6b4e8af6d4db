//! The reconciler's decisions, apart from I/O: given a host (spec, annotations, status,
//! bookkeeping) and what its Ironic-style node looks like now, what to do next. One call is
//! one BMO reconcile pass: the state handler of `host_state_machine.go` with the Ironic
//! provisioner's reaction to the node's provision state (`pkg/provisioner/ironic`).
//! Table-tested; the executor (`reconciler.rs`) performs the action and writes the status.

use std::collections::BTreeMap;

use super::manifest::HostSpec;
use super::raid;
use super::status::{ErrorType, HostStatus, Internal, State};
use super::validate::{
    DETACHED_ANNOTATION, INSPECT_ANNOTATION, PAUSED_ANNOTATION, REBOOT_ANNOTATION,
};

/// The raid_interface the reconciler registers nodes with (every Redfish BMC type's).
pub const RAID_INTERFACE: &str = "redfish";

/// BMO gives up deprovisioning and powering off a host being deleted after this many failures.
pub const RETRY_COUNT: u32 = 3;

/// The node as the decision needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeObs {
    /// Ironic provision state ("manageable", "active", …).
    pub state: String,
    pub powered_on: Option<bool>,
    /// A power action is under way.
    pub power_pending: bool,
    pub last_error: Option<String>,
    pub maintenance: bool,
    /// The image the node was last asked to deploy (instance_info boot_iso or image_source).
    pub image_url: Option<String>,
    pub automated_clean: Option<bool>,
}

/// Whether the BMC credentials Secret can be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Creds {
    /// Missing, or lacking username/password: why.
    Missing(String),
    /// Present; `changed` when they differ from the ones the node was registered with.
    Present { changed: bool },
}

/// One host as the decision sees it.
pub struct HostView<'a> {
    pub spec: &'a HostSpec,
    pub annotations: &'a BTreeMap<String, String>,
    pub status: &'a HostStatus,
    pub internal: &'a Internal,
    /// `delete bmh` was asked.
    pub deleting: bool,
    pub creds: Creds,
    pub node: Option<&'a NodeObs>,
}

/// Provision verbs the reconciler asks the conductor for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Manage,
    Inspect,
    Provide,
    Undeploy,
    Adopt,
}

/// What to do to the world in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Create the node (and its boot port) from the spec and credentials.
    Register,
    /// Write the current credentials into the node's driver_info.
    UpdateCredentials,
    Verb(Verb),
    /// Set the node's image and deploy interface from the spec, then deploy with the config
    /// drive built from the Secrets.
    Deploy,
    /// Set the node's target RAID configuration and start the manual clean that applies it
    /// (`raid::plan`).
    Prepare,
    Power(bool),
    SetAutomatedClean(bool),
    ClearMaintenance,
    /// Remove the node (setting maintenance first where Ironic needs it).
    DeleteNode,
    /// Drop an annotation the reconciler consumed.
    RemoveAnnotation(String),
    /// Remove the host itself: deletion finished.
    Forget,
}

/// How the pass ended, which decides the status write and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Work under way: look again after the poll interval.
    Continue,
    /// Nothing to do until something changes: look again after the resync interval.
    Idle,
    /// A step finished (state may change): look again at once.
    Complete,
    /// The host is paused: leave it alone.
    Paused,
    /// The operation failed: record the error, back off.
    Failed(ErrorType, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub next: State,
    pub action: Action,
    pub outcome: Outcome,
    /// Clear errorType/errorMessage (the operation went on).
    pub clear_error: bool,
    pub reset_error_count: bool,
    /// operationalStatus to set, when not derived from the error.
    pub operational: Option<&'static str>,
    /// A message to show without it being an error (why the host waits).
    pub message: Option<String>,
    pub inspect_started: Option<bool>,
    pub prepare_started: Option<bool>,
    pub rebooting: Option<bool>,
    /// Read hardware details from the node (inspection finished).
    pub read_hardware: bool,
    /// Copy rootDeviceHints and bootMode into status.provisioning (preparing finished).
    pub save_settings: bool,
    /// status.provisioning.image ← spec.image (provisioned).
    pub record_image: bool,
    /// status.provisioning.image cleared (deprovisioned).
    pub clear_image: bool,
    /// The node's credentials are good: status.goodCredentials ← the Secret's.
    pub good_credentials: bool,
}

impl Decision {
    fn new(next: State, action: Action, outcome: Outcome) -> Decision {
        Decision {
            next,
            action,
            outcome,
            clear_error: false,
            reset_error_count: false,
            operational: None,
            message: None,
            inspect_started: None,
            prepare_started: None,
            rebooting: None,
            read_hardware: false,
            save_settings: false,
            record_image: false,
            clear_image: false,
            good_credentials: false,
        }
    }

    fn stay(h: &HostView, action: Action) -> Decision {
        Decision::new(h.status.provisioning.state, action, Outcome::Continue)
    }

    fn to(next: State) -> Decision {
        let mut d = Decision::new(next, Action::Nothing, Outcome::Complete);
        d.clear_error = true;
        d
    }

    fn failed(h: &HostView, kind: ErrorType, message: String) -> Decision {
        Decision::new(
            h.status.provisioning.state,
            Action::Nothing,
            Outcome::Failed(kind, message),
        )
    }

    fn with(mut self, f: impl FnOnce(&mut Decision)) -> Decision {
        f(&mut self);
        self
    }
}

fn has_error(h: &HostView, kind: ErrorType) -> bool {
    h.status.error_type == kind.as_str()
}

fn node_error(n: &NodeObs) -> String {
    n.last_error.clone().unwrap_or_default()
}

/// One reconcile pass's decision.
pub fn decide(h: &HostView) -> Decision {
    let state = h.status.provisioning.state;
    if h.annotations.contains_key(PAUSED_ANNOTATION) {
        return Decision::new(state, Action::Nothing, Outcome::Paused);
    }
    if h.deleting {
        if let Some(d) = initiate_delete(h) {
            return d;
        }
    }
    if let Some(d) = detached(h) {
        return d;
    }
    if let Some(d) = ensure_registered(h) {
        return d;
    }
    match state {
        State::None => {
            if h.spec.bmc.address.is_empty() {
                Decision::to(State::Unmanaged).with(|d| d.operational = Some("discovered"))
            } else {
                Decision::to(State::Registering)
            }
        }
        State::Unmanaged => {
            if h.spec.bmc.address.is_empty() {
                Decision::new(state, Action::Nothing, Outcome::Idle)
            } else {
                Decision::to(State::Registering)
            }
        }
        State::Registering => {
            let next = if h.spec.externally_provisioned {
                State::ExternallyProvisioned
            } else if h.annotations.get(INSPECT_ANNOTATION).map(String::as_str) == Some("disabled")
            {
                State::Preparing
            } else {
                State::Inspecting
            };
            Decision::to(next).with(|d| d.reset_error_count = true)
        }
        State::Inspecting => inspecting(h),
        State::Preparing => preparing(h),
        State::Available => available(h),
        State::Provisioning => provisioning(h),
        State::Provisioned => {
            if cancelled(h) {
                return Decision::to(State::Deprovisioning);
            }
            steady(h)
        }
        State::ExternallyProvisioned => {
            if !h.spec.externally_provisioned {
                return Decision::to(State::Provisioned).with(|d| d.record_image = true);
            }
            steady(h)
        }
        State::Deprovisioning => deprovisioning(h),
        State::PoweringOffBeforeDelete => powering_off_before_delete(h),
        State::Deleting => match h.node {
            Some(_) => Decision::stay(h, Action::DeleteNode),
            None => Decision::stay(h, Action::Forget),
        },
    }
}

/// BMO's checkInitiateDelete: where a deletion starts from each state.
fn initiate_delete(h: &HostView) -> Option<Decision> {
    let state = h.status.provisioning.state;
    if h.status.operational_status == "detached" && state != State::Deleting {
        return Some(Decision::to(State::Deleting));
    }
    let gave_up = has_error(h, ErrorType::Registration) && h.status.error_count > RETRY_COUNT;
    let next = match state {
        State::None | State::Unmanaged | State::Registering => State::Deleting,
        State::Provisioning | State::Provisioned => State::Deprovisioning,
        State::Deprovisioning | State::PoweringOffBeforeDelete if gave_up => State::Deleting,
        State::Deprovisioning | State::PoweringOffBeforeDelete | State::Deleting => return None,
        _ => State::PoweringOffBeforeDelete,
    };
    Some(Decision::to(next))
}

/// The detached annotation removes the node but keeps the host; removing it re-registers.
fn detached(h: &HostView) -> Option<Decision> {
    let state = h.status.provisioning.state;
    let is_detached = h.status.operational_status == "detached";
    if h.annotations.contains_key(DETACHED_ANNOTATION) {
        if state == State::Deleting {
            return None;
        }
        let detachable = matches!(
            state,
            State::Provisioned | State::ExternallyProvisioned | State::Available
        );
        return Some(match (detachable, h.node) {
            (false, _) => Decision::new(state, Action::Nothing, Outcome::Continue).with(|d| {
                d.message = Some(format!(
                    "detach requested: waiting for the current operation to finish (state {})",
                    state.as_str()
                ))
            }),
            (true, Some(_)) => Decision::stay(h, Action::DeleteNode),
            (true, None) if !is_detached => {
                Decision::new(state, Action::Nothing, Outcome::Complete)
                    .with(|d| d.operational = Some("detached"))
            }
            (true, None) => Decision::new(state, Action::Nothing, Outcome::Idle),
        });
    }
    if is_detached {
        return Some(
            Decision::new(state, Action::Nothing, Outcome::Complete)
                .with(|d| d.operational = Some("OK")),
        );
    }
    None
}

/// BMO's ensureRegistered: the node exists, answers and carries the current credentials.
fn ensure_registered(h: &HostView) -> Option<Decision> {
    let state = h.status.provisioning.state;
    if matches!(state, State::None | State::Unmanaged | State::Deleting) {
        return None;
    }
    if let Creds::Missing(why) = &h.creds {
        // BMO: the host waits, "discovered", until the Secret appears.
        return Some(
            Decision::new(state, Action::Nothing, Outcome::Continue).with(|d| {
                d.operational = Some("discovered");
                d.message = Some(why.clone());
            }),
        );
    }
    let Some(n) = h.node else {
        return Some(Decision::stay(h, Action::Register));
    };
    if matches!(h.creds, Creds::Present { changed: true }) {
        return Some(Decision::stay(h, Action::UpdateCredentials));
    }
    match n.state.as_str() {
        "enroll" => {
            let failed_before = has_error(h, ErrorType::Registration);
            Some(match &n.last_error {
                Some(e) if !failed_before => Decision::failed(
                    h,
                    ErrorType::Registration,
                    format!("Failed to manage node: {e}"),
                ),
                _ => Decision::stay(h, Action::Verb(Verb::Manage)),
            })
        }
        "verifying" | "adopting" => Some(Decision::stay(h, Action::Nothing)),
        "adopt failed" => Some(if has_error(h, ErrorType::Registration) {
            Decision::stay(h, Action::Verb(Verb::Adopt))
        } else {
            Decision::failed(
                h,
                ErrorType::Registration,
                format!("Host adoption failed: {}", node_error(n)),
            )
        }),
        "manageable" if matches!(state, State::Provisioned | State::ExternallyProvisioned) => {
            // Re-registered after its node was lost (or detached): adopt, don't redeploy.
            Some(Decision::stay(h, Action::Verb(Verb::Adopt)))
        }
        _ if has_error(h, ErrorType::Registration) => Some(
            Decision::new(state, Action::Nothing, Outcome::Complete).with(|d| {
                d.clear_error = true;
                d.good_credentials = true;
            }),
        ),
        _ if h.status.good_credentials.is_none() => Some(
            Decision::new(state, Action::Nothing, Outcome::Complete)
                .with(|d| d.good_credentials = true),
        ),
        _ => None,
    }
}

fn inspecting(h: &HostView) -> Decision {
    let Some(n) = h.node else {
        return Decision::stay(h, Action::Nothing);
    };
    match n.state.as_str() {
        "manageable" if !h.internal.inspect_started => {
            Decision::stay(h, Action::Verb(Verb::Inspect)).with(|d| d.inspect_started = Some(true))
        }
        "manageable" => Decision::to(State::Preparing).with(|d| {
            d.inspect_started = Some(false);
            d.read_hardware = true;
            d.reset_error_count = true;
        }),
        "inspect failed" if has_error(h, ErrorType::Inspection) => {
            Decision::stay(h, Action::Verb(Verb::Inspect))
        }
        "inspect failed" => Decision::failed(
            h,
            ErrorType::Inspection,
            format!("Inspection failed: {}", node_error(n)),
        ),
        "available" => Decision::stay(h, Action::Verb(Verb::Manage)),
        _ => Decision::stay(h, Action::Nothing),
    }
}

/// BMO's Prepare: the manual clean `spec.raid` needs (if any) runs once per pass through
/// preparing; the node resting in manageable afterwards makes the host available.
fn preparing(h: &HostView) -> Decision {
    let Some(n) = h.node else {
        return Decision::stay(h, Action::Nothing);
    };
    let plan = match raid::plan(h.spec, h.status.provisioning.raid.as_ref(), RAID_INTERFACE) {
        Ok(p) => p,
        Err(e) => return Decision::failed(h, ErrorType::Preparation, e),
    };
    let steps_due = plan.is_some() && !h.internal.prepare_started;
    match n.state.as_str() {
        "manageable" if steps_due => {
            Decision::stay(h, Action::Prepare).with(|d| d.prepare_started = Some(true))
        }
        // Manual cleaning starts from manageable.
        "available" if steps_due => Decision::stay(h, Action::Verb(Verb::Manage)),
        "manageable" | "available" => Decision::to(State::Available).with(|d| {
            d.save_settings = true;
            d.reset_error_count = true;
            d.prepare_started = Some(false);
        }),
        "clean failed" if has_error(h, ErrorType::Preparation) => {
            Decision::stay(h, Action::Verb(Verb::Manage))
        }
        "clean failed" => Decision::failed(
            h,
            ErrorType::Preparation,
            format!("Preparation failed: {}", node_error(n)),
        )
        .with(|d| d.prepare_started = Some(false)),
        _ => Decision::stay(h, Action::Nothing),
    }
}

/// rootDeviceHints, bootMode or raid differ from what preparing last applied.
fn settings_changed(h: &HostView) -> bool {
    let p = &h.status.provisioning;
    let mode = h.spec.boot_mode.map(|m| m.as_str()).unwrap_or("UEFI");
    p.root_device_hints != h.spec.root_device_hints || p.boot_mode != mode || p.raid != h.spec.raid
}

fn wants_image(h: &HostView) -> bool {
    h.spec.image.as_ref().is_some_and(|i| !i.url.is_empty())
}

fn available(h: &HostView) -> Decision {
    if h.spec.externally_provisioned {
        return Decision::to(State::ExternallyProvisioned);
    }
    if h.annotations.get(INSPECT_ANNOTATION).map(String::as_str) == Some("") {
        return Decision::to(State::Inspecting)
            .with(|d| d.action = Action::RemoveAnnotation(INSPECT_ANNOTATION.into()));
    }
    if settings_changed(h) {
        return Decision::to(State::Preparing);
    }
    if wants_image(h) {
        return Decision::to(State::Provisioning);
    }
    steady(h)
}

/// The image in the spec no longer matches the one provisioned (changed or removed).
fn cancelled(h: &HostView) -> bool {
    let provisioned = &h.status.provisioning.image.url;
    match &h.spec.image {
        None => true,
        Some(i) if i.url.is_empty() => true,
        Some(_) if provisioned.is_empty() => false,
        Some(i) => &i.url != provisioned,
    }
}

fn provisioning(h: &HostView) -> Decision {
    if !h.status.error_type.is_empty() || cancelled(h) {
        // Keep the error: deprovisioning retries what failed.
        return Decision::new(State::Deprovisioning, Action::Nothing, Outcome::Complete);
    }
    let Some(n) = h.node else {
        return Decision::stay(h, Action::Nothing);
    };
    let same_image = n.image_url.as_deref() == h.spec.image.as_ref().map(|i| i.url.as_str());
    match n.state.as_str() {
        "manageable" => Decision::stay(h, Action::Verb(Verb::Provide)),
        // Recorded as an error, so the retry (through deprovisioning) backs off.
        "clean failed" => Decision::failed(
            h,
            ErrorType::Provisioning,
            format!("Cleaning failed: {}", node_error(n)),
        ),
        "available" => Decision::stay(h, Action::Deploy),
        "active" => Decision::to(State::Provisioned).with(|d| {
            d.record_image = true;
            d.reset_error_count = true;
        }),
        "deploy failed" if same_image => Decision::failed(
            h,
            ErrorType::Provisioning,
            format!("Image provisioning failed: {}", node_error(n)),
        ),
        "deploy failed" => Decision::stay(h, Action::Deploy),
        _ => Decision::stay(h, Action::Nothing),
    }
}

fn deprovisioning(h: &HostView) -> Decision {
    let Some(n) = h.node else {
        return Decision::stay(h, Action::Nothing);
    };
    let retrying = !h.status.error_type.is_empty();
    let give_up = h.deleting && h.status.error_count >= RETRY_COUNT;
    let fail = |message: String| {
        if give_up {
            // BMO: "giving up on host clean up after 3 attempts".
            Decision::to(State::PoweringOffBeforeDelete)
        } else {
            Decision::failed(h, ErrorType::Provisioning, message)
        }
    };
    let want_clean =
        h.spec.automated_cleaning_mode != Some(super::manifest::CleaningMode::Disabled);
    match n.state.as_str() {
        "active" | "deploy failed" | "wait call-back" => {
            if n.automated_clean != Some(want_clean) {
                Decision::stay(h, Action::SetAutomatedClean(want_clean))
            } else {
                Decision::stay(h, Action::Verb(Verb::Undeploy))
            }
        }
        "error" if retrying => Decision::stay(h, Action::Verb(Verb::Undeploy)),
        "error" => fail(
            n.last_error
                .clone()
                .unwrap_or_else(|| "Deprovisioning failed".into()),
        ),
        "clean failed" if retrying && n.maintenance => Decision::stay(h, Action::ClearMaintenance),
        "clean failed" if retrying => Decision::stay(h, Action::Verb(Verb::Manage)),
        "clean failed" => fail(format!("Cleaning failed: {}", node_error(n))),
        "manageable" => Decision::stay(h, Action::Verb(Verb::Provide)),
        "available" => {
            let next = if h.deleting {
                State::PoweringOffBeforeDelete
            } else {
                State::Available
            };
            Decision::to(next).with(|d| {
                d.clear_image = true;
                d.reset_error_count = true;
            })
        }
        _ => Decision::stay(h, Action::Nothing),
    }
}

fn powering_off_before_delete(h: &HostView) -> Decision {
    let Some(n) = h.node else {
        return Decision::to(State::Deleting);
    };
    match (n.powered_on, n.power_pending) {
        (Some(false), _) => Decision::to(State::Deleting).with(|d| d.reset_error_count = true),
        (_, true) => Decision::stay(h, Action::Nothing),
        _ if h.status.error_count > RETRY_COUNT => Decision::to(State::Deleting),
        _ => Decision::stay(h, Action::Power(false)),
    }
}

/// Power as `online` says, and the reboot annotations (BMO's manageHostPower): a bare
/// `reboot.metal3.io` powers off, is removed, and power comes back; `reboot.metal3.io/KEY`
/// keeps the host off until whoever set it removes it.
fn steady(h: &HostView) -> Decision {
    let state = h.status.provisioning.state;
    let idle = || Decision::new(state, Action::Nothing, Outcome::Idle);
    let Some(n) = h.node else {
        return idle();
    };
    if !matches!(n.state.as_str(), "active" | "manageable" | "available") {
        return Decision::stay(h, Action::Nothing);
    }
    if n.power_pending {
        return Decision::stay(h, Action::Nothing);
    }
    let reboot_keys: Vec<&String> = h
        .annotations
        .keys()
        .filter(|k| *k == REBOOT_ANNOTATION || k.starts_with("reboot.metal3.io/"))
        .collect();
    if !reboot_keys.is_empty() {
        if n.powered_on != Some(false) {
            return Decision::stay(h, Action::Power(false)).with(|d| d.rebooting = Some(true));
        }
        if h.annotations.contains_key(REBOOT_ANNOTATION) {
            return Decision::new(
                state,
                Action::RemoveAnnotation(REBOOT_ANNOTATION.into()),
                Outcome::Complete,
            );
        }
        return idle();
    }
    let want = h.spec.online;
    if n.powered_on != Some(want) {
        return Decision::stay(h, Action::Power(want)).with(|d| d.rebooting = Some(false));
    }
    if has_error(h, ErrorType::PowerManagement) {
        return Decision::new(state, Action::Nothing, Outcome::Complete)
            .with(|d| d.clear_error = true);
    }
    idle()
}

#[cfg(test)]
mod tests;
