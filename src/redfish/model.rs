//! The few Redfish resources we read, as serde types (DSP8010 schema names kept verbatim).
//!
//! Every field is optional or defaulted: BMCs omit much, and a missing field must give a clear
//! "does not support" error later, not a parse failure now.

use serde::Deserialize;
use serde_json::Value;

/// A link: `{"@odata.id": "/redfish/v1/..."}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Link {
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceRoot {
    pub systems: Option<Link>,
    pub managers: Option<Link>,
    pub session_service: Option<Link>,
    pub links: RootLinks,
    pub vendor: Option<String>,
    pub oem: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RootLinks {
    pub sessions: Option<Link>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Collection {
    pub members: Vec<Link>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ComputerSystem {
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
    pub id: String,
    pub manufacturer: Option<String>,
    pub power_state: Option<String>,
    pub status: Option<ResourceStatus>,
    pub boot: Option<Boot>,
    pub actions: SystemActions,
    pub virtual_media: Option<Link>,
    pub links: SystemLinks,
    pub oem: Option<Value>,
}

/// A resource's Status (Redfish `Resource.Status`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourceStatus {
    pub state: Option<String>,
    pub health: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Boot {
    #[serde(rename = "BootSourceOverrideTarget")]
    pub target: Option<String>,
    #[serde(rename = "BootSourceOverrideTarget@Redfish.AllowableValues")]
    pub target_allowed: Vec<String>,
    #[serde(rename = "BootSourceOverrideEnabled")]
    pub enabled: Option<String>,
    #[serde(rename = "BootSourceOverrideEnabled@Redfish.AllowableValues")]
    pub enabled_allowed: Vec<String>,
    #[serde(rename = "BootSourceOverrideMode")]
    pub mode: Option<String>,
    #[serde(rename = "BootSourceOverrideMode@Redfish.AllowableValues")]
    pub mode_allowed: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SystemActions {
    #[serde(rename = "#ComputerSystem.Reset")]
    pub reset: Option<ResetAction>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ResetAction {
    pub target: String,
    #[serde(rename = "ResetType@Redfish.AllowableValues")]
    pub allowed: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemLinks {
    pub managed_by: Vec<Link>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Manager {
    pub virtual_media: Option<Link>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VirtualMediaSlot {
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
    pub id: String,
    pub media_types: Vec<String>,
    pub image: Option<String>,
    pub inserted: Option<bool>,
    pub actions: VirtualMediaActions,
}

impl VirtualMediaSlot {
    /// A slot that takes CD/DVD images.
    pub fn is_cd(&self) -> bool {
        self.media_types.iter().any(|t| t == "CD" || t == "DVD")
    }
    /// A removable slot an installer can read an answer file from: USB stick, else floppy.
    pub fn is_removable(&self) -> bool {
        self.media_types
            .iter()
            .any(|t| t == "USBStick" || t == "Floppy")
    }
    /// Something is inserted (or an image is set, for BMCs that omit `Inserted`).
    pub fn is_loaded(&self) -> bool {
        self.inserted
            .unwrap_or_else(|| self.image.as_deref().is_some_and(|i| !i.is_empty()))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VirtualMediaActions {
    #[serde(rename = "#VirtualMedia.InsertMedia")]
    pub insert: Option<ActionTarget>,
    #[serde(rename = "#VirtualMedia.EjectMedia")]
    pub eject: Option<ActionTarget>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActionTarget {
    pub target: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Task {
    pub task_state: Option<String>,
    pub task_status: Option<String>,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Message {
    pub message: Option<String>,
    pub message_id: Option<String>,
}

/// Extracts the human text of a Redfish error body (`error.@Message.ExtendedInfo[].Message`,
/// else `error.message`), short enough for an error message.
pub fn error_detail(body: &Value) -> String {
    let err = &body["error"];
    let mut parts: Vec<String> = err["@Message.ExtendedInfo"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["Message"].as_str().map(str::to_string))
        .collect();
    if parts.is_empty() {
        if let Some(m) = err["message"].as_str() {
            parts.push(m.to_string());
        }
    }
    let mut s = parts.join("; ");
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
