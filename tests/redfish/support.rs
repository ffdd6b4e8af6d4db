//! Shared helpers: start sushy-emulator, a recording file server, short-timeout configs.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ironcast::redfish::RedfishConfig;

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

/// A running `sushy-emulator --fake`, killed on drop.
pub struct Sushy {
    child: Child,
    pub base: String,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl Sushy {
    /// Starts sushy with its own config file and state dir under `dir`; None when sushy is
    /// not installed on a developer machine.
    pub fn start(dir: &Path) -> Option<Sushy> {
        Self::start_with(dir, "", "http")
    }

    /// Like [`Sushy::start`], over HTTPS with a leaf certificate for 127.0.0.1 signed by a
    /// fresh CA; returns the CA's PEM path too.
    pub fn start_tls(dir: &Path) -> Option<(Sushy, std::path::PathBuf)> {
        let openssl = crate::common::tool("openssl")?;
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ironcast test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "bmc.key",
            "-out",
            "bmc.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "bmc.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "bmc.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let extra = format!(
            "SUSHY_EMULATOR_SSL_CERT = '{}'\nSUSHY_EMULATOR_SSL_KEY = '{}'\n",
            dir.join("bmc.pem").display(),
            dir.join("bmc.key").display()
        );
        let s = Self::start_with(dir, &extra, "https")?;
        Some((s, dir.join("ca.pem")))
    }

    /// Like [`Sushy::start`], with Basic auth for one user (sushy has no session service).
    pub fn start_with_basic_auth(dir: &Path, user: &str, password: &str) -> Option<Sushy> {
        let hash = bcrypt::hash(password, 4).unwrap();
        let file = dir.join("htpasswd");
        std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
        Self::start_with(
            dir,
            &format!("SUSHY_EMULATOR_AUTH_FILE = '{}'\n", file.display()),
            "http",
        )
    }

    fn start_with(dir: &Path, extra_conf: &str, scheme: &str) -> Option<Sushy> {
        let bin = crate::common::tool("sushy-emulator")?;
        let state = dir.join("state");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let port = free_port();
        let conf = dir.join("sushy.conf");
        std::fs::write(
            &conf,
            format!(
                "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n\
                 SUSHY_EMULATOR_STATE_DIR = '{}'\nSUSHY_EMULATOR_FAKE_DRIVER = True\n{extra_conf}",
                state.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(&conf)
            .arg("--fake")
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sushy.log")).unwrap())
            .spawn()
            .expect("spawn sushy-emulator");
        let s = Sushy {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sushy-emulator did not listen on {port}: {}",
                std::fs::read_to_string(dir.join("sushy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(s)
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
