//! The agent's main loop: heartbeat (with the inventory when the conductor wants it), run the
//! command the answer carries, report its progress and result, repeat. Unreachable conductors
//! are retried with capped, jittered backoff; a refused token (403) ends the loop, since this
//! boot's session is over; nothing the conductor sends can make the agent panic.

use std::sync::Arc;
use std::time::Duration;

use std::path::Path;

use bytes::Bytes;
use deploy_drivers::{AgentCommand, AgentProgress, CaptureCommand, Inventory, PortErrorKind};
use serde_json::Value;
use tokio::sync::watch;

use super::client::{CallError, Client};
use super::commands::{self, CommandError, Limits};
use super::power::{self, Action};
use super::protocol::{CommandEnvelope, CommandOutcome, Heartbeat};

/// The machine the agent acts on: this one ([`LocalMachine`]), or a simulated one (the BMC
/// simulator's agents, which follow the same protocol with no disk to write).
pub trait Machine: Send + Sync + 'static {
    fn inventory(&self) -> Inventory;
    /// Runs a command (blocking); `power_off` and `reboot` are handled by [`Machine::power`].
    fn run(
        &self,
        command: &AgentCommand,
        progress: &(dyn Fn(AgentProgress) + Sync),
    ) -> Result<Value, CommandError>;
    /// Powers off or reboots, after the result was reported.
    fn power(&self, action: Action) -> std::io::Result<()>;
    /// Reads a disk and writes the capture stream to `out`, which the runtime uploads.
    fn capture(
        &self,
        command: &CaptureCommand,
        out: &mut dyn std::io::Write,
        progress: &(dyn Fn(AgentProgress) + Sync),
    ) -> Result<Value, CommandError>;
}

/// The machine the agent runs on.
pub struct LocalMachine {
    pub limits: Limits,
    /// Report power_off / reboot but leave the machine running.
    pub no_act: bool,
}

impl Machine for LocalMachine {
    fn inventory(&self) -> Inventory {
        super::inventory::collect()
    }
    fn run(
        &self,
        command: &AgentCommand,
        progress: &(dyn Fn(AgentProgress) + Sync),
    ) -> Result<Value, CommandError> {
        commands::run(command, &self.limits, progress)
    }
    fn power(&self, action: Action) -> std::io::Result<()> {
        power::act(action, self.no_act)
    }
    fn capture(
        &self,
        command: &CaptureCommand,
        out: &mut dyn std::io::Write,
        progress: &(dyn Fn(AgentProgress) + Sync),
    ) -> Result<Value, CommandError> {
        let disk = super::capture::FileDisk::open(Path::new(&command.device), &self.limits)?;
        super::capture::capture(&disk, command, out, progress)
    }
}

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest pause between attempts to reach the conductor.
    pub max_backoff: Duration,
    /// Shortest time between two progress reports of one command.
    pub progress_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_backoff: Duration::from_secs(30),
            progress_every: Duration::from_secs(1),
        }
    }
}

/// Why the loop ended.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Refused(CallError),
    #[error("cannot {action}: {source}")]
    Power {
        action: &'static str,
        source: std::io::Error,
    },
}

/// Runs until a power action was performed (`Ok` with `no_act`, or never with a real one) or
/// the conductor refuses the token.
pub async fn run(
    client: Client,
    machine: Arc<dyn Machine>,
    options: Options,
) -> Result<Action, RunError> {
    let a = client.assignment();
    tracing::info!(conductor = %a.conductor_url, node = %a.node, "agent starting");
    let mut backoff = Backoff::new(options.max_backoff);
    let mut send_inventory = true;
    loop {
        let inventory = if send_inventory {
            let m = machine.clone();
            tokio::task::spawn_blocking(move || m.inventory())
                .await
                .ok()
        } else {
            None
        };
        let beat = Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            inventory,
        };
        let reply = match client.heartbeat(&beat).await {
            Ok(reply) => reply,
            Err(e @ CallError::Refused { .. }) => return Err(RunError::Refused(e)),
            Err(e) => {
                let pause = backoff.pause();
                tracing::warn!(error = %e, retry_in_s = pause.as_secs_f32(), "heartbeat failed");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        backoff.reset();
        send_inventory = reply.send_inventory;
        let Some(raw) = reply.command else { continue };
        let envelope: CommandEnvelope = match serde_json::from_value(raw.clone()) {
            Ok(env) => env,
            Err(e) => {
                match raw.get("id").and_then(|v| v.as_str()) {
                    Some(id) => {
                        let outcome = CommandOutcome::Failed {
                            kind: PortErrorKind::Rejected,
                            message: format!(
                                "this agent (version {}) cannot run the command it was given: {e}",
                                env!("CARGO_PKG_VERSION")
                            ),
                        };
                        report(&client, id, &outcome, &mut backoff).await?;
                    }
                    None => tracing::warn!(error = %e, "ignoring a command without an id"),
                }
                continue;
            }
        };
        let action = match envelope.command {
            AgentCommand::PowerOff => Some(Action::PowerOff),
            AgentCommand::Reboot => Some(Action::Reboot),
            _ => None,
        };
        tracing::info!(id = %envelope.id, command = envelope.command.name(), "running");
        let outcome = execute(&client, &machine, &envelope, &options).await;
        match &outcome {
            CommandOutcome::Succeeded { .. } => {
                tracing::info!(id = %envelope.id, command = envelope.command.name(), "done")
            }
            CommandOutcome::Failed { message, .. } => {
                tracing::warn!(id = %envelope.id, command = envelope.command.name(), error = %message, "failed")
            }
        }
        report(&client, &envelope.id, &outcome, &mut backoff).await?;
        if let Some(action) = action {
            machine.power(action).map_err(|source| RunError::Power {
                action: action.name(),
                source,
            })?;
            return Ok(action);
        }
    }
}

/// Runs a command on a blocking thread, posting its progress at most every
/// `progress_every` while it runs. `capture_disk` streams to the conductor meanwhile: its
/// result carries the conductor's answer to the upload (the registered image).
async fn execute(
    client: &Client,
    machine: &Arc<dyn Machine>,
    envelope: &CommandEnvelope,
    options: &Options,
) -> CommandOutcome {
    let (tx, mut rx) = watch::channel(None::<AgentProgress>);
    let command = envelope.command.clone();
    let machine = machine.clone();
    let (stream, upload) = match &command {
        AgentCommand::CaptureDisk(_) => {
            let (btx, brx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
            (Some(btx), Some(client.upload(&envelope.id, brx)))
        }
        _ => (None, None),
    };
    let work = tokio::task::spawn_blocking(move || {
        let progress = |p| {
            tx.send_replace(Some(p));
        };
        match (&command, stream) {
            (AgentCommand::CaptureDisk(c), Some(stream)) => {
                let mut out = UploadWriter::new(stream);
                let r = machine.capture(c, &mut out, &progress);
                r.and_then(|v| {
                    out.finish().map_err(|e| {
                        CommandError::new(
                            PortErrorKind::Unreachable,
                            format!("sending the capture's end: {e}"),
                        )
                    })?;
                    Ok(v)
                })
            }
            _ => machine.run(&command, &progress),
        }
    });
    let uploaded = async {
        match upload {
            Some(u) => Some(u.await),
            None => None,
        }
    };
    let both = async { tokio::join!(work, uploaded) };
    let every = options.progress_every;
    let latest = rx.clone();
    let reporter = async {
        while rx.changed().await.is_ok() {
            let latest = *rx.borrow_and_update();
            if let Some(p) = latest {
                if let Err(e) = client.progress(&envelope.id, &p).await {
                    tracing::debug!(error = %e, "progress not delivered");
                }
            }
            tokio::time::sleep(every).await;
        }
    };
    tokio::pin!(both);
    tokio::pin!(reporter);
    // The reporter ends when the command's thread drops its sender, i.e. when the work is
    // done: then only the work's result is left to collect (polling the reporter again would
    // resume a finished future).
    let (result, uploaded) = tokio::select! {
        r = &mut both => r,
        _ = &mut reporter => both.await,
    };
    // The last word on progress (100 % when it finished), before the result.
    let last = *latest.borrow();
    if let Some(p) = last {
        if let Err(e) = client.progress(&envelope.id, &p).await {
            tracing::debug!(error = %e, "progress not delivered");
        }
    }
    match (result, uploaded) {
        // The conductor's refusal explains a stream that stopped being read.
        (_, Some(Err(e))) => CommandOutcome::Failed {
            kind: PortErrorKind::Unreachable,
            message: format!("the conductor did not take the upload: {e}"),
        },
        (Ok(Ok(mut result)), Some(Ok(image))) => {
            result["image"] = image;
            CommandOutcome::Succeeded { result }
        }
        (Ok(Ok(result)), None) => CommandOutcome::Succeeded { result },
        (Ok(Err(CommandError { kind, message })), _) => CommandOutcome::Failed { kind, message },
        (Err(e), _) => CommandOutcome::Failed {
            kind: PortErrorKind::Other,
            message: format!("the command's thread failed: {e}"),
        },
    }
}

/// A blocking writer that hands 1 MiB pieces to the upload; dropped without
/// [`UploadWriter::finish`] it ends the upload with an error, so the conductor never takes
/// a stream that stopped half-way for a whole one.
struct UploadWriter {
    tx: Option<tokio::sync::mpsc::Sender<std::io::Result<Bytes>>>,
    buf: Vec<u8>,
}

impl UploadWriter {
    const PIECE: usize = 1 << 20;

    fn new(tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        Self {
            tx: Some(tx),
            buf: Vec::with_capacity(Self::PIECE),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(Self::PIECE),
        ));
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| std::io::Error::other("upload finished"))?;
        tx.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the upload to the conductor stopped",
            )
        })
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.send()?;
        self.tx = None;
        Ok(())
    }
}

impl std::io::Write for UploadWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= Self::PIECE {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for UploadWriter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.blocking_send(Err(std::io::Error::other(
                "the capture stopped before its end",
            )));
        }
    }
}

/// Posts a result until the conductor has it (or no longer wants it).
async fn report(
    client: &Client,
    id: &str,
    outcome: &CommandOutcome,
    backoff: &mut Backoff,
) -> Result<(), RunError> {
    loop {
        match client.result(id, outcome).await {
            Ok(()) => {
                backoff.reset();
                return Ok(());
            }
            Err(e @ CallError::Refused { .. }) => return Err(RunError::Refused(e)),
            Err(CallError::Gone(why)) => {
                tracing::warn!(id, why = %why, "the conductor no longer waits for this result");
                return Ok(());
            }
            Err(e) => {
                let pause = backoff.pause();
                tracing::warn!(error = %e, retry_in_s = pause.as_secs_f32(), "result not delivered");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Capped exponential backoff with jitter, so a fleet of agents does not retry in step.
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);

    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: Self::FIRST.min(max),
            max,
        }
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }

    /// The pause before the next attempt: the current step ± 25 %, then the step doubles.
    pub fn pause(&mut self) -> Duration {
        use rand::Rng;
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.75..1.25))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(4));
        let steps: Vec<Duration> = (0..6).map(|_| b.pause()).collect();
        assert!(steps[0] <= Duration::from_millis(625), "{steps:?}");
        assert!(steps[5] >= Duration::from_secs(3), "{steps:?}");
        assert!(
            steps.iter().all(|s| *s <= Duration::from_secs(5)),
            "{steps:?}"
        );
        b.reset();
        assert!(b.pause() <= Duration::from_millis(625));
    }
}
