//! `ironcast cache` (issue 4).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum CacheCmd {
    /// Not built yet (issue 4).
    Todo,
}

pub async fn run(_cmd: CacheCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is not built yet (issue 4)")
}
