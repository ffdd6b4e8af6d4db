//! The shared services that composition hands to nodes' ports: the image cache, the ISO
//! remaster, the image server, netboot, the agent hub, and the settings of the Redfish and
//! ramdisk drivers.
//!
//! `serve` builds one [`Services`] from the config; tests and the API-only setups use
//! [`Services::none`], with which only fake-hardware nodes can deploy. Redfish handles are
//! kept per node so a BMC session is reused across operations instead of logging in each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deploy_drivers::direct::DirectPolicy;
use deploy_drivers::iso_install::IsoInstallPolicy;
use deploy_drivers::ramdisk::RamdiskPolicy;
use deploy_drivers::{ConfigDrives, Images, InstallMedia, Netboot, Publisher, Remaster};
use serde_json::{Map, Value};

use super::agent_hub::{AgentHub, HubSettings};
use crate::redfish::{RedfishConfig, RedfishNode};

/// Per node UUID: the driver_info a handle was built from, and the handle.
type BmcHandles = HashMap<String, (Map<String, Value>, RedfishNode)>;

pub struct Services {
    pub images: Option<Arc<dyn Images>>,
    pub remaster: Option<Arc<dyn Remaster>>,
    pub publisher: Option<Arc<dyn Publisher>>,
    pub netboot: Option<Arc<dyn Netboot>>,
    pub redfish: RedfishConfig,
    pub ramdisk: RamdiskPolicy,
    /// The agent sessions (tokens, inventories, command queues) of every node.
    pub agent: Arc<AgentHub>,
    /// Policy of the direct deploy and cleaning (default until `serve` sets it).
    pub direct: DirectPolicy,
    /// Builds config drives for direct deploys (`serve` sets it).
    pub config_drives: Option<Arc<dyn ConfigDrives>>,
    /// Receives captured disks into the cache (`serve` sets it); the agent's uploads go here.
    pub captures: Option<Arc<crate::capture::CaptureService>>,
    /// Installer ISO support for iso-install deploys (`serve` sets it).
    pub install_media: Option<Arc<dyn InstallMedia>>,
    /// Policy of the iso-install deploy.
    pub iso_install: IsoInstallPolicy,
    bmcs: Mutex<BmcHandles>,
}

impl Services {
    /// No cache, remaster or image server: enough for fake-hardware.
    pub fn none() -> Services {
        Services::new(
            None,
            None,
            None,
            None,
            RedfishConfig::default(),
            RamdiskPolicy::default(),
        )
    }

    pub fn new(
        images: Option<Arc<dyn Images>>,
        remaster: Option<Arc<dyn Remaster>>,
        publisher: Option<Arc<dyn Publisher>>,
        netboot: Option<Arc<dyn Netboot>>,
        redfish: RedfishConfig,
        ramdisk: RamdiskPolicy,
    ) -> Services {
        Services {
            images,
            remaster,
            publisher,
            netboot,
            redfish,
            ramdisk,
            agent: Arc::new(AgentHub::new(HubSettings::default())),
            direct: DirectPolicy::default(),
            config_drives: None,
            captures: None,
            install_media: None,
            iso_install: IsoInstallPolicy::default(),
            bmcs: Mutex::new(HashMap::new()),
        }
    }

    /// The same services with `hub` as the agent hub.
    pub fn with_agent(mut self, hub: Arc<AgentHub>) -> Services {
        self.agent = hub;
        self
    }

    /// The node's Redfish handle, reused while its driver_info is unchanged.
    pub fn redfish_node(
        &self,
        uuid: &str,
        driver_info: &Map<String, Value>,
    ) -> Result<RedfishNode, crate::redfish::RedfishError> {
        let mut bmcs = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((info, handle)) = bmcs.get(uuid) {
            if info == driver_info {
                return Ok(handle.clone());
            }
        }
        let handle = RedfishNode::from_driver_info(driver_info, &self.redfish)?;
        bmcs.insert(uuid.to_string(), (driver_info.clone(), handle.clone()));
        Ok(handle)
    }
}
