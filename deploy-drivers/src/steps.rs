//! Helpers every driver uses to run and report its steps: a port call under a timeout with
//! the step named in its error, best-effort undo steps that keep the first failure, and
//! reading the node's string fields.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::driver::{DeployError, DeployEvents, NodeView, Ports};
use crate::ports::{PortError, PortErrorKind, PortResult};

/// Runs one port call under `limit`, naming the step in the error.
pub(crate) async fn run_step<T>(
    name: &str,
    limit: Duration,
    call: impl std::future::Future<Output = PortResult<T>>,
) -> Result<T, DeployError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(|e| DeployError::new(name, e)),
        Err(_) => Err(DeployError::new(
            name,
            PortError::new(
                PortErrorKind::Timeout,
                format!("no answer within {} s", limit.as_secs()),
            ),
        )),
    }
}

/// The limit on a port call that enforces `limit` itself: a little later, so the port's own
/// timeout message (which says what to check) is the one the operator sees.
pub(crate) fn backstop(limit: Duration) -> Duration {
    limit + limit / 4 + Duration::from_millis(100)
}

/// Records a best-effort step: success as a history event, the first failure kept.
pub(crate) async fn keep_first<T>(
    first: &mut Option<DeployError>,
    result: Result<T, DeployError>,
    events: &dyn DeployEvents,
    step: &str,
    done: &str,
) {
    match result {
        Ok(_) => events.step(step, done).await,
        Err(e) => {
            events.step(step, &format!("failed: {}", e.source)).await;
            first.get_or_insert(e);
        }
    }
}

/// Saves `value` under `key`: the id of what step `step` is about to make (a lease, a
/// publication). A failed save fails the step, so nothing is made that no record names.
pub(crate) async fn record_intent(
    events: &dyn DeployEvents,
    step: &str,
    key: &str,
    value: Value,
) -> Result<(), DeployError> {
    events.save_intent(key, value).await.map_err(|e| {
        DeployError::new(
            step,
            PortError::new(
                e.kind,
                format!("its id could not be recorded on the node first, so nothing was made: {e}"),
            ),
        )
    })
}

/// Revokes `publications` and releases `lease` through this conductor's ports, best effort,
/// each outcome a history event; the records naming them are the caller's to change.
pub(crate) async fn give_back(
    ports: &Ports,
    publications: &[String],
    lease: Option<&str>,
    limit: Duration,
    events: &dyn DeployEvents,
) {
    let mut first = None;
    if let Some(publisher) = &ports.publisher {
        for id in publications {
            let r = run_step("revoke replaced", limit, publisher.revoke(id)).await;
            keep_first(
                &mut first,
                r,
                events,
                "revoke replaced",
                "the replaced publication is revoked here",
            )
            .await;
        }
    }
    if let (Some(lease), Some(images)) = (lease, &ports.images) {
        let r = run_step("release replaced", limit, images.release(lease)).await;
        keep_first(
            &mut first,
            r,
            events,
            "release replaced",
            "the replaced lease is released here",
        )
        .await;
    }
}

/// Saves `keys` back as `node` had them: a takeover that failed and gave back what it made
/// leaves the records of what it was to replace.
pub(crate) async fn restore_records(node: &NodeView, keys: &[&str], events: &dyn DeployEvents) {
    for key in keys {
        let value = node.driver_internal_info.get(*key).cloned();
        events
            .save_internal(key, value.unwrap_or(Value::Null))
            .await;
    }
}

pub(crate) fn missing_port(name: &str) -> DeployError {
    DeployError::invalid(format!("no {name} is configured for this node"))
}

/// A non-empty string field of a JSON map.
pub(crate) fn str_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
