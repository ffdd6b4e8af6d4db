//! The conductor's side of the agent protocol (see `agent::protocol`): one [`AgentHub`] holds,
//! in memory, a session per node whose agent boot is in progress — its token, the inventory
//! its agent reported, and the queue of commands — and implements the `Agent` port for the
//! deploy drivers. The API's `/v1/agent/…` handlers call [`AgentHub::heartbeat`],
//! [`AgentHub::progress`] and [`AgentHub::result`]; the drivers call `begin`, `wait_ready`,
//! `run` and `end`.
//!
//! A heartbeat is a long poll: it waits on the session's change counter (a `watch` channel)
//! until a command is queued or the session ends, so an idle agent costs one parked request.
//! Sessions live in memory only: after a conductor restart every agent's token is forgotten
//! (its calls get 403), as the nodes it served were failed by start-up recovery anyway.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deploy_drivers::{
    Agent, AgentCommand, AgentProgress, Inventory, LeasedImage, PortError, PortErrorKind,
    PortResult, ProgressSink,
};
use tokio::sync::{oneshot, watch};

use crate::agent::protocol::{
    CommandEnvelope, CommandOutcome, Heartbeat, HeartbeatReply, MAX_DELIVERIES,
};
use crate::agent::{cmdline, token};

/// How the hub is set up (from `[agent]`).
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The URL agents are told to call; empty: `begin` refuses, naming the option.
    pub conductor_url: String,
    /// `[agent] iso`; empty: whatever [`AgentHub::set_built_iso`] provides.
    pub iso: PathBuf,
    /// Longest hold of a heartbeat waiting for a command.
    pub poll_wait: Duration,
    /// `(image server base URL, the base agents reach it at)`: URLs in commands that point at
    /// the first are rebased onto the second (`[agent] image_server_url`).
    pub image_rebase: Option<(String, String)>,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            conductor_url: String::new(),
            iso: PathBuf::new(),
            poll_wait: Duration::from_secs(20),
            image_rebase: None,
        }
    }
}

/// Why an agent's call is refused; the API maps these to 403 and 404.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Wrong, absent or forgotten token (or no agent boot in progress for the node).
    #[error("the agent token for node {node} was refused: it is wrong, missing, or the node's agent session ended")]
    Forbidden { node: String },
    #[error("node {node} has no command {id} waiting for the agent (it finished, timed out or was never given)")]
    UnknownCommand { node: String, id: String },
}

/// A queued or running command and the caller of `run` waiting for it.
struct Queued {
    id: String,
    command: AgentCommand,
    deliveries: u32,
    progress: watch::Sender<AgentProgress>,
    done: oneshot::Sender<CommandOutcome>,
}

/// One agent boot of one node.
struct Session {
    token: String,
    inventory: watch::Sender<Option<Inventory>>,
    /// Bumped whenever the queue changes or the session ends; heartbeats wait on it.
    changed: watch::Sender<u64>,
    queue: Mutex<VecDeque<Queued>>,
}

impl Session {
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What identifies one version of the agent ISO file: path, size, mtime.
type IsoKey = (PathBuf, u64, std::time::SystemTime);

/// The agent sessions of every node this conductor is booting an agent on.
pub struct AgentHub {
    settings: HubSettings,
    built_iso: Mutex<Option<PathBuf>>,
    /// The agent ISO's digest, so it is hashed once.
    iso_digest: Mutex<Option<(IsoKey, String)>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl AgentHub {
    pub fn new(settings: HubSettings) -> AgentHub {
        AgentHub {
            settings,
            built_iso: Mutex::new(None),
            iso_digest: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The agent ISO `serve` built (used when `[agent] iso` is empty).
    pub fn set_built_iso(&self, path: PathBuf) {
        *self.built_iso.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }

    pub fn conductor_url(&self) -> &str {
        &self.settings.conductor_url
    }

    fn session(&self, node: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
    }

    /// The node's session when `given` is its token (compared in constant time).
    fn authorize(&self, node: &str, given: Option<&str>) -> Result<Arc<Session>, HubError> {
        let forbidden = || HubError::Forbidden {
            node: node.to_string(),
        };
        let session = self.session(node).ok_or_else(forbidden)?;
        let given = given.ok_or_else(forbidden)?;
        if token::matches(&session.token, given) {
            Ok(session)
        } else {
            Err(forbidden())
        }
    }

    /// Checks a token without touching the session (Ironic's `/v1/heartbeat`).
    pub fn check_token(&self, node: &str, given: Option<&str>) -> Result<(), HubError> {
        self.authorize(node, given).map(|_| ())
    }

    /// An idle agent calls in: records its inventory, then answers with the next command, or
    /// with none after waiting up to the poll time for one.
    pub async fn heartbeat(
        &self,
        node: &str,
        given: Option<&str>,
        beat: Heartbeat,
    ) -> Result<HeartbeatReply, HubError> {
        let session = self.authorize(node, given)?;
        if let Some(inventory) = beat.inventory {
            session.inventory.send_replace(Some(inventory));
        }
        let mut changed = session.changed.subscribe();
        let deadline = tokio::time::Instant::now() + self.settings.poll_wait;
        loop {
            // Ended or replaced meanwhile: this agent's token is no longer good.
            let current = self.authorize(node, given)?;
            if !Arc::ptr_eq(&current, &session) {
                return Err(HubError::Forbidden {
                    node: node.to_string(),
                });
            }
            if let Some(command) = next_command(&session) {
                return Ok(HeartbeatReply {
                    command: Some(command),
                    send_inventory: session.inventory.borrow().is_none(),
                });
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out (or the session was dropped): nothing to do for now.
                _ => {
                    return Ok(HeartbeatReply {
                        command: None,
                        send_inventory: session.inventory.borrow().is_none(),
                    })
                }
            }
        }
    }

    /// The agent reports how far command `id` got.
    pub fn progress(
        &self,
        node: &str,
        given: Option<&str>,
        id: &str,
        progress: AgentProgress,
    ) -> Result<(), HubError> {
        let session = self.authorize(node, given)?;
        let queue = session.lock_queue();
        let queued = queue
            .iter()
            .find(|q| q.id == id)
            .ok_or_else(|| unknown(node, id))?;
        queued.progress.send_replace(progress);
        Ok(())
    }

    /// The agent starts uploading what command `id` captured: allowed only while `id` is a
    /// `capture_disk` of this boot that has not reported its result.
    pub fn expect_upload(&self, node: &str, given: Option<&str>, id: &str) -> Result<(), HubError> {
        let session = self.authorize(node, given)?;
        let queue = session.lock_queue();
        match queue.iter().find(|q| q.id == id) {
            Some(q) if matches!(q.command, AgentCommand::CaptureDisk(_)) => Ok(()),
            _ => Err(unknown(node, id)),
        }
    }

    /// The agent reports command `id`'s outcome; the caller of `run` gets it.
    pub fn result(
        &self,
        node: &str,
        given: Option<&str>,
        id: &str,
        outcome: CommandOutcome,
    ) -> Result<(), HubError> {
        let session = self.authorize(node, given)?;
        let queued = {
            let mut queue = session.lock_queue();
            let at = queue
                .iter()
                .position(|q| q.id == id)
                .ok_or_else(|| unknown(node, id))?;
            queue.remove(at).expect("position is in range")
        };
        session.bump();
        // The caller may have given up this very moment; then nobody needs the outcome.
        let _ = queued.done.send(outcome);
        Ok(())
    }

    /// Ends the node's session, if any: its token stops working and waiting callers fail.
    fn drop_session(&self, node: &str) {
        let old = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
        if let Some(old) = old {
            old.lock_queue().clear();
            old.bump();
        }
    }

    fn agent_iso(&self) -> PortResult<PathBuf> {
        if !self.settings.iso.as_os_str().is_empty() {
            return Ok(self.settings.iso.clone());
        }
        self.built_iso
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                PortError::new(
                    PortErrorKind::InvalidInput,
                    "no agent ramdisk ISO is configured: set [agent] iso to an ISO made by `ironcast ramdisk build`, or [agent] kernel so that serve builds one",
                )
            })
    }
}

/// Hands out the first command: a fresh one, or one the agent lost (it is idle, so whatever
/// it was given is not running). A command lost too often fails instead.
fn next_command(session: &Session) -> Option<serde_json::Value> {
    let mut queue = session.lock_queue();
    while let Some(front) = queue.front_mut() {
        if front.deliveries >= MAX_DELIVERIES {
            let lost = queue.pop_front().expect("front exists");
            let _ = lost.done.send(CommandOutcome::Failed {
                kind: PortErrorKind::Unreachable,
                message: format!(
                    "the agent lost command {} {} times (its connection broke or it restarted while running it)",
                    lost.command.name(),
                    MAX_DELIVERIES
                ),
            });
            continue;
        }
        front.deliveries += 1;
        let envelope = CommandEnvelope {
            id: front.id.clone(),
            command: front.command.clone(),
        };
        return serde_json::to_value(envelope).ok();
    }
    None
}

fn unknown(node: &str, id: &str) -> HubError {
    HubError::UnknownCommand {
        node: node.to_string(),
        id: id.to_string(),
    }
}

#[async_trait]
impl Agent for AgentHub {
    async fn ramdisk(&self) -> PortResult<LeasedImage> {
        let path = self.agent_iso()?;
        let meta = std::fs::metadata(&path).map_err(|e| {
            PortError::new(
                PortErrorKind::InvalidInput,
                format!(
                    "the agent ramdisk ISO {} cannot be read ({e}): check [agent] iso",
                    path.display()
                ),
            )
        })?;
        let key = (
            path.clone(),
            meta.len(),
            meta.modified().unwrap_or(std::time::UNIX_EPOCH),
        );
        let known = self
            .iso_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, d)| d.clone());
        let digest = match known {
            Some(d) => d,
            None => {
                let p = path.clone();
                let d = tokio::task::spawn_blocking(move || sha256_file(&p))
                    .await
                    .map_err(|e| PortError::other(format!("hashing the agent ISO: {e}")))?
                    .map_err(|e| {
                        PortError::other(format!("reading the agent ISO {}: {e}", path.display()))
                    })?;
                *self.iso_digest.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, d.clone()));
                d
            }
        };
        Ok(LeasedImage {
            // Not a cache entry: nothing to release.
            lease: String::new(),
            digest,
            path,
            size: meta.len(),
        })
    }

    async fn begin(&self, node: &str) -> PortResult<String> {
        if self.settings.conductor_url.is_empty() {
            return Err(PortError::new(
                PortErrorKind::InvalidInput,
                "the URL agents should call is unknown: set [agent] conductor_url (or [api] public_url)",
            ));
        }
        let (inventory, _) = watch::channel(None);
        let (changed, _) = watch::channel(0);
        let session = Arc::new(Session {
            token: token::mint(),
            inventory,
            changed,
            queue: Mutex::new(VecDeque::new()),
        });
        let args = cmdline::render(&cmdline::Assignment {
            conductor_url: self.settings.conductor_url.clone(),
            node: node.to_string(),
            token: session.token.clone(),
        });
        self.drop_session(node);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), session);
        Ok(args)
    }

    async fn wait_ready(&self, node: &str, timeout: Duration) -> PortResult<Inventory> {
        let session = self.session(node).ok_or_else(|| no_session(node))?;
        let mut inventory = session.inventory.subscribe();
        let waited = tokio::time::timeout(timeout, inventory.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(inv)) => Ok(inv.clone().expect("waited for Some")),
            Ok(Err(_)) => Err(no_session(node)),
            Err(_) => Err(PortError::new(
                PortErrorKind::Timeout,
                format!(
                    "the agent on node {node} did not call in within {} s: check the node's console (did the ramdisk boot, did it get an address by DHCP, what does the agent print?) and that the node can reach the conductor URL it was given, {}",
                    timeout.as_secs(),
                    self.settings.conductor_url
                ),
            )),
        }
    }

    async fn run(
        &self,
        node: &str,
        command: &AgentCommand,
        timeout: Duration,
        sink: &dyn ProgressSink,
    ) -> PortResult<serde_json::Value> {
        let session = self.session(node).ok_or_else(|| no_session(node))?;
        let command = match &self.settings.image_rebase {
            Some((from, to)) => rebase_urls(command, from, to),
            None => command.clone(),
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (progress, mut progress_rx) = watch::channel(AgentProgress::default());
        let (done, mut done_rx) = oneshot::channel();
        session.lock_queue().push_back(Queued {
            id: id.clone(),
            command: command.clone(),
            deliveries: 0,
            progress,
            done,
        });
        session.bump();
        let name = command.name();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut passed = None;
        loop {
            tokio::select! {
                outcome = &mut done_rx => {
                    // The agent's last progress came in before its result, but both may be
                    // ready at once and select! picks either: pass the last one on first.
                    let latest = *progress_rx.borrow();
                    if latest != AgentProgress::default() && passed != Some(latest) {
                        sink.progress(latest);
                    }
                    return match outcome {
                        Ok(CommandOutcome::Succeeded { result }) => Ok(result),
                        Ok(CommandOutcome::Failed { kind, message }) => Err(PortError::new(
                            kind,
                            format!("the agent on node {node} failed {name}: {message}"),
                        )),
                        Err(_) => Err(PortError::other(format!(
                            "the agent session of node {node} ended while {name} was queued or running"
                        ))),
                    };
                }
                changed = progress_rx.changed() => {
                    if changed.is_ok() {
                        let latest = *progress_rx.borrow_and_update();
                        sink.progress(latest);
                        passed = Some(latest);
                    }
                }
                _ = &mut deadline => {
                    session.lock_queue().retain(|q| q.id != id);
                    session.bump();
                    return Err(PortError::new(
                        PortErrorKind::Timeout,
                        format!(
                            "the agent on node {node} did not finish {name} within {} s: check the node's console, and that it still reaches {}",
                            timeout.as_secs(),
                            self.settings.conductor_url
                        ),
                    ));
                }
            }
        }
    }

    async fn end(&self, node: &str) {
        self.drop_session(node);
    }
}

/// `command` with the image and config drive URLs that point at `from`'s origin moved to
/// `to`'s (scheme, host and port), keeping their path and credentials (pure).
pub(crate) fn rebase_urls(command: &AgentCommand, from: &str, to: &str) -> AgentCommand {
    let rebase = |url: &str| -> String {
        let (Ok(mut u), Ok(f), Ok(t)) = (
            reqwest::Url::parse(url),
            reqwest::Url::parse(from),
            reqwest::Url::parse(to),
        ) else {
            return url.to_string();
        };
        if u.origin() != f.origin() {
            return url.to_string();
        }
        let moved = u.set_scheme(t.scheme()).is_ok()
            && u.set_host(t.host_str()).is_ok()
            && u.set_port(t.port()).is_ok();
        if moved {
            u.to_string()
        } else {
            url.to_string()
        }
    };
    let mut command = command.clone();
    match &mut command {
        AgentCommand::WriteImage(w) => w.image_url = rebase(&w.image_url),
        AgentCommand::WriteConfigDrive { url, .. } => *url = rebase(url),
        _ => {}
    }
    command
}

fn no_session(node: &str) -> PortError {
    PortError::other(format!(
        "no agent boot is in progress for node {node} (it was never begun, or it ended)"
    ))
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests;
