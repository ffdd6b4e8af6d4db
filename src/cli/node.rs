//! `ironcast node` (issue 3).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum NodeCmd {
    /// Not built yet (issue 3).
    Todo,
}

pub async fn run(_cmd: NodeCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is not built yet (issue 3)")
}
