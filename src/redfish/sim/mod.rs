//! A simulated BMC fleet: N Redfish systems served by one axum server on loopback.
//!
//! It imitates, it does not emulate, hardware: sessions and Basic auth, power (immediate
//! transitions), boot override, and a CD slot per system whose InsertMedia fetches the image
//! the way iDRAC does (HEAD, then Range GETs) into a file of a private temp dir. Powering on
//! with a Cd override asks a pluggable [`BootInspector`] for the kernel command lines the ISO
//! would boot and shows the first under `Oem.Ironcast.BootedCmdline` of the System.
//!
//! [`Faults`] switch on behaviours of real BMCs that sushy-tools cannot produce (session-only
//! auth, stale ETags, task monitors, VirtualMedia only under Managers, PATCH-only insert,
//! rejected Inserted/WriteProtected, insert failing right after eject, 503 + Retry-After,
//! vendor names); each says whom it imitates.
//! Used by `ironcast bmc-sim`, the demo and tests/redfish.rs.
//!
//! Non-goals: persistence, realistic timing, BIOS/storage/network resources, TLS.

mod fetch;
mod routes;
mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use state::Fleet as FleetState;
pub use state::Stats;

/// Reads a fetched ISO and returns the kernel command lines of its boot entries, default
/// first. Called in a blocking thread.
pub type BootInspector = Arc<dyn Fn(&Path) -> Result<Vec<String>, String> + Send + Sync>;

/// What a simulated system just did with its power, for a [`BootHook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerEvent {
    /// It booted from `from` ("Cd", "Hdd", "Pxe"); `cmdline` is the default kernel command
    /// line of the CD it booted, when it booted one.
    Booted {
        from: &'static str,
        cmdline: Option<String>,
    },
    /// It powered off (or is about to restart).
    Off,
}

/// Called with a system's id on every power event: the demo and the fleet benchmark start a
/// simulated agent when a system boots the agent ISO, and stop it when it powers off.
pub type BootHook = Arc<dyn Fn(&str, PowerEvent) + Send + Sync>;

/// Behaviours of real BMCs, off by default.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Refuse Basic auth; only sessions work (iLO/XCC with Basic disabled).
    pub session_only: bool,
    /// The first ETag-guarded PATCH is answered 412, as if another client had written in
    /// between (any BMC that enforces If-Match, e.g. iLO 5).
    pub stale_etag_once: bool,
    /// Reset answers 202 + a task monitor (iDRAC and iLO jobs).
    pub reset_as_task: bool,
    /// The task of `reset_as_task` ends in Exception instead of Completed.
    pub task_fails: bool,
    /// No VirtualMedia under the System, only under its Manager (iDRAC, iLO before 5.x).
    pub vmedia_under_managers_only: bool,
    /// The CD slot has no InsertMedia action; insert is a PATCH (Lenovo XCC).
    pub insert_patch_only: bool,
    /// InsertMedia with Inserted or WriteProtected in the body is a 400 (Supermicro).
    pub reject_insert_flags: bool,
    /// The first N InsertMedia calls after an eject answer 500 while the old media is being
    /// released (iDRAC).
    pub insert_fails_after_eject: u32,
    /// The first N requests are answered 503 with `Retry-After: 1` (a BMC busy rebooting).
    pub unavailable_first: u32,
    /// `Vendor` of the service root and `Manufacturer` of the systems ("Ironcast" if None).
    pub vendor: Option<String>,
}

/// How to start a fleet.
#[derive(Clone)]
pub struct FleetOptions {
    pub nodes: usize,
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// User name and password the BMCs accept; None = no auth at all.
    pub credentials: Option<(String, String)>,
    pub faults: Faults,
    pub inspector: BootInspector,
    /// Told of every boot and power-off; `None`: nobody listens.
    pub on_power: Option<BootHook>,
}

impl FleetOptions {
    /// `nodes` systems on 127.0.0.1, port 0, user `admin` / `password`, no faults, and an
    /// inspector that says no ISO reader is wired in.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: Some(("admin".into(), "password".into())),
            faults: Faults::default(),
            inspector: Arc::new(|_| Err("no ISO reader is wired into this simulator".into())),
            on_power: None,
        }
    }
}

/// Starts fleets.
pub struct Fleet;

/// A running fleet; stops when dropped (or by [`FleetHandle::shutdown`]).
pub struct FleetHandle {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub addr: SocketAddr,
    /// Ids of the systems, in order.
    pub system_ids: Vec<String>,
    state: Arc<FleetState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Why a fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the media directory: {0}")]
    MediaDir(std::io::Error),
    #[error("cannot build the HTTP client that fetches media: {0}")]
    Http(String),
}

/// Id of system number `i` (0-based): a UUID, stable across runs.
pub fn system_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", i + 1)
}

impl Fleet {
    pub async fn start(opts: FleetOptions) -> Result<FleetHandle, SimError> {
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .map_err(|source| SimError::Bind {
                bind: opts.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            bind: opts.bind,
            source,
        })?;
        let ids: Vec<String> = (0..opts.nodes).map(system_id).collect();
        let state = Arc::new(FleetState::new(&ids, opts)?);
        let app = routes::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FleetHandle {
            base_url: format!("http://{addr}"),
            addr,
            system_ids: ids,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

impl FleetHandle {
    /// Metal3-style BMC address of system `i`.
    pub fn address(&self, i: usize) -> String {
        format!(
            "redfish+http://{}/redfish/v1/Systems/{}",
            self.addr, self.system_ids[i]
        )
    }

    /// Request counters (for tests and the demo).
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Forgets every session, as a BMC reboot would: clients must log in again.
    pub fn expire_sessions(&self) {
        self.state.expire_sessions();
    }

    /// The kernel command line system `id` booted last, if it booted from CD.
    pub fn booted_cmdline(&self, id: &str) -> Option<String> {
        self.state
            .system(id)
            .and_then(|s| s.lock().ok()?.booted.clone())
    }

    /// Where system `id` booted from last ("Cd", "Hdd", "Pxe"), if it booted.
    pub fn booted_from(&self, id: &str) -> Option<&'static str> {
        self.state
            .system(id)
            .and_then(|s| s.lock().ok()?.booted_from)
    }

    /// How many times system `id` booted: a deploy boots it once, a takeover never.
    pub fn boots(&self, id: &str) -> u32 {
        self.state
            .system(id)
            .and_then(|s| s.lock().ok().map(|s| s.boots))
            .unwrap_or(0)
    }

    /// Makes system `id` report Status.Health `health` ("OK", "Warning", "Critical").
    pub fn set_health(&self, id: &str, health: &'static str) {
        if let Some(Ok(mut s)) = self.state.system(id).map(|s| s.lock()) {
            s.health = Some(health);
        }
    }

    /// The image URL in system `id`'s virtual CD, if one is inserted.
    pub fn inserted(&self, id: &str) -> Option<String> {
        self.state
            .system(id)
            .and_then(|s| s.lock().ok()?.image.clone())
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FleetHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
