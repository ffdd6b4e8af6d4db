//! The manifests a Metal3 user applies with kubectl: `BareMetalHost` (metal3.io/v1alpha1) and
//! the `Secret`s (v1) it names, in multi-document YAML, parsed into typed documents.
//!
//! Field names and enums follow BMO's `apis/metal3.io/v1alpha1/baremetalhost_types.go`; an
//! unknown field is an error naming it (`deny_unknown_fields`), as the API server's strict field
//! validation does. Fields kept as opaque values: raid (read by `raid`), firmware (refused for
//! the Redfish types, as BMO's webhook does), and customDeploy, consumerRef, taints, which
//! ironcast does not act on yet. A `status` in a manifest is ignored, as
//! `kubectl apply` ignores it. Pure: no I/O.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Metal3Error;

pub const API_VERSION: &str = "metal3.io/v1alpha1";
pub const KIND: &str = "BareMetalHost";
pub const DEFAULT_NAMESPACE: &str = "default";

/// Object metadata: what a manifest sets, plus what `kubectl get -o yaml` exports (ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing)]
    pub uid: Option<String>,
    #[serde(default, skip_serializing)]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing)]
    pub generation: Option<Value>,
    #[serde(default, skip_serializing)]
    pub creation_timestamp: Option<Value>,
    #[serde(default, skip_serializing)]
    pub finalizers: Option<Value>,
    #[serde(default, skip_serializing)]
    pub owner_references: Option<Value>,
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<Value>,
}

impl ObjectMeta {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// How to reach the BMC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bmc {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub credentials_name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_certificate_verification: bool,
}

/// A reference to a Secret (`corev1.SecretReference`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootMode {
    #[serde(rename = "UEFI")]
    Uefi,
    #[serde(rename = "UEFISecureBoot")]
    UefiSecureBoot,
    #[serde(rename = "legacy")]
    Legacy,
}

impl BootMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BootMode::Uefi => "UEFI",
            BootMode::UefiSecureBoot => "UEFISecureBoot",
            BootMode::Legacy => "legacy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CleaningMode {
    Metadata,
    Disabled,
}

/// The image to provision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checksum: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checksum_type: String,
    #[serde(default, rename = "format", skip_serializing_if = "Option::is_none")]
    pub disk_format: Option<String>,
}

impl Image {
    pub fn is_live_iso(&self) -> bool {
        self.disk_format.as_deref() == Some("live-iso")
    }
}

/// Hints to pick the root disk (Ironic's root_device).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RootDeviceHints {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device_name: String,
    #[serde(default, rename = "hctl", skip_serializing_if = "String::is_empty")]
    pub hctl: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size_gigabytes: Option<i64>,
    #[serde(default, rename = "wwn", skip_serializing_if = "String::is_empty")]
    pub wwn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wwn_with_extension: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wwn_vendor_extension: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
}

/// BareMetalHostSpec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostSpec {
    #[serde(default)]
    pub bmc: Bmc,
    #[serde(
        default,
        rename = "bootMACAddress",
        skip_serializing_if = "String::is_empty"
    )]
    pub boot_mac_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,
    #[serde(default)]
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_data: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub externally_provisioned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated_cleaning_mode: Option<CleaningMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_hints: Option<RootDeviceHints>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hardware_profile: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_power_off: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preprovisioning_network_data_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    /// Applied while preparing (`metal3::raid`).
    #[serde(default, rename = "raid", skip_serializing_if = "Option::is_none")]
    pub raid: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_deploy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_ref: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<Value>,
}

/// A BareMetalHost document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BareMetalHost {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: HostSpec,
    /// Ignored, as `kubectl apply` ignores it.
    #[serde(default, skip_serializing)]
    pub status: Option<Value>,
}

impl BareMetalHost {
    pub fn namespace(&self) -> &str {
        self.metadata.namespace()
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The host as stored: namespace filled in, no status.
    pub fn to_stored(&self) -> Map<String, Value> {
        let mut host = self.clone();
        host.metadata.namespace = Some(self.namespace().to_string());
        match serde_json::to_value(&host) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// Reads a stored host back.
    pub fn from_stored(stored: &Map<String, Value>) -> Result<BareMetalHost, Metal3Error> {
        serde_json::from_value(Value::Object(stored.clone()))
            .map_err(|e| Metal3Error::Corrupt(format!("stored BareMetalHost: {e}")))
    }
}

/// A Secret document; `stringData` is folded into `data` (base64) at parse.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SecretDoc {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    _type: Option<String>,
    #[serde(default)]
    immutable: Option<bool>,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    string_data: BTreeMap<String, String>,
}

/// A parsed Secret: each key's value base64-encoded, as in `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub metadata: ObjectMeta,
    pub data: BTreeMap<String, String>,
}

impl Secret {
    pub fn namespace(&self) -> &str {
        self.metadata.namespace()
    }
}

/// One document of a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Host(Box<BareMetalHost>),
    Secret(Box<Secret>),
}

/// Parses a multi-document YAML text. Empty documents are skipped; a `List` (what `kubectl get
/// -o yaml` prints) contributes its items. Any unknown kind or field is an error naming it
/// and the document.
pub fn parse(text: &str) -> Result<Vec<Document>, Metal3Error> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc)
            .map_err(|e| Metal3Error::Invalid(format!("document {}: invalid YAML: {e}", i + 1)))?;
        collect(value, i + 1, &mut out)?;
    }
    Ok(out)
}

fn collect(value: Value, index: usize, out: &mut Vec<Document>) -> Result<(), Metal3Error> {
    let obj = match value {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        other => {
            return Err(Metal3Error::Invalid(format!(
            "document {index}: expected a Kubernetes object (apiVersion, kind, metadata), found {}",
            kind_of(&other)
        )))
        }
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let what = format!(
        "document {index} ({} {})",
        if kind.is_empty() { "<no kind>" } else { kind },
        obj.get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("<no name>")
    );
    let bad = |e: serde_json::Error| Metal3Error::Invalid(format!("{what}: {e}"));
    match (kind, api) {
        (KIND, API_VERSION) => {
            let host: BareMetalHost = serde_json::from_value(Value::Object(obj)).map_err(bad)?;
            out.push(Document::Host(Box::new(host)));
        }
        ("Secret", "v1") => {
            let doc: SecretDoc = serde_json::from_value(Value::Object(obj)).map_err(bad)?;
            let _ = (&doc.api_version, &doc.kind, doc.immutable);
            let mut data = BTreeMap::new();
            for (k, v) in doc.data {
                let compact: String = v.split_whitespace().collect();
                if base64::engine::general_purpose::STANDARD
                    .decode(&compact)
                    .is_err()
                {
                    return Err(Metal3Error::Invalid(format!(
                        "{what}: data.{k} is not valid base64: put plain text under stringData instead"
                    )));
                }
                data.insert(k, compact);
            }
            for (k, v) in doc.string_data {
                data.insert(k, base64::engine::general_purpose::STANDARD.encode(v));
            }
            out.push(Document::Secret(Box::new(Secret {
                metadata: doc.metadata,
                data,
            })));
        }
        ("List", "v1") => {
            let items = match obj.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            for item in items {
                collect(item, index, out)?;
            }
        }
        _ => {
            return Err(Metal3Error::Invalid(format!(
                "{what}: unknown kind {kind:?} with apiVersion {api:?}: ironcast applies BareMetalHost ({API_VERSION}) and Secret (v1)"
            )))
        }
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: bmc-creds
type: Opaque
data:
  username: YWRtaW4=
stringData:
  password: s3cret
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: host-0
  annotations:
    inspect.metal3.io: disabled
spec:
  online: true
  bootMACAddress: 52:54:00:12:34:56
  bootMode: UEFI
  bmc:
    address: redfish-virtualmedia+http://127.0.0.1:8000/redfish/v1/Systems/abc
    credentialsName: bmc-creds
  image:
    url: http://example.com/live.iso
    format: live-iso
  rootDeviceHints:
    deviceName: /dev/sda
    minSizeGigabytes: 20
"#;

    #[test]
    fn hosts_and_secrets_parse_with_defaults() {
        let docs = parse(HOST).unwrap();
        assert_eq!(docs.len(), 2);
        let Document::Secret(s) = &docs[0] else {
            panic!("{docs:?}")
        };
        assert_eq!(s.namespace(), "default");
        assert_eq!(s.data["username"], "YWRtaW4=");
        assert_eq!(s.data["password"], "czNjcmV0");
        let Document::Host(h) = &docs[1] else {
            panic!("{docs:?}")
        };
        assert_eq!(h.name(), "host-0");
        assert!(h.spec.online);
        assert_eq!(h.spec.boot_mode, Some(BootMode::Uefi));
        assert!(h.spec.image.as_ref().unwrap().is_live_iso());
        assert_eq!(
            h.spec
                .root_device_hints
                .as_ref()
                .unwrap()
                .min_size_gigabytes,
            Some(20)
        );
        let stored = h.to_stored();
        assert_eq!(stored["metadata"]["namespace"], "default");
        assert_eq!(BareMetalHost::from_stored(&stored).unwrap().spec, h.spec);
    }

    #[test]
    fn unknown_fields_and_kinds_are_named() {
        let e = parse(&HOST.replace("bootMode:", "bootModee:"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `bootModee`"), "{e}");
        assert!(e.contains("document 2 (BareMetalHost host-0)"), "{e}");
        let e = parse(&HOST.replace("credentialsName", "credentials"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `credentials`"), "{e}");
        let e = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown kind \"ConfigMap\""), "{e}");
        let e = parse(&HOST.replace("bootMode: UEFI", "bootMode: uefi"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `uefi`"), "{e}");
        let e = parse(&HOST.replace("YWRtaW4=", "not base64!"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.username is not valid base64"), "{e}");
    }

    #[test]
    fn lists_and_empty_documents() {
        let list = format!(
            "---\n---\napiVersion: v1\nkind: List\nitems:\n{}",
            HOST.split("---")
                .nth(1)
                .unwrap()
                .lines()
                .filter(|l| !l.is_empty())
                .enumerate()
                .map(|(i, l)| if i == 0 {
                    format!("- {l}\n")
                } else {
                    format!("  {l}\n")
                })
                .collect::<String>()
        );
        let docs = parse(&list).unwrap();
        assert!(matches!(&docs[..], [Document::Host(_)]), "{docs:?}");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("- a\n").is_err());
    }
}
