//! `ironcast image` (issue 6).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCmd {
    /// Not built yet (issue 6).
    Todo,
}

pub async fn run(_cmd: ImageCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is not built yet (issue 6)")
}
