//! What BMO's Ironic provisioner writes into a node, as pure functions: the node registered for
//! a host (driver, driver_info, boot interface, properties), its image for a deploy
//! (instance_info, deploy interface) and the config drive built from the Secrets.

use serde_json::{json, Map, Value};

use super::manifest::{BareMetalHost, BootMode, CleaningMode, Image, RootDeviceHints};

/// BMC credentials read from the host's Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BmcCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BmcCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcCredentials")
            .field("username", &self.username)
            .field("password", &"******")
            .finish()
    }
}

impl BmcCredentials {
    /// A digest of both, to notice a change without keeping the password in the status.
    pub fn version(&self) -> String {
        use sha2::Digest;
        let d = sha2::Sha256::digest(format!("{}\0{}", self.username, self.password));
        hex::encode(&d[..8])
    }
}

/// The node name BMO gives a host's node.
pub fn node_name(namespace: &str, name: &str) -> String {
    format!("{namespace}~{name}")
}

/// driver_info for the host's BMC.
pub fn driver_info(host: &BareMetalHost, creds: &BmcCredentials) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("redfish_address".into(), json!(host.spec.bmc.address));
    m.insert("redfish_username".into(), json!(creds.username));
    m.insert("redfish_password".into(), json!(creds.password));
    if host.spec.bmc.disable_certificate_verification {
        m.insert("redfish_verify_ca".into(), json!(false));
    }
    m
}

/// Ironic's boot mode capability for BMO's boot mode (UEFI when unset).
pub fn capabilities(mode: Option<BootMode>) -> String {
    match mode {
        Some(BootMode::Legacy) => "boot_mode:bios".into(),
        Some(BootMode::UefiSecureBoot) => "boot_mode:uefi,secure_boot:true".into(),
        Some(BootMode::Uefi) | None => "boot_mode:uefi".into(),
    }
}

/// Ironic's root_device from BMO's hints (sizes in GiB as Ironic's `size`).
pub fn root_device(h: &RootDeviceHints) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("name", &h.device_name),
        ("hctl", &h.hctl),
        ("model", &h.model),
        ("vendor", &h.vendor),
        ("serial", &h.serial_number),
        ("wwn", &h.wwn),
        ("wwn_with_extension", &h.wwn_with_extension),
        ("wwn_vendor_extension", &h.wwn_vendor_extension),
    ] {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(gb) = h.min_size_gigabytes.filter(|g| *g > 0) {
        m.insert("size".into(), json!(format!(">= {gb}")));
    }
    if let Some(r) = h.rotational {
        m.insert("rotational".into(), json!(r));
    }
    m
}

/// The node properties a host's spec sets: boot mode capability and root device hints.
pub fn apply_properties(host: &BareMetalHost, properties: &mut Map<String, Value>) {
    properties.insert(
        "capabilities".into(),
        json!(capabilities(host.spec.boot_mode)),
    );
    match &host.spec.root_device_hints {
        Some(h) if !root_device(h).is_empty() => {
            properties.insert("root_device".into(), Value::Object(root_device(h)));
        }
        _ => {
            properties.remove("root_device");
        }
    }
}

/// Whether automated cleaning runs (automatedCleaningMode: metadata, BMO's default).
pub fn automated_clean(host: &BareMetalHost) -> bool {
    host.spec.automated_cleaning_mode != Some(CleaningMode::Disabled)
}

/// The deploy interface and instance_info for the image: a live ISO boots by the ramdisk
/// interface; anything else is written to disk by `direct`.
pub fn image_instance_info(image: &Image) -> (&'static str, Map<String, Value>) {
    let mut m = Map::new();
    if image.is_live_iso() {
        m.insert("boot_iso".into(), json!(image.url));
        m.insert("image_source".into(), json!(image.url));
        return ("ramdisk", m);
    }
    m.insert("image_source".into(), json!(image.url));
    match image.checksum_type.as_str() {
        "" | "auto" => {
            m.insert("image_checksum".into(), json!(image.checksum));
        }
        algo => {
            m.insert("image_os_hash_algo".into(), json!(algo));
            m.insert("image_os_hash_value".into(), json!(image.checksum));
        }
    }
    if let Some(f) = &image.disk_format {
        m.insert("image_disk_format".into(), json!(f));
    }
    ("direct", m)
}

/// The Secrets' contents the config drive is built from (each already decoded).
#[derive(Debug, Clone, Default)]
pub struct ConfigData {
    pub user_data: Option<String>,
    pub network_data: Option<String>,
    pub meta_data: Option<String>,
}

/// The config drive as BMO builds it (`getConfigDrive`): user_data as given, network_data and
/// meta_data parsed from YAML, meta_data over BMO's defaults. None for a live ISO.
pub fn config_drive(
    host: &BareMetalHost,
    uid: &str,
    data: &ConfigData,
) -> Result<Option<Value>, String> {
    if host.spec.image.as_ref().is_some_and(Image::is_live_iso) {
        return Ok(None);
    }
    let mut drive = Map::new();
    if let Some(u) = data.user_data.as_ref().filter(|u| !u.is_empty()) {
        drive.insert("user_data".into(), json!(u));
    }
    if let Some(n) = data.network_data.as_ref().filter(|n| !n.is_empty()) {
        let v: Value = serde_yaml::from_str(n)
            .map_err(|e| format!("failed to unmarshal network_data.json from secret: {e}"))?;
        drive.insert("network_data".into(), v);
    }
    let name = host.name();
    let mut meta = json!({
        "uuid": uid,
        "metal3-namespace": host.namespace(),
        "metal3-name": name,
        "local-hostname": name,
        "local_hostname": name,
        "name": name,
    });
    if let Some(m) = data.meta_data.as_ref().filter(|m| !m.is_empty()) {
        let v: Value = serde_yaml::from_str(m)
            .map_err(|e| format!("failed to unmarshal metadata from secret: {e}"))?;
        if let (Some(base), Value::Object(over)) = (meta.as_object_mut(), v) {
            base.extend(over);
        }
    }
    drive.insert("meta_data".into(), meta);
    Ok(Some(Value::Object(drive)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metal3::manifest::{parse, Document};

    fn host(spec: &str) -> BareMetalHost {
        let t = format!("apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: h1, namespace: ns}}\nspec: {spec}\n");
        match parse(&t).unwrap().remove(0) {
            Document::Host(h) => *h,
            _ => unreachable!(),
        }
    }

    #[test]
    fn config_drive_as_bmo_builds_it() {
        let h = host("{image: {url: 'http://x/disk.img', checksum: abc}}");
        let data = ConfigData {
            user_data: Some("#cloud-config\n".into()),
            network_data: Some("links: []\nnetworks: []\n".into()),
            meta_data: Some("local-hostname: custom\nextra: 1\n".into()),
        };
        let d = config_drive(&h, "uid-1", &data).unwrap().unwrap();
        assert_eq!(d["user_data"], "#cloud-config\n");
        assert_eq!(d["network_data"], json!({"links": [], "networks": []}));
        assert_eq!(d["meta_data"]["uuid"], "uid-1");
        assert_eq!(d["meta_data"]["metal3-namespace"], "ns");
        assert_eq!(d["meta_data"]["local-hostname"], "custom");
        assert_eq!(d["meta_data"]["local_hostname"], "h1");
        assert_eq!(d["meta_data"]["extra"], 1);
        let live = host("{image: {url: 'http://x/a.iso', format: live-iso}}");
        assert_eq!(config_drive(&live, "u", &data).unwrap(), None);
        let bad = ConfigData {
            network_data: Some("a: [".into()),
            ..ConfigData::default()
        };
        assert!(config_drive(&h, "u", &bad)
            .unwrap_err()
            .contains("network_data"));
    }

    #[test]
    fn images_pick_the_deploy_interface() {
        let (iface, ii) = image_instance_info(&Image {
            url: "http://x/a.iso".into(),
            disk_format: Some("live-iso".into()),
            ..Image::default()
        });
        assert_eq!(
            (iface, ii["boot_iso"].as_str()),
            ("ramdisk", Some("http://x/a.iso"))
        );
        let (iface, ii) = image_instance_info(&Image {
            url: "http://x/d.qcow2".into(),
            checksum: "ff".into(),
            checksum_type: "sha256".into(),
            disk_format: Some("qcow2".into()),
        });
        assert_eq!(iface, "direct");
        assert_eq!(ii["image_os_hash_algo"], "sha256");
        assert_eq!(ii["image_os_hash_value"], "ff");
    }

    #[test]
    fn properties_from_spec() {
        let h = host("{bootMode: legacy, rootDeviceHints: {deviceName: /dev/sda, minSizeGigabytes: 20, rotational: false}}");
        let mut p = Map::new();
        apply_properties(&h, &mut p);
        assert_eq!(p["capabilities"], "boot_mode:bios");
        assert_eq!(
            p["root_device"],
            json!({"name": "/dev/sda", "size": ">= 20", "rotational": false})
        );
    }
}
