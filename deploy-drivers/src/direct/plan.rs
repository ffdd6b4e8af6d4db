//! What a node asks a direct deploy for, read and checked from its fields (pure): the image and
//! how to verify it, its kind and format, the boot mode, root device hints, the config drive,
//! and the root disk size when it is known before boot.
//!
//! Field names are Ironic's: instance_info `image_source`, `image_checksum` (hex, or the URL
//! of a checksum file), `image_os_hash_algo` + `image_os_hash_value` (preferred when given, as
//! in Ironic), `image_disk_format`, `kernel`/`ramdisk` (a partition image: refused for now),
//! `root_gb`, `root_device`, `configdrive`; properties `root_device`, `local_gb`. An
//! `image_source` that is not a URL but a name ([`is_image_name`]) is a captured image.

use serde_json::Value;

use super::DirectDeploy;
use crate::driver::*;
use crate::image_kind::{self, ImageKind};
use crate::ports::*;
use crate::ramdisk::parse_checksum;
use crate::root_device::Hints;
use crate::steps::str_field;

/// Disk image formats the agent's writer streams (compression is detected by magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

/// The node's config drive, as the deploy gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigDrive {
    /// Built (JSON contents) or decoded (gzipped base64) by the conductor, then published.
    Build(ConfigDriveSource),
    /// Fetched by the agent from this URL.
    Url(String),
}

/// The keys of a config drive given as JSON (Ironic's).
pub const CONFIG_DRIVE_KEYS: &[&str] = &["meta_data", "user_data", "network_data", "vendor_data"];

/// What a validated node asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectPlan {
    pub image: ImageRequest,
    pub disk_format: Option<DiskFormat>,
    pub boot_mode: BootMode,
    pub hints: Hints,
    pub config_drive: Option<ConfigDrive>,
    /// The root disk's size when known before boot: an exact `size` hint, instance_info
    /// `root_gb`, or properties `local_gb`.
    pub root_bytes: Option<u64>,
}

impl DirectPlan {
    /// The name the image is published under (the agent detects the format by magic).
    pub fn published_name(&self) -> &'static str {
        match self.disk_format {
            Some(DiskFormat::Qcow2) => "disk.qcow2",
            Some(DiskFormat::Raw) => "disk.raw",
            None => "disk.img",
        }
    }
}

impl DirectDeploy {
    /// The boot mode of the node, else the policy's default.
    pub(super) fn boot_mode(&self, node: &NodeView) -> Result<BootMode, DeployError> {
        node.boot_mode
            .or(self.policy.default_boot_mode)
            .ok_or_else(|| {
                DeployError::invalid(
                    "the node's boot mode is unknown: set properties/capabilities boot_mode:uefi or boot_mode:bios",
                )
            })
    }

    /// Reads and checks the node's fields (pure).
    pub fn plan(&self, node: &NodeView) -> Result<DirectPlan, DeployError> {
        let info = &node.instance_info;
        let url = str_field(info, "image_source").ok_or_else(|| {
            DeployError::invalid(
                "instance_info/image_source is not set: give the http(s):// or file:// URL of a whole-disk image",
            )
        })?;
        // A captured image's name: the cache holds it and knows its digest.
        let named = is_image_name(url);
        if !(url.starts_with("http://")
            || url.starts_with("https://")
            || url.starts_with("file://")
            || named)
        {
            return Err(DeployError::invalid(format!(
                "instance_info/image_source {url:?} is neither an http(s):// or file:// URL nor the name of a captured image (`ironcast node capture`); image service UUIDs are not supported"
            )));
        }
        let kind = image_kind::classify(&Value::Object(info.clone()))
            .map_err(|e| DeployError::invalid(e.to_string()))?;
        if kind == ImageKind::Partition {
            return Err(DeployError::invalid(
                "instance_info sets kernel and ramdisk, which makes this a partition image: the direct deploy writes whole-disk images only for now. Remove kernel and ramdisk and give a whole-disk image",
            ));
        }
        let checksum = self.checksum(node, named)?;
        let disk_format = match str_field(info, "image_disk_format") {
            None => None,
            Some(f) => Some(match f.to_ascii_lowercase().as_str() {
                "raw" => DiskFormat::Raw,
                "qcow2" => DiskFormat::Qcow2,
                other => {
                    return Err(DeployError::invalid(format!(
                        "instance_info/image_disk_format {other:?} is not supported: use raw or qcow2 (gzip, zstd and xz compression of either is detected)"
                    )))
                }
            }),
        };
        let boot_mode = self.boot_mode(node)?;
        let hints = match info
            .get("root_device")
            .or_else(|| node.properties.get("root_device"))
            .filter(|v| !v.is_null())
        {
            Some(v) => Hints::parse(v).map_err(|e| DeployError::invalid(e.to_string()))?,
            None => Hints::default(),
        };
        let root_bytes = hints
            .exact_size()
            .or_else(|| gib_field(info.get("root_gb")))
            .or_else(|| gib_field(node.properties.get("local_gb")));
        let config_drive = config_drive(info.get("configdrive"))?.map(|cd| with_identity(cd, node));
        Ok(DirectPlan {
            image: ImageRequest {
                url: url.to_string(),
                checksum,
            },
            disk_format,
            boot_mode,
            hints,
            config_drive,
            root_bytes,
        })
    }

    /// The image's checksum; optional for a captured image (`named`), whose digest the cache
    /// recorded when it made it.
    fn checksum(&self, node: &NodeView, named: bool) -> Result<Option<ChecksumSpec>, DeployError> {
        let info = &node.instance_info;
        let algo = str_field(info, "image_os_hash_algo");
        let value = str_field(info, "image_os_hash_value");
        match (algo, value) {
            (Some(a), Some(v)) => {
                return parse_checksum(&format!("{}:{}", a.to_ascii_lowercase(), v))
                    .map(Some)
                    .map_err(|e| DeployError::invalid(format!("image_os_hash_algo/value: {e}")))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(DeployError::invalid(
                    "instance_info sets only one of image_os_hash_algo and image_os_hash_value: give both, e.g. sha256 and the hex digest",
                ))
            }
            (None, None) => {}
        }
        match str_field(info, "image_checksum") {
            Some(text) => parse_checksum(text)
                .map(Some)
                .map_err(|e| DeployError::invalid(format!("image_checksum: {e}"))),
            None if named || self.policy.allow_unverified => Ok(None),
            None => Err(DeployError::invalid(
                "instance_info/image_checksum is not set: give the sha256 hex digest or the URL of a SHA256SUMS file (or image_os_hash_algo + image_os_hash_value); the operator's policy refuses unverified images",
            )),
        }
    }
}

/// A size in GiB (number or numeric string) as bytes.
fn gib_field(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    let gib = v
        .as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    gib.checked_mul(1 << 30).filter(|b| *b > 0)
}

/// Gives a config drive's `meta_data` the node's `uuid` and `name` unless it sets them, as
/// Ironic does (`build_configdrive`).
fn with_identity(cd: ConfigDrive, node: &NodeView) -> ConfigDrive {
    let ConfigDrive::Build(ConfigDriveSource::Contents(mut map)) = cd else {
        return cd;
    };
    let meta = map
        .entry("meta_data")
        .or_insert_with(|| Value::Object(Default::default()));
    if meta.is_null() {
        *meta = Value::Object(Default::default());
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.entry("uuid")
            .or_insert_with(|| Value::String(node.uuid.clone()));
        if let Some(name) = &node.name {
            meta.entry("name")
                .or_insert_with(|| Value::String(name.clone()));
        }
    }
    ConfigDrive::Build(ConfigDriveSource::Contents(map))
}

/// Reads instance_info `configdrive`: a JSON object of contents, a URL, or a gzipped base64
/// image.
fn config_drive(v: Option<&Value>) -> Result<Option<ConfigDrive>, DeployError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.starts_with("http://") || s.starts_with("https://") => {
            Ok(Some(ConfigDrive::Url(s.clone())))
        }
        Some(Value::String(s)) => Ok(Some(ConfigDrive::Build(ConfigDriveSource::Encoded(
            s.clone(),
        )))),
        Some(Value::Object(map)) => {
            if let Some(bad) = map.keys().find(|k| !CONFIG_DRIVE_KEYS.contains(&k.as_str())) {
                return Err(DeployError::invalid(format!(
                    "configdrive key {bad:?} is unknown: use {}",
                    CONFIG_DRIVE_KEYS.join(", ")
                )));
            }
            Ok(Some(ConfigDrive::Build(ConfigDriveSource::Contents(
                map.clone(),
            ))))
        }
        Some(other) => Err(DeployError::invalid(format!(
            "configdrive must be a JSON object (meta_data, user_data, network_data), a URL or a gzipped base64 image, not {}",
            match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                _ => "a list",
            }
        ))),
    }
}
