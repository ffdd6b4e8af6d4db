//! The one place that turns a node's fields into the ports and deploy driver that act on it
//! (Ironic's hardware type + interfaces composition). A new hardware type is one arm here and
//! its name in [`SUPPORTED_DRIVERS`]. fake-hardware with `deploy_interface=direct` runs the
//! real direct deploy orchestration over fake ports.

use std::sync::Arc;
use std::time::Duration;

use deploy_drivers::direct::DirectDeploy;
use deploy_drivers::fake::FakeDeploy;
use deploy_drivers::fakes::{fake_ports, CallLog};
use deploy_drivers::iso_install::IsoInstallDeploy;
use deploy_drivers::ramdisk::RamdiskDeploy;
use deploy_drivers::{DeployDriver, Ports, PowerState};

use super::{ConductorError, Services, Settings};
use crate::hardware::fake::FakeHardware;
use crate::hardware::Hardware;
use crate::store::Node;

/// Hardware types (`driver` field values) this conductor can drive.
pub const SUPPORTED_DRIVERS: &[&str] = &["fake-hardware", "redfish"];

/// The default of interface `iface` ("boot", "deploy", …) for hardware type `driver`.
pub fn default_interface(driver: &str, iface: &str) -> &'static str {
    match (driver, iface) {
        ("redfish", "boot") => "redfish-virtual-media",
        ("redfish", "deploy") => "ramdisk",
        ("redfish", "power" | "management" | "vendor") => "redfish",
        ("redfish", "console") => "no-console",
        ("redfish", other) => match other {
            "bios" => "no-bios",
            "firmware" => "no-firmware",
            "inspect" => "no-inspect",
            "raid" => "no-raid",
            "rescue" => "no-rescue",
            _ => "noop",
        },
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
    /// Inspection, BIOS, firmware, RAID, virtual media and event subscriptions.
    pub hardware: Arc<dyn Hardware>,
}

/// Composes ports + deploy driver from the node's `driver`, interfaces and `driver_info`.
pub fn compose(
    node: &Node,
    settings: &Settings,
    services: &Services,
) -> Result<Composed, ConductorError> {
    match node.driver.as_str() {
        "fake-hardware" => {
            let log = CallLog::new();
            let initial = match node.power_state.as_deref() {
                Some("power on") => PowerState::On,
                _ => PowerState::Off,
            };
            let mut ports = fake_ports(
                &log,
                initial,
                Duration::from_millis(settings.fake_power_delay_ms),
            );
            let deploy: Arc<dyn DeployDriver> = match node.deploy_interface.as_str() {
                // The direct deploy's orchestration over fake BMC, image server and agent
                // ports, with the real cache and config drive builder when the conductor has
                // them: an image is fetched and verified, its size checked, a config drive
                // built, as on real hardware.
                "direct" => {
                    if let Some(images) = &services.images {
                        ports.images = Some(images.clone());
                    }
                    if let Some(drives) = &services.config_drives {
                        ports.config_drives = Some(drives.clone());
                    }
                    Arc::new(DirectDeploy::new(services.direct.clone()))
                }
                _ => Arc::new(FakeDeploy::new(
                    Duration::from_millis(settings.fake_deploy_delay_ms),
                    Duration::from_millis(settings.fake_undeploy_delay_ms),
                )),
            };
            Ok(Composed {
                ports,
                deploy,
                log: Some(log),
                hardware: Arc::new(FakeHardware::new(node.properties.clone())),
            })
        }
        "redfish" => compose_redfish(node, services),
        other => Err(ConductorError::Invalid(format!(
            "node {} has driver {other:?}, which this conductor does not support (supported: {})",
            node.uuid,
            SUPPORTED_DRIVERS.join(", ")
        ))),
    }
}

/// Redfish power and management; virtual media boot through the cache, the ISO engine and
/// the image server; the ramdisk deploy, or the direct deploy through the agent.
fn compose_redfish(node: &Node, services: &Services) -> Result<Composed, ConductorError> {
    let invalid = |m: String| ConductorError::Invalid(format!("node {}: {m}", node.uuid));
    let bmc = services
        .redfish_node(&node.uuid, &node.driver_info)
        .map_err(|e| invalid(e.to_string()))?;
    let bmc = Arc::new(bmc);
    let virtual_media = match node.boot_interface.as_str() {
        "redfish-virtual-media" => true,
        "pxe" | "ipxe" | "fake" => false,
        other => {
            return Err(invalid(format!(
                "boot_interface {other:?} is not supported with driver redfish: use redfish-virtual-media, ipxe or pxe"
            )))
        }
    };
    let deploy: Arc<dyn DeployDriver> = match node.deploy_interface.as_str() {
        "ramdisk" => Arc::new(RamdiskDeploy::new(services.ramdisk.clone())),
        "direct" => Arc::new(DirectDeploy::new(services.direct.clone())),
        "iso-install" => Arc::new(IsoInstallDeploy::new(
            services.iso_install.clone(),
            DirectDeploy::new(services.direct.clone()),
        )),
        other => {
            return Err(invalid(format!(
                "deploy_interface {other:?} is not supported with driver redfish: use ramdisk, direct or iso-install"
            )))
        }
    };
    let ports = Ports {
        power: bmc.clone(),
        boot: bmc.clone(),
        vmedia: virtual_media.then(|| bmc.clone() as Arc<dyn deploy_drivers::VirtualMedia>),
        images: services.images.clone(),
        remaster: services.remaster.clone(),
        publisher: services.publisher.clone(),
        netboot: services.netboot.clone(),
        agent: Some(services.agent.clone()),
        config_drives: services.config_drives.clone(),
        captures: services
            .captures
            .clone()
            .map(|c| c as Arc<dyn deploy_drivers::Captures>),
        install_media: services.install_media.clone(),
    };
    Ok(Composed {
        ports,
        deploy,
        log: None,
        hardware: bmc,
    })
}
