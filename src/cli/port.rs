//! `ironcast port` (issue 3).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum PortCmd {
    /// Not built yet (issue 3).
    Todo,
}

pub async fn run(_cmd: PortCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is not built yet (issue 3)")
}
