//! The rows the store reads and writes, as plain structs.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub type JsonMap = Map<String, Value>;

/// A node with every field Ironic has that ironcast keeps. A listed node may hold only some
/// columns (the rest are defaults): see `store::list`.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct Node {
    pub id: i64,
    pub uuid: String,
    pub name: Option<String>,
    pub driver: String,
    #[sqlx(json)]
    pub driver_info: JsonMap,
    #[sqlx(json)]
    pub instance_info: JsonMap,
    #[sqlx(json)]
    pub properties: JsonMap,
    #[sqlx(json)]
    pub extra: JsonMap,
    #[sqlx(json)]
    pub driver_internal_info: JsonMap,
    #[sqlx(json)]
    pub network_data: JsonMap,
    #[sqlx(json)]
    pub clean_step: JsonMap,
    #[sqlx(json)]
    pub deploy_step: JsonMap,
    pub provision_state: String,
    pub target_provision_state: Option<String>,
    pub power_state: Option<String>,
    pub target_power_state: Option<String>,
    pub last_error: Option<String>,
    pub maintenance: bool,
    pub maintenance_reason: Option<String>,
    pub reservation: Option<String>,
    pub instance_uuid: Option<String>,
    pub instance_name: Option<String>,
    /// The BMC's overall health (Ironic's 1.109): "OK", "Warning", "Critical"; None: unknown.
    pub health: Option<String>,
    pub bios_interface: String,
    pub boot_interface: String,
    pub console_interface: String,
    pub deploy_interface: String,
    pub firmware_interface: String,
    pub inspect_interface: String,
    pub management_interface: String,
    pub network_interface: String,
    pub power_interface: String,
    pub raid_interface: String,
    pub rescue_interface: String,
    pub storage_interface: String,
    pub vendor_interface: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub lessee: Option<String>,
    pub resource_class: Option<String>,
    pub conductor_group: String,
    pub boot_mode: Option<String>,
    pub automated_clean: Option<bool>,
    pub protected: bool,
    pub protected_reason: Option<String>,
    pub retired: bool,
    pub retired_reason: Option<String>,
    pub shard: Option<String>,
    pub parent_node: Option<String>,
    pub disable_power_off: bool,
    pub chassis_uuid: Option<String>,
    pub console_enabled: bool,
    /// Why Ironic would have put the node in maintenance by itself ("power failure", …).
    pub fault: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub provision_updated_at: Option<DateTime<Utc>>,
    pub inspection_started_at: Option<DateTime<Utc>>,
    pub inspection_finished_at: Option<DateTime<Utc>>,
    /// The allocation holding the node; only the store's allocation calls write it.
    pub allocation_uuid: Option<String>,
    /// The node's traits (table node_traits), sorted: filled only where a node is shown
    /// (`Store::fill_traits`); rows read for the conductor leave it empty.
    #[sqlx(skip)]
    pub traits: Vec<String>,
}

impl Node {
    /// A fresh node in `enroll` with every interface set to `interface` (e.g. "fake").
    /// A new node in `enroll`; `interface("boot")` etc. give the interface defaults.
    pub fn new(uuid: String, driver: String, interface: impl Fn(&str) -> &'static str) -> Node {
        Node {
            id: 0,
            uuid,
            name: None,
            driver,
            driver_info: JsonMap::new(),
            instance_info: JsonMap::new(),
            properties: JsonMap::new(),
            extra: JsonMap::new(),
            driver_internal_info: JsonMap::new(),
            network_data: JsonMap::new(),
            clean_step: JsonMap::new(),
            deploy_step: JsonMap::new(),
            provision_state: "enroll".into(),
            target_provision_state: None,
            power_state: None,
            target_power_state: None,
            last_error: None,
            maintenance: false,
            maintenance_reason: None,
            reservation: None,
            instance_uuid: None,
            instance_name: None,
            health: None,
            bios_interface: interface("bios").into(),
            boot_interface: interface("boot").into(),
            console_interface: interface("console").into(),
            deploy_interface: interface("deploy").into(),
            firmware_interface: interface("firmware").into(),
            inspect_interface: interface("inspect").into(),
            management_interface: interface("management").into(),
            network_interface: "noop".into(),
            power_interface: interface("power").into(),
            raid_interface: interface("raid").into(),
            rescue_interface: interface("rescue").into(),
            storage_interface: "noop".into(),
            vendor_interface: interface("vendor").into(),
            description: None,
            owner: None,
            lessee: None,
            resource_class: None,
            conductor_group: String::new(),
            boot_mode: None,
            automated_clean: None,
            protected: false,
            protected_reason: None,
            retired: false,
            retired_reason: None,
            shard: None,
            parent_node: None,
            disable_power_off: false,
            chassis_uuid: None,
            console_enabled: false,
            fault: None,
            created_at: Utc::now(),
            updated_at: None,
            provision_updated_at: None,
            inspection_started_at: None,
            inspection_finished_at: None,
            allocation_uuid: None,
            traits: Vec::new(),
        }
    }
}

/// A port: one MAC address of a node. A listed port may hold only some columns.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct Port {
    pub id: i64,
    pub uuid: String,
    pub address: String,
    pub node_uuid: String,
    #[sqlx(json)]
    pub extra: JsonMap,
    pub pxe_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Switch port the NIC is cabled to (switch_id, port_id, switch_info, …).
    #[sqlx(json)]
    pub local_link_connection: JsonMap,
    #[sqlx(json)]
    pub internal_info: JsonMap,
    pub physical_network: Option<String>,
    pub portgroup_uuid: Option<String>,
    pub is_smartnic: bool,
    pub name: Option<String>,
    pub description: Option<String>,
    pub vendor: Option<String>,
    pub category: Option<String>,
    pub available_for_dynamic_portgroup: bool,
}

impl Port {
    /// A new port of `node_uuid` with `address` and every optional field empty.
    pub fn new(uuid: String, address: String, node_uuid: String) -> Port {
        Port {
            id: 0,
            uuid,
            address,
            node_uuid,
            extra: JsonMap::new(),
            pxe_enabled: true,
            created_at: Utc::now(),
            updated_at: None,
            local_link_connection: JsonMap::new(),
            internal_info: JsonMap::new(),
            physical_network: None,
            portgroup_uuid: None,
            is_smartnic: false,
            name: None,
            description: None,
            vendor: None,
            category: None,
            available_for_dynamic_portgroup: false,
        }
    }
}

/// A portgroup: bonded ports of one node. A listed portgroup may hold only some columns.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct Portgroup {
    pub id: i64,
    pub uuid: String,
    pub name: Option<String>,
    pub address: Option<String>,
    pub node_uuid: String,
    #[sqlx(json)]
    pub extra: JsonMap,
    #[sqlx(json)]
    pub internal_info: JsonMap,
    pub mode: Option<String>,
    #[sqlx(json)]
    pub properties: JsonMap,
    pub standalone_ports_supported: bool,
    pub physical_network: Option<String>,
    pub category: Option<String>,
    pub dynamic_portgroup: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One node history event (Ironic's node history: event, time, severity).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HistoryEvent {
    pub id: i64,
    pub uuid: String,
    pub node_uuid: String,
    pub conductor: String,
    /// What kind of event: "provisioning", "power", "deploy_step", "startup".
    pub event_type: String,
    /// "INFO" or "ERROR".
    pub severity: String,
    pub event: String,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A conductor's registration and last heartbeat.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConductorRow {
    pub hostname: String,
    pub online: bool,
    pub created_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// The host and process id of the process that last registered under this name.
    pub host: Option<String>,
    pub pid: Option<i64>,
}

/// A chassis: a group of nodes with a description. A listed chassis may hold only some
/// columns.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct Chassis {
    pub id: i64,
    pub uuid: String,
    pub description: Option<String>,
    #[sqlx(json)]
    pub extra: JsonMap,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// An inspection rule (API 1.96): `conditions` checked and `actions` applied to a node's
/// inspection data, highest `priority` first (see `crate::inspection_rules`).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct InspectionRule {
    pub id: i64,
    pub uuid: String,
    pub priority: i64,
    pub description: Option<String>,
    /// Conditions and actions are hidden from the API (they may hold secrets).
    pub sensitive: bool,
    pub phase: Option<String>,
    #[sqlx(json)]
    pub conditions: Vec<Value>,
    #[sqlx(json)]
    pub actions: Vec<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A deploy template or a runbook: a named list of steps (Ironic's `steps`, each an object with
/// interface, step, args and priority or order). Runbooks use disable_ramdisk, public, owner.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct StepTemplate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    #[sqlx(json)]
    pub steps: Vec<Value>,
    #[sqlx(json)]
    pub extra: JsonMap,
    pub disable_ramdisk: bool,
    pub public: bool,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A volume connector: how a node reaches storage (type "iqn", "ip", "mac", "wwnn", "wwpn"…).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct VolumeConnector {
    pub id: i64,
    pub uuid: String,
    pub node_uuid: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub connector_id: String,
    #[sqlx(json)]
    pub extra: JsonMap,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A volume target: a volume a node boots from or attaches, by boot index.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct VolumeTarget {
    pub id: i64,
    pub uuid: String,
    pub node_uuid: String,
    pub volume_type: String,
    pub volume_id: String,
    pub boot_index: i64,
    #[sqlx(json)]
    pub properties: JsonMap,
    #[sqlx(json)]
    pub extra: JsonMap,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// An allocation: a request for one node of a resource class with some traits (optionally
/// among candidate nodes), filled by reserving an available node or backfilled from a deployed
/// one. A listed allocation may hold only some columns.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct Allocation {
    pub id: i64,
    pub uuid: String,
    pub name: Option<String>,
    /// The node it holds, once `state` is "active".
    pub node_uuid: Option<String>,
    /// "allocating", "active" or "error".
    pub state: String,
    pub last_error: Option<String>,
    pub resource_class: Option<String>,
    #[sqlx(json)]
    pub traits: Vec<String>,
    /// Node UUIDs the allocation may pick from (empty: any).
    #[sqlx(json)]
    pub candidate_nodes: Vec<String>,
    #[sqlx(json)]
    pub extra: JsonMap,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A Metal3 BareMetalHost: the manifest as applied, its status in BMO's shape and the
/// reconciler's bookkeeping (all JSON objects; `metal3/` gives them types).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct Metal3Host {
    pub id: i64,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    #[sqlx(json)]
    pub manifest: JsonMap,
    #[sqlx(json)]
    pub status: JsonMap,
    #[sqlx(json)]
    pub internal: JsonMap,
    /// Grows with every apply of this host.
    pub generation: i64,
    /// `delete bmh` was asked: the reconciler deprovisions, deletes the node, then the row.
    pub deleting: bool,
    /// Not reconciled before this time (BMO's requeue-after, error backoff); None: at once.
    pub requeue_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A Kubernetes Secret as a Metal3 manifest names it: `data` maps each key to its bytes in
/// base64 (`stringData` is folded in at apply).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
#[sqlx(default)]
pub struct Metal3Secret {
    pub id: i64,
    pub namespace: String,
    pub name: String,
    #[sqlx(json)]
    pub data: JsonMap,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}
