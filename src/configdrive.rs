//! Config drives for direct deploys (Ironic's `configdrive`): the JSON form built into an ISO
//! 9660 volume labelled `config-2`, or the gzipped base64 form decoded, stored as
//! `<dir>/<node>.img` for the image server to publish.
//!
//! The layout is OpenStack's (openstacksdk `configdrive.populate_directory`, which Ironic
//! uses): `openstack/{2012-08-10,latest}/meta_data.json`, `user_data` (when given; a JSON
//! object or list is written as JSON), `network_data.json` and `vendor_data.json` (when
//! given). cloud-init and Glean read it by the volume label. Building and decoding are pure
//! ([`contents_image`], [`decode`]); [`ConfigDriveDir`] implements the port on the blocking
//! pool. Spec: the OpenStack config drive format (nova `virt/configdrive`).
//!
//! Non-goals: vfat config drives (Ironic builds ISO 9660 too), the `ec2/` tree.

use std::io::Read;
use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine as _;
use deploy_drivers::ports::{
    Artifact, ConfigDriveSource, ConfigDrives, PortError, PortErrorKind, PortResult,
};
use serde_json::{Map, Value};

use crate::iso::IsoWriter;

/// Largest config drive image (Ironic's agent writes it into a 64 MiB partition).
pub const MAX_IMAGE: usize = 64 << 20;
/// The volume label cloud-init looks for.
pub const LABEL: &str = "config-2";
/// The metadata versions written, as openstacksdk does.
const VERSIONS: &[&str] = &["2012-08-10", "latest"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigDriveError {
    #[error("config drive: {0}")]
    Invalid(String),
    #[error("the decoded config drive is over {MAX_IMAGE} bytes (64 MiB): make it smaller")]
    TooBig,
    #[error("{context}: {message}")]
    Io { context: String, message: String },
}

impl From<ConfigDriveError> for PortError {
    fn from(e: ConfigDriveError) -> Self {
        let kind = match e {
            ConfigDriveError::Io { .. } => PortErrorKind::Other,
            _ => PortErrorKind::InvalidInput,
        };
        PortError::new(kind, e.to_string())
    }
}

/// The files of a config drive given as JSON (`meta_data`, `user_data`, `network_data`,
/// `vendor_data`), by path in the volume.
pub fn contents_files(
    contents: &Map<String, Value>,
) -> Result<Vec<(String, Vec<u8>)>, ConfigDriveError> {
    let json = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    let meta = match contents.get("meta_data") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ConfigDriveError::Invalid(
                "meta_data must be a JSON object".into(),
            ))
        }
    };
    let user_data = match contents.get("user_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(json(v)),
        Some(_) => {
            return Err(ConfigDriveError::Invalid(
                "user_data must be a string, a JSON object or a list".into(),
            ))
        }
    };
    let object = |key: &str| match contents.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(json(v))),
        Some(_) => Err(ConfigDriveError::Invalid(format!(
            "{key} must be a JSON object"
        ))),
    };
    let network = object("network_data")?;
    let vendor = object("vendor_data")?;
    let mut files = Vec::new();
    for version in VERSIONS {
        let dir = format!("/openstack/{version}");
        files.push((format!("{dir}/meta_data.json"), json(&meta)));
        if let Some(u) = &user_data {
            files.push((format!("{dir}/user_data"), u.clone()));
        }
        if let Some(n) = &network {
            files.push((format!("{dir}/network_data.json"), n.clone()));
        }
        if let Some(v) = &vendor {
            files.push((format!("{dir}/vendor_data.json"), v.clone()));
        }
    }
    Ok(files)
}

/// The ISO 9660 `config-2` image of a config drive given as JSON.
pub fn contents_image(contents: &Map<String, Value>) -> Result<Vec<u8>, ConfigDriveError> {
    let invalid = |e: crate::iso::IsoError| ConfigDriveError::Invalid(e.to_string());
    let mut iso = IsoWriter::new(LABEL).map_err(invalid)?;
    for (path, data) in contents_files(contents)? {
        iso.add_file(&path, data).map_err(invalid)?;
    }
    let image = iso.build().map_err(invalid)?;
    if image.len() > MAX_IMAGE {
        return Err(ConfigDriveError::TooBig);
    }
    Ok(image)
}

/// Decodes the gzipped base64 form (plain base64 of an image is accepted too), refusing an
/// image over [`MAX_IMAGE`] without inflating past it.
pub fn decode(encoded: &str) -> Result<Vec<u8>, ConfigDriveError> {
    let compact: String = encoded.split_ascii_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            ConfigDriveError::Invalid(format!(
                "the configdrive string is neither a URL nor base64 ({e}): give a gzipped, base64-encoded image, a URL or a JSON object"
            ))
        })?;
    let image = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(MAX_IMAGE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                ConfigDriveError::Invalid(format!("the configdrive is not valid gzip: {e}"))
            })?;
        out
    } else {
        bytes
    };
    if image.len() > MAX_IMAGE {
        return Err(ConfigDriveError::TooBig);
    }
    if image.is_empty() {
        return Err(ConfigDriveError::Invalid(
            "the configdrive image is empty".into(),
        ));
    }
    Ok(image)
}

/// The config drive image of `source`.
pub fn image(source: &ConfigDriveSource) -> Result<Vec<u8>, ConfigDriveError> {
    match source {
        ConfigDriveSource::Contents(map) => contents_image(map),
        ConfigDriveSource::Encoded(s) => decode(s),
    }
}

/// Stores config drives as `<dir>/<node>.img`.
#[derive(Debug, Clone)]
pub struct ConfigDriveDir {
    dir: PathBuf,
}

impl ConfigDriveDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, node: &str) -> PortResult<PathBuf> {
        if node.is_empty()
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PortError::new(
                PortErrorKind::InvalidInput,
                format!(
                    "node {node:?} is not a valid config drive name (letters, digits, - and _)"
                ),
            ));
        }
        Ok(self.dir.join(format!("{node}.img")))
    }
}

#[async_trait]
impl ConfigDrives for ConfigDriveDir {
    async fn build(&self, node: &str, source: &ConfigDriveSource) -> PortResult<Artifact> {
        let path = self.path(node)?;
        let dir = self.dir.clone();
        let source = source.clone();
        tokio::task::spawn_blocking(move || {
            let data = image(&source)?;
            std::fs::create_dir_all(&dir).map_err(|e| ConfigDriveError::Io {
                context: format!("creating {}", dir.display()),
                message: e.to_string(),
            })?;
            crate::durable::write(&path, &data, crate::durable::Mode::Private).map_err(|e| {
                ConfigDriveError::Io {
                    context: e.context,
                    message: e.source.to_string(),
                }
            })?;
            Ok(Artifact {
                base: path,
                patch_set: None,
                len: data.len() as u64,
            })
        })
        .await
        .map_err(|e| PortError::other(format!("config drive task failed: {e}")))?
        .map_err(|e: ConfigDriveError| e.into())
    }

    async fn discard(&self, node: &str) -> PortResult<()> {
        crate::durable::remove_blocking(self.path(node)?)
            .await
            .map(drop)
            .map_err(|e| PortError::other(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn json_contents_become_openstack_files() {
        let files = contents_files(&map(json!({
            "meta_data": {"uuid": "u-1", "hostname": "h"},
            "user_data": {"runcmd": ["echo"]},
            "network_data": {"links": []},
        })))
        .unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "/openstack/2012-08-10/meta_data.json",
                "/openstack/2012-08-10/user_data",
                "/openstack/2012-08-10/network_data.json",
                "/openstack/latest/meta_data.json",
                "/openstack/latest/user_data",
                "/openstack/latest/network_data.json",
            ]
        );
        let meta: Value = serde_json::from_slice(&files[3].1).unwrap();
        assert_eq!(meta["uuid"], "u-1");
        assert_eq!(files[4].1, br#"{"runcmd":["echo"]}"#);
        let plain = contents_files(&map(json!({"user_data": "#!/bin/sh\n"}))).unwrap();
        assert_eq!(plain[1].1, b"#!/bin/sh\n");
        assert_eq!(plain.len(), 4, "no network_data file when none is given");
    }

    #[test]
    fn bad_contents_are_named() {
        for (v, want) in [
            (json!({"meta_data": "x"}), "meta_data must be a JSON object"),
            (json!({"user_data": 5}), "user_data must be"),
            (
                json!({"network_data": [1]}),
                "network_data must be a JSON object",
            ),
        ] {
            let err = contents_files(&map(v.clone())).unwrap_err().to_string();
            assert!(err.contains(want), "{v}: {err}");
        }
    }

    #[test]
    fn decode_takes_gzipped_or_plain_base64_and_refuses_garbage() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"image bytes").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(&b64(&gz)).unwrap(), b"image bytes");
        let wrapped: String = b64(&gz)
            .as_bytes()
            .chunks(10)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(decode(&wrapped).unwrap(), b"image bytes");
        assert_eq!(decode(&b64(b"raw")).unwrap(), b"raw");
        assert!(decode("not base64!")
            .unwrap_err()
            .to_string()
            .contains("neither a URL nor base64"));
        // A small gzip that inflates past the limit is refused without inflating it all.
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        bomb.write_all(&vec![0u8; MAX_IMAGE + 1]).unwrap();
        let bomb = bomb.finish().unwrap();
        assert!(matches!(decode(&b64(&bomb)), Err(ConfigDriveError::TooBig)));
    }

    #[tokio::test]
    async fn the_port_stores_and_discards_per_node() {
        let dir = tempfile::tempdir().unwrap();
        let drives = ConfigDriveDir::new(dir.path().join("cd"));
        let source = ConfigDriveSource::Contents(map(json!({"meta_data": {"uuid": "u-9"}})));
        let art = drives.build("node-1", &source).await.unwrap();
        assert_eq!(art.base, dir.path().join("cd/node-1.img"));
        let data = std::fs::read(&art.base).unwrap();
        assert_eq!(art.len, data.len() as u64);
        assert_eq!(&data[0x8001..0x8006], b"CD001");
        assert_eq!(&data[0x8028..0x8030], b"config-2");
        drives.discard("node-1").await.unwrap();
        assert!(!art.base.exists());
        drives.discard("node-1").await.unwrap();
        assert!(drives.build("../x", &source).await.is_err());
    }
}
