//! Shared steps of the deploy tests: a `serve` whose cache may read file:// ISOs from the test
//! directory, and python-ironicclient calls against it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::clients::{baremetal, ok};
use crate::common::serve::{spawn_serve, Server};

/// A `serve` with its state in `dir`, allowed to read file:// images under `dir`.
pub fn serve(dir: &Path) -> Server {
    serve_with(dir, &[dir])
}

/// A `serve` with its state in `dir`, allowed to read file:// images under `image_dirs`.
pub fn serve_with(dir: &Path, image_dirs: &[&Path]) -> Server {
    serve_with_env(dir, image_dirs, &[])
}

/// [`serve_with`], with more `IRONCAST_*` settings in `env`.
pub fn serve_with_env(dir: &Path, image_dirs: &[&Path], env: &[(&str, &str)]) -> Server {
    let config = dir.join("ironcast.toml");
    let dirs: Vec<String> = image_dirs
        .iter()
        .map(|d| format!("{:?}", d.display().to_string()))
        .collect();
    std::fs::write(
        &config,
        format!(
            "[cache]\nallowed_file_dirs = [{}]\n\n[ramdisk]\nbmc_timeout_s = 120\n",
            dirs.join(", ")
        ),
    )
    .unwrap();
    let mut all = vec![("IRONCAST_CONFIG", config.to_str().unwrap())];
    all.extend_from_slice(env);
    spawn_serve(dir, &all)
}

/// `sha256:<hex>` of a file, as instance_info boot_iso_checksum takes it.
pub fn sha256(path: &Path) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
    )
}

/// python-ironicclient against one server.
pub struct Client {
    pub bin: PathBuf,
    pub url: String,
}

impl Client {
    pub fn new(server: &Server) -> Option<Client> {
        let bin = crate::common::tool("baremetal")?;
        Some(Client {
            bin,
            url: server.url.clone(),
        })
    }

    /// Runs `baremetal ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(baremetal(&self.bin, &self.url, args), &args.join(" "))
    }

    /// `baremetal node create` of a redfish node with virtual-media boot and the ramdisk deploy;
    /// `extra` are more `node create` arguments.
    pub fn enrol_redfish(&self, name: &str, bmc: &str, system: &str, extra: &[&str]) {
        self.enrol_redfish_with(name, bmc, system, "ramdisk", extra)
    }

    /// `baremetal node create` of a redfish node with virtual-media boot and `deploy_interface`.
    pub fn enrol_redfish_with(
        &self,
        name: &str,
        bmc: &str,
        system: &str,
        deploy_interface: &str,
        extra: &[&str],
    ) {
        let address = format!("redfish_address={bmc}");
        let system_id = format!("redfish_system_id={system}");
        let mut args = vec![
            "node",
            "create",
            "--driver",
            "redfish",
            "--name",
            name,
            "--boot-interface",
            "redfish-virtual-media",
            "--deploy-interface",
            deploy_interface,
            "--driver-info",
            &address,
            "--driver-info",
            &system_id,
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// `baremetal node set NODE` with `boot_iso` (a file:// URL), its checksum and `extra`
    /// instance_info `key=value`s.
    pub fn set_boot_iso(&self, name: &str, iso: &Path, extra: &[&str]) {
        let boot_iso = format!("boot_iso=file://{}", iso.display());
        let checksum = format!("boot_iso_checksum={}", sha256(iso));
        let mut args = vec![
            "node",
            "set",
            name,
            "--instance-info",
            &boot_iso,
            "--instance-info",
            &checksum,
        ];
        for kv in extra {
            args.extend_from_slice(&["--instance-info", kv]);
        }
        self.ok(&args);
    }

    /// `baremetal node show NODE -f json`.
    pub fn show(&self, node: &str) -> Value {
        serde_json::from_str(&self.ok(&["node", "show", node, "-f", "json"])).unwrap()
    }
}

/// GETs a JSON document (a Redfish resource) with short timeouts.
pub async fn get_json(url: &str) -> Value {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap()
}

/// The `serve` log (stderr) of the test directory's server.
pub fn serve_log(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}
