//! Runs one command on the agent's machine (blocking: call it from a blocking thread) and
//! turns the outcome into what the conductor is told: a JSON result, or an error with the
//! [`PortErrorKind`] the deploy driver acts on and a message naming the device and the cause.

use std::path::{Path, PathBuf};

use deploy_drivers::{AgentCommand, AgentProgress, PortErrorKind, WriteCommand};
use serde_json::{json, Value};

use super::write::{self, AgentError};
use crate::writer::WriteError;

/// A failed command, as reported to the conductor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub kind: PortErrorKind,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: PortErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What every command may touch.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Devices (or files) commands may write must lie under these paths; empty: any.
    pub allow: Vec<PathBuf>,
    /// Also write regular files (a test's disk file); off: block devices only.
    pub allow_file: bool,
}

impl Limits {
    /// The writer's options for these limits.
    pub fn write_options(&self) -> crate::writer::WriteOptions {
        crate::writer::WriteOptions {
            allow: self.allow.clone(),
            allow_file: self.allow_file,
            ..crate::writer::WriteOptions::default()
        }
    }
}

/// Runs `command` (not `power_off` / `reboot`, which the runtime handles after reporting).
pub fn run(
    command: &AgentCommand,
    limits: &Limits,
    progress: &(dyn Fn(AgentProgress) + Sync),
) -> Result<Value, CommandError> {
    match command {
        AgentCommand::Inventory => serde_json::to_value(super::inventory::collect())
            .map_err(|e| CommandError::new(PortErrorKind::Other, e.to_string())),
        AgentCommand::WriteImage(cmd) => write_image(cmd, limits, progress),
        AgentCommand::WriteConfigDrive { device, url } => {
            super::configdrive::run(Path::new(device), url, limits, progress)
        }
        AgentCommand::EraseMetadata { device } => {
            each_disk(device.as_deref(), |d| super::erase::metadata(d, limits))
        }
        AgentCommand::EraseDisk { device } => each_disk(device.as_deref(), |d| {
            super::erase::whole_disk(d, limits, progress)
        }),
        AgentCommand::PowerOff | AgentCommand::Reboot => Ok(json!({})),
        // It needs an upload, which the runtime gives it (`Machine::capture`).
        AgentCommand::CaptureDisk(_) => Err(CommandError::new(
            PortErrorKind::Other,
            "capture_disk runs with an upload to the conductor, through the agent's runtime",
        )),
    }
}

fn write_image(
    cmd: &WriteCommand,
    limits: &Limits,
    progress: &(dyn Fn(AgentProgress) + Sync),
) -> Result<Value, CommandError> {
    if !(cmd.image_url.starts_with("http://") || cmd.image_url.starts_with("https://")) {
        return Err(CommandError::new(
            PortErrorKind::InvalidInput,
            format!(
                "image_url {:?} is not an http(s) URL: the agent streams images from the image server",
                cmd.image_url
            ),
        ));
    }
    let dest = write::root_device(cmd).map_err(agent_error)?;
    let report = write::execute_on(cmd, &dest, limits.write_options(), |p| {
        progress(match p.source_len {
            Some(total) => AgentProgress {
                done_bytes: p.source_read,
                total_bytes: Some(total),
            },
            None => AgentProgress {
                done_bytes: p.written,
                total_bytes: p.virtual_size,
            },
        })
    })
    .map_err(agent_error)?;
    Ok(json!({
        "device": dest.display().to_string(),
        "format": report.format.name(),
        "virtual_size": report.virtual_size,
        "source_bytes": report.source_bytes,
        "digest": report.digest,
        "elapsed_s": report.elapsed.as_secs_f64(),
    }))
}

/// Runs `f` on `device`, or on every installable disk when `None`; the results by device.
fn each_disk(
    device: Option<&str>,
    mut f: impl FnMut(&Path) -> Result<Value, CommandError>,
) -> Result<Value, CommandError> {
    let devices: Vec<PathBuf> = match device {
        Some(d) => vec![PathBuf::from(d)],
        None => write::list_disks()
            .into_iter()
            .filter(|d| !d.removable && d.size_bytes > 0 && !write::is_virtual_disk(&d.name))
            .map(|d| PathBuf::from(format!("/dev/{}", d.name)))
            .collect(),
    };
    if devices.is_empty() {
        return Err(CommandError::new(
            PortErrorKind::InvalidInput,
            "no disk to erase was found in /sys/block: name the device",
        ));
    }
    let mut out = serde_json::Map::new();
    for d in devices {
        out.insert(d.display().to_string(), f(&d)?);
    }
    Ok(Value::Object(out))
}

/// The error kind a write failure means for the deploy.
pub fn write_error(e: &WriteError, context: &str) -> CommandError {
    let kind = match e.cause() {
        WriteError::TargetTooSmall { .. } => PortErrorKind::NoSpace,
        WriteError::NotAllowed { .. } | WriteError::InUse { .. } => PortErrorKind::Rejected,
        WriteError::BadChecksum { .. }
        | WriteError::ChecksumMismatch { .. }
        | WriteError::Unsupported(_)
        | WriteError::Corrupt(_) => PortErrorKind::InvalidInput,
        WriteError::Fetch { .. } => PortErrorKind::Unreachable,
        _ => PortErrorKind::Other,
    };
    let message = if context.is_empty() {
        e.to_string()
    } else {
        format!("{context}: {e}")
    };
    CommandError::new(kind, message)
}

fn agent_error(e: AgentError) -> CommandError {
    match e {
        AgentError::Write(w) => write_error(&w, ""),
        AgentError::NoDisk => CommandError::new(PortErrorKind::InvalidInput, e.to_string()),
        AgentError::NotInChecksumFile { .. } => {
            CommandError::new(PortErrorKind::InvalidInput, e.to_string())
        }
        AgentError::ChecksumFile { .. } => {
            CommandError::new(PortErrorKind::Unreachable, e.to_string())
        }
    }
}
