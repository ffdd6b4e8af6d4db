//! The one place that turns a node's fields into the ports and deploy driver that act on it
//! (Ironic's hardware type + interfaces composition). A new hardware type is one arm here and
//! its name in [`SUPPORTED_DRIVERS`].

use std::sync::Arc;
use std::time::Duration;

use deploy_drivers::fake::FakeDeploy;
use deploy_drivers::fakes::{fake_ports, CallLog};
use deploy_drivers::{DeployDriver, Ports, PowerState};

use super::{ConductorError, Settings};
use crate::store::Node;

/// Hardware types (`driver` field values) this conductor can drive.
pub const SUPPORTED_DRIVERS: &[&str] = &["fake-hardware"];

/// The interface name every interface field defaults to for a hardware type.
pub fn default_interface(driver: &str) -> &'static str {
    match driver {
        "fake-hardware" => "fake",
        _ => "fake",
    }
}

/// What the conductor needs to act on a node.
#[derive(Clone)]
pub struct Composed {
    pub ports: Ports,
    pub deploy: Arc<dyn DeployDriver>,
    /// For fake hardware: the record of what the ports were asked (tests and logs).
    pub log: Option<CallLog>,
}

/// Composes ports + deploy driver from the node's `driver` and `driver_info`.
pub fn compose(node: &Node, settings: &Settings) -> Result<Composed, ConductorError> {
    match node.driver.as_str() {
        "fake-hardware" => {
            let log = CallLog::new();
            let initial = match node.power_state.as_deref() {
                Some("power on") => PowerState::On,
                _ => PowerState::Off,
            };
            let ports = fake_ports(
                &log,
                initial,
                Duration::from_millis(settings.fake_power_delay_ms),
            );
            let deploy = Arc::new(FakeDeploy::new(
                Duration::from_millis(settings.fake_deploy_delay_ms),
                Duration::from_millis(settings.fake_undeploy_delay_ms),
            ));
            Ok(Composed {
                ports,
                deploy,
                log: Some(log),
            })
        }
        other => Err(ConductorError::Invalid(format!(
            "node {} has driver {other:?}, which this conductor does not support (supported: {})",
            node.uuid,
            SUPPORTED_DRIVERS.join(", ")
        ))),
    }
}
