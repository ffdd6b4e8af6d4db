//! `ironcast node …`: the node lifecycle over the API (create, list, show, set, unset, the
//! provision verbs with `--wait`, capture, power, validate, history, delete).

use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::{key_value, print_list, print_object, wait_for, Client, Common, Format};

#[derive(Debug, clap::Subcommand)]
pub enum NodeCmd {
    /// Enrol a node.
    Create(CreateArgs),
    /// List nodes.
    List(ListArgs),
    /// Show one node.
    Show(ShowArgs),
    /// Set fields of a node (JSON-Patch add).
    Set(SetArgs),
    /// Remove fields or keys from a node (JSON-Patch remove).
    Unset(UnsetArgs),
    /// enroll → manageable (verifies the BMC credentials).
    Manage(ActionArgs),
    /// manageable → available (cleans).
    Provide(ActionArgs),
    /// available → active (with Ironic's `--config-drive`).
    Deploy(DeployArgs),
    /// active or failed → available (tears down, cleans).
    Undeploy(ActionArgs),
    /// active → active again, redeploying.
    Rebuild(ActionArgs),
    /// Abort a node waiting for a call-back.
    Abort(ActionArgs),
    /// manageable → manageable, running the given clean steps (Ironic's manual cleaning).
    Clean(CleanArgs),
    /// Capture an active or manageable node's root disk as a named image (ironcast extension).
    Capture(super::capture::CaptureArgs),
    /// Power a node on, off or reboot it.
    Power(PowerArgs),
    /// Check each interface of a node.
    Validate(NodeArg),
    /// Show what happened to a node.
    History(NodeArg),
    /// Delete nodes.
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Hardware type, e.g. fake-hardware.
    #[arg(long)]
    driver: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    uuid: Option<String>,
    #[command(flatten)]
    maps: MapArgs,
    #[arg(long)]
    description: Option<String>,
    #[arg(long = "deploy-interface")]
    deploy_interface: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// KEY=VALUE entries for the node's map fields, shared by `create` and `set`.
#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// KEY=VALUE for driver_info (repeatable).
    #[arg(long = "driver-info", value_name = "KEY=VALUE")]
    driver_info: Vec<String>,
    /// KEY=VALUE for instance_info (repeatable).
    #[arg(long = "instance-info", value_name = "KEY=VALUE")]
    instance_info: Vec<String>,
    /// KEY=VALUE for properties (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// KEY=VALUE for extra (repeatable).
    #[arg(long = "extra", value_name = "KEY=VALUE")]
    extra: Vec<String>,
}

impl MapArgs {
    /// Each map field with the KEY=VALUE entries given for it.
    fn fields(&self) -> [(&'static str, &Vec<String>); 4] {
        [
            ("driver_info", &self.driver_info),
            ("instance_info", &self.instance_info),
            ("properties", &self.properties),
            ("extra", &self.extra),
        ]
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Show every field (JSON/YAML) instead of the summary.
    #[arg(long)]
    detail: bool,
    /// Only nodes in this provision state.
    #[arg(long = "provision-state")]
    provision_state: Option<String>,
    #[arg(long)]
    limit: Option<u32>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Node name or UUID.
    node: String,
    /// Only these fields (comma-separated).
    #[arg(long)]
    fields: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// Node name or UUID.
    node: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    driver: Option<String>,
    #[command(flatten)]
    maps: MapArgs,
    #[arg(long = "deploy-interface")]
    deploy_interface: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct UnsetArgs {
    /// Node name or UUID.
    node: String,
    #[arg(long)]
    name: bool,
    #[arg(long)]
    description: bool,
    /// driver_info key to remove (repeatable).
    #[arg(long = "driver-info", value_name = "KEY")]
    driver_info: Vec<String>,
    #[arg(long = "instance-info", value_name = "KEY")]
    instance_info: Vec<String>,
    #[arg(long = "property", value_name = "KEY")]
    properties: Vec<String>,
    #[arg(long = "extra", value_name = "KEY")]
    extra: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// Node name or UUID.
    node: String,
    /// Wait until the node rests, showing each state; optional timeout in seconds.
    #[arg(long, num_args = 0..=1, default_missing_value = "3600", value_name = "SECS")]
    wait: Option<u64>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    action: ActionArgs,
    /// The config drive: a JSON object (meta_data, user_data, network_data), a gzipped
    /// base64-encoded image, or a URL.
    #[arg(long = "config-drive", value_name = "CONFIG_DRIVE")]
    config_drive: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    #[command(flatten)]
    action: ActionArgs,
    /// A JSON list of steps, e.g. '[{"interface": "deploy", "step": "erase_devices_metadata"}]'.
    #[arg(long = "clean-steps", value_name = "JSON")]
    clean_steps: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PowerTarget {
    On,
    Off,
    Reboot,
    SoftOff,
    SoftReboot,
}

#[derive(Debug, clap::Args)]
pub struct PowerArgs {
    /// Node name or UUID.
    node: String,
    #[arg(value_enum)]
    target: PowerTarget,
    /// Wait until the power state is reached (up to SECS).
    #[arg(long, num_args = 0..=1, default_missing_value = "120", value_name = "SECS")]
    wait: Option<u64>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct NodeArg {
    /// Node name or UUID.
    node: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Node names or UUIDs.
    #[arg(required = true)]
    nodes: Vec<String>,
    #[command(flatten)]
    common: Common,
}

fn map_of(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    pairs.iter().map(|p| key_value(p)).collect()
}

/// A path segment escaped for JSON-Pointer.
fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub async fn run(cmd: NodeCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        NodeCmd::Create(a) => create(a).await,
        NodeCmd::List(a) => list(a).await,
        NodeCmd::Show(a) => show(a).await,
        NodeCmd::Set(a) => set(a).await,
        NodeCmd::Unset(a) => unset(a).await,
        NodeCmd::Manage(a) => action(a, "manage", "manageable").await,
        NodeCmd::Provide(a) => action(a, "provide", "available").await,
        NodeCmd::Deploy(a) => {
            let mut body = Map::new();
            if let Some(cd) = a.config_drive {
                // A JSON object is built by the conductor; anything else goes as given.
                let value = match serde_json::from_str::<Value>(&cd) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => Value::String(cd),
                };
                body.insert("configdrive".into(), value);
            }
            action_with(a.action, "active", "active", body).await
        }
        NodeCmd::Clean(a) => {
            let steps: Value = serde_json::from_str(&a.clean_steps).map_err(|e| {
                anyhow::anyhow!("--clean-steps is not JSON ({e}): give a list such as '[{{\"interface\": \"deploy\", \"step\": \"erase_devices_metadata\"}}]'")
            })?;
            let mut body = Map::new();
            body.insert("clean_steps".into(), steps);
            action_with(a.action, "clean", "manageable", body).await
        }
        NodeCmd::Undeploy(a) => action(a, "deleted", "available").await,
        NodeCmd::Rebuild(a) => action(a, "rebuild", "active").await,
        NodeCmd::Abort(a) => action(a, "abort", "").await,
        NodeCmd::Capture(a) => super::capture::run(a).await,
        NodeCmd::Power(a) => power(a).await,
        NodeCmd::Validate(a) => validate(a).await,
        NodeCmd::History(a) => history(a).await,
        NodeCmd::Delete(a) => delete(a).await,
    }
}

async fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let mut body = json!({"driver": a.driver});
    let obj = body.as_object_mut().expect("object");
    if let Some(n) = a.name {
        obj.insert("name".into(), n.into());
    }
    if let Some(u) = a.uuid {
        obj.insert("uuid".into(), u.into());
    }
    if let Some(d) = a.description {
        obj.insert("description".into(), d.into());
    }
    if let Some(d) = a.deploy_interface {
        obj.insert("deploy_interface".into(), d.into());
    }
    for (field, pairs) in a.maps.fields() {
        if !pairs.is_empty() {
            obj.insert(field.into(), Value::Object(map_of(pairs)?));
        }
    }
    let node = client.call(Method::POST, "/v1/nodes", Some(&body)).await?;
    print_object(&node, a.common.format)?;
    Ok(ExitCode::SUCCESS)
}

async fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let mut path = String::from(if a.detail {
        "/v1/nodes/detail?"
    } else {
        "/v1/nodes?"
    });
    if let Some(s) = &a.provision_state {
        path.push_str(&format!("provision_state={}&", s.replace(' ', "%20")));
    }
    if let Some(l) = a.limit {
        path.push_str(&format!("limit={l}&"));
    }
    let out = client.get(path.trim_end_matches(['?', '&'])).await?;
    let nodes = out["nodes"].as_array().cloned().unwrap_or_default();
    print_list(
        &nodes,
        &[
            "uuid",
            "name",
            "power_state",
            "provision_state",
            "maintenance",
        ],
        a.common.format,
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let mut path = format!("/v1/nodes/{}", a.node);
    if let Some(f) = &a.fields {
        path.push_str(&format!("?fields={f}"));
    }
    print_object(&client.get(&path).await?, a.common.format)?;
    Ok(ExitCode::SUCCESS)
}

async fn patch(
    client: &Client,
    node: &str,
    ops: Vec<Value>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    if ops.is_empty() {
        anyhow::bail!("nothing to change: give at least one option (see --help)");
    }
    let out = client
        .call(
            Method::PATCH,
            &format!("/v1/nodes/{node}"),
            Some(&Value::Array(ops)),
        )
        .await?;
    if format != Format::Table {
        print_object(&out, format)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn set(a: SetArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let mut ops = Vec::new();
    for (field, value) in [
        ("name", a.name),
        ("description", a.description),
        ("driver", a.driver),
        ("deploy_interface", a.deploy_interface),
    ] {
        if let Some(v) = value {
            ops.push(json!({"op": "add", "path": format!("/{field}"), "value": v}));
        }
    }
    for (field, pairs) in a.maps.fields() {
        for p in pairs {
            let (k, v) = key_value(p)?;
            ops.push(json!({"op": "add", "path": format!("/{field}/{}", esc(&k)), "value": v}));
        }
    }
    patch(&client, &a.node, ops, a.common.format).await
}

async fn unset(a: UnsetArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let mut ops = Vec::new();
    for (field, on) in [("name", a.name), ("description", a.description)] {
        if on {
            ops.push(json!({"op": "remove", "path": format!("/{field}")}));
        }
    }
    for (field, keys) in [
        ("driver_info", &a.driver_info),
        ("instance_info", &a.instance_info),
        ("properties", &a.properties),
        ("extra", &a.extra),
    ] {
        for k in keys {
            ops.push(json!({"op": "remove", "path": format!("/{field}/{}", esc(k))}));
        }
    }
    patch(&client, &a.node, ops, a.common.format).await
}

async fn action(a: ActionArgs, target: &str, want: &str) -> anyhow::Result<ExitCode> {
    action_with(a, target, want, Map::new()).await
}

/// A provision verb whose request carries `extra` fields (config drive, clean steps).
async fn action_with(
    a: ActionArgs,
    target: &str,
    want: &str,
    extra: Map<String, Value>,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let mut body = extra;
    body.insert("target".into(), json!(target));
    client
        .call(
            Method::PUT,
            &format!("/v1/nodes/{}/states/provision", a.node),
            Some(&Value::Object(body)),
        )
        .await?;
    match a.wait {
        Some(secs) if !want.is_empty() => {
            let node = wait_for(&client, &a.node, want, Duration::from_secs(secs)).await?;
            if a.common.format != Format::Table {
                print_object(&node, a.common.format)?;
            }
        }
        _ => eprintln!("{}: {target} requested", a.node),
    }
    Ok(ExitCode::SUCCESS)
}

async fn power(a: PowerArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let (target, want) = match a.target {
        PowerTarget::On => ("power on", "power on"),
        PowerTarget::Off => ("power off", "power off"),
        PowerTarget::Reboot => ("rebooting", "power on"),
        PowerTarget::SoftOff => ("soft power off", "power off"),
        PowerTarget::SoftReboot => ("soft rebooting", "power on"),
    };
    client
        .call(
            Method::PUT,
            &format!("/v1/nodes/{}/states/power", a.node),
            Some(&json!({ "target": target })),
        )
        .await?;
    if let Some(secs) = a.wait {
        let start = std::time::Instant::now();
        loop {
            let st = client.get(&format!("/v1/nodes/{}/states", a.node)).await?;
            if st["target_power_state"].is_null() {
                if st["power_state"] == want {
                    eprintln!("{}: {want}", a.node);
                    break;
                }
                let why = st["last_error"]
                    .as_str()
                    .unwrap_or("no last_error recorded");
                anyhow::bail!(
                    "node {} is {} instead of {want}: {why}",
                    a.node,
                    st["power_state"]
                );
            }
            if start.elapsed() > Duration::from_secs(secs) {
                anyhow::bail!("node {} did not reach {want} within {secs} s", a.node);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn validate(a: NodeArg) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let out = client
        .get(&format!("/v1/nodes/{}/validate", a.node))
        .await?;
    let rows: Vec<Value> = out
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| json!({"interface": k, "result": v["result"], "reason": v["reason"]}))
                .collect()
        })
        .unwrap_or_default();
    print_list(&rows, &["interface", "result", "reason"], a.common.format)?;
    Ok(ExitCode::SUCCESS)
}

async fn history(a: NodeArg) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let out = client.get(&format!("/v1/nodes/{}/history", a.node)).await?;
    let events = out["history"].as_array().cloned().unwrap_or_default();
    print_list(
        &events,
        &["created_at", "severity", "event_type", "event"],
        a.common.format,
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn delete(a: DeleteArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.common)?;
    let mut failed = false;
    for n in &a.nodes {
        match client
            .call(Method::DELETE, &format!("/v1/nodes/{n}"), None)
            .await
        {
            Ok(_) => eprintln!("Deleted node {n}"),
            Err(e) => {
                eprintln!("error: cannot delete node {n}: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
