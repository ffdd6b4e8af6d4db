//! Drives every BMC listed in a file through a virtual-media boot (eject, insert an image the
//! BMC fetches from our own range-capable server, one-time Cd override, power on, power off)
//! with the ironcast Redfish client, `--concurrency` at a time. Used by
//! scripts/bench-redfish-fleet.sh against `ironcast bmc-sim` and sushy-emulator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use deploy_drivers::ports::{BootMode, BootTarget, PowerAction};
use ironcast::redfish::{parse_address, Credentials, RedfishConfig, RedfishNode};

#[derive(Parser)]
struct Args {
    /// File with one BMC address per line.
    #[arg(long)]
    addresses: std::path::PathBuf,
    #[arg(long, default_value_t = 4 << 20)]
    image_size: usize,
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    #[arg(long)]
    username: Option<String>,
    #[arg(long, default_value = "")]
    password: String,
}

async fn serve(body: Arc<Vec<u8>>, method: Method, headers: HeaderMap) -> Response {
    let len = body.len();
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="));
    if let Some((a, b)) = range.and_then(|r| r.split_once('-')) {
        let start: usize = a.parse().unwrap_or(0);
        let end = b
            .parse::<usize>()
            .map(|e| e.min(len - 1))
            .unwrap_or(len - 1);
        if start > end {
            return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        }
        let cr = format!("bytes {start}-{end}/{len}");
        return (
            StatusCode::PARTIAL_CONTENT,
            [("content-range", cr)],
            body[start..=end].to_vec(),
        )
            .into_response();
    }
    if method == Method::HEAD {
        return ([("content-length", len.to_string())], ()).into_response();
    }
    body.as_ref().clone().into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.addresses).context("reading --addresses")?;
    let addresses: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let body = Arc::new(vec![0x5au8; args.image_size]);
    let app =
        axum::Router::new().fallback(move |m: Method, h: HeaderMap| serve(body.clone(), m, h));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/bench/image.iso", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cfg = RedfishConfig {
        power_poll_secs: 0.5,
        power_wait_secs: 60.0,
        ..Default::default()
    };
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (addresses, next, failures, url, cfg) = (
            addresses.clone(),
            next.clone(),
            failures.clone(),
            url.clone(),
            cfg.clone(),
        );
        let creds = args
            .username
            .clone()
            .map(|u| Credentials::new(u, args.password.clone()));
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(addr) = addresses.get(i) else { break };
                let run = async {
                    let mut target = parse_address(addr)?;
                    target.credentials = creds.clone();
                    let n = RedfishNode::new(target, &cfg)?;
                    n.eject_all().await?;
                    n.insert_cd(&url, None).await?;
                    n.set_boot(BootTarget::Cd, false, BootMode::Uefi).await?;
                    n.set_power(PowerAction::On).await?;
                    n.set_power(PowerAction::Off).await?;
                    Ok::<_, ironcast::redfish::RedfishError>(())
                };
                if let Err(e) = run.await {
                    if failures.fetch_add(1, Ordering::SeqCst) < 5 {
                        eprintln!("{addr}: {e}");
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    println!(
        "nodes={} failures={} seconds={:.1}",
        addresses.len(),
        failures.load(Ordering::SeqCst),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
