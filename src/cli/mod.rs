//! The `ironcast` command line: the server (`serve`), the operator CLI over the API, and local
//! tools (`iso`, `ramdisk`, `image`, `cache`, `bmc-sim`, `demo`).
//!
//! `main` → [`run`] → `Result<ExitCode>`; the error chain is printed once, here, and a broken
//! pipe (output piped into `head`) counts as success.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent;
mod bmc_sim;
mod cache;
mod capture;
mod client;
mod demo;
mod image;
mod iso;
mod metal3;
mod node;
mod port;
mod private;
mod ramdisk;
pub mod serve;

#[derive(Debug, Parser)]
#[command(
    name = "ironcast",
    version,
    about = "Bare-metal provisioning conductor, Ironic-compatible"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, the conductor and the image server in one process.
    Serve(serve::ServeArgs),
    /// Manage nodes through the API.
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Manage ports (MAC addresses of nodes) through the API.
    #[command(subcommand)]
    Port(port::PortCmd),
    /// Inspect and remaster boot ISOs.
    #[command(subcommand)]
    Iso(iso::IsoCmd),
    /// Build the agent ramdisk (ISO, kernel + initramfs).
    #[command(subcommand)]
    Ramdisk(ramdisk::RamdiskCmd),
    /// Write and inspect disk images.
    #[command(subcommand)]
    Image(image::ImageCmd),
    /// Inspect and manage the image cache.
    #[command(subcommand)]
    Cache(cache::CacheCmd),
    /// Run the in-ramdisk agent: call the conductor, run its commands (see the README).
    Agent(agent::AgentArgs),
    /// Run a fleet of simulated Redfish BMCs on loopback.
    BmcSim(bmc_sim::BmcSimArgs),
    /// Deploy a demo ISO to simulated nodes, end to end, and undeploy.
    Demo(demo::DemoArgs),
    /// Apply Metal3 manifests (BareMetalHost and Secret documents), as kubectl apply does.
    Apply(metal3::ApplyArgs),
    /// Show Metal3 resources: `get bmh [NAME]`.
    #[command(subcommand)]
    Get(metal3::GetCmd),
    /// Delete Metal3 resources: `delete bmh NAME`.
    #[command(subcommand)]
    Delete(metal3::DeleteCmd),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Node(cmd) => node::run(cmd).await,
        Command::Port(cmd) => port::run(cmd).await,
        Command::Iso(cmd) => iso::run(cmd).await,
        Command::Ramdisk(cmd) => ramdisk::run(cmd).await,
        Command::Image(cmd) => image::run(cmd).await,
        Command::Cache(cmd) => cache::run(cmd).await,
        Command::Agent(args) => agent::run(args).await,
        Command::BmcSim(args) => bmc_sim::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Apply(args) => metal3::apply(args).await,
        Command::Get(cmd) => metal3::get(cmd).await,
        Command::Delete(cmd) => metal3::delete(cmd).await,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
