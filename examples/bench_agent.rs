//! The VM half of `scripts/bench-agent`: a conductor in this process (`serve`'s own start-up on
//! loopback), an agent boot begun for one node, the agent ISO remastered with its args, a QEMU
//! TCG VM booted from it (user networking: the guest reaches the host at 10.0.2.2) with a blank
//! virtio disk; prints the time from power-on to the first heartbeat and the rate of the
//! agent's `write_image` of the given image. Lines starting `BENCH ` are the results.
//! Usage: bench_agent --iso ISO --image-url URL --sha256 HEX --firmware bios|uefi --work DIR

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use deploy_drivers::{
    Agent, AgentCommand, AgentProgress, ChecksumSpec, ProgressSink, WriteCommand,
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Vm(std::process::Child);
impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_vm(work: &Path, iso: &Path, uefi: bool, disk_bytes: u64) -> anyhow::Result<Vm> {
    let disk = work.join("agent-disk.img");
    std::fs::File::create(&disk)?.set_len(disk_bytes)?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel", "tcg", "-m", "1024", "-display", "none", "-monitor", "none",
    ])
    .arg("-serial")
    .arg(format!("file:{}", work.join("agent-serial.log").display()));
    if uefi {
        let vars = work.join("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS.fd", &vars)?;
        cmd.arg("-drive")
            .arg("if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd")
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    cmd.arg("-cdrom")
        .arg(iso)
        .args(["-boot", "d", "-drive"])
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .args([
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(Vm(cmd.spawn().context("starting qemu-system-x86_64")?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iso = PathBuf::from(arg("--iso")?);
    let image_url = arg("--image-url")?;
    let sha256 = arg("--sha256")?;
    let uefi = arg("--firmware")? == "uefi";
    let work = PathBuf::from(arg("--work")?);
    let port = free_port()?;
    let state = work.join("state");
    let env = [
        ("IRONCAST_CONDUCTOR__STATE_DIR", state.display().to_string()),
        ("IRONCAST_API__BIND", format!("127.0.0.1:{port}")),
        (
            "IRONCAST_AGENT__CONDUCTOR_URL",
            format!("http://10.0.2.2:{port}"),
        ),
        ("IRONCAST_AGENT__ISO", iso.display().to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let config = ironcast::config::Config::load(None, env)?;
    let running = ironcast::cli::serve::launch(&config).await?;
    let hub = running.agent_hub();
    let node = "bench-node";
    let args = hub.begin(node).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let node_iso = work.join("agent-node.iso");
    let (set, _) = ironcast::iso::remaster(&iso, &args)?;
    set.materialize(&iso, &node_iso)?;

    let image_bytes = reqwest::Client::new()
        .head(image_url.replace("10.0.2.2", "127.0.0.1"))
        .send()
        .await?
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .context("the image server gave no Content-Length")?;
    let powered_on = Instant::now();
    let _vm = start_vm(&work, &node_iso, uefi, image_bytes + (256 << 20))?;
    let inventory = hub
        .wait_ready(node, Duration::from_secs(600))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let to_heartbeat = powered_on.elapsed();
    let Some(disk) = inventory.disks.first() else {
        bail!("the agent reported no disk: {inventory:?}");
    };
    println!(
        "BENCH {:<52} {:.1} s ({})",
        "power-on to first heartbeat",
        to_heartbeat.as_secs_f64(),
        if uefi { "OVMF" } else { "SeaBIOS" }
    );
    let command = AgentCommand::WriteImage(WriteCommand {
        image_url,
        checksum: Some(ChecksumSpec::Value {
            algorithm: "sha256".into(),
            hex: sha256,
        }),
        root_device: Some(disk.name.clone()),
    });
    let started = Instant::now();
    hub.run(node, &command, Duration::from_secs(1800), &Quiet)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "BENCH {:<52} {:.1} MiB/s",
        format!(
            "agent write_image, HTTP -> virtio disk ({} MiB, sha256)",
            image_bytes >> 20
        ),
        image_bytes as f64 / (1 << 20) as f64 / secs
    );
    hub.end(node).await;
    running.stop().await;
    Ok(())
}
