//! `ironcast demo`: the main job end to end on one machine, with nothing installed but cargo.
//!
//! In a temporary directory it starts the conductor (`serve`'s own start-up: SQLite, cache,
//! ISO engine, image server, API on free loopback ports) and a fleet of simulated Redfish BMCs,
//! builds the demo ISO in memory, enrols N nodes through the API, deploys the ISO to all of
//! them with a per-node kernel arg, prints the command line each BMC says it booted, checks it,
//! undeploys and exits 0. `--bench` adds the fleet figures: total time, p50/p99 per node, CPU,
//! peak memory and the disk used by publications.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::client::{Client, Common, Format};
use super::serve::launch;
use crate::config::Config;
use crate::demo::{demo_agent_iso, demo_iso, iso_boot_inspector};
use crate::redfish::sim::{Fleet, FleetOptions};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of simulated nodes to deploy.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Print fleet figures (time per node, CPU, memory, disk) at the end.
    #[arg(long)]
    bench: bool,
    /// API requests in flight at once.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
    /// Longest wait for each phase (enrol, deploy, undeploy), in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Which deploy path the nodes take: a live ISO through virtual media (`live-iso`), a
    /// whole-disk image written by the agent (`whole-disk`), or every other node each (`both`).
    #[arg(long, value_enum, default_value_t = DeployPath::Both)]
    deploy: DeployPath,
}

/// The deploy paths the demo shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DeployPath {
    LiveIso,
    WholeDisk,
    Both,
}

impl DeployPath {
    /// Whether node number `i` takes the whole-disk path.
    fn whole_disk(self, i: usize) -> bool {
        match self {
            DeployPath::LiveIso => false,
            DeployPath::WholeDisk => true,
            DeployPath::Both => i % 2 == 1,
        }
    }
}

/// Provision states a node rests in; reaching another one is a failure.
const FAILED: &[&str] = &[
    "deploy failed",
    "error",
    "clean failed",
    "inspect failed",
    "enroll",
];

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.nodes == 0 || args.parallel == 0 {
        bail!("--nodes and --parallel must be at least 1");
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    std::fs::write(tmp.path().join("agent.iso"), demo_agent_iso())
        .context("cannot write the demo agent ISO")?;
    let config = demo_config(tmp.path())?;
    let iso_path = tmp.path().join("demo.iso");
    let iso = demo_iso();
    std::fs::write(&iso_path, &iso).context("cannot write the demo ISO")?;
    let checksum = format!("sha256:{}", hex::encode(Sha256::digest(&iso)));
    let disk_path = tmp.path().join("disk.img");
    let disk = crate::demo::demo_disk_image();
    std::fs::write(&disk_path, &disk).context("cannot write the demo disk image")?;
    let disk_checksum = hex::encode(Sha256::digest(&disk));

    let mut fleet_opts = FleetOptions::new(args.nodes);
    fleet_opts.inspector = iso_boot_inspector();
    fleet_opts.on_power = Some(crate::agent::sim::agent_hook());
    let fleet = Fleet::start(fleet_opts)
        .await
        .context("cannot start the simulated BMCs")?;
    let running = launch(&config).await?;
    eprintln!(
        "ironcast demo: API {}, images {}, {} simulated BMCs at {}",
        running.api_url, running.images_url, args.nodes, fleet.base_url
    );
    let client = Client::new(&Common {
        url: running.api_url.clone(),
        user: None,
        password: None,
        format: Format::Table,
    })?;
    let names: Vec<String> = (0..args.nodes).map(|i| format!("demo-{i:04}")).collect();
    let bars = MultiProgress::new();
    let timeout = Duration::from_secs(args.timeout);

    let enrol = phase_bar(&bars, "enrol", args.nodes, args.bench);
    stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let (deploy_interface, instance_info) = if args.deploy.whole_disk(i) {
                let info = json!({
                    "image_source": format!("file://{}", disk_path.display()),
                    "image_checksum": disk_checksum,
                });
                ("direct", info)
            } else {
                let info = json!({
                    "boot_iso": format!("file://{}", iso_path.display()),
                    "boot_iso_checksum": checksum,
                    "kernel_append_params": marker(name),
                });
                ("ramdisk", info)
            };
            let body = json!({
                "name": name,
                "driver": "redfish",
                "deploy_interface": deploy_interface,
                "driver_info": {
                    "redfish_address": fleet.address(i),
                    "redfish_username": "admin",
                    "redfish_password": "password",
                },
                "instance_info": instance_info,
            });
            let client = &client;
            async move {
                client
                    .call(reqwest::Method::POST, "/v1/nodes", Some(&body))
                    .await
            }
        })
        .buffer_unordered(args.parallel)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("enrolling nodes")?;
    for verb in ["manage", "provide"] {
        act(&client, &names, verb, args.parallel).await?;
        let want = if verb == "manage" {
            "manageable"
        } else {
            "available"
        };
        wait_all(&client, &names, want, &enrol, timeout).await?;
    }
    enrol.finish();

    let deploy = phase_bar(&bars, "deploy", args.nodes, args.bench);
    let deploy_start = Instant::now();
    act(&client, &names, "active", args.parallel).await?;
    let per_node = wait_all(&client, &names, "active", &deploy, timeout).await?;
    let deploy_time = deploy_start.elapsed();
    deploy.finish();
    let publications_bytes = dir_size(&running.remaster_dir) + dir_size(&config.imageserver.dir);

    // What each BMC says it booted, checked against the node's marker.
    let mut rows = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let system = &fleet.system_ids[i];
        if args.deploy.whole_disk(i) {
            let from = fleet.booted_from(system).unwrap_or("nothing");
            if from != "Hdd" {
                bail!("{name}: after its whole-disk deploy the BMC booted from {from}, not Hdd");
            }
            let written = written_by_agent(&client, name).await?;
            rows.push(vec![
                name.clone(),
                format!("whole disk: {written}; then booted from its disk"),
            ]);
            continue;
        }
        let booted = fleet.booted_cmdline(system).unwrap_or_default();
        if !booted.contains(&marker(name)) {
            bail!(
                "{name}: the BMC booted {booted:?}, which lacks {:?}",
                marker(name)
            );
        }
        rows.push(vec![name.clone(), format!("live ISO: {booted}")]);
    }
    let shown = rows.len().min(10);
    let headers = ["node", "what it booted (as its BMC and agent report it)"];
    // Printed with the bars suspended so they are not drawn again around the table.
    bars.suspend(|| {
        println!("{}", super::client::table(&headers, &rows[..shown]));
        if rows.len() > shown {
            println!(
                "… and {} more nodes, each with its own marker",
                rows.len() - shown
            );
        }
    });

    let undeploy = phase_bar(&bars, "undeploy", args.nodes, args.bench);
    act(&client, &names, "deleted", args.parallel).await?;
    wait_all(&client, &names, "available", &undeploy, timeout).await?;
    undeploy.finish();
    let left = dir_size(&running.remaster_dir);
    running.stop().await;
    fleet.shutdown().await;

    if args.bench {
        print_bench(args.nodes, deploy_time, &per_node, publications_bytes, left);
    }
    eprintln!(
        "ironcast demo: {} nodes deployed with their kernel args and undeployed in {:.1} s",
        args.nodes,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The node history's account of the agent's image write ("write image: done, …").
async fn written_by_agent(client: &Client, name: &str) -> anyhow::Result<String> {
    let history = client.get(&format!("/v1/nodes/{name}/history")).await?;
    history["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str())
        .find(|e| e.starts_with("write image: done"))
        .map(str::to_string)
        .with_context(|| format!("{name}: no image write in the node's history"))
}

/// The kernel arg that tells each node's boot apart.
fn marker(name: &str) -> String {
    format!("ironcast.demo={name}")
}

/// Embedded defaults with everything moved into `dir` and onto free loopback ports.
fn demo_config(dir: &Path) -> anyhow::Result<Config> {
    let file = dir.join("ironcast.toml");
    // Every client here (the demo's, the simulated BMCs and agents) is 127.0.0.1, so the
    // per-client connection caps must hold the whole fleet's long polls and fetches.
    let text = format!(
        "[api]\nbind = \"127.0.0.1:0\"\nmax_connections = 8192\nmax_connections_per_client = 8192\n\n\
         [conductor]\nstate_dir = {state:?}\nname = \"demo\"\n\n\
         [imageserver]\nbind = \"127.0.0.1:0\"\nmax_connections = 8192\n\
         max_connections_per_client = 8192\n\n[cache]\nallowed_file_dirs = [{dir:?}]\n\n\
         [agent]\niso = {agent:?}\n",
        state = dir.join("state").display().to_string(),
        dir = dir.display().to_string(),
        agent = dir.join("agent.iso").display().to_string(),
    );
    std::fs::write(&file, text).context("cannot write the demo config")?;
    Ok(Config::load(Some(&file), std::iter::empty())?)
}

fn phase_bar(bars: &MultiProgress, phase: &str, n: usize, bench: bool) -> ProgressBar {
    let bar = bars.add(ProgressBar::new(n as u64));
    if bench && n > 50 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} nodes {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(phase.to_string());
    bar
}

/// Asks every node for a provision `target`, `parallel` requests at a time.
async fn act(
    client: &Client,
    names: &[String],
    target: &str,
    parallel: usize,
) -> anyhow::Result<()> {
    let body = json!({ "target": target });
    stream::iter(names)
        .map(|name| {
            let body = &body;
            async move {
                client
                    .call(
                        reqwest::Method::PUT,
                        &format!("/v1/nodes/{name}/states/provision"),
                        Some(body),
                    )
                    .await
                    .with_context(|| format!("{target} {name}"))
            }
        })
        .buffer_unordered(parallel)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// Polls the node list until every node rests in `want`; returns how long each took. A node
/// resting in a failure state fails the demo with its last_error.
async fn wait_all(
    client: &Client,
    names: &[String],
    want: &str,
    bar: &ProgressBar,
    timeout: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let start = Instant::now();
    let mut done: HashMap<String, Duration> = HashMap::new();
    bar.set_position(0);
    while done.len() < names.len() {
        if start.elapsed() > timeout {
            bail!(
                "{} of {} nodes did not reach {want:?} within {} s",
                names.len() - done.len(),
                names.len(),
                timeout.as_secs()
            );
        }
        for node in list_nodes(client).await? {
            let name = node["name"].as_str().unwrap_or_default();
            let state = node["provision_state"].as_str().unwrap_or_default();
            let resting = node["target_provision_state"].is_null() && node["reservation"].is_null();
            if !resting || done.contains_key(name) {
                continue;
            }
            if state == want {
                done.insert(name.to_string(), start.elapsed());
            } else if FAILED.contains(&state) && want != state {
                let why = node["last_error"].as_str().unwrap_or("no last_error");
                bail!("{name} stopped in {state:?} instead of {want:?}: {why}");
            }
        }
        bar.set_position(done.len() as u64);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(names.iter().filter_map(|n| done.get(n).copied()).collect())
}

/// Every node's name and state, following the API's pages.
async fn list_nodes(client: &Client) -> anyhow::Result<Vec<Value>> {
    let fields = "fields=uuid,name,provision_state,target_provision_state,reservation,last_error";
    let mut path = format!("/v1/nodes?{fields}&limit=1000");
    let mut all = Vec::new();
    loop {
        let page = client.get(&path).await?;
        let nodes = page["nodes"].as_array().cloned().unwrap_or_default();
        let last = nodes
            .last()
            .and_then(|n| n["uuid"].as_str())
            .map(str::to_string);
        let full = nodes.len() == 1000;
        all.extend(nodes);
        match last {
            Some(marker) if full => path = format!("/v1/nodes?{fields}&limit=1000&marker={marker}"),
            _ => return Ok(all),
        }
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn print_bench(nodes: usize, total: Duration, per_node: &[Duration], disk: u64, left: u64) {
    let mut sorted = per_node.to_vec();
    sorted.sort();
    let pct = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
    let (user, sys) = cpu_times();
    println!("fleet benchmark: {nodes} simulated nodes, one conductor, one process");
    println!("  deploy, all nodes:      {:.2} s", total.as_secs_f64());
    println!(
        "  per node (phase start → active): p50 {:.0} ms, p99 {:.0} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    println!("  CPU (whole run, conductor + BMCs + client): user {user:.2} s, sys {sys:.2} s");
    println!("  peak memory (VmHWM):    {}", peak_rss());
    println!(
        "  publications on disk:   {} bytes, {:.1} KiB per node; {left} bytes left after undeploy",
        disk,
        disk as f64 / 1024.0 / nodes as f64
    );
}

/// User and system CPU seconds of this process so far.
fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
