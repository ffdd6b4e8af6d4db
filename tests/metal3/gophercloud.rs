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

type Map = serde_json::Map<String, Value>;

/// `nodes.Link` (and gophercloud.Link).
#[derive(Debug, Deserialize)]
pub struct Link {
    pub href: Option<String>,
    pub rel: Option<String>,
}

/// `nodes.Node`, every field BMO's provisioner may read. Go's `time.Time` fields are strings
/// here, checked by [`node`] to be RFC 3339 when present.
#[derive(Debug, Deserialize)]
pub struct Node {
    pub uuid: String,
    pub name: Option<String>,
    pub power_state: Option<String>,
    pub target_power_state: Option<String>,
    pub provision_state: String,
    pub target_provision_state: Option<String>,
    pub maintenance: Option<bool>,
    pub maintenance_reason: Option<String>,
    pub fault: Option<String>,
    pub last_error: Option<String>,
    pub reservation: Option<String>,
    pub driver: Option<String>,
    pub driver_info: Option<Map>,
    pub driver_internal_info: Option<Map>,
    pub properties: Option<Map>,
    pub instance_info: Option<Map>,
    pub instance_uuid: Option<String>,
    pub chassis_uuid: Option<String>,
    pub extra: Option<Map>,
    pub console_enabled: Option<bool>,
    pub raid_config: Option<Map>,
    pub target_raid_config: Option<Map>,
    pub clean_step: Option<Map>,
    pub deploy_step: Option<Map>,
    pub links: Option<Vec<Link>>,
    pub ports: Option<Vec<Link>>,
    pub portgroups: Option<Vec<Link>>,
    pub states: Option<Vec<Link>>,
    pub resource_class: Option<String>,
    pub bios_interface: Option<String>,
    pub boot_interface: Option<String>,
    pub console_interface: Option<String>,
    pub deploy_interface: Option<String>,
    pub inspect_interface: Option<String>,
    pub management_interface: Option<String>,
    pub network_interface: Option<String>,
    pub power_interface: Option<String>,
    pub raid_interface: Option<String>,
    pub rescue_interface: Option<String>,
    pub storage_interface: Option<String>,
    pub traits: Option<Vec<String>>,
    pub vendor_interface: Option<String>,
    pub volume: Option<Vec<Link>>,
    pub conductor_group: Option<String>,
    pub parent_node: Option<String>,
    pub protected: Option<bool>,
    pub protected_reason: Option<String>,
    pub owner: Option<String>,
    pub lessee: Option<String>,
    pub shard: Option<String>,
    pub description: Option<String>,
    pub conductor: Option<String>,
    pub allocation_uuid: Option<String>,
    pub retired: Option<bool>,
    pub retired_reason: Option<String>,
    pub network_data: Option<Map>,
    pub automated_clean: Option<bool>,
    pub service_step: Option<Map>,
    pub firmware_interface: Option<String>,
    pub provision_updated_at: Option<String>,
    pub inspection_started_at: Option<String>,
    pub inspection_finished_at: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub disable_power_off: Option<bool>,
}

/// Decodes a node as gophercloud's `nodes.Node`, its times as Go's `time.Time` would.
pub fn node(v: &Value) -> Node {
    let n: Node = decode("node", v);
    for (what, t) in [
        ("provision_updated_at", &n.provision_updated_at),
        ("inspection_started_at", &n.inspection_started_at),
        ("inspection_finished_at", &n.inspection_finished_at),
        ("created_at", &n.created_at),
        ("updated_at", &n.updated_at),
    ] {
        if let Some(t) = t {
            check_time(what, t);
        }
    }
    n
}

/// `ports.Port`, as BMO reads the ports it creates and lists.
#[derive(Debug, Deserialize)]
pub struct Port {
    pub uuid: Option<String>,
    pub address: Option<String>,
    pub node_uuid: Option<String>,
    pub extra: Option<Map>,
    pub local_link_connection: Option<Value>,
    pub pxe_enabled: Option<bool>,
    pub physical_network: Option<String>,
    pub internal_info: Option<Map>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub links: Option<Vec<Link>>,
    pub is_smartnic: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct PortList {
    pub ports: Vec<Port>,
}

/// `nodes.DriverValidation` / `nodes.NodeValidation` (`GET /v1/nodes/{id}/validate`).
#[derive(Debug, Deserialize)]
pub struct DriverValidation {
    pub result: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NodeValidation {
    pub bios: DriverValidation,
    pub boot: DriverValidation,
    pub console: DriverValidation,
    pub deploy: DriverValidation,
    pub firmware: DriverValidation,
    pub inspect: DriverValidation,
    pub management: DriverValidation,
    pub network: DriverValidation,
    pub power: DriverValidation,
    pub raid: DriverValidation,
    pub rescue: DriverValidation,
    pub storage: DriverValidation,
}

/// One method of `nodes.VendorPassthruMethods` (CreateSubscriptionMethod and its siblings).
#[derive(Debug, Deserialize)]
pub struct PassthruMethod {
    pub http_methods: Vec<String>,
    #[serde(rename = "async")]
    pub is_async: bool,
    pub description: String,
    pub attach: bool,
    pub require_exclusive_lock: bool,
}

/// `nodes.VendorPassthruMethods`.
#[derive(Debug, Deserialize)]
pub struct VendorPassthruMethods {
    pub create_subscription: Option<PassthruMethod>,
    pub delete_subscription: Option<PassthruMethod>,
    pub get_subscription: Option<PassthruMethod>,
    pub get_all_subscriptions: Option<PassthruMethod>,
}

/// `nodes.GetAllSubscriptionsVendorPassthru`.
#[derive(Debug, Deserialize)]
pub struct AllSubscriptions {
    #[serde(rename = "@odata.context")]
    pub context: Option<String>,
    #[serde(rename = "@odata.etag")]
    pub etag: Option<String>,
    #[serde(rename = "@odata.id")]
    pub id: Option<String>,
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(rename = "Description")]
    pub description: Option<String>,
    #[serde(rename = "Name")]
    pub name: Option<String>,
    #[serde(rename = "Members")]
    pub members: Vec<std::collections::HashMap<String, String>>,
    #[serde(rename = "Members@odata.count")]
    pub count: i64,
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
