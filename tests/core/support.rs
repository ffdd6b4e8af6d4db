//! Shared helpers: an in-process API on port 0, a `serve` child process, Ironic error bodies.

use std::time::Duration;

use ironcast::api::{app, AppState};
use ironcast::conductor::{Conductor, Services, Settings};
use ironcast::store::Store;
use serde_json::Value;

pub use crate::common::serve::spawn_serve;

pub fn settings(name: &str) -> Settings {
    Settings {
        name: name.to_string(),
        lock_wait_ms: 500,
        deploy_timeout_s: 60,
        heartbeat_interval_s: 10,
        heartbeat_timeout_s: 60,
        fake_deploy_delay_ms: 10,
        fake_undeploy_delay_ms: 0,
        fake_power_delay_ms: 0,
        automated_clean: true,
        add_ports: ironcast::hardware::inventory::AddPorts::Pxe,
        rules_mask_secrets: ironcast::inspection_rules::MaskSecrets::Always,
        built_in_rules: None,
    }
}

/// An API served in-process on a free loopback port over a fresh SQLite file.
pub struct Api {
    pub url: String,
    pub conductor: Conductor,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn api_with(settings: Settings) -> Api {
    api_paged(settings, 1000).await
}

/// An API whose list pages hold at most `max_limit` items (`[api] max_limit`).
pub async fn api_paged(settings: Settings, max_limit: usize) -> Api {
    api_full(settings, Services::none(), max_limit).await
}

/// An API whose conductor composes nodes with `services` (policies, ports).
pub async fn api_with_services(settings: Settings, services: Services) -> Api {
    api_full(settings, services, 1000).await
}

async fn api_full(settings: Settings, services: Services, max_limit: usize) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url, 8).await.unwrap();
    let conductor = Conductor::with_services(store, settings, services);
    conductor.recover().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(AppState {
        conductor: conductor.clone(),
        public_url: String::new(),
        max_limit,
        auth: None,
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Api {
        url: format!("http://{addr}"),
        conductor,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

pub async fn api() -> Api {
    api_with(settings("test-conductor")).await
}

impl Api {
    /// Sends `method path` with an optional JSON body at API version `latest`.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.url))
            .header("X-OpenStack-Ironic-API-Version", "latest");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// Polls the node until its provision_state is `want` (panics after `secs`).
    pub async fn wait_state(&self, node: &str, want: &str, secs: u64) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (_, n) = self.call("GET", &format!("/v1/nodes/{node}"), None).await;
            if n["provision_state"] == want && n["reservation"].is_null() {
                return n;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {node} never reached {want}: {n}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The faultstring inside Ironic's double-encoded error body (panics if the shape is wrong).
pub fn fault(body: &Value) -> String {
    let inner = body["error_message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an Ironic error body: {body}"));
    let inner: Value = serde_json::from_str(inner).expect("error_message is a JSON string");
    assert!(inner.get("debuginfo").is_some(), "no debuginfo in {inner}");
    assert!(
        inner["faultcode"] == "Client" || inner["faultcode"] == "Server",
        "{inner}"
    );
    inner["faultstring"].as_str().unwrap().to_string()
}
