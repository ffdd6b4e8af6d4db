//! Task monitors (DSP0266 §12.2): a 202 Accepted with `Location` is polled until the task ends.

use std::time::Duration;

use tokio::time::Instant;

use super::client::{Client, Response};
use super::error::{RedfishError, Result};
use super::model::Task;

/// Task states that mean "still going" (Redfish TaskState enum).
const RUNNING: &[&str] = &[
    "New",
    "Starting",
    "Running",
    "Pending",
    "Stopping",
    "Suspended",
    "Service",
    "Interrupted",
];
/// Task states that mean failure.
const FAILED: &[&str] = &["Exception", "Killed", "Cancelled", "Cancelling"];

/// What a task monitor answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum TaskProgress {
    Running,
    Done,
    Failed { state: String, detail: String },
}

/// Reads a monitor answer: 202 means still running; otherwise the task body (if any) decides.
pub fn progress(status: u16, task: &Task) -> TaskProgress {
    let state = task.task_state.as_deref().unwrap_or("");
    let detail = || {
        task.messages
            .iter()
            .filter_map(|m| m.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if FAILED.contains(&state)
        || (state == "Completed" && task.task_status.as_deref() == Some("Critical"))
    {
        return TaskProgress::Failed {
            state: state.to_string(),
            detail: detail(),
        };
    }
    if status == 202 || RUNNING.contains(&state) {
        TaskProgress::Running
    } else {
        TaskProgress::Done
    }
}

/// Returns `resp` unchanged unless it is a 202 with a task monitor, which is then followed
/// until the task ends (honouring Retry-After) or `[redfish] task_timeout_secs` runs out.
pub async fn follow(client: &Client, resp: Response, what: &str) -> Result<Response> {
    if resp.status != 202 {
        return Ok(resp);
    }
    let Some(monitor) = resp.location.clone() else {
        // 202 without a monitor: the BMC accepted and gives no way to watch; trust it.
        return Ok(resp);
    };
    let d = *client.durations();
    let deadline = Instant::now() + d.task_timeout;
    let mut wait = resp.retry_after.unwrap_or(Duration::from_millis(500));
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(RedfishError::WaitTimeout {
                what: format!("BMC task {monitor} ({what})"),
                after: d.task_timeout,
            });
        }
        tokio::time::sleep(wait.min(d.retry_after_max).min(deadline - now)).await;
        let r = client.get(&monitor).await?;
        let task: Task = serde_json::from_value(r.body.clone()).unwrap_or_default();
        match progress(r.status, &task) {
            TaskProgress::Running => {
                wait = r.retry_after.unwrap_or(Duration::from_secs(1));
            }
            TaskProgress::Done => return Ok(r),
            TaskProgress::Failed { state, detail } => {
                return Err(RedfishError::TaskFailed {
                    url: client.url(&monitor)?.to_string(),
                    state,
                    detail,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redfish::model::Message;

    fn task(state: &str, status: &str) -> Task {
        Task {
            task_state: Some(state.into()),
            task_status: Some(status.into()),
            messages: vec![Message {
                message: Some("boom".into()),
                message_id: None,
            }],
        }
    }

    #[test]
    fn monitor_answers() {
        assert_eq!(progress(202, &Task::default()), TaskProgress::Running);
        assert_eq!(progress(200, &task("Running", "OK")), TaskProgress::Running);
        assert_eq!(progress(200, &task("Completed", "OK")), TaskProgress::Done);
        assert_eq!(progress(204, &Task::default()), TaskProgress::Done);
        assert_eq!(
            progress(200, &task("Exception", "Critical")),
            TaskProgress::Failed {
                state: "Exception".into(),
                detail: "boom".into()
            }
        );
        assert!(matches!(
            progress(200, &task("Completed", "Critical")),
            TaskProgress::Failed { .. }
        ));
    }
}
