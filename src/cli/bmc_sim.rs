//! `ironcast bmc-sim` (issue 5).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BmcSimArgs {}

pub async fn run(_args: BmcSimArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is not built yet (issue 5)")
}
