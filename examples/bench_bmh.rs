//! The body of `scripts/bench-bmh`: N simulated Redfish BMCs (`redfish::sim`, as `bmc-sim`
//! runs them) and one conductor (`serve`'s own start-up on loopback) in this process; N
//! BareMetalHosts (live ISO) plus their Secret applied in one file through
//! `POST /v1/metal3/manifests` (what `ironcast apply -f` sends), then polled until every host is
//! `provisioned`. Prints the total time, p50/p99 per host (apply to provisioned) and the peak
//! memory of the process (conductor, reconciler and simulated fleet together).
//! Usage: bench_bmh [HOSTS]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ironcast::cli::serve::launch;
use ironcast::config::Config;
use ironcast::redfish::sim::{Fleet, FleetOptions};
use serde_json::Value;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hosts: usize = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let iso = dir.join("live.iso");
    std::fs::write(&iso, ironcast::demo::demo_iso())?;
    let file = dir.join("ironcast.toml");
    std::fs::write(
        &file,
        format!(
            "[api]\nbind = \"127.0.0.1:0\"\nmax_connections = 8192\nmax_connections_per_client = 8192\n\n\
             [conductor]\nstate_dir = {state:?}\nname = \"bench-bmh\"\n\n\
             [imageserver]\nbind = \"127.0.0.1:0\"\nmax_connections = 8192\nmax_connections_per_client = 8192\n\n\
             [cache]\nallowed_file_dirs = [{dir:?}]\n\n\
             [ramdisk]\nallow_unverified = true\n\n\
             [metal3]\npoll_interval_ms = 500\n",
            state = dir.join("state").display().to_string(),
            dir = dir.display().to_string(),
        ),
    )?;
    let config = Config::load(Some(&file), std::iter::empty())?;
    let mut opts = FleetOptions::new(hosts);
    opts.inspector = ironcast::demo::iso_boot_inspector();
    let fleet = Fleet::start(opts)
        .await
        .context("starting the simulated BMCs")?;
    let running = launch(&config).await?;

    let mut text = String::from(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bmc\nstringData:\n  username: admin\n  password: password\n",
    );
    for i in 0..hosts {
        let address =
            fleet
                .address(i)
                .replacen("redfish+http://", "redfish-virtualmedia+http://", 1);
        // Virtual-media hosts need their boot MAC (BMO's webhook): one per host.
        let (a, b, c) = (i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff);
        text.push_str(&format!(
            "---\napiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata:\n  name: host-{i:04}\n\
             spec:\n  online: true\n  automatedCleaningMode: disabled\n  bootMACAddress: 52:54:00:{a:02x}:{b:02x}:{c:02x}\n\
             \x20 bmc:\n    address: {address}\n    credentialsName: bmc\n\
             \x20 image:\n    url: file://{iso}\n    format: live-iso\n",
            iso = iso.display()
        ));
    }
    let http = reqwest::Client::new();
    let start = Instant::now();
    let resp = http
        .post(format!("{}/v1/metal3/manifests", running.api_url))
        .body(text)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("apply failed: {}", resp.text().await?);
    }
    let applied = start.elapsed();
    let mut done: HashMap<String, Duration> = HashMap::new();
    let timeout = Duration::from_secs(1800);
    while done.len() < hosts {
        if start.elapsed() > timeout {
            bail!(
                "only {} of {hosts} hosts provisioned in {timeout:?}",
                done.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let list: Value = http
            .get(format!("{}/v1/metal3/baremetalhosts", running.api_url))
            .send()
            .await?
            .json()
            .await?;
        for h in list["items"].as_array().into_iter().flatten() {
            let name = h["metadata"]["name"].as_str().unwrap_or("").to_string();
            let state = h["status"]["provisioning"]["state"].as_str().unwrap_or("");
            if state == "provisioned" {
                done.entry(name).or_insert_with(|| start.elapsed());
            } else if !h["status"]["errorType"].as_str().unwrap_or("").is_empty() {
                bail!("{name} failed: {}", h["status"]["errorMessage"]);
            }
        }
    }
    let total = start.elapsed();
    let mut times: Vec<Duration> = done.into_values().collect();
    times.sort();
    println!("BENCH hosts {hosts}");
    println!("BENCH apply_s {:.2}", applied.as_secs_f64());
    println!("BENCH total_s {:.1}", total.as_secs_f64());
    println!("BENCH p50_s {:.1}", percentile(&times, 0.5).as_secs_f64());
    println!("BENCH p99_s {:.1}", percentile(&times, 0.99).as_secs_f64());
    println!("BENCH peak_rss_mib {}", peak_rss_kib() / 1024);
    running.stop().await;
    fleet.shutdown().await;
    Ok(())
}
