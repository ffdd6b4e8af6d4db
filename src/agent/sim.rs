//! Simulated agents for the BMC simulator (`bmc-sim`, the demo, the fleet benchmark).
//!
//! When a simulated system boots a CD whose kernel command line carries `ironcast.url=`,
//! `ironcast.node=` and `ironcast.token=` (the agent ISO, remastered by the conductor), a task
//! runs the real agent [`runtime`](super::runtime) — same client, same protocol, same token
//! rules — against a [`SimMachine`] instead of this host. The simulated machine has one disk
//! and one NIC; `write_image` really streams the image from the image server and verifies its
//! checksum, but keeps no bytes; the config drive is fetched the same way; erases succeed at
//! once; `capture_disk` reads a made-up disk ([`SimDisk`]) and uploads it for real.
//! Powering the system off (or restarting it) ends the task, as it would end a real
//! agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deploy_drivers::{
    AgentCommand, AgentProgress, CaptureCommand, Inventory, InventoryDisk, InventoryInterface,
    PortErrorKind,
};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::client::Client;
use super::commands::CommandError;
use super::power::Action;
use super::runtime::{self, Machine, Options};
use crate::redfish::sim::{BootHook, PowerEvent};
use crate::writer::{Algorithm, Hasher};

/// Size of the simulated root disk.
const DISK_BYTES: u64 = 100 << 30;

/// A machine with nothing to write: it downloads and verifies what it is asked to write.
pub struct SimMachine {
    system: String,
    http: reqwest::Client,
}

impl SimMachine {
    pub fn new(system: &str) -> SimMachine {
        SimMachine {
            system: system.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Streams `url` to its end; returns the bytes read and, with `algorithm`, their digest.
    fn fetch(
        &self,
        url: &str,
        algorithm: Option<Algorithm>,
        progress: &(dyn Fn(AgentProgress) + Sync),
    ) -> Result<(u64, Option<String>), CommandError> {
        let fail =
            |e: String| CommandError::new(PortErrorKind::Unreachable, format!("GET {url}: {e}"));
        tokio::runtime::Handle::current().block_on(async {
            let resp = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| fail(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(fail(format!("the server answered {}", resp.status())));
            }
            let total = resp.content_length();
            let mut hasher = algorithm.map(Hasher::new);
            let mut done = 0u64;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| fail(e.to_string()))?;
                done += chunk.len() as u64;
                if let Some(h) = &mut hasher {
                    h.update(&chunk);
                }
                progress(AgentProgress {
                    done_bytes: done,
                    total_bytes: total,
                });
            }
            Ok((done, hasher.map(Hasher::hex)))
        })
    }
}

impl Machine for SimMachine {
    fn inventory(&self) -> Inventory {
        // A stable MAC per system, from its id's last hex digits.
        let tail: String = self
            .system
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        let tail = format!("{:0>6}", &tail[tail.len().saturating_sub(6)..]);
        let mac = format!("52:54:00:{}:{}:{}", &tail[0..2], &tail[2..4], &tail[4..6]);
        Inventory {
            disks: vec![InventoryDisk {
                name: "/dev/sda".into(),
                size: DISK_BYTES,
                model: Some("ironcast simulated disk".into()),
                serial: Some(format!("SIM-{}", self.system)),
                ..InventoryDisk::default()
            }],
            interfaces: vec![InventoryInterface {
                name: "eth0".into(),
                mac_address: mac,
                ipv4_address: None,
            }],
            memory_mb: 4096,
            cpu_count: 2,
            cpu_arch: "x86_64".into(),
            cpu_model: Some("ironcast simulated CPU".into()),
            boot_mode: None,
        }
    }

    fn run(
        &self,
        command: &AgentCommand,
        progress: &(dyn Fn(AgentProgress) + Sync),
    ) -> Result<Value, CommandError> {
        match command {
            AgentCommand::Inventory => serde_json::to_value(self.inventory())
                .map_err(|e| CommandError::new(PortErrorKind::Other, e.to_string())),
            AgentCommand::WriteImage(cmd) => {
                let expected = super::resolve_checksum(cmd)
                    .map_err(|e| CommandError::new(PortErrorKind::InvalidInput, e.to_string()))?;
                let (bytes, digest) = self.fetch(
                    &cmd.image_url,
                    expected.as_ref().map(|c| c.algorithm),
                    progress,
                )?;
                if let (Some(want), Some(got)) = (&expected, &digest) {
                    if !want.hex.eq_ignore_ascii_case(got) {
                        return Err(CommandError::new(
                            PortErrorKind::InvalidInput,
                            format!(
                                "checksum mismatch for {}: expected {}:{}, got {}",
                                cmd.image_url,
                                want.algorithm.name(),
                                want.hex,
                                got
                            ),
                        ));
                    }
                }
                Ok(json!({"device": "/dev/sda", "bytes": bytes, "digest": digest}))
            }
            AgentCommand::WriteConfigDrive { device, url } => {
                let (bytes, _) = self.fetch(url, None, progress)?;
                Ok(json!({"device": device, "bytes": bytes}))
            }
            AgentCommand::EraseMetadata { .. } | AgentCommand::EraseDisk { .. } => {
                Ok(json!({"devices": ["/dev/sda"]}))
            }
            AgentCommand::PowerOff | AgentCommand::Reboot => Ok(json!({})),
            AgentCommand::CaptureDisk(_) => Err(CommandError::new(
                PortErrorKind::Other,
                "capture_disk runs through Machine::capture",
            )),
        }
    }

    fn power(&self, _action: Action) -> std::io::Result<()> {
        // The conductor powers the system through its BMC; the simulated agent just stops.
        Ok(())
    }

    fn capture(
        &self,
        command: &CaptureCommand,
        out: &mut dyn std::io::Write,
        progress: &(dyn Fn(AgentProgress) + Sync),
    ) -> Result<Value, CommandError> {
        let disk = SimDisk {
            system: self.system.clone(),
        };
        super::capture::capture(&disk, command, out, progress)
    }
}

/// The simulated root disk as a capture reads it: zeros but for two regions of text lines
/// naming the system and their offset (the first MiB, and 256 KiB at 50 GiB), so a capture
/// of any system is small, quick and tells which system it came from.
pub struct SimDisk {
    pub system: String,
}

impl SimDisk {
    pub const REGIONS: [(u64, u64); 2] = [(0, 1 << 20), (50 << 30, 256 << 10)];

    /// The 128-byte line at `line_start` (a multiple of 128).
    fn line(&self, line_start: u64) -> [u8; 128] {
        let mut line = [b' '; 128];
        let text = format!("IRONCAST-SIM-DISK {} {line_start:016x}", self.system);
        let n = text.len().min(127);
        line[..n].copy_from_slice(&text.as_bytes()[..n]);
        line[127] = b'\n';
        line
    }
}

impl super::capture::DiskSource for SimDisk {
    fn size(&self) -> u64 {
        DISK_BYTES
    }
    fn next_data(&self, from: u64) -> u64 {
        Self::REGIONS
            .iter()
            .find(|(at, len)| from < at + len)
            .map_or(DISK_BYTES, |(at, _)| from.max(*at))
    }
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        let mut line = (u64::MAX, [0u8; 128]);
        for (i, b) in buf.iter_mut().enumerate() {
            let p = at + i as u64;
            let inside = Self::REGIONS.iter().any(|(s, l)| p >= *s && p < s + l);
            if !inside {
                *b = 0;
                continue;
            }
            if line.0 != p & !127 {
                line = (p & !127, self.line(p & !127));
            }
            *b = line.1[(p & 127) as usize];
        }
        Ok(())
    }
}

/// A hook for the BMC simulator that runs a simulated agent on every system that boots the
/// agent ISO, and stops it when the system powers off.
pub fn agent_hook() -> BootHook {
    let running: Arc<Mutex<HashMap<String, JoinHandle<()>>>> = Arc::default();
    Arc::new(move |system: &str, event: PowerEvent| {
        let Ok(mut running) = running.lock() else {
            return;
        };
        if let Some(task) = running.remove(system) {
            task.abort();
        }
        let PowerEvent::Booted {
            cmdline: Some(cmdline),
            ..
        } = event
        else {
            return;
        };
        let Ok(assignment) = super::cmdline::parse(&cmdline) else {
            return; // not the agent ISO
        };
        let Ok(client) = Client::new(assignment, Duration::from_secs(30)) else {
            return;
        };
        let machine = Arc::new(SimMachine::new(system));
        let options = Options {
            max_backoff: Duration::from_secs(2),
            ..Options::default()
        };
        let system_id = system.to_string();
        running.insert(
            system.to_string(),
            tokio::spawn(async move {
                if let Err(e) = runtime::run(client, machine, options).await {
                    tracing::debug!(system = %system_id, error = %e, "simulated agent ended");
                }
            }),
        );
    })
}
