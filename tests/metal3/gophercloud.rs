//! gophercloud's baremetal v1 result structs (openstack/baremetal/v1/nodes/results.go,
//! openstack/baremetal/inventory), mirrored field by field with Go's JSON types: decoding an
//! answer into these fails where gophercloud's `Extract` would (a string where Go wants a
//! number, an object where it wants a list). Null and absent fields decode, as in Go.

#![allow(dead_code)] // every field is there to be type-checked, not read

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct BootInfo {
    pub current_boot_mode: Option<String>,
    pub pxe_interface: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CpuType {
    pub architecture: Option<String>,
    pub count: Option<i64>,
    pub flags: Option<Vec<String>>,
    pub frequency: Option<String>,
    pub model_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct InterfaceType {
    pub biosdevname: Option<String>,
    pub client_id: Option<String>,
    pub has_carrier: Option<bool>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub mac_address: Option<String>,
    pub name: Option<String>,
    pub product: Option<String>,
    pub speed_mbps: Option<i64>,
    pub vendor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MemoryType {
    pub physical_mb: Option<i64>,
    pub total: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct RootDiskType {
    pub hctl: Option<String>,
    pub model: Option<String>,
    pub name: Option<String>,
    pub by_path: Option<String>,
    pub rotational: Option<bool>,
    pub serial: Option<String>,
    pub size: Option<i64>,
    pub vendor: Option<String>,
    pub wwn: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SystemFirmwareType {
    pub version: Option<String>,
    pub build_date: Option<String>,
    pub vendor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SystemVendorType {
    pub manufacturer: Option<String>,
    pub product_name: Option<String>,
    pub serial_number: Option<String>,
    pub firmware: Option<SystemFirmwareType>,
}

#[derive(Debug, Deserialize)]
pub struct InventoryType {
    pub bmc_address: Option<String>,
    pub boot: Option<BootInfo>,
    pub cpu: Option<CpuType>,
    pub disks: Option<Vec<RootDiskType>>,
    pub interfaces: Option<Vec<InterfaceType>>,
    pub memory: Option<MemoryType>,
    pub system_vendor: Option<SystemVendorType>,
    pub hostname: Option<String>,
}

/// `nodes.InventoryData`: plugin_data is raw JSON, read by BMO as a map.
#[derive(Debug, Deserialize)]
pub struct InventoryData {
    pub inventory: InventoryType,
    pub plugin_data: serde_json::Map<String, Value>,
}

/// `nodes.BIOSSetting`.
#[derive(Debug, Deserialize)]
pub struct BiosSetting {
    pub name: String,
    pub value: Option<String>,
    pub attribute_type: Option<String>,
    pub allowable_values: Option<Vec<String>>,
    pub lower_bound: Option<i64>,
    pub upper_bound: Option<i64>,
    pub min_length: Option<i64>,
    pub max_length: Option<i64>,
    pub read_only: Option<bool>,
    pub reset_required: Option<bool>,
    pub unique: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct BiosList {
    pub bios: Vec<BiosSetting>,
}

/// `nodes.FirmwareComponent`: `created_at` is a time.Time, so it must be present and RFC 3339.
#[derive(Debug, Deserialize)]
pub struct FirmwareComponent {
    pub created_at: String,
    pub updated_at: Option<String>,
    pub component: String,
    pub initial_version: Option<String>,
    pub current_version: Option<String>,
    pub last_version_flashed: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FirmwareList {
    pub firmware: Vec<FirmwareComponent>,
}

/// `nodes.SubscriptionVendorPassthru`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subscription {
    pub id: String,
    pub context: Option<String>,
    pub destination: String,
    pub event_types: Option<Vec<String>>,
    pub protocol: Option<String>,
}

/// Decodes `v` as gophercloud would, naming what failed.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> T {
    serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{what} does not decode into gophercloud's struct: {e}\n{v:#}"))
}

/// Go's time.Time accepts RFC 3339 only.
pub fn check_time(what: &str, t: &str) {
    assert!(
        chrono::DateTime::parse_from_rfc3339(t).is_ok(),
        "{what}: {t:?} is not RFC 3339"
    );
}
