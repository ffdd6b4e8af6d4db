//! `ironcast bmc-sim`: a fleet of simulated Redfish BMCs on loopback (see `redfish::sim`).
//!
//! Prints the base URL on stderr and one Metal3-style BMC address per system on stdout, then
//! serves until interrupted (Ctrl-C or SIGTERM).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;

use crate::redfish::sim::{Fleet, FleetOptions};

#[derive(Debug, clap::Args)]
pub struct BmcSimArgs {
    /// Number of simulated systems.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// User name the BMCs accept.
    #[arg(long, default_value = "admin")]
    username: String,
    /// Password the BMCs accept.
    #[arg(
        long,
        env = "IRONCAST_BMC_SIM_PASSWORD",
        default_value = "password",
        hide_env_values = true
    )]
    password: String,
    /// Accept requests without any credentials.
    #[arg(long)]
    no_auth: bool,
    /// Vendor the BMCs claim to be ("Dell", "HPE", "Lenovo", "Supermicro"): clients then apply
    /// that vendor's quirks.
    #[arg(long)]
    vendor: Option<String>,
}

pub async fn run(args: BmcSimArgs) -> anyhow::Result<ExitCode> {
    if args.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    let mut opts = FleetOptions::new(args.nodes);
    opts.inspector = crate::demo::iso_boot_inspector();
    opts.on_power = Some(crate::agent::sim::agent_hook());
    opts.bind = args.bind;
    opts.credentials = (!args.no_auth).then(|| (args.username.clone(), args.password.clone()));
    opts.faults.vendor = args.vendor.clone();
    let fleet = Fleet::start(opts)
        .await
        .with_context(|| format!("starting {} simulated BMCs", args.nodes))?;
    eprintln!(
        "bmc-sim: {} systems at {}/redfish/v1/ (user {:?}); Ctrl-C stops",
        fleet.system_ids.len(),
        fleet.base_url,
        if args.no_auth {
            "<none>"
        } else {
            &args.username
        }
    );
    {
        let mut out = std::io::stdout().lock();
        for i in 0..fleet.system_ids.len() {
            writeln!(out, "{}", fleet.address(i))?;
        }
        out.flush()?;
    }
    // Stop on Ctrl-C or SIGTERM, so the fleet's media directory is removed either way.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    fleet.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
