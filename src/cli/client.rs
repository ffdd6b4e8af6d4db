//! The operator CLI's side of the API: an HTTP client that speaks Ironic's wire format
//! (latest microversion, Ironic error bodies turned into readable errors), output formats
//! (table, JSON, YAML) and `--wait` polling.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};

/// Connection and output options shared by every API command.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Base URL of the ironcast (or Ironic) API.
    #[arg(long, env = "IRONCAST_URL", default_value = "http://127.0.0.1:6385")]
    pub url: String,
    /// HTTP basic-auth user (when the server has an htpasswd file).
    #[arg(long, env = "IRONCAST_USER")]
    pub user: Option<String>,
    /// HTTP basic-auth password.
    #[arg(long, env = "IRONCAST_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// A client of the API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, Option<String>)>,
}

impl Client {
    pub fn new(common: &Common) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            base: common.url.trim_end_matches('/').to_string(),
            auth: common.user.clone().map(|u| (u, common.password.clone())),
        })
    }

    /// Sends a request and returns the JSON body (Null when empty); API errors become the
    /// API's own message with the status.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-OpenStack-Ironic-API-Version", "latest");
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, p.as_ref());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {} (is `ironcast serve` running? set --url or IRONCAST_URL)", self.base))?;
        let status = resp.status();
        let text = resp.text().await.context("cannot read the API's answer")?;
        if !status.is_success() {
            bail!("{} (HTTP {})", error_message(&text), status.as_u16());
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the API answered {method} {path} with invalid JSON"))
    }

    /// POSTs a text body (a YAML manifest) and returns the JSON answer.
    pub async fn post_text(&self, path: &str, body: String) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(body);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, p.as_ref());
        }
        let resp = req.send().await.with_context(|| {
            format!("cannot reach the API at {} (is `ironcast serve` running? set --url or IRONCAST_URL)", self.base)
        })?;
        let status = resp.status();
        let text = resp.text().await.context("cannot read the API's answer")?;
        if !status.is_success() {
            bail!("{} (HTTP {})", error_message(&text), status.as_u16());
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the API answered POST {path} with invalid JSON"))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// The human message inside an Ironic error body (double-encoded), or the raw text.
pub fn error_message(text: &str) -> String {
    let outer: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return text.trim().to_string(),
    };
    let Some(inner) = outer.get("error_message") else {
        return text.trim().to_string();
    };
    let inner: Value = match inner {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    };
    inner
        .get("faultstring")
        .or_else(|| inner.get("description"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| inner.to_string())
}

/// Parses `key=value`; the value is taken as JSON when it parses (numbers, booleans, objects),
/// else as a string.
pub fn key_value(s: &str) -> anyhow::Result<(String, Value)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("expected KEY=VALUE but got {s:?}"))?;
    if k.is_empty() {
        bail!("expected KEY=VALUE but the key is empty in {s:?}");
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A plain ASCII table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let sep = format!(
        "+{}+\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
            .collect();
        format!("|{}|\n", parts.join("|"))
    };
    let mut out = sep.clone();
    out.push_str(&line(headers.to_vec()));
    out.push_str(&sep);
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push_str(&sep);
    out
}

/// Prints one object: a Field | Value table, or JSON / YAML.
pub fn print_object(v: &Value, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(v)?),
        Format::Table => {
            let empty = Map::new();
            let rows: Vec<Vec<String>> = v
                .as_object()
                .unwrap_or(&empty)
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "links" | "ports" | "states" | "portgroups" | "volume"
                    )
                })
                .map(|(k, v)| vec![k.clone(), cell(v)])
                .collect();
            print!("{}", table(&["Field", "Value"], &rows));
        }
    }
    Ok(())
}

/// Prints a list of objects with the given columns (table), or all of it (JSON / YAML).
pub fn print_list(items: &[Value], columns: &[&str], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(items)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(items)?),
        Format::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|it| columns.iter().map(|c| cell(&it[*c])).collect())
                .collect();
            print!("{}", table(columns, &rows));
        }
    }
    Ok(())
}

/// Provision states in which a node rests.
const STABLE: &[&str] = &[
    "enroll",
    "manageable",
    "available",
    "active",
    "deploy failed",
    "clean failed",
    "error",
    "inspect failed",
];

/// Polls the node until it rests in a stable state (printing each state it passes through on
/// stderr) and fails when that state is not `want`.
pub async fn wait_for(
    client: &Client,
    node: &str,
    want: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let n = client.get(&format!("/v1/nodes/{node}")).await?;
        let state = n["provision_state"].as_str().unwrap_or("").to_string();
        if state != last {
            eprintln!("{node}: {state} ({} s)", start.elapsed().as_secs());
            last = state.clone();
        }
        let resting = STABLE.contains(&state.as_str())
            && n["target_provision_state"].is_null()
            && n["reservation"].is_null();
        if resting && state == want {
            return Ok(n);
        }
        if resting && state != want {
            let why = n["last_error"].as_str().unwrap_or("no last_error recorded");
            bail!("node {node} stopped in \"{state}\" instead of \"{want}\": {why}");
        }
        if start.elapsed() > timeout {
            bail!(
                "node {node} did not reach \"{want}\" within {} s (now \"{state}\")",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ironic_error_bodies_read_as_their_message() {
        let body = r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node x could not be found.\", \"debuginfo\": null}"}"#;
        assert_eq!(error_message(body), "Node x could not be found.");
        let v406 = r#"{"error_message": "{\"code\": 406, \"title\": \"Not Acceptable\", \"description\": \"too new\"}"}"#;
        assert_eq!(error_message(v406), "too new");
        assert_eq!(error_message("plain text\n"), "plain text");
    }

    #[test]
    fn key_values_parse_json_or_string() {
        assert_eq!(
            key_value("cpus=2").unwrap(),
            ("cpus".into(), Value::from(2))
        );
        assert_eq!(
            key_value("url=http://x/y=z").unwrap(),
            ("url".into(), Value::from("http://x/y=z"))
        );
        assert!(key_value("novalue").is_err());
        assert!(key_value("=v").is_err());
    }

    #[test]
    fn tables_align() {
        let t = table(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(
            t,
            "+-----+----+\n| a   | bb |\n+-----+----+\n| xyz | 1  |\n+-----+----+\n"
        );
    }
}
