//! The ironcast half of `scripts/bench-capture`: a conductor in this process (`serve`'s own
//! start-up on loopback), an agent boot begun for one node and a real `ironcast agent` process
//! reading the disk file; times `capture_disk` into the cache as qcow2 and as raw.zst (read,
//! zero chunks skipped, zstd on every core, upload, assembly, commit, hash). Lines starting
//! `BENCH ` are the results.
//! Usage: bench_capture --disk FILE --agent-bin BIN --work DIR

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use deploy_drivers::{
    Agent, AgentCommand, AgentProgress, CaptureCommand, CaptureFormat, CaptureRequest, Captures,
    ProgressSink,
};

struct Quiet;
impl ProgressSink for Quiet {
    fn progress(&self, _: AgentProgress) {}
}

fn arg(name: &str) -> anyhow::Result<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .with_context(|| format!("missing {name}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (disk, bin, work) = (arg("--disk")?, arg("--agent-bin")?, arg("--work")?);
    let size = std::fs::metadata(&disk)?.len();
    let config = ironcast::config::Config::load(
        None,
        [
            ("IRONCAST_CONDUCTOR__STATE_DIR", work.as_str()),
            ("IRONCAST_API__BIND", "127.0.0.1:0"),
            ("IRONCAST_IMAGESERVER__BIND", "127.0.0.1:0"),
            ("IRONCAST_AGENT__POLL_WAIT_S", "2"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )?;
    let running = ironcast::cli::serve::launch(&config).await?;
    let hub = running.agent_hub();
    let captures = running.captures().context("no capture service")?;
    let node = "bench-capture-node";
    let args = hub.begin(node).await?;
    let cmdline = std::path::Path::new(&work).join("cmdline");
    std::fs::write(&cmdline, format!("{args}\n"))?;
    let dir = std::path::Path::new(&disk)
        .parent()
        .context("disk has no directory")?;
    let mut agent = Command::new(&bin)
        .args([
            "agent",
            "--cmdline-file",
            cmdline.to_str().unwrap_or_default(),
        ])
        .args([
            "--allow",
            dir.to_str().unwrap_or_default(),
            "--allow-file",
            "--no-act",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    hub.wait_ready(node, Duration::from_secs(60)).await?;
    for format in CaptureFormat::ALL {
        let name = format!("bench-{}", format.name().replace('.', "-"));
        let request = CaptureRequest {
            name: name.clone(),
            format,
        };
        let started = Instant::now();
        captures.reserve(node, &request, size).await?;
        let command = AgentCommand::CaptureDisk(CaptureCommand {
            device: disk.clone(),
            format,
            zstd_level: 3,
        });
        hub.run(node, &command, Duration::from_secs(3600), &Quiet)
            .await?;
        let image = captures.finish(node).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "BENCH ironcast {} {secs:.2} s {:.0} MB/s of disk, {} bytes ({:.1} % of the disk), {} data bytes sent",
            format.name(),
            size as f64 / secs / 1e6,
            image.size,
            image.size as f64 * 100.0 / size as f64,
            image.data_bytes
        );
        let path = running
            .cache()
            .path_of(image.digest.trim_start_matches("sha256:"));
        println!("BENCH file {} {}", format.name(), path.display());
    }
    hub.end(node).await;
    let _ = agent.kill();
    let _ = agent.wait();
    // Keep the files for the script to check; it removes the work directory.
    std::mem::forget(running);
    Ok(())
}
