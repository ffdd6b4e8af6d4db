//! `ironcast apply -f FILE`, `ironcast get bmh [NAME]`, `ironcast delete bmh NAME`: Metal3
//! BareMetalHost manifests through the API's `/v1/metal3` extension, with kubectl's words.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use super::client::{print_list, table, Client, Common, Format};

/// Where the API is (the `--format` of other commands is `-o` here, as in kubectl).
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Base URL of the ironcast API.
    #[arg(long, env = "IRONCAST_URL", default_value = "http://127.0.0.1:6385")]
    pub url: String,
    /// HTTP basic-auth user (when the server has an htpasswd file).
    #[arg(long, env = "IRONCAST_USER")]
    pub user: Option<String>,
    /// HTTP basic-auth password.
    #[arg(long, env = "IRONCAST_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl Conn {
    fn client(&self) -> anyhow::Result<Client> {
        Client::new(&Common {
            url: self.url.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            format: Format::Table,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Manifest file (multi-document YAML: BareMetalHost and Secret); `-` reads stdin; a
    /// directory applies each *.yaml / *.yml file in it.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, clap::Subcommand)]
pub enum GetCmd {
    /// BareMetalHosts and their status.
    #[command(visible_aliases = ["baremetalhost", "baremetalhosts"])]
    Bmh(GetBmhArgs),
}

#[derive(Debug, clap::Args)]
pub struct GetBmhArgs {
    /// One host; all of the namespace when omitted.
    pub name: Option<String>,
    /// Namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output: a table (default), or the whole object(s).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Yaml,
    Json,
    Wide,
}

#[derive(Debug, clap::Subcommand)]
pub enum DeleteCmd {
    /// Deprovision (if provisioned), power off, delete the node, then the host.
    #[command(visible_aliases = ["baremetalhost", "baremetalhosts"])]
    Bmh(DeleteBmhArgs),
}

#[derive(Debug, clap::Args)]
pub struct DeleteBmhArgs {
    pub name: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Wait until the host is gone, at most this many seconds (0: do not wait).
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    #[command(flatten)]
    pub conn: Conn,
}

fn read_manifests(files: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in files {
        if f.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the manifest from stdin")?;
            out.push(("-".into(), text));
        } else if f.is_dir() {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(f)
                .with_context(|| format!("cannot read directory {}", f.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| e == "yaml" || e == "yml")
                })
                .collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                out.push((p.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            out.push((f.display().to_string(), text));
        }
    }
    Ok(out)
}

pub async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    for (name, text) in read_manifests(&args.files)? {
        let done = client
            .post_text("/v1/metal3/manifests", text)
            .await
            .with_context(|| format!("error applying {name}"))?;
        for d in done["applied"].as_array().into_iter().flatten() {
            println!(
                "{}/{} {}",
                d["kind"].as_str().unwrap_or(""),
                d["name"].as_str().unwrap_or(""),
                d["result"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(h: &Value, wide: bool) -> Vec<String> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let st = &h["status"];
    let mut r = vec![
        s(&h["metadata"]["name"]),
        s(&st["provisioning"]["state"]),
        s(&h["spec"]["consumerRef"]["name"]),
        h["spec"]["online"].as_bool().unwrap_or(false).to_string(),
        s(&st["errorType"]),
    ];
    if wide {
        r.push(s(&st["operationalStatus"]));
        r.push(st["poweredOn"].as_bool().unwrap_or(false).to_string());
        r.push(s(&st["provisioning"]["ID"]));
        r.push(s(&st["errorMessage"]));
    }
    r
}

pub async fn get(cmd: GetCmd) -> anyhow::Result<ExitCode> {
    let GetCmd::Bmh(args) = cmd;
    let client = args.conn.client()?;
    let items: Vec<Value> = match &args.name {
        Some(name) => vec![
            client
                .get(&format!(
                    "/v1/metal3/baremetalhosts/{}/{name}",
                    args.namespace
                ))
                .await?,
        ],
        None => {
            let path = if args.all_namespaces {
                "/v1/metal3/baremetalhosts".to_string()
            } else {
                format!("/v1/metal3/baremetalhosts?namespace={}", args.namespace)
            };
            client.get(&path).await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    let single = args.name.is_some();
    match args.output {
        Some(Output::Json) if single => println!("{}", serde_json::to_string_pretty(&items[0])?),
        Some(Output::Yaml) if single => print!("{}", serde_yaml::to_string(&items[0])?),
        Some(Output::Json) => print_list(&items, &[], Format::Json)?,
        Some(Output::Yaml) => print_list(&items, &[], Format::Yaml)?,
        other => {
            let wide = other == Some(Output::Wide);
            let mut headers = vec!["NAME", "STATE", "CONSUMER", "ONLINE", "ERROR"];
            if wide {
                headers.extend(["OPERATIONAL", "POWERED ON", "NODE", "MESSAGE"]);
            }
            let rows: Vec<Vec<String>> = items.iter().map(|h| row(h, wide)).collect();
            print!("{}", table(&headers, &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(cmd: DeleteCmd) -> anyhow::Result<ExitCode> {
    let DeleteCmd::Bmh(args) = cmd;
    let client = args.conn.client()?;
    let path = format!("/v1/metal3/baremetalhosts/{}/{}", args.namespace, args.name);
    client.call(reqwest::Method::DELETE, &path, None).await?;
    println!("baremetalhost.metal3.io \"{}\" deleted", args.name);
    if args.wait > 0 {
        let start = Instant::now();
        loop {
            match client.get(&path).await {
                Err(e) if e.to_string().contains("HTTP 404") => break,
                Err(e) => return Err(e),
                Ok(h) => {
                    if start.elapsed() > Duration::from_secs(args.wait) {
                        bail!(
                            "BareMetalHost {} is still {:?} after {} s",
                            args.name,
                            h["status"]["provisioning"]["state"].as_str().unwrap_or(""),
                            args.wait
                        );
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
