//! A BareMetalHost's status in BMO's shape (`BareMetalHostStatus`: provisioning.state,
//! operationalStatus, errorType, errorMessage, poweredOn, hardware, operationHistory,
//! errorCount …) and the reconciler's own bookkeeping, kept beside it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::manifest::{Image, RootDeviceHints};

/// BMO's provisioning states, spelled as BMO spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum State {
    #[default]
    None,
    Unmanaged,
    Registering,
    Inspecting,
    Preparing,
    Available,
    Provisioning,
    Provisioned,
    ExternallyProvisioned,
    Deprovisioning,
    PoweringOffBeforeDelete,
    Deleting,
}

impl State {
    pub const ALL: [State; 12] = [
        State::None,
        State::Unmanaged,
        State::Registering,
        State::Inspecting,
        State::Preparing,
        State::Available,
        State::Provisioning,
        State::Provisioned,
        State::ExternallyProvisioned,
        State::Deprovisioning,
        State::PoweringOffBeforeDelete,
        State::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::None => "",
            State::Unmanaged => "unmanaged",
            State::Registering => "registering",
            State::Inspecting => "inspecting",
            State::Preparing => "preparing",
            State::Available => "available",
            State::Provisioning => "provisioning",
            State::Provisioned => "provisioned",
            State::ExternallyProvisioned => "externally provisioned",
            State::Deprovisioning => "deprovisioning",
            State::PoweringOffBeforeDelete => "powering off before delete",
            State::Deleting => "deleting",
        }
    }

    /// BMO's older "ready" reads as available.
    pub fn parse(s: &str) -> State {
        if s == "ready" {
            return State::Available;
        }
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .unwrap_or(State::None)
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        Ok(State::parse(&String::deserialize(d)?))
    }
}

/// BMO's error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Registration,
    Inspection,
    Preparation,
    Provisioning,
    PowerManagement,
    Detach,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Registration => "registration error",
            ErrorType::Inspection => "inspection error",
            ErrorType::Preparation => "preparation error",
            ErrorType::Provisioning => "provisioning error",
            ErrorType::PowerManagement => "power management error",
            ErrorType::Detach => "detach error",
        }
    }
}

/// Start and end of one operation (RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationMetric {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationHistory {
    #[serde(default)]
    pub register: OperationMetric,
    #[serde(default)]
    pub inspect: OperationMetric,
    #[serde(default)]
    pub provision: OperationMetric,
    #[serde(default)]
    pub deprovision: OperationMetric,
}

impl OperationHistory {
    /// The metric BMO keeps for `state`, if any.
    pub fn for_state(&mut self, state: State) -> Option<&mut OperationMetric> {
        match state {
            State::Registering => Some(&mut self.register),
            State::Inspecting => Some(&mut self.inspect),
            State::Provisioning => Some(&mut self.provision),
            State::Deprovisioning => Some(&mut self.deprovision),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionStatus {
    #[serde(default)]
    pub state: State,
    /// The Ironic node's UUID.
    #[serde(default, rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub image: Image,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_hints: Option<RootDeviceHints>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub boot_mode: String,
    /// The RAID configuration preparing last applied (spec.raid then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raid: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    #[serde(default)]
    pub credentials: Option<SecretName>,
    /// A digest of the Secret's data (BMO keeps the Secret's resourceVersion).
    #[serde(default)]
    pub credentials_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretName {
    pub name: String,
    pub namespace: String,
}

/// BareMetalHostStatus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    #[serde(default)]
    pub operational_status: String,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hardware_profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Value>,
    #[serde(default)]
    pub provisioning: ProvisionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good_credentials: Option<CredentialsStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tried_credentials: Option<CredentialsStatus>,
    #[serde(default)]
    pub error_message: String,
    #[serde(default)]
    pub error_type: String,
    #[serde(default)]
    pub powered_on: bool,
    #[serde(default)]
    pub operation_history: OperationHistory,
    #[serde(default)]
    pub error_count: u32,
}

impl HostStatus {
    pub fn from_map(m: &Map<String, Value>) -> HostStatus {
        serde_json::from_value(Value::Object(m.clone())).unwrap_or_default()
    }

    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

/// What the reconciler remembers between passes that BMO's status has no field for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Internal {
    /// Inspection was started for the current pass through `inspecting`.
    #[serde(default)]
    pub inspect_started: bool,
    /// Preparing's manual clean was started for the current pass through `preparing`.
    #[serde(default)]
    pub prepare_started: bool,
    /// A reboot annotation powered the host off; power goes back on once it is consumed.
    #[serde(default)]
    pub rebooting: bool,
    /// The last transient error (BMO logs these and requeues), for `get bmh` readers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_transient_error: String,
}

impl Internal {
    pub fn from_map(m: &Map<String, Value>) -> Internal {
        serde_json::from_value(Value::Object(m.clone())).unwrap_or_default()
    }

    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_with_bmo_spelling() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), s);
        }
        assert_eq!(State::parse("ready"), State::Available);
        let mut st = HostStatus::default();
        st.provisioning.state = State::PoweringOffBeforeDelete;
        let m = st.to_map();
        assert_eq!(m["provisioning"]["state"], "powering off before delete");
        assert_eq!(HostStatus::from_map(&m), st);
    }
}
