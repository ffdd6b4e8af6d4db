//! `ironcast agent`: the in-ramdisk agent. With no flags it reads `ironcast.url=`,
//! `ironcast.node=` and `ironcast.token=` from /proc/cmdline (the ramdisk's init starts it so,
//! after DHCP), then calls the conductor until its session ends (see `agent::protocol`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::agent::client::Client;
use crate::agent::cmdline::{self, Assignment};
use crate::agent::commands::Limits;
use crate::agent::runtime::{self, LocalMachine, Options};

/// The longest time the conductor holds a heartbeat ([agent] poll_wait_s is at most 60).
const CONDUCTOR_POLL_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The conductor's URL (kernel arg ironcast.url).
    #[arg(long, env = "IRONCAST_AGENT_CONDUCTOR_URL", requires_all = ["node", "token"])]
    conductor_url: Option<String>,
    /// The node's UUID (kernel arg ironcast.node).
    #[arg(long, env = "IRONCAST_AGENT_NODE", requires_all = ["conductor_url", "token"])]
    node: Option<String>,
    /// This boot's agent token (kernel arg ironcast.token).
    #[arg(long, env = "IRONCAST_AGENT_TOKEN", requires_all = ["conductor_url", "node"], hide_env_values = true)]
    token: Option<String>,
    /// Read the three from the kernel command line (the default when they are not given).
    #[arg(long, conflicts_with_all = ["conductor_url", "node", "token"])]
    from_cmdline: bool,
    /// The kernel command line to read.
    #[arg(long, default_value = "/proc/cmdline")]
    cmdline_file: PathBuf,
    /// Only write to devices or files under this path (repeatable); none given: any disk.
    #[arg(long = "allow", value_name = "PATH")]
    allow: Vec<PathBuf>,
    /// Also write regular files (e.g. a test's disk image); off: block devices only.
    #[arg(long)]
    allow_file: bool,
    /// Report power_off and reboot but leave the machine running, and exit.
    #[arg(long, env = "IRONCAST_AGENT_NO_ACT")]
    no_act: bool,
    /// Longest pause between attempts to reach the conductor (s).
    #[arg(long, default_value_t = 30)]
    max_backoff_s: u64,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    super::serve::init_tracing();
    let assignment = match (args.conductor_url, args.node, args.token) {
        (Some(conductor_url), Some(node), Some(token)) if !args.from_cmdline => Assignment {
            conductor_url: conductor_url.trim_end_matches('/').to_string(),
            node,
            token,
        },
        _ => {
            let text = std::fs::read_to_string(&args.cmdline_file).with_context(|| {
                format!(
                    "cannot read the kernel command line {}",
                    args.cmdline_file.display()
                )
            })?;
            cmdline::parse(&text)?
        }
    };
    let client = Client::new(assignment, CONDUCTOR_POLL_MAX)?;
    let options = Options {
        max_backoff: Duration::from_secs(args.max_backoff_s.max(1)),
        ..Options::default()
    };
    let machine = Arc::new(LocalMachine {
        limits: Limits {
            allow: args.allow,
            allow_file: args.allow_file,
        },
        no_act: args.no_act,
    });
    let action = runtime::run(client, machine, options).await?;
    println!(
        "ironcast agent: {} requested; exiting (no-act)",
        action.name()
    );
    Ok(ExitCode::SUCCESS)
}
