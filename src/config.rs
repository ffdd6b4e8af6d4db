//! Configuration: `etc/ironcast.toml` plus `IRONCAST_<SECTION>__<KEY>` overrides, validated once
//! at start into one [`Config`].
//!
//! The defaults are the embedded `etc/ironcast.toml` itself, so the documented file and the
//! defaults cannot drift. A new section is one struct deriving `Deserialize` with
//! `deny_unknown_fields`, one field on [`Config`], and the section (documented) in the file.
//!
//! Non-goals: reloading at run time; reading config anywhere but at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The documented defaults, embedded.
pub const DEFAULTS: &str = include_str!("../etc/ironcast.toml");

/// Largest connection cap a listener may be given.
const MAX_CONNECTIONS: usize = 1 << 20;
/// Longest lifetime of a published image URL.
const MAX_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 86400);
/// Longest request or write timeout, in seconds (an hour).
const MAX_TIMEOUT_S: u64 = 3600;

/// Everything `ironcast serve` is configured by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub api: ApiConfig,
    pub database: DatabaseConfig,
    pub conductor: ConductorConfig,
    pub ramdisk: RamdiskConfig,
    pub direct: DirectConfig,
    pub iso_install: IsoInstallConfig,
    pub cache: crate::cache::CacheConfig,
    pub imageserver: crate::imageserver::ServerConfig,
    pub redfish: crate::redfish::RedfishConfig,
    pub netboot: NetbootConfig,
    pub agent: AgentConfig,
    pub inspection: InspectionConfig,
    pub inspection_rules: InspectionRulesConfig,
    pub metal3: Metal3Config,
}

/// `[inspection]`: what inspection does with the inventory it reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionConfig {
    pub add_ports: crate::hardware::inventory::AddPorts,
}

/// `[inspection_rules]`: how inspection rules (API 1.96) are applied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionRulesConfig {
    pub mask_secrets: crate::inspection_rules::MaskSecrets,
    /// A YAML file of built-in rules; empty: none.
    pub built_in_rules: String,
}

/// `[metal3]`: BareMetalHost manifests and their reconciler.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metal3Config {
    pub enabled: bool,
    pub manifests_dir: PathBuf,
    pub manifests_poll_s: u64,
    pub poll_interval_ms: u64,
    pub resync_interval_s: u64,
    pub backoff_unit_s: u64,
    pub concurrency: usize,
}

impl Metal3Config {
    pub fn settings(&self) -> crate::metal3::Settings {
        use std::time::Duration;
        crate::metal3::Settings {
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            resync_interval: Duration::from_secs(self.resync_interval_s),
            backoff_unit: Duration::from_secs(self.backoff_unit_s),
            concurrency: self.concurrency,
        }
    }
}

/// `[agent]`: the in-ramdisk agent of whole-disk deploys and cleaning, as the conductor sees it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The URL agents call (kernel arg `ironcast.url`); empty: `[api] public_url`, else the
    /// bound API address.
    pub conductor_url: String,
    /// The agent ramdisk ISO to boot; empty: the one `serve` builds, if any.
    pub iso: PathBuf,
    /// The kernel `serve` builds the agent ISO from when `iso` is empty; empty: none.
    pub kernel: PathBuf,
    /// The agent binary packed into that ISO; empty: the running binary.
    pub agent_binary: PathBuf,
    /// Longest time a heartbeat is held open waiting for a command (long poll).
    pub poll_wait_s: u64,
    /// Base URL agents use to reach the image server, when it differs from the one BMCs use;
    /// empty: the same.
    pub image_server_url: String,
}

/// `[ramdisk]`: the operator's policy for live-ISO (ramdisk) deploys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RamdiskConfig {
    pub allow_unverified: bool,
    pub default_kernel_args: String,
    pub default_boot_mode: String,
    pub image_timeout_s: u64,
    pub bmc_timeout_s: u64,
    pub local_timeout_s: u64,
}

/// `[direct]`: the operator's policy for whole-disk (direct) deploys and cleaning; BMC, image
/// and local step timeouts and the default boot mode are `[ramdisk]`'s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectConfig {
    pub allow_unverified: bool,
    pub agent_timeout_s: u64,
    pub write_timeout_s: u64,
    pub command_timeout_s: u64,
    pub progress_interval_s: u64,
    pub capture_zstd_level: i32,
}

/// `[iso_install]`: the operator's policy for installs from installer ISOs (`iso-install`);
/// BMC, image and local step timeouts and the default boot mode are `[ramdisk]`'s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsoInstallConfig {
    pub allow_unverified: bool,
    pub install_timeout_s: u64,
    pub poll_interval_s: u64,
    pub menu_timeout_s: u32,
}

/// `[netboot]`: where per-MAC PXE/GRUB/iPXE configs are written, and the built-in DHCP and
/// TFTP servers (checked by `crate::netboot::settings`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetbootConfig {
    pub tftp_root: PathBuf,
    /// "off", "proxy" (ProxyDHCP beside the site's DHCP server) or "range".
    pub dhcp: String,
    /// Network interface the DHCP responder answers on.
    pub interface: String,
    /// This host's IPv4 address on `interface` (next-server, TFTP).
    pub address: String,
    pub tftp_port: u16,
    pub tftp_max_transfers: usize,
    pub tftp_max_blksize: u16,
    /// Where Debian's `ipxe` package puts undionly.kpxe, ipxe.efi and snponly.efi.
    pub ipxe_dir: PathBuf,
    /// The iPXE binary UEFI PXE clients chain-load: "ipxe.efi" or "snponly.efi".
    pub uefi_binary: String,
    pub range_start: String,
    pub range_end: String,
    pub range_netmask: String,
    pub range_router: String,
    pub range_dns: Vec<String>,
    pub range_lease_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    pub htpasswd: String,
    pub public_url: String,
    pub max_limit: usize,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub head_timeout_s: u64,
    pub body_timeout_s: u64,
    pub write_timeout_s: u64,
}

impl ApiConfig {
    pub fn conn_limits(&self) -> crate::listen::ConnLimits {
        crate::listen::ConnLimits {
            total: self.max_connections,
            per_client: self.max_connections_per_client,
        }
    }

    pub fn timeouts(&self) -> crate::listen::http::Timeouts {
        use std::time::Duration;
        crate::listen::http::Timeouts {
            head: Duration::from_secs(self.head_timeout_s),
            body: Duration::from_secs(self.body_timeout_s),
            write: Duration::from_secs(self.write_timeout_s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConductorConfig {
    pub state_dir: PathBuf,
    pub name: String,
    pub heartbeat_interval_s: u64,
    pub heartbeat_timeout_s: u64,
    pub lock_wait_ms: u64,
    pub deploy_timeout_s: u64,
    pub fake_deploy_delay_ms: u64,
    pub fake_undeploy_delay_ms: u64,
    pub fake_power_delay_ms: u64,
    pub automated_clean: bool,
    pub health_interval_s: u64,
}

/// Why the configuration cannot be used; each message names the option and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("environment variable {var} does not name an option: use IRONCAST_<SECTION>__<KEY>, e.g. IRONCAST_API__BIND")]
    BadEnvName { var: String },
    #[error("invalid configuration: {0} (see etc/ironcast.toml for every option)")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `file` if given, then the `IRONCAST_*` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut merged = parse(DEFAULTS, "defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let overlay = parse(&text, &path.display().to_string())?;
            merge(&mut merged, overlay);
        }
        for (var, value) in env {
            let Some(rest) = var.strip_prefix("IRONCAST_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                // IRONCAST_URL and friends belong to the CLI, not to the server config.
                continue;
            };
            if section.is_empty() || key.is_empty() {
                return Err(ConfigError::BadEnvName { var });
            }
            let table = merged
                .as_table_mut()
                .expect("config root is a table")
                .entry(section.to_ascii_lowercase())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            let Some(table) = table.as_table_mut() else {
                return Err(ConfigError::BadEnvName { var });
            };
            table.insert(key.to_ascii_lowercase(), scalar(&value));
        }
        // Through text, so a type error points at the offending `key = value` line.
        let text = toml::to_string(&merged).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let config: Config = toml::from_str(&text)
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string().trim().to_string()))?;
        let mut config = config;
        config.place_dirs();
        config.validate()?;
        Ok(config)
    }

    /// Directories left empty in the file live under `[conductor] state_dir`.
    fn place_dirs(&mut self) {
        let state = self.conductor.state_dir.clone();
        for (dir, name) in [
            (&mut self.cache.dir, "cache"),
            (&mut self.imageserver.dir, "imageserver"),
            (&mut self.netboot.tftp_root, "tftpboot"),
        ] {
            if dir.as_os_str().is_empty() {
                *dir = state.join(name);
            }
        }
    }

    /// The ramdisk deploy policy these settings describe.
    pub fn ramdisk_policy(&self) -> deploy_drivers::ramdisk::RamdiskPolicy {
        let r = &self.ramdisk;
        deploy_drivers::ramdisk::RamdiskPolicy {
            allow_unverified: r.allow_unverified,
            default_kernel_args: Some(r.default_kernel_args.clone()).filter(|a| !a.is_empty()),
            default_boot_mode: deploy_drivers::BootMode::parse(&r.default_boot_mode),
            image_timeout: std::time::Duration::from_secs(r.image_timeout_s),
            bmc_timeout: std::time::Duration::from_secs(r.bmc_timeout_s),
            local_timeout: std::time::Duration::from_secs(r.local_timeout_s),
        }
    }

    /// The URL agents are told to call: `[agent] conductor_url`, else `[api] public_url`, else
    /// `http://` + the address the API is bound to (`bound`, which knows a port 0 pick).
    pub fn agent_conductor_url(&self, bound: std::net::SocketAddr) -> String {
        let url = if !self.agent.conductor_url.is_empty() {
            self.agent.conductor_url.clone()
        } else if !self.api.public_url.is_empty() {
            self.api.public_url.clone()
        } else {
            format!("http://{bound}")
        };
        url.trim_end_matches('/').to_string()
    }

    /// The direct deploy policy these settings describe.
    pub fn direct_policy(&self) -> deploy_drivers::direct::DirectPolicy {
        let (r, d) = (&self.ramdisk, &self.direct);
        let secs = std::time::Duration::from_secs;
        deploy_drivers::direct::DirectPolicy {
            allow_unverified: d.allow_unverified,
            default_boot_mode: deploy_drivers::BootMode::parse(&r.default_boot_mode),
            image_timeout: secs(r.image_timeout_s),
            bmc_timeout: secs(r.bmc_timeout_s),
            local_timeout: secs(r.local_timeout_s),
            agent_timeout: secs(d.agent_timeout_s),
            write_timeout: secs(d.write_timeout_s),
            command_timeout: secs(d.command_timeout_s),
            progress_interval: secs(d.progress_interval_s),
            capture_zstd_level: d.capture_zstd_level,
        }
    }

    /// The iso-install deploy policy these settings describe.
    pub fn iso_install_policy(&self) -> deploy_drivers::iso_install::IsoInstallPolicy {
        let (r, i) = (&self.ramdisk, &self.iso_install);
        let secs = std::time::Duration::from_secs;
        deploy_drivers::iso_install::IsoInstallPolicy {
            allow_unverified: i.allow_unverified,
            default_boot_mode: deploy_drivers::BootMode::parse(&r.default_boot_mode),
            image_timeout: secs(r.image_timeout_s),
            bmc_timeout: secs(r.bmc_timeout_s),
            local_timeout: secs(r.local_timeout_s),
            install_timeout: secs(i.install_timeout_s),
        }
    }

    /// Loads with the process environment.
    pub fn from_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load(file, std::env::vars())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.metal3;
        if m.poll_interval_ms == 0 || m.resync_interval_s == 0 || m.manifests_poll_s == 0 {
            return Err(ConfigError::Invalid(
                "metal3.poll_interval_ms, resync_interval_s and manifests_poll_s must be at least 1".into(),
            ));
        }
        if m.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "metal3.concurrency must be at least 1".into(),
            ));
        }
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "database.url {url:?} is neither sqlite:PATH nor postgres://…"
            )));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if self.conductor.heartbeat_interval_s == 0 {
            return Err(ConfigError::Invalid(
                "conductor.heartbeat_interval_s must be at least 1".into(),
            ));
        }
        if self.conductor.heartbeat_timeout_s < 2 * self.conductor.heartbeat_interval_s {
            return Err(ConfigError::Invalid(format!(
                "conductor.heartbeat_timeout_s ({}) must be at least twice heartbeat_interval_s ({}), or a live conductor looks dead after one late heartbeat",
                self.conductor.heartbeat_timeout_s, self.conductor.heartbeat_interval_s
            )));
        }
        // Each deploy interface's worst case, when every step uses its whole timeout.
        let deploys = [
            (
                "the ramdisk steps'",
                self.ramdisk_policy().longest_deploy(),
                "ramdisk.image_timeout_s + 8 x local_timeout_s + 6 x bmc_timeout_s",
            ),
            (
                "the direct deploy's step",
                self.direct_policy().longest_deploy(),
                "ramdisk.image_timeout_s + 1.25 x direct.agent_timeout_s + 1.25 x direct.write_timeout_s + direct.command_timeout_s + 13 x ramdisk.bmc_timeout_s + 22 x ramdisk.local_timeout_s",
            ),
            (
                "the iso-install steps'",
                self.iso_install_policy().longest_deploy(),
                "2 x ramdisk.image_timeout_s + 20 x local_timeout_s + 8 x bmc_timeout_s",
            ),
        ];
        for (whose, longest, formula) in deploys {
            let longest = longest.as_secs();
            if longest > self.conductor.deploy_timeout_s {
                return Err(ConfigError::Invalid(format!(
                    "conductor.deploy_timeout_s ({}) is shorter than {whose} timeouts allow a deploy to take ({longest} s = {formula}): raise deploy_timeout_s or lower the step timeouts",
                    self.conductor.deploy_timeout_s
                )));
            }
        }
        let i = &self.iso_install;
        for (key, value, least) in [
            ("iso_install.poll_interval_s", i.poll_interval_s, 1),
            ("iso_install.install_timeout_s", i.install_timeout_s, 60),
            ("iso_install.menu_timeout_s", i.menu_timeout_s as u64, 1),
        ] {
            if value < least {
                return Err(ConfigError::Invalid(format!(
                    "{key} ({value}) must be at least {least}"
                )));
            }
        }
        if self.direct.progress_interval_s == 0 {
            return Err(ConfigError::Invalid(
                "direct.progress_interval_s must be at least 1".into(),
            ));
        }
        if !(1..=19).contains(&self.direct.capture_zstd_level) {
            return Err(ConfigError::Invalid(format!(
                "direct.capture_zstd_level is {}: use a zstd level from 1 to 19",
                self.direct.capture_zstd_level
            )));
        }
        if self.conductor.state_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "conductor.state_dir must not be empty".into(),
            ));
        }
        let mode = &self.ramdisk.default_boot_mode;
        if !mode.is_empty() && deploy_drivers::BootMode::parse(mode).is_none() {
            return Err(ConfigError::Invalid(format!(
                "ramdisk.default_boot_mode {mode:?} must be \"uefi\", \"bios\" or empty"
            )));
        }
        if let Some(c) = self
            .ramdisk
            .default_kernel_args
            .chars()
            .find(|c| c.is_control())
        {
            return Err(ConfigError::Invalid(format!(
                "ramdisk.default_kernel_args holds the control character {c:?}: kernel args are one line"
            )));
        }
        crate::netboot::settings::check(&self.netboot).map_err(ConfigError::Invalid)?;
        self.redfish
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("redfish: {e}")))?;
        if self.agent.poll_wait_s == 0 || self.agent.poll_wait_s > 60 {
            return Err(ConfigError::Invalid(format!(
                "agent.poll_wait_s is {}: use 1 to 60 seconds (agents give up on a heartbeat after 90 s)",
                self.agent.poll_wait_s
            )));
        }
        let image_url = &self.agent.image_server_url;
        if !image_url.is_empty()
            && !reqwest::Url::parse(image_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        {
            return Err(ConfigError::Invalid(format!(
                "agent.image_server_url {image_url:?} must be an http:// or https:// base URL, e.g. \"http://10.0.2.2:8081\""
            )));
        }
        let agent_url = &self.agent.conductor_url;
        let agent_url_ok = agent_url.is_empty()
            || ((agent_url.starts_with("http://") || agent_url.starts_with("https://"))
                && !agent_url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control()));
        if !agent_url_ok {
            return Err(ConfigError::Invalid(format!(
                "agent.conductor_url {agent_url:?} must be an http:// or https:// URL without spaces (it becomes a kernel arg)"
            )));
        }
        self.validate_listeners()?;
        let public = &self.api.public_url;
        let public_ok =
            public.is_empty() || public.starts_with("http://") || public.starts_with("https://");
        if !public_ok {
            return Err(ConfigError::Invalid(format!(
                "api.public_url {:?} must start with http:// or https://",
                self.api.public_url
            )));
        }
        if self.api.max_limit == 0 {
            return Err(ConfigError::Invalid(
                "api.max_limit is 0: a list page must hold at least 1 item (Ironic's default is 1000)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Connection caps and timeouts: at least 1, at most what a machine can hold.
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let api = &self.api;
        let images = &self.imageserver;
        for (name, total, per_client) in [
            ("api", api.max_connections, api.max_connections_per_client),
            (
                "imageserver",
                images.max_connections,
                images.max_connections_per_client,
            ),
        ] {
            if !(1..=MAX_CONNECTIONS).contains(&total) {
                return Err(ConfigError::Invalid(format!(
                    "{name}.max_connections {total} must be between 1 and {MAX_CONNECTIONS}"
                )));
            }
            if !(1..=total).contains(&per_client) {
                return Err(ConfigError::Invalid(format!(
                    "{name}.max_connections_per_client {per_client} must be between 1 and \
                     {name}.max_connections ({total})"
                )));
            }
        }
        let ttl = images.token_ttl;
        if ttl < std::time::Duration::from_secs(60) || ttl > MAX_TOKEN_TTL {
            return Err(ConfigError::Invalid(format!(
                "imageserver.token_ttl {ttl:?} must be between 60s and 365d"
            )));
        }
        for (key, secs) in [
            ("head_timeout_s", api.head_timeout_s),
            ("body_timeout_s", api.body_timeout_s),
            ("write_timeout_s", api.write_timeout_s),
        ] {
            if !(1..=MAX_TIMEOUT_S).contains(&secs) {
                return Err(ConfigError::Invalid(format!(
                    "api.{key} {secs} must be between 1 and {MAX_TIMEOUT_S} seconds"
                )));
            }
        }
        Ok(())
    }

    /// The database URL to connect to: the configured one, or the SQLite file in state_dir.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.conductor.state_dir.join("ironcast.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    /// The conductor's name: configured, else the hostname, else "ironcast".
    /// `[conductor] name`, or when empty a name unique to this process (host name plus a
    /// random suffix): call once per process.
    pub fn conductor_name(&self) -> String {
        if !self.conductor.name.is_empty() {
            return self.conductor.name.clone();
        }
        crate::conductor::identity::unique_name()
    }
}

fn parse(text: &str, origin: &str) -> Result<toml::Value, ConfigError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e| ConfigError::Syntax {
            origin: origin.to_string(),
            message: e.message().to_string(),
        })
}

/// Overlays `top` onto `base`, table by table.
fn merge(base: &mut toml::Value, top: toml::Value) {
    match (base, top) {
        (toml::Value::Table(b), toml::Value::Table(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_table() && v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, t) => *b = t,
    }
}

/// An environment value as a TOML scalar: integer, float, boolean, else string.
fn scalar(value: &str) -> toml::Value {
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = value.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(f) = value.parse::<f64>() {
        if value.contains('.') {
            return toml::Value::Float(f);
        }
    }
    toml::Value::String(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_match_the_documented_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.api.bind.to_string(), "127.0.0.1:6385");
        assert!(c.database.url.is_empty());
        assert!(c
            .database_url()
            .ends_with("/var/lib/ironcast/ironcast.db?mode=rwc"));
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[conductor]\nfake_deploy_delay_ms = 7\nstate_dir = \"/x\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("IRONCAST_CONDUCTOR__STATE_DIR", "/y"),
                ("IRONCAST_API__BIND", "127.0.0.1:0"),
                ("IRONCAST_URL", "http://ignored"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(c.conductor.fake_deploy_delay_ms, 7);
        assert_eq!(c.conductor.state_dir, PathBuf::from("/y"));
        assert_eq!(c.api.bind.port(), 0);
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::load(None, env(&[("IRONCAST_API__BIND", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("socket address"), "{err}");
        let err = Config::load(None, env(&[("IRONCAST_API__NO_SUCH", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such"), "{err}");
        let err = Config::load(None, env(&[("IRONCAST_DATABASE__URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        let err = Config::load(None, env(&[("IRONCAST___BIND", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("IRONCAST___BIND"), "{err}");
    }

    #[test]
    fn step_timeouts_must_fit_in_the_deploy_timeout() {
        let err = Config::load(
            None,
            env(&[("IRONCAST_CONDUCTOR__DEPLOY_TIMEOUT_S", "3600")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("deploy_timeout_s (3600)") && err.contains("4560 s"),
            "{err}"
        );
        let fits = env(&[
            ("IRONCAST_CONDUCTOR__DEPLOY_TIMEOUT_S", "3600"),
            ("IRONCAST_RAMDISK__BMC_TIMEOUT_S", "100"),
        ]);
        let err = Config::load(None, fits).unwrap_err().to_string();
        assert!(
            err.contains("deploy_timeout_s (3600)")
                && err.contains("direct deploy")
                && err.contains("11965 s"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[("IRONCAST_CONDUCTOR__DEPLOY_TIMEOUT_S", "10000")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("deploy_timeout_s (10000)") && err.contains("14565 s"),
            "{err}"
        );
        let short = [
            ("IRONCAST_CONDUCTOR__DEPLOY_TIMEOUT_S", "3600"),
            ("IRONCAST_RAMDISK__BMC_TIMEOUT_S", "100"),
            ("IRONCAST_RAMDISK__LOCAL_TIMEOUT_S", "10"),
            ("IRONCAST_DIRECT__AGENT_TIMEOUT_S", "60"),
            ("IRONCAST_DIRECT__WRITE_TIMEOUT_S", "60"),
            ("IRONCAST_DIRECT__COMMAND_TIMEOUT_S", "60"),
        ];
        // The ISO and a fetched automation file may each take image_timeout_s.
        let two_images = [
            short.as_slice(),
            &[("IRONCAST_RAMDISK__IMAGE_TIMEOUT_S", "1500")],
        ]
        .concat();
        let err = Config::load(None, env(&two_images))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("deploy_timeout_s (3600)")
                && err.contains("iso-install")
                && err.contains("4000 s"),
            "{err}"
        );
        let fits = [
            short.as_slice(),
            &[("IRONCAST_RAMDISK__IMAGE_TIMEOUT_S", "1200")],
        ]
        .concat();
        assert!(Config::load(None, env(&fits)).is_ok());
        let err = Config::load(
            None,
            env(&[("IRONCAST_CONDUCTOR__HEARTBEAT_TIMEOUT_S", "15")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("heartbeat_timeout_s (15)"), "{err}");
    }
}
