//! `ironcast serve` as a child process with its state in a test's directory, on free ports.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `ironcast serve` child with its API URL and image server URL.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub images_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ironcast serve` with its state in `state_dir` and extra env; waits for the URL.
pub fn spawn_serve(state_dir: &Path, env: &[(&str, &str)]) -> Server {
    spawn_serve_with(state_dir, env, |_| {})
}

/// [`spawn_serve`], with `tweak` applied to the command first (e.g. a lower fd limit).
pub fn spawn_serve_with(
    state_dir: &Path,
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut Command),
) -> Server {
    spawn_serve_in(None, state_dir, env, tweak)
}

/// [`spawn_serve_with`] inside the network namespace `netns` (`ip netns exec`).
pub fn spawn_serve_in(
    netns: Option<&str>,
    state_dir: &Path,
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut Command),
) -> Server {
    let stderr_path = state_dir.join(format!("serve-{}.log", uuid::Uuid::new_v4()));
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns])
                .arg(crate::common::ironcast_bin());
            c
        }
        None => Command::new(crate::common::ironcast_bin()),
    };
    cmd.arg("serve")
        .env("IRONCAST_CONDUCTOR__STATE_DIR", state_dir)
        .env("IRONCAST_CONDUCTOR__NAME", "test-conductor")
        .env("IRONCAST_API__BIND", "127.0.0.1:0")
        .env("IRONCAST_IMAGESERVER__BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    tweak(&mut cmd);
    let mut child = cmd.spawn().expect("spawn ironcast serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut images = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("ironcast: images served at ") {
                images = url.to_string();
            }
            if let Some(url) = line.strip_prefix("ironcast: API listening on ") {
                let _ = tx.send((url.to_string(), images.clone()));
            }
        }
    });
    let (url, images_url) = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(urls) => urls,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "serve did not start: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
    };
    Server {
        child,
        url,
        images_url,
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A `serve` a QEMU user-net guest can call: the API and image server on free loopback ports,
/// announced to the agent at 10.0.2.2 (the guest's address for the host; sushy, on the host,
/// fetches the agent ISO from 127.0.0.1), booting `agent_iso`, reading file:// images under
/// `image_dirs`, with more `IRONCAST_*` settings in `env`.
pub fn serve_for_guests(
    dir: &Path,
    agent_iso: &Path,
    image_dirs: &[&Path],
    env: &[(&str, &str)],
) -> Server {
    let (api_port, images_port) = (free_port(), free_port());
    let config = dir.join("ironcast.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\nallowed_file_dirs = [{images}]\n\n\
             [agent]\niso = {iso:?}\nconductor_url = \"http://10.0.2.2:{api_port}\"\n\
             image_server_url = \"http://10.0.2.2:{images_port}\"\n",
            images = image_dirs
                .iter()
                .map(|d| format!("{:?}", d.display().to_string()))
                .collect::<Vec<_>>()
                .join(", "),
            iso = agent_iso.display().to_string(),
        ),
    )
    .unwrap();
    let api_bind = format!("127.0.0.1:{api_port}");
    let images_bind = format!("127.0.0.1:{images_port}");
    let mut all = vec![
        ("IRONCAST_CONFIG", config.to_str().unwrap()),
        ("IRONCAST_API__BIND", api_bind.as_str()),
        ("IRONCAST_IMAGESERVER__BIND", images_bind.as_str()),
    ];
    all.extend_from_slice(env);
    spawn_serve(dir, &all)
}
