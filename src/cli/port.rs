//! `ironcast port …`: a node's MAC addresses over the API.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::{key_value, print_list, print_object, Client, Common};

#[derive(Debug, clap::Subcommand)]
pub enum PortCmd {
    /// Add a MAC address to a node.
    Create(CreateArgs),
    /// List ports (all, or one node's).
    List(ListArgs),
    /// Show a port by UUID or MAC address.
    Show(PortArg),
    /// Delete a port by UUID or MAC address.
    Delete(PortArg),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// MAC address, e.g. 52:54:00:12:34:56.
    address: String,
    /// Node name or UUID.
    #[arg(long)]
    node: String,
    /// KEY=VALUE for extra (repeatable).
    #[arg(long = "extra", value_name = "KEY=VALUE")]
    extra: Vec<String>,
    /// Whether the node PXE-boots from this port.
    #[arg(long = "pxe-enabled")]
    pxe_enabled: Option<bool>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this node's ports.
    #[arg(long)]
    node: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct PortArg {
    /// Port UUID or MAC address.
    port: String,
    #[command(flatten)]
    common: Common,
}

pub async fn run(cmd: PortCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PortCmd::Create(a) => {
            let client = Client::new(&a.common)?;
            // The API, like Ironic's, takes the node's UUID: resolve a name first.
            let node = client.get(&format!("/v1/nodes/{}", a.node)).await?;
            let node_uuid = node["uuid"].as_str().unwrap_or(&a.node).to_string();
            let mut body = json!({"address": a.address, "node_uuid": node_uuid});
            if !a.extra.is_empty() {
                let extra: Map<String, Value> = a
                    .extra
                    .iter()
                    .map(|p| key_value(p))
                    .collect::<anyhow::Result<_>>()?;
                body["extra"] = Value::Object(extra);
            }
            if let Some(p) = a.pxe_enabled {
                body["pxe_enabled"] = Value::Bool(p);
            }
            let port = client.call(Method::POST, "/v1/ports", Some(&body)).await?;
            print_object(&port, a.common.format)?;
        }
        PortCmd::List(a) => {
            let client = Client::new(&a.common)?;
            let path = match &a.node {
                Some(n) => format!("/v1/ports/detail?node={n}"),
                None => "/v1/ports/detail".to_string(),
            };
            let out = client.get(&path).await?;
            let ports = out["ports"].as_array().cloned().unwrap_or_default();
            print_list(
                &ports,
                &["uuid", "address", "node_uuid", "pxe_enabled"],
                a.common.format,
            )?;
        }
        PortCmd::Show(a) => {
            let client = Client::new(&a.common)?;
            let id = port_id(&client, &a.port).await?;
            let port = client.get(&format!("/v1/ports/{id}")).await?;
            print_object(&port, a.common.format)?;
        }
        PortCmd::Delete(a) => {
            let client = Client::new(&a.common)?;
            let id = port_id(&client, &a.port).await?;
            client
                .call(Method::DELETE, &format!("/v1/ports/{id}"), None)
                .await?;
            eprintln!("Deleted port {}", a.port);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The port's UUID: the API (like Ironic's) takes a UUID or name, so a MAC address is looked
/// up with `?address=` first.
async fn port_id(client: &Client, port: &str) -> anyhow::Result<String> {
    if crate::api::normalize_mac(port).is_err() {
        return Ok(port.to_string());
    }
    let out = client.get(&format!("/v1/ports?address={port}")).await?;
    out["ports"][0]["uuid"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("no port has MAC address {port}"))
}
