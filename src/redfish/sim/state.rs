//! State of the simulated fleet: one small struct per system, sessions, counters.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::{BootHook, BootInspector, Faults, FleetOptions, SimError};

/// One simulated system. Kept small: 1,000 of them live in one process.
#[derive(Debug, Default)]
pub struct SystemState {
    pub on: bool,
    /// BootSourceOverrideTarget ("None", "Cd", "Pxe", "Hdd", "UefiHttp").
    pub boot_target: &'static str,
    /// BootSourceOverrideEnabled ("Disabled", "Once", "Continuous").
    pub boot_enabled: &'static str,
    pub uefi: bool,
    /// Bumped on every change; the ETag is `W/"<generation>"`.
    pub generation: u32,
    /// Image URL of the CD slot, when inserted.
    pub image: Option<String>,
    /// Bytes of the fetched image (in `media_dir/<id>.iso`).
    pub image_len: u64,
    pub vmedia_generation: u32,
    pub boot_on_next_server_reset: bool,
    /// What the last power-on booted: "Cd", "Pxe", "Hdd".
    pub booted_from: Option<&'static str>,
    /// How many times the system booted (power on, or restart while on).
    pub boots: u32,
    pub booted: Option<String>,
    pub booted_entries: Vec<String>,
    pub boot_error: Option<String>,
    /// The system's Status.Health as the BMC reports it; None: "OK" (the usual answer). A
    /// test sets "Warning" or "Critical", which no real peer here can be made to report.
    pub health: Option<&'static str>,
}

/// Counters the tests assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub sessions_created: u32,
    pub sessions_deleted: u32,
    pub active_sessions: u32,
    pub basic_refused: u32,
    pub precondition_failed: u32,
    pub unavailable_sent: u32,
    pub task_polls: u32,
    pub insert_actions: u32,
    pub insert_patches: u32,
    pub insert_flags_rejected: u32,
    pub ejects: u32,
    pub insert_failures_sent: u32,
    pub media_heads: u32,
    pub media_range_gets: u32,
}

#[derive(Default)]
pub struct Counters {
    pub sessions_created: AtomicU32,
    pub sessions_deleted: AtomicU32,
    pub basic_refused: AtomicU32,
    pub precondition_failed: AtomicU32,
    pub unavailable_sent: AtomicU32,
    pub task_polls: AtomicU32,
    pub insert_actions: AtomicU32,
    pub insert_patches: AtomicU32,
    pub insert_flags_rejected: AtomicU32,
    pub ejects: AtomicU32,
    pub media_heads: AtomicU32,
    pub media_range_gets: AtomicU32,
    pub requests: AtomicU32,
    pub stale_etag_armed: AtomicU32,
    /// Inserts still to fail since the last eject (`Faults::insert_fails_after_eject`).
    pub insert_failures_left: AtomicU32,
    pub insert_failures_sent: AtomicU32,
    pub next_id: AtomicU32,
}

/// A task monitor of `Faults::reset_as_task`: polls left before it completes.
pub struct TaskEntry {
    pub polls_left: u32,
    pub system: String,
    pub reset: &'static str,
}

pub struct Fleet {
    pub systems: HashMap<String, Mutex<SystemState>>,
    pub order: Vec<String>,
    pub credentials: Option<(String, String)>,
    /// Session id → token.
    pub sessions: Mutex<HashMap<String, String>>,
    pub tasks: Mutex<HashMap<u32, TaskEntry>>,
    pub faults: Faults,
    pub inspector: BootInspector,
    pub on_power: Option<BootHook>,
    pub media_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub counters: Counters,
    /// Systems whose insert is being fetched (an insert during a fetch is a 409).
    pub fetching: Mutex<HashSet<String>>,
}

impl Fleet {
    pub fn new(ids: &[String], opts: FleetOptions) -> Result<Self, SimError> {
        let systems = ids
            .iter()
            .map(|id| {
                let s = SystemState {
                    boot_target: "None",
                    boot_enabled: "Disabled",
                    uefi: true,
                    generation: 1,
                    vmedia_generation: 1,
                    ..Default::default()
                };
                (id.clone(), Mutex::new(s))
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| SimError::Http(e.to_string()))?;
        let counters = Counters::default();
        if opts.faults.stale_etag_once {
            counters.stale_etag_armed.store(1, Ordering::SeqCst);
        }
        Ok(Self {
            systems,
            order: ids.to_vec(),
            credentials: opts.credentials,
            sessions: Mutex::default(),
            tasks: Mutex::default(),
            faults: opts.faults,
            inspector: opts.inspector,
            on_power: opts.on_power,
            media_dir: tempfile::Builder::new()
                .prefix("ironcast-bmc-sim-")
                .tempdir()
                .map_err(SimError::MediaDir)?,
            http,
            counters,
            fetching: Mutex::default(),
        })
    }

    pub fn system(&self, id: &str) -> Option<&Mutex<SystemState>> {
        self.systems.get(id)
    }

    pub fn media_path(&self, id: &str) -> PathBuf {
        self.media_dir.path().join(format!("{id}.iso"))
    }

    pub fn expire_sessions(&self) {
        if let Ok(mut s) = self.sessions.lock() {
            s.clear();
        }
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let g = |a: &AtomicU32| a.load(Ordering::SeqCst);
        Stats {
            sessions_created: g(&c.sessions_created),
            sessions_deleted: g(&c.sessions_deleted),
            active_sessions: self.sessions.lock().map(|s| s.len() as u32).unwrap_or(0),
            basic_refused: g(&c.basic_refused),
            precondition_failed: g(&c.precondition_failed),
            unavailable_sent: g(&c.unavailable_sent),
            task_polls: g(&c.task_polls),
            insert_actions: g(&c.insert_actions),
            insert_patches: g(&c.insert_patches),
            insert_flags_rejected: g(&c.insert_flags_rejected),
            ejects: g(&c.ejects),
            insert_failures_sent: g(&c.insert_failures_sent),
            media_heads: g(&c.media_heads),
            media_range_gets: g(&c.media_range_gets),
        }
    }
}
