//! What a node asks of an iso-install deploy, read from its fields (pure): the installer ISO,
//! the automation file (the user's, inline or by URL, or the built-in template), interactive or
//! not, the watchdog, and the template values from the node's data.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::driver::{DeployError, NodeView};
use crate::ports::{BootMode, ImageRequest};
use crate::ramdisk::parse_checksum;
use crate::steps::str_field;

use super::IsoInstallPolicy;

/// The largest automation file accepted (inline, fetched or rendered).
pub const MAX_AUTOMATION_BYTES: usize = 1 << 20;

/// Where the automation file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutomationSource {
    /// The user's text, given inline.
    Inline(String),
    /// The user's file at a URL, fetched by the conductor.
    Url(String),
    /// The built-in template of the identified installer.
    BuiltIn,
    /// No automation: an operator installs at the BMC console.
    Interactive,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstallPlan {
    pub image: ImageRequest,
    pub automation: AutomationSource,
    /// For an ISO no row identifies: the kernel args that take the file (`{url}` in them).
    pub automation_kernel_args: Option<String>,
    /// `kernel_append_params`: more args for every kernel entry (e.g. a console).
    pub extra_args: String,
    pub boot_mode: BootMode,
    /// The watchdog; `None` for an interactive install, which waits for power-off alone.
    pub watchdog: Option<Duration>,
    /// Template values from the node's data (the call-back's are added at deploy time).
    pub values: BTreeMap<&'static str, String>,
}

fn flag(node: &NodeView, key: &str) -> Result<bool, DeployError> {
    match node.instance_info.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(DeployError::invalid(format!(
            "instance_info/{key} is {other}: use true or false"
        ))),
    }
}

fn is_url(s: &str) -> bool {
    ["http://", "https://", "file://"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// The config drive as given to the deploy (a JSON object, or its text).
fn config_drive(node: &NodeView) -> serde_json::Map<String, Value> {
    match node.instance_info.get("configdrive") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
        _ => Default::default(),
    }
}

/// Template values from the node: hostname, node_uuid, root_device (a name hint), SSH keys and
/// user data from the config drive fields.
fn values(node: &NodeView) -> BTreeMap<&'static str, String> {
    let mut v = BTreeMap::new();
    let cd = config_drive(node);
    let meta = cd.get("meta_data").and_then(Value::as_object);
    let hostname = meta
        .and_then(|m| m.get("hostname"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| node.name.clone())
        .unwrap_or_else(|| node.uuid.clone());
    v.insert("hostname", hostname);
    v.insert("node_uuid", node.uuid.clone());
    let hints = node
        .instance_info
        .get("root_device")
        .or_else(|| node.properties.get("root_device"));
    if let Some(name) = hints.and_then(|h| h.get("name")).and_then(Value::as_str) {
        // Ironic's operators (`s== /dev/sda`) may prefix a hint; the value is the last word.
        if let Some(dev) = name.split_whitespace().last() {
            v.insert("root_device", dev.to_string());
        }
    }
    let keys: Vec<String> = match meta.and_then(|m| m.get("public_keys")) {
        Some(Value::Object(m)) => m
            .values()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(first) = keys.first() {
        v.insert("ssh_key", first.clone());
        v.insert("ssh_keys", keys.join("\n"));
    }
    v.insert(
        "ssh_keys_json",
        serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into()),
    );
    if let Some(ud) = cd.get("user_data").and_then(Value::as_str) {
        v.insert("user_data", ud.to_string());
    }
    v
}

/// Reads and checks the node's fields.
pub fn plan(node: &NodeView, policy: &IsoInstallPolicy) -> Result<InstallPlan, DeployError> {
    let url = str_field(&node.instance_info, "install_iso").ok_or_else(|| {
        DeployError::invalid(
            "instance_info/install_iso is not set: give the URL of the installer ISO",
        )
    })?;
    if !is_url(url) {
        return Err(DeployError::invalid(format!(
            "instance_info/install_iso {url:?} is not an http(s):// or file:// URL"
        )));
    }
    let checksum = match str_field(&node.instance_info, "install_iso_checksum")
        .or_else(|| str_field(&node.instance_info, "image_checksum"))
    {
        Some(text) => Some(parse_checksum(text).map_err(DeployError::invalid)?),
        None if policy.allow_unverified => None,
        None => {
            return Err(DeployError::invalid(
                "instance_info/install_iso_checksum is not set: give \"sha256:<hex>\" (or the URL of a SHA256SUMS file); the operator's policy refuses unverified images",
            ))
        }
    };
    let interactive = flag(node, "interactive")?;
    let automation = match str_field(&node.instance_info, "automation_file") {
        Some(_) if interactive => {
            return Err(DeployError::invalid(
                "instance_info/automation_file and interactive=true exclude each other: an interactive install takes no automation file",
            ))
        }
        Some(f) if is_url(f) => AutomationSource::Url(f.to_string()),
        Some(f) if f.len() > MAX_AUTOMATION_BYTES => {
            return Err(DeployError::invalid(format!(
                "instance_info/automation_file is {} bytes, more than the {MAX_AUTOMATION_BYTES} (1 MiB) accepted: serve it from a URL you control and give that URL, or shorten it",
                f.len()
            )))
        }
        Some(f) => AutomationSource::Inline(f.to_string()),
        None if interactive => AutomationSource::Interactive,
        None => AutomationSource::BuiltIn,
    };
    let automation_kernel_args =
        str_field(&node.instance_info, "automation_kernel_args").map(str::to_string);
    if let Some(a) = &automation_kernel_args {
        if !a.contains("{url}") && !a.contains("{dir_url}") {
            return Err(DeployError::invalid(format!(
                "instance_info/automation_kernel_args {a:?} does not say where the file is: put {{url}} where its URL goes"
            )));
        }
    }
    let extra_args = str_field(&node.instance_info, "kernel_append_params")
        .or_else(|| str_field(&node.driver_info, "kernel_append_params"))
        .unwrap_or_default()
        .trim()
        .to_string();
    for (what, text) in [
        ("kernel_append_params", extra_args.as_str()),
        (
            "automation_kernel_args",
            automation_kernel_args.as_deref().unwrap_or_default(),
        ),
    ] {
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(DeployError::invalid(format!(
                "{what} holds the control character {c:?}: kernel args must be one line"
            )));
        }
    }
    let boot_mode = node.boot_mode.or(policy.default_boot_mode).ok_or_else(|| {
        DeployError::invalid(
            "the node's boot mode is unknown: set properties/capabilities boot_mode:uefi or boot_mode:bios",
        )
    })?;
    let watchdog = if interactive {
        None
    } else {
        Some(match node.instance_info.get("install_timeout") {
            None | Some(Value::Null) => policy.install_timeout,
            Some(v) => {
                let secs = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|s| *s > 0)
                    .ok_or_else(|| {
                        DeployError::invalid(format!(
                            "instance_info/install_timeout is {v}: give the longest install in seconds (a positive integer)"
                        ))
                    })?;
                Duration::from_secs(secs)
            }
        })
    };
    Ok(InstallPlan {
        image: ImageRequest {
            url: url.to_string(),
            checksum,
        },
        automation,
        automation_kernel_args,
        extra_args,
        boot_mode,
        watchdog,
        values: values(node),
    })
}

/// Fills a mechanism's kernel args: `{url}`, `{dir_url}` (the URL's directory, with a
/// trailing slash) and `{root_device}`.
pub fn fill_args(
    template: &str,
    url: &str,
    values: &BTreeMap<&'static str, String>,
) -> Result<String, String> {
    let dir_url = match url.rfind('/') {
        Some(i) => &url[..=i],
        None => url,
    };
    let mut out = template.replace("{url}", url).replace("{dir_url}", dir_url);
    if out.contains("{root_device}") {
        let dev = values.get("root_device").ok_or(
            "this installer's kernel args need the root device: give instance_info/root_device {\"name\": \"/dev/sda\"}",
        )?;
        out = out.replace("{root_device}", dev);
    }
    Ok(out)
}

/// The call-back's URL and token from the agent token args (`ironcast.url=… ironcast.node=…
/// ironcast.token=…`).
pub fn callback(args: &str, node: &str) -> (Option<String>, Option<String>) {
    let word = |key: &str| {
        args.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    let url =
        word("ironcast.url=").map(|u| format!("{}/v1/heartbeat/{node}", u.trim_end_matches('/')));
    (url, word("ironcast.token="))
}
