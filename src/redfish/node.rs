//! A per-node Redfish handle implementing the deploy ports `Power`, `BootDevice` and
//! `VirtualMedia`. Discovery (which system, which vendor) happens on first use and is kept.

use std::sync::Arc;

use async_trait::async_trait;
use deploy_drivers::ports::{
    self, BootMode, BootTarget, MediaAuth, PortResult, PowerAction, PowerState,
};
use tokio::sync::OnceCell;

use super::address::RedfishTarget;
use super::client::Client;
use super::config::RedfishConfig;
use super::error::{RedfishError, Result};
use super::model::{Collection, ComputerSystem};
use super::quirks::{self, Quirks, Vendor};
use super::{boot, power, vmedia};

/// What discovery found out about the node's system.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The system's `@odata.id`.
    pub system: String,
    pub vendor: Vendor,
    pub quirks: Quirks,
}

/// One node's BMC. Cheap to clone (shares the connection and its session).
#[derive(Debug, Clone)]
pub struct RedfishNode {
    client: Arc<Client>,
    target: Arc<RedfishTarget>,
    found: Arc<OnceCell<Discovered>>,
}

impl RedfishNode {
    /// Builds the handle; nothing is sent until the first call.
    pub fn new(target: RedfishTarget, cfg: &RedfishConfig) -> Result<Self> {
        Ok(Self {
            client: Arc::new(Client::new(&target, cfg)?),
            target: Arc::new(target),
            found: Arc::new(OnceCell::new()),
        })
    }

    /// Builds the handle from a node's Ironic `driver_info` (see [`super::from_driver_info`]).
    pub fn from_driver_info(
        info: &serde_json::Map<String, serde_json::Value>,
        cfg: &RedfishConfig,
    ) -> Result<Self> {
        Self::new(super::address::from_driver_info(info)?, cfg)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Finds the system (by id, or the only one) through the service root's links.
    pub async fn discover(&self) -> Result<&Discovered> {
        self.found
            .get_or_try_init(|| async {
                let c = &self.client;
                let root = c.service_root().await?.clone();
                let systems = root.systems.as_ref().ok_or_else(|| RedfishError::Protocol {
                    url: c.base().to_string(),
                    reason: "service root has no Systems link".into(),
                })?;
                let members = c.get_as::<Collection>(&systems.odata_id).await?.members;
                let path = match &self.target.system_id {
                    Some(id) => members
                        .iter()
                        .find(|m| m.odata_id.trim_end_matches('/').rsplit('/').next() == Some(id.as_str()))
                        .map(|m| m.odata_id.clone())
                        .ok_or_else(|| {
                            RedfishError::Unsupported(format!(
                                "system {id:?}: the BMC at {} lists {:?}",
                                c.base(),
                                members.iter().map(|m| m.odata_id.as_str()).collect::<Vec<_>>()
                            ))
                        })?,
                    None => match members.as_slice() {
                        [only] => only.odata_id.clone(),
                        [] => {
                            return Err(RedfishError::Unsupported(format!(
                                "any system: the BMC at {} lists none",
                                c.base()
                            )))
                        }
                        _ => {
                            return Err(RedfishError::InvalidDriverInfo(format!(
                                "the BMC at {} has {} systems; name one with redfish_system_id or /redfish/v1/Systems/<id> in the address",
                                c.base(),
                                members.len()
                            )))
                        }
                    },
                };
                let sys: ComputerSystem = c.get_as(&path).await?;
                let vendor = Vendor::detect(root.vendor.as_deref(), sys.manufacturer.as_deref(), self.target.vendor_hint);
                Ok(Discovered {
                    system: path,
                    vendor,
                    quirks: quirks::for_vendor(vendor),
                })
            })
            .await
    }

    pub async fn system(&self) -> Result<ComputerSystem> {
        let d = self.discover().await?;
        self.client.get_as(&d.system).await
    }

    pub async fn power_state(&self) -> Result<PowerState> {
        let d = self.discover().await?;
        power::state(&self.client, &d.system).await
    }

    pub async fn set_power(&self, action: PowerAction) -> Result<()> {
        let d = self.discover().await?;
        power::set(&self.client, &d.system, action).await
    }

    pub async fn set_boot(
        &self,
        target: BootTarget,
        persistent: bool,
        mode: BootMode,
    ) -> Result<()> {
        let d = self.discover().await?;
        boot::set(&self.client, &d.system, target, persistent, mode, &d.quirks).await
    }

    /// Ejects every loaded CD/DVD slot; returns how many were ejected.
    pub async fn eject_all(&self) -> Result<usize> {
        let sys = self.system().await?;
        let mut n = 0;
        for slot in vmedia::cd_slots(&self.client, &sys).await? {
            if slot.is_loaded() {
                vmedia::eject(&self.client, &slot).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ejects every loaded removable (USB stick, floppy) slot.
    pub async fn eject_removable(&self) -> Result<usize> {
        let sys = self.system().await?;
        let mut n = 0;
        for slot in vmedia::removable_slots(&self.client, &sys).await? {
            if slot.is_loaded() {
                vmedia::eject(&self.client, &slot).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Inserts the disk image at `url` in the first removable slot (USB stick, else floppy).
    pub async fn insert_removable(&self, url: &str, auth: Option<&MediaAuth>) -> Result<()> {
        let d = self.discover().await?.clone();
        let sys: ComputerSystem = self.client.get_as(&d.system).await?;
        let slots = vmedia::removable_slots(&self.client, &sys).await?;
        let slot = slots.first().ok_or_else(|| {
            RedfishError::Unsupported(
                "virtual media: no USB stick or floppy slot for the answer file medium".into(),
            )
        })?;
        let just_ejected = slot.is_loaded();
        if just_ejected {
            vmedia::eject(&self.client, slot).await?;
        }
        let media = vmedia::Media { url, auth };
        vmedia::insert(&self.client, slot, &media, &d.quirks, just_ejected).await
    }

    /// Ejects what the first CD slot holds, then inserts `url` there (fetched with `auth`).
    pub async fn insert_cd(&self, url: &str, auth: Option<&MediaAuth>) -> Result<()> {
        let d = self.discover().await?.clone();
        let sys: ComputerSystem = self.client.get_as(&d.system).await?;
        let slots = vmedia::cd_slots(&self.client, &sys).await?;
        let slot = slots
            .first()
            .ok_or_else(|| RedfishError::Unsupported("virtual media: no CD/DVD slot".into()))?;
        let just_ejected = slot.is_loaded();
        if just_ejected {
            vmedia::eject(&self.client, slot).await?;
        }
        let media = vmedia::Media { url, auth };
        vmedia::insert(&self.client, slot, &media, &d.quirks, just_ejected).await
    }
}

#[async_trait]
impl ports::Power for RedfishNode {
    async fn power_state(&self) -> PortResult<PowerState> {
        Ok(RedfishNode::power_state(self).await?)
    }
    async fn set_power(&self, action: PowerAction) -> PortResult<()> {
        Ok(RedfishNode::set_power(self, action).await?)
    }
}

#[async_trait]
impl ports::BootDevice for RedfishNode {
    async fn set_boot_device(
        &self,
        target: BootTarget,
        persistent: bool,
        mode: BootMode,
    ) -> PortResult<()> {
        Ok(self.set_boot(target, persistent, mode).await?)
    }
}

#[async_trait]
impl ports::VirtualMedia for RedfishNode {
    async fn eject_all(&self) -> PortResult<()> {
        RedfishNode::eject_all(self).await?;
        Ok(())
    }
    async fn insert_cd(&self, url: &str, auth: Option<&MediaAuth>) -> PortResult<()> {
        // Drivers eject, then insert: a crash here leaves the drive empty and the URL live.
        crate::fail_point!("eject-insert");
        Ok(RedfishNode::insert_cd(self, url, auth).await?)
    }
    async fn insert_removable(&self, url: &str, auth: Option<&MediaAuth>) -> PortResult<()> {
        Ok(RedfishNode::insert_removable(self, url, auth).await?)
    }
    async fn eject_removable(&self) -> PortResult<()> {
        RedfishNode::eject_removable(self).await?;
        Ok(())
    }
}
