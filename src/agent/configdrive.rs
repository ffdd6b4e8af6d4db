//! `write_config_drive` (filled in by the next step).
use std::path::Path;

use deploy_drivers::{AgentProgress, PortErrorKind};
use serde_json::Value;

use super::commands::{CommandError, Limits};

pub fn run(
    _device: &Path,
    _url: &str,
    _limits: &Limits,
    _progress: &(dyn Fn(AgentProgress) + Sync),
) -> Result<Value, CommandError> {
    Err(CommandError::new(
        PortErrorKind::Rejected,
        "write_config_drive is not built yet",
    ))
}
