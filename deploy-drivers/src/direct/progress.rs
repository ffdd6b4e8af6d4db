//! Progress of a long agent command (image write, disk erase), reported at a bounded rate.
//!
//! [`Agent::run`] hands progress to a synchronous [`ProgressSink`] as often as the agent
//! reports it. [`run_reporting`] keeps only the latest value and, every interval, passes it to
//! [`DeployEvents::progress`] (shown on the node) when it changed, plus a history step each
//! time another tenth of the total is done ([`Milestones`]), so a long write costs a few
//! database writes a minute, not one per chunk.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::driver::DeployEvents;
use crate::ports::{
    Agent, AgentCommand, AgentProgress, PortError, PortErrorKind, PortResult, ProgressSink,
};

/// Keeps the latest progress the agent reported.
#[derive(Default)]
struct Latest(Mutex<Option<AgentProgress>>);

impl ProgressSink for Latest {
    fn progress(&self, progress: AgentProgress) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(progress);
    }
}

impl Latest {
    fn get(&self) -> Option<AgentProgress> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Which tenths of a total have been reported (pure).
#[derive(Debug, Default)]
pub(crate) struct Milestones {
    reported: Option<u64>,
}

impl Milestones {
    /// The percentage to record in history when `p` reaches a tenth not reported yet.
    pub(crate) fn next(&mut self, p: AgentProgress) -> Option<u64> {
        let total = p.total_bytes.filter(|t| *t > 0)?;
        let percent = percent(p.done_bytes, total);
        let tenth = percent / 10;
        if self.reported.is_some_and(|r| r >= tenth) || tenth == 0 {
            return None;
        }
        self.reported = Some(tenth);
        Some(percent)
    }
}

/// Whole percent done, at most 100.
pub(crate) fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        return 100;
    }
    ((done as u128 * 100 / total as u128) as u64).min(100)
}

/// How progress reads in history: "37% (397 of 1073 MiB)", or bytes when the total is unknown.
pub(crate) fn describe(p: AgentProgress) -> String {
    const MIB: u64 = 1 << 20;
    match p.total_bytes.filter(|t| *t > 0) {
        Some(total) => format!(
            "{}% ({} of {} MiB)",
            percent(p.done_bytes, total),
            p.done_bytes / MIB,
            total.div_ceil(MIB)
        ),
        None => format!("{} MiB written", p.done_bytes / MIB),
    }
}

/// Runs `command` on `node`'s agent, reporting its progress as step `step` every `interval`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_reporting(
    agent: &dyn Agent,
    node: &str,
    command: &AgentCommand,
    timeout: Duration,
    step: &str,
    interval: Duration,
    events: &dyn DeployEvents,
) -> PortResult<Value> {
    let latest = Latest::default();
    let mut shown: Option<AgentProgress> = None;
    let mut milestones = Milestones::default();
    let report = |p: AgentProgress, shown: &mut Option<AgentProgress>, m: &mut Milestones| {
        let changed = *shown != Some(p);
        *shown = Some(p);
        let milestone = m.next(p);
        async move {
            // The history step first: showing a step replaces the progress shown with it.
            if milestone.is_some() {
                events.step(step, &describe(p)).await;
            }
            if changed || milestone.is_some() {
                events.progress(step, p).await;
            }
        }
    };
    let run = tokio::time::timeout(
        crate::steps::backstop(timeout),
        agent.run(node, command, timeout, &latest),
    );
    tokio::pin!(run);
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            result = &mut run => {
                let result = result.unwrap_or_else(|_| {
                    Err(PortError::new(
                        PortErrorKind::Timeout,
                        format!("{step}: no result within {} s", timeout.as_secs()),
                    ))
                });
                if let (Ok(_), Some(p)) = (&result, latest.get()) {
                    report(p, &mut shown, &mut milestones).await;
                }
                return result;
            }
            _ = ticker.tick() => {
                if let Some(p) = latest.get() {
                    report(p, &mut shown, &mut milestones).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(done: u64, total: Option<u64>) -> AgentProgress {
        AgentProgress {
            done_bytes: done,
            total_bytes: total,
        }
    }

    #[test]
    fn milestones_each_tenth_once() {
        let mut m = Milestones::default();
        let seen: Vec<Option<u64>> = [0, 5, 10, 12, 19, 20, 55, 56, 100, 100]
            .into_iter()
            .map(|d| m.next(p(d, Some(100))))
            .collect();
        assert_eq!(
            seen,
            [
                None,
                None,
                Some(10),
                None,
                None,
                Some(20),
                Some(55),
                None,
                Some(100),
                None
            ]
        );
        assert_eq!(Milestones::default().next(p(5, None)), None);
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            describe(p(397 << 20, Some(1073 << 20))),
            "36% (397 of 1073 MiB)"
        );
        assert_eq!(describe(p(3 << 20, None)), "3 MiB written");
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
        assert_eq!(percent(5, 0), 100);
    }
}
