//! What a node is made of and how its firmware is set: the `Hardware` port (Ironic's inspect,
//! bios, firmware, raid and management-vmedia interfaces, plus BMC event subscriptions) with
//! neutral types, the inventory in Ironic's shape and the inspection hooks that turn it into
//! ports and properties.
//!
//! Implemented by `redfish::RedfishNode` (out-of-band, through the BMC) and [`fake::FakeHardware`]
//! (fake-hardware nodes). The agent's in-band inventory reaches [`inventory::from_agent`].
//! Non-goals: vendor OEM BIOS registries, RAID on controllers the BMC does not expose.

pub mod fake;
pub mod inventory;
pub mod steps;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use inventory::Inventory;

/// Why a hardware call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HardwareError {
    /// The node's interfaces or its BMC cannot do this; the message says which and why.
    #[error("{0}")]
    Unsupported(String),
    /// The BMC refused or failed; the message names the resource.
    #[error("{0}")]
    Bmc(String),
    /// The request itself is wrong (unknown setting, bad argument).
    #[error("{0}")]
    Invalid(String),
}

pub type HwResult<T> = Result<T, HardwareError>;

/// One BIOS setting with what the BMC's attribute registry says about it (Ironic 1.74 fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BiosSetting {
    pub name: String,
    pub value: Option<String>,
    #[serde(default)]
    pub attribute_type: Option<String>,
    #[serde(default)]
    pub allowable_values: Option<Vec<String>>,
    #[serde(default)]
    pub lower_bound: Option<i64>,
    #[serde(default)]
    pub upper_bound: Option<i64>,
    #[serde(default)]
    pub min_length: Option<i64>,
    #[serde(default)]
    pub max_length: Option<i64>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub reset_required: Option<bool>,
    #[serde(default)]
    pub unique: Option<bool>,
}

/// A firmware component and its version as the BMC reports it ("bios", "bmc").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareVersion {
    pub component: String,
    pub version: String,
}

/// A virtual media device (Ironic's GET /vmedia entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmediaDevice {
    pub media_types: Vec<String>,
    pub inserted: bool,
    pub image: Option<String>,
}

/// A BMC event subscription (Redfish EventDestination fields Ironic passes through).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "EventTypes", default)]
    pub event_types: Vec<String>,
    #[serde(rename = "Context", default)]
    pub context: String,
    #[serde(rename = "Protocol", default)]
    pub protocol: String,
}

/// What a new subscription asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSubscription {
    pub destination: String,
    pub event_types: Vec<String>,
    pub context: String,
    pub protocol: String,
    pub http_headers: Vec<(String, String)>,
}

/// A node's hardware, out of band. Each default says the interface cannot.
#[async_trait]
pub trait Hardware: Send + Sync {
    /// Reads what the node is made of.
    async fn inspect(&self) -> HwResult<Inventory> {
        Err(unsupported("inspection"))
    }
    async fn bios_settings(&self) -> HwResult<Vec<BiosSetting>> {
        Err(unsupported("BIOS settings"))
    }
    /// Sets BIOS attributes (applied by the firmware at the next boot on real hardware).
    async fn apply_bios(&self, _settings: &[(String, Value)]) -> HwResult<()> {
        Err(unsupported("BIOS settings"))
    }
    async fn reset_bios(&self) -> HwResult<()> {
        Err(unsupported("BIOS factory reset"))
    }
    async fn firmware(&self) -> HwResult<Vec<FirmwareVersion>> {
        Err(unsupported("firmware components"))
    }
    /// Flashes the image at `url` onto `component` and waits for the update to finish.
    async fn update_firmware(&self, _component: &str, _url: &str) -> HwResult<()> {
        Err(unsupported("firmware update"))
    }
    /// Creates the logical disks (Ironic's target_raid_config entries).
    async fn create_raid(&self, _logical_disks: &[Value]) -> HwResult<()> {
        Err(unsupported("RAID"))
    }
    async fn delete_raid(&self) -> HwResult<()> {
        Err(unsupported("RAID"))
    }
    async fn vmedia(&self) -> HwResult<Vec<VmediaDevice>> {
        Err(unsupported("virtual media"))
    }
    /// Inserts `url` into the first slot taking `device_type` ("cdrom", "disk", "floppy").
    async fn attach_vmedia(&self, _device_type: &str, _url: &str) -> HwResult<()> {
        Err(unsupported("virtual media"))
    }
    /// Ejects the slots of `device_types`, or every slot.
    async fn detach_vmedia(&self, _device_types: Option<&[String]>) -> HwResult<()> {
        Err(unsupported("virtual media"))
    }
    /// The node's overall health as its BMC reports it (Ironic's 1.109 `health`): "OK",
    /// "Warning", "Critical", or None when the BMC says nothing Ironic knows.
    async fn health(&self) -> HwResult<Option<&'static str>> {
        Err(unsupported("health monitoring"))
    }
    async fn subscriptions(&self) -> HwResult<Vec<Subscription>> {
        Err(unsupported("event subscriptions"))
    }
    async fn subscription(&self, id: &str) -> HwResult<Subscription> {
        self.subscriptions()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| HardwareError::Invalid(format!("no event subscription with id {id:?}")))
    }
    async fn create_subscription(&self, _new: &NewSubscription) -> HwResult<Subscription> {
        Err(unsupported("event subscriptions"))
    }
    async fn delete_subscription(&self, _id: &str) -> HwResult<()> {
        Err(unsupported("event subscriptions"))
    }
}

/// Redfish's Status.Health as Ironic keeps it (sushy's three values; anything else is unknown).
pub fn health_of(redfish: Option<&str>) -> Option<&'static str> {
    match redfish? {
        "OK" => Some("OK"),
        "Warning" => Some("Warning"),
        "Critical" => Some("Critical"),
        _ => None,
    }
}

fn unsupported(what: &str) -> HardwareError {
    HardwareError::Unsupported(format!(
        "{what} is not supported by this node's driver and interfaces"
    ))
}
