//! `erase_metadata` and `erase_disk` (filled in by the next step).
use std::path::Path;

use deploy_drivers::{AgentProgress, PortErrorKind};
use serde_json::Value;

use super::commands::{CommandError, Limits};

pub fn metadata(_device: &Path, _limits: &Limits) -> Result<Value, CommandError> {
    Err(CommandError::new(
        PortErrorKind::Rejected,
        "erase_metadata is not built yet",
    ))
}

pub fn whole_disk(
    _device: &Path,
    _limits: &Limits,
    _progress: &(dyn Fn(AgentProgress) + Sync),
) -> Result<Value, CommandError> {
    Err(CommandError::new(
        PortErrorKind::Rejected,
        "erase_disk is not built yet",
    ))
}
