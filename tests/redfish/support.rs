//! Shared helpers: start sushy-emulator, a recording file server, short-timeout configs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ironcast::redfish::RedfishConfig;

pub use crate::common::sushy::Sushy;

/// Timeouts short enough for tests, retries kept.
pub fn fast_config() -> RedfishConfig {
    RedfishConfig {
        connect_timeout_secs: 2.0,
        request_timeout_secs: 10.0,
        retries: 2,
        retry_backoff_secs: 0.05,
        retry_after_max_secs: 5.0,
        power_wait_secs: 30.0,
        power_poll_secs: 0.3,
        task_timeout_secs: 20.0,
        verify_tls: true,
        ca_bundle: None,
    }
}

/// One request the file server saw.
#[derive(Debug, Clone)]
#[allow(dead_code)] // `range` is read by the simulated fleet's tests only
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub range: Option<String>,
}

#[derive(Clone)]
struct FileState {
    body: Arc<Vec<u8>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Serves `body` at every path (HEAD, GET, single `bytes=a-b` ranges) and records requests.
pub async fn file_server(body: Vec<u8>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let state = FileState {
        body: Arc::new(body),
        seen: Arc::default(),
    };
    let seen = state.seen.clone();
    let app = axum::Router::new().fallback(serve_file).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

async fn serve_file(
    State(s): State<FileState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: uri.path().to_string(),
        range: range.clone(),
    });
    let len = s.body.len();
    if let Some(r) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
        let (a, b) = r.split_once('-').unwrap_or((r, ""));
        let start: usize = a.parse().unwrap_or(0);
        let end: usize = b.parse().map(|e: usize| e.min(len - 1)).unwrap_or(len - 1);
        if start >= len || start > end {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [("content-range", format!("bytes */{len}"))],
            )
                .into_response();
        }
        return (
            StatusCode::PARTIAL_CONTENT,
            [
                ("content-range", format!("bytes {start}-{end}/{len}")),
                ("accept-ranges", "bytes".to_string()),
            ],
            s.body[start..=end].to_vec(),
        )
            .into_response();
    }
    if method == Method::HEAD {
        return (
            StatusCode::OK,
            [
                ("content-length", len.to_string()),
                ("accept-ranges", "bytes".into()),
            ],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [("accept-ranges", "bytes")],
        s.body.as_ref().clone(),
    )
        .into_response()
}
