//! The conductor: task manager (reservation locks), provision state machine, background workers,
//! and start-up recovery.
//!
//! A node is locked by writing this conductor's name into its `reservation` with one atomic
//! conditional UPDATE, so locking works across processes sharing a PostgreSQL database. The lock
//! is a guard ([`NodeLock`]): dropped means released, on every path. Every change to a node is a
//! write fenced by its lock, which the store refuses once the lock is lost. A provision action
//! takes the lock, moves the node into the transient state, and hands the lock to a tokio task
//! that runs the work (the node's deploy driver through its composed ports) and releases it.
//!
//! Requests run detached from the caller ([`Conductor::detached`]): an API client that hangs up
//! drops its handler future, but the operation it started finishes (or never started), so a
//! node is never left half-moved.
//!
//! Several conductors share a PostgreSQL database: each process has its own name
//! (`identity.rs`), heartbeats, and takes over the nodes of dead ones (`takeover.rs`, through
//! the hash ring of `ring.rs`).
//!
//! Non-goals (yet): periodic power sync.

mod adoption;
mod agent_hub;
mod allocations;
mod capture;
mod compose;
mod hardware_calls;
mod health;
pub mod identity;
mod inspection;
mod inspection_rules;
pub mod management;
mod manual_steps;
pub mod metrics;
mod node_rules;
pub mod reconcile;
pub mod ring;
mod services;
pub mod states;
mod takeover;
mod vifs;
mod wait_poll;
mod worker;

pub use agent_hub::{AgentHub, HubError, HubSettings};
pub use capture::{parse_request as parse_capture_request, CAPTURE_KEY};
pub use compose::{compose, default_interface, Composed, SUPPORTED_DRIVERS};
pub use manual_steps::{RAID_KEY, TARGET_RAID_KEY};
pub use node_rules::check_update;
pub use services::Services;
pub use takeover::{affinity, Takeover, AFFINITY_KEY};
pub use worker::{parse_clean_steps, CLEAN_STEPS_KEY, SERVICE_STEPS_KEY, SERVICE_STEP_KEY};

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::store::{Node, NodeLock, Store, StoreError};
use states::{Event, ProvisionState};

/// The conductor's knobs, from config `[conductor]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub lock_wait_ms: u64,
    pub deploy_timeout_s: u64,
    pub heartbeat_interval_s: u64,
    pub heartbeat_timeout_s: u64,
    pub fake_deploy_delay_ms: u64,
    pub fake_undeploy_delay_ms: u64,
    pub fake_power_delay_ms: u64,
    /// Run automated cleaning on provide and after undeploy (a node's `automated_clean`
    /// overrides it).
    pub automated_clean: bool,
    /// Which inspected NICs become ports (`[inspection] add_ports`).
    pub add_ports: crate::hardware::inventory::AddPorts,
    /// `[inspection_rules] mask_secrets`.
    pub rules_mask_secrets: crate::inspection_rules::MaskSecrets,
    /// `[inspection_rules] built_in_rules`: a YAML file of rules, read at each inspection.
    pub built_in_rules: Option<std::path::PathBuf>,
}

impl Settings {
    pub fn from_config(config: &crate::config::Config) -> Settings {
        let c = &config.conductor;
        Settings {
            name: config.conductor_name(),
            lock_wait_ms: c.lock_wait_ms,
            deploy_timeout_s: c.deploy_timeout_s,
            heartbeat_interval_s: c.heartbeat_interval_s,
            heartbeat_timeout_s: c.heartbeat_timeout_s,
            fake_deploy_delay_ms: c.fake_deploy_delay_ms,
            fake_undeploy_delay_ms: c.fake_undeploy_delay_ms,
            fake_power_delay_ms: c.fake_power_delay_ms,
            automated_clean: c.automated_clean,
            add_ports: config.inspection.add_ports,
            rules_mask_secrets: config.inspection_rules.mask_secrets,
            built_in_rules: Some(&config.inspection_rules.built_in_rules)
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from),
        }
    }
}

/// What callers (the API) can act on.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    #[error("{kind} {id} could not be found.")]
    NotFound { kind: &'static str, id: String },
    #[error("Node {node} is locked by host {holder}, please retry after the current operation is completed.")]
    Locked { node: String, holder: String },
    #[error("The requested action \"{action}\" can not be performed on node \"{node}\" while it is in state \"{state}\".")]
    InvalidState {
        action: String,
        node: String,
        state: String,
    },
    /// Input that cannot be acted on; the message says why and what to do.
    #[error("{0}")]
    Invalid(String),
    /// The node is protected (Ironic's `protected`): no undeploy, rebuild or delete.
    #[error(
        "Node {0} is protected and cannot be undeployed, rebuilt or deleted: unset protected first"
    )]
    Protected(String),
    /// A uniqueness conflict (name, MAC address).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    /// Another live process runs under this conductor's name; the message says which.
    #[error("{0}")]
    NameInUse(String),
    /// The node's BMC refused or failed a hardware call; the message names what and where.
    #[error("{0}")]
    Bmc(String),
    /// A bug: the task running the request panicked (the node lock was released).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ConductorError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => ConductorError::NotFound { kind, id },
            StoreError::Conflict(m) => ConductorError::Conflict(m),
            StoreError::Invalid(m) => ConductorError::Invalid(m),
            other => ConductorError::Store(other),
        }
    }
}

pub type ConductorResult<T> = Result<T, ConductorError>;

/// The conductor service; cheap to clone.
#[derive(Clone)]
pub struct Conductor {
    pub(crate) store: Store,
    pub(crate) settings: Arc<Settings>,
    pub(crate) services: Arc<Services>,
    pub(crate) metrics: Arc<metrics::Metrics>,
}

impl Conductor {
    pub fn new(store: Store, settings: Settings) -> Conductor {
        Conductor::with_services(store, settings, Services::none())
    }

    /// A conductor whose nodes' ports use `services` (cache, remaster, image server, Redfish).
    pub fn with_services(store: Store, settings: Settings, services: Services) -> Conductor {
        Conductor {
            store,
            settings: Arc::new(settings),
            services: Arc::new(services),
            metrics: Arc::new(metrics::Metrics::default()),
        }
    }

    /// Adds a module's Prometheus text (cache, image server) to [`Conductor::render_metrics`].
    pub fn add_metrics(&self, source: metrics::MetricsSource) {
        self.metrics.add_source(source);
    }

    /// Everything `/metrics` serves, in the Prometheus text format.
    pub async fn render_metrics(&self) -> ConductorResult<String> {
        let counts = self.store.node_counts_by_state().await?;
        Ok(self.metrics.render(&counts))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Seconds without a heartbeat after which a conductor counts as dead.
    pub fn heartbeat_timeout_s(&self) -> u64 {
        self.settings.heartbeat_timeout_s
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The agent sessions: the API's agent endpoints answer through it.
    pub fn agent_hub(&self) -> &std::sync::Arc<AgentHub> {
        &self.services.agent
    }

    /// Where agents' capture uploads go (`serve` sets it up).
    pub fn captures(&self) -> Option<&std::sync::Arc<crate::capture::CaptureService>> {
        self.services.captures.as_ref()
    }

    /// Start-up recovery, before serving: registers the conductor, moves every node left in a
    /// transient state (by a crash of this conductor or of a previous run) to its failure state
    /// with a last_error saying why, and releases this conductor's stale locks. Returns how many
    /// nodes were failed. No cap: every such node is handled.
    pub async fn recover(&self) -> ConductorResult<usize> {
        let me = self.name().to_string();
        self.register().await?;
        let transient: Vec<&str> = ProvisionState::ALL
            .into_iter()
            .filter(|s| !s.is_stable())
            .map(|s| s.as_str())
            .collect();
        let mut failed = 0;
        for mut node in self.store.nodes_in_states(&transient).await? {
            // A node locked by, or waiting on, another conductor is that conductor's business
            // (or, once it is dead, the takeover's).
            if node.reservation.as_deref().is_some_and(|r| r != me) {
                continue;
            }
            if node.reservation.is_none() && affinity(&node).is_some_and(|a| a != me) {
                continue;
            }
            let Some(from) = ProvisionState::parse(&node.provision_state) else {
                continue;
            };
            let Some(to) = from.failure_state() else {
                continue;
            };
            let why = format!(
                "conductor {me} restarted while the node was in \"{from}\" (target \"{}\"); the operation was interrupted and did not finish: retry it",
                node.target_provision_state.as_deref().unwrap_or("none")
            );
            // Our own stale lock is ours to write under; a free node is locked first.
            let lock = match node.reservation.as_deref() {
                Some(_) => self.store.adopt_lock(&node.uuid, &me),
                None => match self.store.lock_node(&node.uuid, &me).await? {
                    Some(l) => l,
                    None => continue,
                },
            };
            if from == ProvisionState::Deploying {
                node = self.abandon_interrupted(&lock, node).await;
            }
            node.provision_state = to.as_str().to_string();
            node.target_provision_state = None;
            node.target_power_state = None;
            node.last_error = Some(why.clone());
            node.provision_updated_at = Some(Utc::now());
            self.store.save_node(&lock, &node).await?;
            release(lock).await;
            self.store
                .add_history(&node.uuid, &me, "startup", "ERROR", &why)
                .await?;
            tracing::warn!(node = %node.uuid, from = %from, to = %to, "recovered interrupted node");
            failed += 1;
        }
        let released = self.store.release_all_nodes(&me).await?;
        if released > 0 {
            tracing::info!(released, "released stale locks of this conductor");
        }
        Ok(failed)
    }

    /// A deploy that died with its process undoes what it recorded (lease, publication,
    /// remaster), touching no hardware; returns the node as saved afterwards.
    pub(crate) async fn abandon_interrupted(&self, lock: &NodeLock, node: Node) -> Node {
        worker::abandon(self, lock, &node).await;
        match self.store.node_by_uuid(&node.uuid).await {
            Ok(Some(fresh)) => fresh,
            _ => node,
        }
    }

    /// Registers this process under its name, refusing (`NameInUse`) while a live conductor
    /// holds it.
    pub async fn register(&self) -> ConductorResult<()> {
        let (host, pid) = (identity::hostname(), i64::from(std::process::id()));
        if let Some(row) = self.store.conductor(self.name()).await? {
            let timeout = chrono::Duration::seconds(self.settings.heartbeat_timeout_s as i64);
            if let Some(why) =
                identity::name_taken(&row, Utc::now(), timeout, &host, pid, identity::pid_alive)
            {
                return Err(ConductorError::NameInUse(why));
            }
        }
        Ok(self
            .store
            .register_conductor(self.name(), &host, pid)
            .await?)
    }

    /// Every `heartbeat_interval_s` until the process ends: writes a heartbeat, then takes
    /// over the nodes of dead conductors.
    pub fn spawn_heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(this.settings.heartbeat_interval_s);
            // The heartbeat has a connection of its own and its own loop: neither a pool busy
            // with a thousand deploys nor a long takeover pass may make a live conductor look
            // dead to the others.
            let beat_store = match this.store.dedicated(1).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "no dedicated heartbeat connection: sharing the pool");
                    this.store.clone()
                }
            };
            let beat = async {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = beat_store.heartbeat(this.name()).await {
                        tracing::warn!(error = %e, "heartbeat failed");
                    }
                }
            };
            let take_over = async {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = this.take_over_dead().await {
                        tracing::warn!(error = %e, "takeover of dead conductors failed");
                    }
                }
            };
            tokio::join!(beat, take_over);
        })
    }

    /// Locks the node named by `ident` (UUID or name), waiting up to `lock_wait_ms` for a busy
    /// node, and returns it fresh from the store.
    pub async fn lock(&self, ident: &str) -> ConductorResult<(NodeLock, Node)> {
        let node = self.store.node(ident).await?;
        let deadline = Instant::now() + Duration::from_millis(self.settings.lock_wait_ms);
        loop {
            if let Some(lock) = self.store.lock_node(&node.uuid, self.name()).await? {
                return match self.store.node_by_uuid(&node.uuid).await? {
                    Some(fresh) => Ok((lock, fresh)),
                    None => Err(ConductorError::NotFound {
                        kind: "Node",
                        id: ident.to_string(),
                    }),
                };
            }
            if Instant::now() >= deadline {
                let holder = self
                    .store
                    .node_by_uuid(&node.uuid)
                    .await?
                    .and_then(|n| n.reservation)
                    .unwrap_or_else(|| "another conductor".into());
                return Err(ConductorError::Locked {
                    node: node.uuid,
                    holder,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `fut` to its end in a task of its own and returns its result: dropping the caller's
    /// future (an API client that hung up) no longer stops the operation half-way. A panic in
    /// it is an `Internal` error; the lock it held is released by the guard's Drop.
    pub async fn detached<T, F>(fut: F) -> ConductorResult<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = ConductorResult<T>> + Send + 'static,
    {
        match tokio::spawn(fut).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, "request task failed");
                Err(ConductorError::Internal(
                    "the operation failed unexpectedly; the node was left as it was before the failed step, retry it".into(),
                ))
            }
        }
    }

    /// Runs `f` on the node under its lock and saves the result.
    pub async fn update_node<F>(&self, ident: &str, f: F) -> ConductorResult<Node>
    where
        F: FnOnce(&mut Node) -> ConductorResult<()> + Send + 'static,
    {
        let (this, ident) = (self.clone(), ident.to_string());
        Conductor::detached(async move {
            let (lock, mut node) = this.lock(&ident).await?;
            let result = match f(&mut node) {
                Ok(()) => this.store.save_node(&lock, &node).await.map_err(Into::into),
                Err(e) => Err(e),
            };
            release(lock).await;
            result
        })
        .await
    }

    /// Creates a node after checking its driver.
    pub async fn create_node(&self, node: Node) -> ConductorResult<Node> {
        check_driver(&node.driver)?;
        Ok(self.store.create_node(&node).await?)
    }

    /// Deletes a node unless it is deployed or busy.
    pub async fn delete_node(&self, ident: &str) -> ConductorResult<()> {
        let (this, ident) = (self.clone(), ident.to_string());
        Conductor::detached(async move { this.delete_node_now(&ident).await }).await
    }

    async fn delete_node_now(&self, ident: &str) -> ConductorResult<()> {
        let (lock, node) = self.lock(ident).await?;
        let state = ProvisionState::parse(&node.provision_state);
        let deletable = matches!(
            state,
            Some(
                ProvisionState::Enroll
                    | ProvisionState::Manageable
                    | ProvisionState::Available
                    | ProvisionState::CleanFailed
                    | ProvisionState::InspectFailed
                    | ProvisionState::AdoptFailed
            )
        ) || node.maintenance;
        if !deletable {
            release(lock).await;
            return Err(ConductorError::InvalidState {
                action: "delete".into(),
                node: node.uuid,
                state: node.provision_state,
            });
        }
        if node.protected {
            release(lock).await;
            return Err(ConductorError::Protected(node.uuid));
        }
        // Deleting the row drops the reservation with it.
        Ok(self.store.delete_node(lock).await?)
    }

    /// Starts the provision action `event` on the node. On success the node is in its new state
    /// and, for states with work to do, a task runs it in the background.
    pub async fn provision(&self, ident: &str, event: Event) -> ConductorResult<Node> {
        self.provision_with(ident, event, |_| {}).await
    }

    /// [`Conductor::provision`], with `prepare` editing the node (the deploy's config drive,
    /// a manual clean's steps) once the transition is allowed, before validation and save: a
    /// refused request changes nothing.
    pub async fn provision_with(
        &self,
        ident: &str,
        event: Event,
        prepare: impl FnOnce(&mut Node) + Send + 'static,
    ) -> ConductorResult<Node> {
        let (this, ident) = (self.clone(), ident.to_string());
        Conductor::detached(async move { this.provision_now(&ident, event, prepare).await }).await
    }

    async fn provision_now(
        &self,
        ident: &str,
        event: Event,
        prepare: impl FnOnce(&mut Node),
    ) -> ConductorResult<Node> {
        let (lock, mut node) = self.lock(ident).await?;
        let from = ProvisionState::parse(&node.provision_state);
        let to = from.and_then(|s| states::next(s, event));
        let (Some(from), Some(to)) = (from, to) else {
            release(lock).await;
            return Err(ConductorError::InvalidState {
                action: event.verb_name().into(),
                node: node.uuid,
                state: node.provision_state,
            });
        };
        if node.protected && matches!(event, Event::Undeploy | Event::Rebuild) {
            release(lock).await;
            return Err(ConductorError::Protected(node.uuid));
        }
        prepare(&mut node);
        if to == ProvisionState::Deploying {
            // Refuse what the driver would refuse, before touching anything.
            if let Err(e) = self.validate_deploy(&node) {
                release(lock).await;
                return Err(e);
            }
        }
        node.provision_state = to.as_str().into();
        node.target_provision_state = states::target_after(event, to).map(|s| s.as_str().into());
        if to == ProvisionState::Inspecting {
            node.inspection_started_at = Some(Utc::now());
            node.inspection_finished_at = None;
        }
        node.provision_updated_at = Some(Utc::now());
        if event == Event::Abort {
            node.last_error = Some(format!("operation aborted by request while in \"{from}\""));
        } else {
            node.last_error = None;
        }
        let node = match self.store.save_node(&lock, &node).await {
            Ok(n) => n,
            Err(e) => {
                release(lock).await;
                return Err(e.into());
            }
        };
        self.history(
            &node.uuid,
            "provisioning",
            "INFO",
            &format!("{} : {from} -> {to}", event.verb_name()),
        )
        .await;
        if to.has_worker() {
            worker::spawn(self.clone(), lock, node.clone());
        } else if (from, event) == (ProvisionState::WaitCallback, Event::Abort) {
            // The deploy stopped waiting: its driver undoes what it did, under the lock.
            worker::spawn_abort_undo(self.clone(), lock, node.clone());
        } else {
            release(lock).await;
        }
        Ok(node)
    }

    /// Ends a wait state (wait call-back, clean wait, inspect wait) on an outside call-back,
    /// e.g. the agent reporting its write: `Ok` moves the node on (`done`), `Err(why)` to the
    /// failure state with `why` as last_error. Any other state is an InvalidState error.
    pub async fn finish_wait(
        &self,
        ident: &str,
        result: Result<(), String>,
    ) -> ConductorResult<Node> {
        let (this, ident) = (self.clone(), ident.to_string());
        Conductor::detached(async move { this.finish_wait_now(&ident, result).await }).await
    }

    async fn finish_wait_now(
        &self,
        ident: &str,
        result: Result<(), String>,
    ) -> ConductorResult<Node> {
        let (lock, mut node) = self.lock(ident).await?;
        let from = ProvisionState::parse(&node.provision_state);
        // A deploy waiting for its node to boot has a last step (e.g. a one-shot revoke).
        let result = match (result, from) {
            (Ok(()), Some(ProvisionState::WaitCallback)) => {
                let done = worker::booted(self, &lock, &node).await;
                // The driver may have saved driver_internal_info meanwhile.
                if let Ok(Some(fresh)) = self.store.node_by_uuid(&node.uuid).await {
                    node = fresh;
                }
                done
            }
            (other, _) => other,
        };
        let event = if result.is_ok() {
            Event::Done
        } else {
            Event::Fail
        };
        let waiting = matches!(
            from,
            Some(
                ProvisionState::WaitCallback
                    | ProvisionState::CleanWait
                    | ProvisionState::InspectWait
            )
        );
        let to = from
            .filter(|_| waiting)
            .and_then(|s| states::next(s, event));
        let (Some(from), Some(to)) = (from, to) else {
            release(lock).await;
            return Err(ConductorError::InvalidState {
                action: "call-back".into(),
                node: node.uuid,
                state: node.provision_state,
            });
        };
        node.provision_state = to.as_str().into();
        node.target_provision_state = states::target_of(to).map(|s| s.as_str().into());
        node.provision_updated_at = Some(Utc::now());
        let (severity, text) = match &result {
            Ok(()) => ("INFO", format!("call-back : {from} -> {to}")),
            Err(why) => {
                node.last_error = Some(why.clone());
                ("ERROR", format!("call-back failed: {why} : {from} -> {to}"))
            }
        };
        let saved = self.store.save_node(&lock, &node).await;
        if saved.is_ok() {
            self.history(&node.uuid, "provisioning", severity, &text)
                .await;
        }
        match saved {
            Ok(n) if to.has_worker() => {
                worker::spawn(self.clone(), lock, n.clone());
                Ok(n)
            }
            Ok(n) => {
                release(lock).await;
                Ok(n)
            }
            Err(e) => {
                release(lock).await;
                Err(e.into())
            }
        }
    }

    /// Starts a power action ("power on", "power off", "rebooting", "soft power off",
    /// "soft rebooting") on the node; the work runs in the background.
    pub async fn set_power(&self, ident: &str, target: &str) -> ConductorResult<Node> {
        let action = worker::power_action(target).ok_or_else(|| {
            ConductorError::Invalid(format!(
                "\"{target}\" is not a valid power target: use \"power on\", \"power off\", \"rebooting\", \"soft power off\" or \"soft rebooting\""
            ))
        })?;
        let (this, ident, target) = (self.clone(), ident.to_string(), target.to_string());
        Conductor::detached(async move { this.set_power_now(&ident, &target, action).await }).await
    }

    async fn set_power_now(
        &self,
        ident: &str,
        target: &str,
        action: deploy_drivers::PowerAction,
    ) -> ConductorResult<Node> {
        let (lock, mut node) = self.lock(ident).await?;
        if let Err(e) = compose(&node, &self.settings, &self.services) {
            release(lock).await;
            return Err(e);
        }
        node.target_power_state = Some(target.to_string());
        let node = match self.store.save_node(&lock, &node).await {
            Ok(n) => n,
            Err(e) => {
                release(lock).await;
                return Err(e.into());
            }
        };
        worker::spawn_power(self.clone(), lock, node.clone(), action);
        Ok(node)
    }

    /// Each interface's validation result: (interface, ok, reason).
    pub async fn validate(&self, ident: &str) -> ConductorResult<Vec<(String, bool, String)>> {
        let node = self.store.node(ident).await?;
        let composed = compose(&node, &self.settings, &self.services);
        let mut out = Vec::new();
        for iface in [
            "bios",
            "boot",
            "console",
            "deploy",
            "firmware",
            "inspect",
            "management",
            "network",
            "power",
            "raid",
            "rescue",
            "storage",
        ] {
            let result = match (&composed, iface) {
                (Err(e), _) => (false, e.to_string()),
                (Ok(c), "deploy") => {
                    match c.deploy.validate(&worker::node_view(&node, &[]), &c.ports) {
                        Ok(()) => (true, String::new()),
                        Err(e) => (false, e.to_string()),
                    }
                }
                (Ok(_), _) => (true, String::new()),
            };
            out.push((iface.to_string(), result.0, result.1));
        }
        Ok(out)
    }

    fn validate_deploy(&self, node: &Node) -> ConductorResult<()> {
        let composed = compose(node, &self.settings, &self.services)?;
        if let Err(e) = deploy_drivers::image_kind::classify(&serde_json::Value::Object(
            node.instance_info.clone(),
        )) {
            return Err(ConductorError::Invalid(format!(
                "Cannot deploy node {}: {e}",
                node.uuid
            )));
        }
        composed
            .deploy
            .validate(&worker::node_view(node, &[]), &composed.ports)
            .map_err(|e| ConductorError::Invalid(format!("Cannot deploy node {}: {e}", node.uuid)))
    }

    pub(crate) async fn history(&self, node: &str, event_type: &str, severity: &str, event: &str) {
        if let Err(e) = self
            .store
            .add_history(node, self.name(), event_type, severity, event)
            .await
        {
            tracing::warn!(node, error = %e, "cannot record node history");
        }
    }
}

/// Releases `lock` now, logging a lock already lost (taken over) or a database failure.
pub(crate) async fn release(lock: NodeLock) {
    let uuid = lock.uuid().to_string();
    match lock.release().await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(node = %uuid, "node lock was already released or taken over"),
        Err(e) => tracing::error!(node = %uuid, error = %e, "cannot release node lock"),
    }
}

/// Refuses a driver this conductor cannot drive, in Ironic's words.
pub fn check_driver(driver: &str) -> ConductorResult<()> {
    if SUPPORTED_DRIVERS.contains(&driver) {
        Ok(())
    } else {
        Err(ConductorError::Invalid(format!(
            "No valid host was found. Reason: No conductor service registered which supports driver {driver} for conductor group \"\". Ensure the driver is valid and enabled (supported: {}).",
            SUPPORTED_DRIVERS.join(", ")
        )))
    }
}
