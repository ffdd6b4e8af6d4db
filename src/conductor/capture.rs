//! Capturing a node's disk as a named image (an ironcast extension; `POST
//! /v1/nodes/{node}/capture`). Allowed from `active` (the node runs its OS again after) and
//! `manageable` (it is powered off after); the node keeps its provision state throughout and
//! its lock (`reservation`) while the task runs, like a power action in Ironic.
//!
//! The request checks the node and reserves cache room through the deploy driver
//! (`prepare_capture`) before anything is booted, so a capture that cannot fit is refused in
//! the answer. A task then runs the driver's `capture`; its steps are history events
//! (`event_type` "capture") and its state is the driver_internal_info record `capture`:
//! `{"name", "format", "state": "capturing" | "done" | "failed", "step", "progress", "image"
//! or "error"}`.

use chrono::Utc;
use deploy_drivers::{CaptureFormat, CaptureRequest, CapturedImage, DeployError};
use serde_json::{json, Value};

use super::states::ProvisionState;
use super::worker::{booting_view, node_view, panic_text, Events, Phase};
use super::{compose, release, Conductor, ConductorError, ConductorResult};
use crate::store::{Node, NodeLock};

/// The driver_internal_info key of a node's last capture.
pub const CAPTURE_KEY: &str = "capture";

/// Reads and checks a capture request's name and format (pure).
pub fn parse_request(name: &str, format: Option<&str>) -> ConductorResult<CaptureRequest> {
    if !deploy_drivers::is_image_name(name) {
        return Err(ConductorError::Invalid(format!(
            "capture name {name:?} is not usable: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )));
    }
    let format = match format {
        None => CaptureFormat::Qcow2,
        Some(f) => CaptureFormat::parse(f).ok_or_else(|| {
            ConductorError::Invalid(format!(
                "capture format {f:?} is not supported: use {}",
                CaptureFormat::ALL.map(|f| f.name()).join(" or ")
            ))
        })?,
    };
    Ok(CaptureRequest {
        name: name.to_string(),
        format,
    })
}

impl Conductor {
    /// Starts capturing the node's disk; returns the node with its `capture` record.
    pub async fn capture(&self, ident: &str, request: CaptureRequest) -> ConductorResult<Node> {
        let (this, ident) = (self.clone(), ident.to_string());
        Conductor::detached(async move { this.capture_now(&ident, request).await }).await
    }

    async fn capture_now(&self, ident: &str, request: CaptureRequest) -> ConductorResult<Node> {
        let (lock, mut node) = self.lock(ident).await?;
        let state = ProvisionState::parse(&node.provision_state);
        let active = state == Some(ProvisionState::Active);
        if !(active || state == Some(ProvisionState::Manageable)) {
            release(lock).await;
            return Err(ConductorError::InvalidState {
                action: "capture".into(),
                node: node.uuid,
                state: node.provision_state,
            });
        }
        let prepared = async {
            let composed = compose(&node, &self.settings, &self.services)?;
            composed
                .deploy
                .prepare_capture(&node_view(&node, &[]), &composed.ports, &request)
                .await
                .map_err(|e| {
                    ConductorError::Invalid(format!("Cannot capture node {}: {e}", node.uuid))
                })
        }
        .await;
        if let Err(e) = prepared {
            release(lock).await;
            return Err(e);
        }
        node.driver_internal_info.insert(
            CAPTURE_KEY.into(),
            json!({
                "name": request.name,
                "format": request.format.name(),
                "state": "capturing",
                "started_at": Utc::now().to_rfc3339(),
            }),
        );
        let node = match self.store.save_node(&lock, &node).await {
            Ok(n) => n,
            Err(e) => {
                release(lock).await;
                return Err(e.into());
            }
        };
        self.history(
            &node.uuid,
            "capture",
            "INFO",
            &format!(
                "capture of the root disk as {} ({}) started in \"{}\"",
                request.name,
                request.format.name(),
                node.provision_state
            ),
        )
        .await;
        spawn(self.clone(), lock, node.clone(), request, active);
        Ok(node)
    }
}

/// Runs the capture in a task that owns `lock`, then records how it ended.
fn spawn(conductor: Conductor, lock: NodeLock, node: Node, request: CaptureRequest, active: bool) {
    tokio::spawn(async move {
        let run = std::panic::AssertUnwindSafe(run(&conductor, &lock, &node, &request, active));
        let outcome = tokio::select! {
            r = futures::FutureExt::catch_unwind(run) => match r {
                Ok(r) => r,
                Err(panic) => Err(format!("internal error: {}", panic_text(&*panic))),
            },
            () = lock.lost() => {
                tracing::warn!(node = %node.uuid, "node lock lost to a takeover: capture stopped");
                return;
            }
        };
        finish(&conductor, &lock, &node.uuid, outcome).await;
        release(lock).await;
    });
}

async fn run(
    conductor: &Conductor,
    lock: &NodeLock,
    node: &Node,
    request: &CaptureRequest,
    active: bool,
) -> Result<CapturedImage, String> {
    let composed =
        compose(node, &conductor.settings, &conductor.services).map_err(|e| e.to_string())?;
    // The agent boots like a deploy's does: a network-booted node needs its MACs.
    let view = booting_view(conductor, node).await?;
    let events = Events {
        conductor,
        lock,
        phase: Phase::Capture,
    };
    composed
        .deploy
        .capture(&view, &composed.ports, request, active, &events)
        .await
        .map_err(|e: DeployError| format!("capture failed at step {e}"))
}

/// Records the outcome on the node (its `capture` record, `last_error`) and in history.
async fn finish(
    conductor: &Conductor,
    lock: &NodeLock,
    uuid: &str,
    outcome: Result<CapturedImage, String>,
) {
    let Ok(Some(mut node)) = conductor.store.node_by_uuid(uuid).await else {
        return;
    };
    let mut record = node
        .driver_internal_info
        .get(CAPTURE_KEY)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    record.remove("progress");
    record.insert("finished_at".into(), json!(Utc::now().to_rfc3339()));
    let (severity, text) = match &outcome {
        Ok(image) => {
            record.insert("state".into(), json!("done"));
            record.insert("image".into(), json!(image));
            (
                "INFO",
                format!(
                    "capture done: {} ({}, {} bytes, {}); deploy it with instance_info image_source={}",
                    image.name,
                    image.format.name(),
                    image.size,
                    image.digest,
                    image.name
                ),
            )
        }
        Err(why) => {
            record.insert("state".into(), json!("failed"));
            record.insert("error".into(), json!(why));
            node.last_error = Some(why.clone());
            ("ERROR", why.clone())
        }
    };
    node.driver_internal_info
        .insert(CAPTURE_KEY.into(), Value::Object(record));
    if let Ok(c) = compose(&node, &conductor.settings, &conductor.services) {
        if let Ok(p) = c.ports.power.power_state().await {
            node.power_state = Some(p.as_ironic().into());
        }
    }
    if let Err(e) = conductor.store.save_node(lock, &node).await {
        tracing::error!(node = %uuid, error = %e, "cannot save the capture's outcome");
    }
    conductor.history(uuid, "capture", severity, &text).await;
}
