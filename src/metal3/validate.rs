//! BMO's admission webhook for BareMetalHost, with BMO's messages
//! (`apis/metal3.io/v1alpha1/baremetalhost_validation.go`, `internal/webhooks/metal3.io/v1alpha1`,
//! `Image.GetChecksum`, the CRD's enums). [`validate_host`] checks a host on its own;
//! [`validate_changes`] adds the rules that compare it with the host already applied.
//! Pure: no I/O.

use serde_json::Value;

use super::bmc;
use super::manifest::{BareMetalHost, Image, RootDeviceHints};
use super::status::State;

pub const STATUS_ANNOTATION: &str = "baremetalhost.metal3.io/status";
pub const REBOOT_ANNOTATION: &str = "reboot.metal3.io";
pub const INSPECT_ANNOTATION: &str = "inspect.metal3.io";
pub const HARDWARE_DETAILS_ANNOTATION: &str = "inspect.metal3.io/hardwaredetails";
pub const PAUSED_ANNOTATION: &str = "baremetalhost.metal3.io/paused";
pub const DETACHED_ANNOTATION: &str = "baremetalhost.metal3.io/detached";

const OPERATIONAL_STATUSES: &[&str] = &["", "OK", "discovered", "error", "delayed", "detached"];
const ERROR_TYPES: &[&str] = &[
    "",
    "provisioned registration error",
    "registration error",
    "inspection error",
    "preparation error",
    "provisioning error",
    "power management error",
    "servicing error",
    "detach error",
];
const IMAGE_FORMATS: &[&str] = &["raw", "qcow2", "vdi", "vmdk", "live-iso"];

/// Every rule a new host breaks, in BMO's words (empty: valid).
pub fn validate_host(host: &BareMetalHost) -> Vec<String> {
    let mut errs = Vec::new();
    let spec = &host.spec;
    if !spec.bmc.address.is_empty() {
        match bmc::access(&spec.bmc.address) {
            Ok(access) => errs.extend(validate_bmc_access(host, &access)),
            Err(e) => errs.push(e),
        }
    }
    if let Some(raid) = &spec.raid {
        errs.extend(validate_raid(raid));
    }
    if !spec.boot_mac_address.is_empty() && !valid_mac(&spec.boot_mac_address) {
        errs.push(format!(
            "address {}: invalid MAC address",
            spec.boot_mac_address
        ));
    }
    if let Some(e) = validate_name(host.name()) {
        errs.push(e);
    }
    if let Some(e) = spec
        .root_device_hints
        .as_ref()
        .and_then(validate_root_device)
    {
        errs.push(e);
    }
    if let Some(image) = &spec.image {
        errs.extend(validate_image(image));
    }
    errs.extend(validate_annotations(host));
    for (field, r) in [
        ("userData", &spec.user_data),
        ("networkData", &spec.network_data),
        ("metaData", &spec.meta_data),
    ] {
        if let Some(ns) = r.as_ref().and_then(|r| r.namespace.as_deref()) {
            if ns != host.namespace() {
                errs.push(format!(
                    "baremetalhosts.metal3.io \"{}\" is forbidden: {field}: cross-namespace Secret references are not allowed",
                    host.name()
                ));
            }
        }
    }
    if spec.disable_power_off && !spec.online {
        errs.push(
            "node can't simultaneously have online set to false and have power off disabled".into(),
        );
    }
    errs
}

/// [`validate_host`] plus the rules about changing an applied host (`old`, whose reconciled
/// state is `state` and operational status `operational`).
pub fn validate_changes(
    old: &BareMetalHost,
    new: &BareMetalHost,
    state: State,
    operational: &str,
) -> Vec<String> {
    let mut errs = validate_host(new);
    if !old.spec.bmc.address.is_empty()
        && new.spec.bmc.address != old.spec.bmc.address
        && operational != "detached"
        && state != State::Registering
    {
        errs.push("BMC address can not be changed if the BMH is not in the Registering state, or if the BMH is not detached".into());
    }
    if !old.spec.boot_mac_address.is_empty()
        && new.spec.boot_mac_address != old.spec.boot_mac_address
    {
        errs.push("bootMACAddress can not be changed once it is set".into());
    }
    if old.spec.externally_provisioned && !new.spec.externally_provisioned {
        errs.push("externallyProvisioned can not be changed".into());
    }
    errs
}

fn validate_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("metadata.name is required".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Some(
            "BareMetalHost resource name cannot contain characters other than [A-Za-z0-9._-]"
                .into(),
        );
    }
    if uuid::Uuid::parse_str(name).is_ok() {
        return Some("BareMetalHost resource name cannot be a UUID".into());
    }
    None
}

/// Go's `net.ParseMAC` for the 6-byte forms a NIC has.
fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = if mac.contains(':') {
        mac.split(':').collect()
    } else {
        mac.split('-').collect()
    };
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn validate_root_device(rdh: &RootDeviceHints) -> Option<String> {
    let name = &rdh.device_name;
    if name.is_empty() {
        return None;
    }
    let Some(sub) = name.strip_prefix("/dev/") else {
        return Some(format!(
            "device name of root device hint must be a /dev/ path, not \"{name}\""
        ));
    };
    let sub = sub.strip_prefix("disk/by-path/").unwrap_or(sub);
    if sub.contains('/') {
        return Some(format!("device name of root device hint must be path in /dev/ or /dev/disk/by-path/, not \"{name}\""));
    }
    None
}

/// Go's `url.ParseRequestURI`, then `Image.GetChecksum`, then the CRD's format enum.
fn validate_image(image: &Image) -> Vec<String> {
    let mut errs = Vec::new();
    let url = &image.url;
    if url.is_empty() {
        errs.push("image URL  is invalid: parse \"\": empty url".into());
    } else if !(url.starts_with('/') || has_scheme(url)) {
        errs.push(format!(
            "image URL {url} is invalid: parse \"{url}\": invalid URI for request"
        ));
    }
    if let Some(format) = &image.disk_format {
        if !IMAGE_FORMATS.contains(&format.as_str()) {
            errs.push(format!(
                "spec.image.format: Unsupported value: \"{format}\": supported values: \"raw\", \"qcow2\", \"vdi\", \"vmdk\", \"live-iso\""
            ));
        }
    }
    if !image.is_live_iso() && !url.is_empty() {
        if image.checksum.is_empty() {
            errs.push("checksum is required for normal images".into());
        } else if !matches!(
            image.checksum_type.as_str(),
            "" | "auto" | "md5" | "sha256" | "sha512"
        ) {
            errs.push(format!(
                "unknown checksumType {}, supported are auto, md5, sha256, sha512",
                image.checksum_type
            ));
        }
    }
    errs
}

fn has_scheme(url: &str) -> bool {
    match url.split_once(':') {
        Some((s, _)) => {
            !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// BMO's validateBMCAccess for the Redfish family: no driver of it maps `firmware` to BIOS
/// settings, and the virtual-media types need the boot MAC (hardware RAID and secure boot
/// are supported by all of them).
fn validate_bmc_access(host: &BareMetalHost, access: &bmc::Access) -> Vec<String> {
    let mut errs = Vec::new();
    if host.spec.firmware.is_some() {
        errs.push(format!(
            "firmware settings for {} are not supported",
            access.driver
        ));
    }
    if access.needs_mac && host.spec.boot_mac_address.is_empty() {
        errs.push(format!(
            "BMC driver {} requires a BootMACAddress value",
            access.bmc_type
        ));
    }
    errs
}

fn validate_raid(raid: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let list = |k: &str| {
        raid.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (hw, sw) = (list("hardwareRAIDVolumes"), list("softwareRAIDVolumes"));
    if !hw.is_empty() && !sw.is_empty() {
        errs.push(
            "hardwareRAIDVolumes and softwareRAIDVolumes can not be set at the same time".into(),
        );
    }
    for (i, v) in hw.iter().enumerate() {
        let disks = v
            .get("physicalDisks")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let controller = v.get("controller").and_then(Value::as_str).unwrap_or("");
        if disks != 0 && controller.is_empty() {
            errs.push(format!(
                "'physicalDisks' specified without 'controller' in hardware RAID volume {i}"
            ));
        }
        if let Some(n) = v.get("numberOfPhysicalDisks").and_then(Value::as_i64) {
            if disks != 0 && n != disks as i64 {
                errs.push(format!("the 'numberOfPhysicalDisks'[{n}] and number of 'physicalDisks'[{disks}] is not same for volume {i}"));
            }
        }
    }
    errs
}

fn validate_annotations(host: &BareMetalHost) -> Vec<String> {
    let annotations = &host.metadata.annotations;
    let mut errs = Vec::new();
    for (key, value) in annotations {
        let err = if key == STATUS_ANNOTATION {
            validate_status_annotation(value)
        } else if key == REBOOT_ANNOTATION || key.starts_with("reboot.metal3.io/") {
            validate_reboot_annotation(value)
        } else if key == INSPECT_ANNOTATION {
            (!matches!(value.as_str(), "disabled" | "")).then(|| {
                "invalid value for the inspect.metal3.io annotation, allowed are \"disabled\" or \"\"".to_string()
            })
        } else if key == HARDWARE_DETAILS_ANNOTATION && !value.is_empty() {
            if annotations.get(INSPECT_ANNOTATION).map(String::as_str) != Some("disabled") {
                Some("when hardware details are provided, the inspect.metal3.io annotation must be set to disabled".into())
            } else {
                serde_json::from_str::<Value>(value).err().map(|e| {
                    format!("error decoding the {HARDWARE_DETAILS_ANNOTATION} annotation: {e}")
                })
            }
        } else {
            None
        };
        errs.extend(err);
    }
    errs
}

fn validate_status_annotation(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let v: Value = match serde_json::from_str(value) {
        Ok(v) => v,
        Err(e) => return Some(format!("error decoding status annotation: {e}")),
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let op = field("operationalStatus");
    if !OPERATIONAL_STATUSES.contains(&op.as_str()) {
        return Some(format!(
            "invalid operationalStatus '{op}' in the {STATUS_ANNOTATION} annotation"
        ));
    }
    let et = field("errorType");
    if !ERROR_TYPES.contains(&et.as_str()) {
        return Some(format!(
            "invalid errorType '{et}' in the {STATUS_ANNOTATION} annotation"
        ));
    }
    None
}

fn validate_reboot_annotation(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let v: Value = match serde_json::from_str(value) {
        Ok(v) => v,
        Err(e) => {
            return Some(format!(
                "failed to unmarshal the data from the {REBOOT_ANNOTATION} annotation: {e}"
            ))
        }
    };
    let mode = v.get("mode").and_then(Value::as_str).unwrap_or("");
    (!matches!(mode, "hard" | "soft" | "")).then(|| {
        format!("invalid mode in the {REBOOT_ANNOTATION} annotation, allowed are \"hard\", \"soft\" or \"\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metal3::manifest::{parse, Document};

    fn host(spec: &str, annotations: &str) -> BareMetalHost {
        let text = format!(
            "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata:\n  name: test\n  namespace: test-namespace\n  annotations: {annotations}\nspec: {spec}\n"
        );
        match parse(&text).unwrap().remove(0) {
            Document::Host(h) => *h,
            other => panic!("{other:?}"),
        }
    }

    fn named(name: &str) -> BareMetalHost {
        let mut h = host("{}", "{}");
        h.metadata.name = name.into();
        h
    }

    /// BMO's webhook test cases (TestValidateCreate) that apply to the drivers ironcast has:
    /// each spec and the message BMO gives ("" = valid).
    #[test]
    fn bmo_create_cases() {
        let cases: &[(&str, &str, &str)] = &[
            ("{}", "{}", ""),
            ("{externallyProvisioned: true}", "{}", ""),
            (
                "{bmc: {address: 'test:127.0.1.1', credentialsName: test1}}",
                "{}",
                "Unknown BMC type 'test' for address test:127.0.1.1",
            ),
            (
                "{bmc: {address: 'redfish://127.0.0.1', credentialsName: test1}, raid: {hardwareRAIDVolumes: [{physicalDisks: [Disk-1, Disk-2]}]}}",
                "{}",
                "'physicalDisks' specified without 'controller' in hardware RAID volume 0",
            ),
            (
                "{bmc: {address: 'redfish://127.0.0.1', credentialsName: test1}, raid: {hardwareRAIDVolumes: [{controller: Controller-1, physicalDisks: [Disk-1, Disk-2], numberOfPhysicalDisks: 3}]}}",
                "{}",
                "the 'numberOfPhysicalDisks'[3] and number of 'physicalDisks'[2] is not same for volume 0",
            ),
            (
                "{bmc: {address: 'redfish-virtualmedia://127.0.0.1/redfish/v1/Systems/1', credentialsName: test1}}",
                "{}",
                "BMC driver redfish-virtualmedia requires a BootMACAddress value",
            ),
            (
                "{bmc: {address: 'redfish://127.0.0.1', credentialsName: test1}, firmware: {virtualizationEnabled: true}}",
                "{}",
                "firmware settings for redfish are not supported",
            ),
            (
                "{bmc: {address: 'idrac-virtualmedia://127.0.0.1/redfish/v1/Systems/1', credentialsName: test1}, bootMACAddress: '00:11:22:33:44:55', firmware: {}}",
                "{}",
                "firmware settings for idrac are not supported",
            ),
            (
                "{raid: {hardwareRAIDVolumes: [{}], softwareRAIDVolumes: [{}]}}",
                "{}",
                "hardwareRAIDVolumes and softwareRAIDVolumes can not be set at the same time",
            ),
            (
                "{bmc: {address: 'redfish://127.0.0.1'}, bootMACAddress: '00:00:00:00:00'}",
                "{}",
                "address 00:00:00:00:00: invalid MAC address",
            ),
            ("{rootDeviceHints: {deviceName: /dev/sda}}", "{}", ""),
            (
                "{rootDeviceHints: {deviceName: '/dev/disk/by-path/pci-0000:01:00.0-scsi-0:2:0:0'}}",
                "{}",
                "",
            ),
            (
                "{rootDeviceHints: {deviceName: /dev/disk/by-uuid/cdaacd50-3a4c-421c-91c0-fe9ba7b8b2f1}}",
                "{}",
                "device name of root device hint must be path in /dev/ or /dev/disk/by-path/, not \"/dev/disk/by-uuid/cdaacd50-3a4c-421c-91c0-fe9ba7b8b2f1\"",
            ),
            (
                "{rootDeviceHints: {deviceName: sda}}",
                "{}",
                "device name of root device hint must be a /dev/ path, not \"sda\"",
            ),
            (
                "{image: {url: 'https://example.com/image', checksum: be254ebfd73e66ca91f6d91f5050aa2ee1ec4813ee65ba472f608ed340cbff09}}",
                "{}",
                "",
            ),
            ("{image: {url: 'https://example.com/image', format: live-iso}}", "{}", ""),
            (
                "{image: {url: test1, checksum: be254ebfd73e66ca91f6d91f5050aa2ee1ec4813ee65ba472f608ed340cbff09}}",
                "{}",
                "image URL test1 is invalid: parse \"test1\": invalid URI for request",
            ),
            (
                "{image: {checksum: be254ebfd73e66ca91f6d91f5050aa2ee1ec4813ee65ba472f608ed340cbff09}}",
                "{}",
                "image URL  is invalid: parse \"\": empty url",
            ),
            (
                "{image: {url: 'https://example.com/image'}}",
                "{}",
                "checksum is required for normal images",
            ),
            (
                "{image: {url: 'https://example.com/image', checksum: be25, checksumType: SHA42}}",
                "{}",
                "unknown checksumType SHA42, supported are auto, md5, sha256, sha512",
            ),
            (
                "{image: {url: 'https://example.com/image.iso', format: iso}}",
                "{}",
                "spec.image.format: Unsupported value: \"iso\": supported values: \"raw\", \"qcow2\", \"vdi\", \"vmdk\", \"live-iso\"",
            ),
            ("{}", "{baremetalhost.metal3.io/status: '{\"operationalStatus\": \"OK\"}'}", ""),
            (
                "{}",
                "{baremetalhost.metal3.io/status: '{\"operationalStatus\":\"NotOK\"}'}",
                "invalid operationalStatus 'NotOK' in the baremetalhost.metal3.io/status annotation",
            ),
            (
                "{}",
                "{baremetalhost.metal3.io/status: '{\"errorType\":\"No Error\"}'}",
                "invalid errorType 'No Error' in the baremetalhost.metal3.io/status annotation",
            ),
            (
                "{}",
                "{reboot.metal3.io: '{\"mode\":\"medium\"}'}",
                "invalid mode in the reboot.metal3.io annotation, allowed are \"hard\", \"soft\" or \"\"",
            ),
            (
                "{}",
                "{reboot.metal3.io/my-key: '{\"mode\":\"medium\"}'}",
                "invalid mode in the reboot.metal3.io annotation, allowed are \"hard\", \"soft\" or \"\"",
            ),
            (
                "{}",
                "{inspect.metal3.io/hardwaredetails: '{\"ramMebibytes\":4096}'}",
                "when hardware details are provided, the inspect.metal3.io annotation must be set to disabled",
            ),
            (
                "{}",
                "{inspect.metal3.io: enabled}",
                "invalid value for the inspect.metal3.io annotation, allowed are \"disabled\" or \"\"",
            ),
            (
                "{userData: {name: test-secret, namespace: different-namespace}}",
                "{}",
                "baremetalhosts.metal3.io \"test\" is forbidden: userData: cross-namespace Secret references are not allowed",
            ),
            (
                "{networkData: {name: test-secret, namespace: different-namespace}}",
                "{}",
                "baremetalhosts.metal3.io \"test\" is forbidden: networkData: cross-namespace Secret references are not allowed",
            ),
            (
                "{metaData: {name: test-secret, namespace: different-namespace}}",
                "{}",
                "baremetalhosts.metal3.io \"test\" is forbidden: metaData: cross-namespace Secret references are not allowed",
            ),
            (
                "{userData: {name: s1, namespace: test-namespace}, networkData: {name: s2, namespace: test-namespace}}",
                "{}",
                "",
            ),
            ("{disablePowerOff: true, online: true}", "{}", ""),
            (
                "{disablePowerOff: true, online: false}",
                "{}",
                "node can't simultaneously have online set to false and have power off disabled",
            ),
        ];
        for (spec, annotations, want) in cases {
            let errs = validate_host(&host(spec, annotations));
            if want.is_empty() {
                assert!(errs.is_empty(), "{spec} {annotations}: {errs:?}");
            } else {
                assert!(
                    errs.iter().any(|e| e == want),
                    "{spec} {annotations}: wanted {want:?}, got {errs:?}"
                );
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            validate_host(&named("test~")),
            ["BareMetalHost resource name cannot contain characters other than [A-Za-z0-9._-]"]
        );
        assert_eq!(
            validate_host(&named("07564256-96ae-4315-ab03-8d34ece60fbb")),
            ["BareMetalHost resource name cannot be a UUID"]
        );
        assert!(validate_host(&named("host-0.rack_1")).is_empty());
    }

    /// BMO's TestValidateUpdate.
    #[test]
    fn bmo_update_cases() {
        let old = host("{bmc: {address: 'redfish://10.0.0.1/redfish/v1/Systems/1'}, bootMACAddress: '52:54:00:00:00:01', externallyProvisioned: true}", "{}");
        let mut new = old.clone();
        new.spec.bmc.address = "redfish://10.0.0.2/redfish/v1/Systems/1".into();
        let want = "BMC address can not be changed if the BMH is not in the Registering state, or if the BMH is not detached";
        assert_eq!(validate_changes(&old, &new, State::Available, "OK"), [want]);
        assert!(validate_changes(&old, &new, State::Registering, "OK").is_empty());
        assert!(validate_changes(&old, &new, State::Provisioned, "detached").is_empty());
        let mut new = old.clone();
        new.spec.boot_mac_address = "52:54:00:00:00:02".into();
        assert_eq!(
            validate_changes(&old, &new, State::Available, "OK"),
            ["bootMACAddress can not be changed once it is set"]
        );
        let mut new = old.clone();
        new.spec.externally_provisioned = false;
        assert_eq!(
            validate_changes(&old, &new, State::Available, "OK"),
            ["externallyProvisioned can not be changed"]
        );
    }
}
