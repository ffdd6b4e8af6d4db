//! `ironcast iso` (issue 7).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum IsoCmd {
    /// Not built yet (issue 7).
    Todo,
}

pub async fn run(_cmd: IsoCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is not built yet (issue 7)")
}
