//! `ironcast node capture NODE --name NAME [--format qcow2|raw.zst] [-o json]`: captures a
//! node's root
//! disk into the conductor's image cache (`POST /v1/nodes/{node}/capture`), waits for it to
//! finish (unless `--no-wait`) and prints the registered image: its name is what
//! `--instance-info image_source=NAME` deploys.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::client::{print_object, Client, Common, Format};

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Node name or UUID (active or manageable).
    node: String,
    /// The name to register the image under (letters, digits, '.', '_', '-').
    #[arg(long)]
    name: String,
    /// qcow2 (zstd-compressed clusters) or raw.zst.
    #[arg(long = "format", default_value = "qcow2", value_name = "qcow2|raw.zst")]
    image_format: String,
    /// Return once the capture started instead of waiting for it.
    #[arg(long = "no-wait")]
    no_wait: bool,
    /// Longest wait for the capture, in seconds.
    #[arg(long, default_value_t = 7200, value_name = "SECS")]
    timeout: u64,
    /// Base URL of the ironcast API.
    #[arg(long, env = "IRONCAST_URL", default_value = "http://127.0.0.1:6385")]
    url: String,
    /// HTTP basic-auth user (when the server has an htpasswd file).
    #[arg(long, env = "IRONCAST_USER")]
    user: Option<String>,
    /// HTTP basic-auth password.
    #[arg(long, env = "IRONCAST_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Output format (`--format` names the image's here).
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub async fn run(a: CaptureArgs) -> anyhow::Result<ExitCode> {
    let common = Common {
        url: a.url.clone(),
        user: a.user.clone(),
        password: a.password.clone(),
        format: a.output,
    };
    let client = Client::new(&common)?;
    let path = format!("/v1/nodes/{}/capture", a.node);
    let started = client
        .call(
            Method::POST,
            &path,
            Some(&json!({"name": a.name, "format": a.image_format})),
        )
        .await?;
    if a.no_wait {
        print_object(&started, a.output)?;
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let mut shown = String::new();
    loop {
        let record = client.get(&path).await?;
        let step = record["step"].as_str().unwrap_or_default().to_string();
        if step != shown && a.output == Format::Table {
            eprintln!("{}: {step}", a.node);
            shown = step;
        }
        match record["state"].as_str() {
            Some("done") => {
                print_object(&record["image"], a.output)?;
                return Ok(ExitCode::SUCCESS);
            }
            Some("failed") => {
                anyhow::bail!(
                    "capture of {} failed: {}",
                    a.node,
                    record["error"].as_str().unwrap_or("no reason given")
                );
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "capture of {} did not finish within {} s (it goes on: `GET {path}` shows it)",
                a.node,
                a.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
