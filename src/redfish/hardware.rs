//! [`RedfishNode`] as the `hardware::Hardware` port: inspection, BIOS, firmware, RAID, virtual
//! media by device type, and event subscriptions, each through its own module.

use async_trait::async_trait;
use serde_json::Value;

use super::error::RedfishError;
use super::model::VirtualMediaSlot;
use super::node::RedfishNode;
use super::{bios, events, firmware, inspect, raid, vmedia};
use crate::hardware::{
    BiosSetting, FirmwareVersion, Hardware, HardwareError, HwResult, Inventory, NewSubscription,
    Subscription, VmediaDevice,
};

impl From<RedfishError> for HardwareError {
    fn from(e: RedfishError) -> Self {
        match e {
            RedfishError::Unsupported(_) => HardwareError::Unsupported(e.to_string()),
            RedfishError::Http {
                status: 404 | 405 | 501,
                ..
            } => HardwareError::Unsupported(e.to_string()),
            other => HardwareError::Bmc(other.to_string()),
        }
    }
}

/// Ironic's vmedia device types → the slot's MediaTypes that take them.
fn takes(device_type: &str) -> Option<fn(&VirtualMediaSlot) -> bool> {
    Some(match device_type {
        "cdrom" => VirtualMediaSlot::is_cd,
        "floppy" => |s: &VirtualMediaSlot| s.media_types.iter().any(|t| t == "Floppy"),
        "disk" => |s: &VirtualMediaSlot| s.media_types.iter().any(|t| t == "USBStick"),
        _ => return None,
    })
}

fn bad_device(device_type: &str) -> HardwareError {
    HardwareError::Invalid(format!(
        "invalid device type {device_type:?} (valid are cdrom, disk, floppy)"
    ))
}

#[async_trait]
impl Hardware for RedfishNode {
    async fn inspect(&self) -> HwResult<Inventory> {
        let d = self.discover().await?;
        Ok(inspect::inventory(self.client(), &d.system).await?)
    }
    async fn bios_settings(&self) -> HwResult<Vec<BiosSetting>> {
        let d = self.discover().await?;
        Ok(bios::settings(self.client(), &d.system).await?)
    }
    async fn apply_bios(&self, settings: &[(String, Value)]) -> HwResult<()> {
        let d = self.discover().await?;
        Ok(bios::apply(self.client(), &d.system, settings).await?)
    }
    async fn reset_bios(&self) -> HwResult<()> {
        let d = self.discover().await?;
        Ok(bios::reset(self.client(), &d.system).await?)
    }
    async fn firmware(&self) -> HwResult<Vec<FirmwareVersion>> {
        let d = self.discover().await?;
        Ok(firmware::versions(self.client(), &d.system).await?)
    }
    async fn update_firmware(&self, component: &str, url: &str) -> HwResult<()> {
        let d = self.discover().await?;
        Ok(firmware::update(self.client(), &d.system, component, url).await?)
    }
    async fn create_raid(&self, logical_disks: &[Value]) -> HwResult<()> {
        let d = self.discover().await?;
        Ok(raid::create(self.client(), &d.system, logical_disks).await?)
    }
    async fn delete_raid(&self) -> HwResult<()> {
        let d = self.discover().await?;
        Ok(raid::delete_all(self.client(), &d.system).await?)
    }
    async fn health(&self) -> HwResult<Option<&'static str>> {
        let sys = self.system().await?;
        Ok(crate::hardware::health_of(
            sys.status.as_ref().and_then(|s| s.health.as_deref()),
        ))
    }
    async fn vmedia(&self) -> HwResult<Vec<VmediaDevice>> {
        let sys = self.system().await?;
        let slots = vmedia::slots_of(self.client(), &sys, |_| true).await?;
        Ok(slots
            .iter()
            .map(|s| VmediaDevice {
                media_types: s.media_types.clone(),
                inserted: s.is_loaded(),
                image: s.image.clone().filter(|i| !i.is_empty()),
            })
            .collect())
    }
    async fn attach_vmedia(&self, device_type: &str, url: &str) -> HwResult<()> {
        let wanted = takes(device_type).ok_or_else(|| bad_device(device_type))?;
        let d = self.discover().await?.clone();
        let sys = self.system().await?;
        let slots = vmedia::slots_of(self.client(), &sys, wanted).await?;
        let slot = slots.first().ok_or_else(|| {
            HardwareError::Unsupported(format!(
                "virtual media: the BMC has no slot that takes a {device_type}"
            ))
        })?;
        let just_ejected = slot.is_loaded();
        if just_ejected {
            vmedia::eject(self.client(), slot).await?;
        }
        let media = vmedia::Media { url, auth: None };
        Ok(vmedia::insert(self.client(), slot, &media, &d.quirks, just_ejected).await?)
    }
    async fn detach_vmedia(&self, device_types: Option<&[String]>) -> HwResult<()> {
        let sys = self.system().await?;
        let filters: Vec<fn(&VirtualMediaSlot) -> bool> = match device_types {
            None => vec![|_| true],
            Some(types) => types
                .iter()
                .map(|t| takes(t).ok_or_else(|| bad_device(t)))
                .collect::<HwResult<_>>()?,
        };
        for wanted in filters {
            let slots = vmedia::slots_of(self.client(), &sys, wanted).await?;
            for slot in slots.iter().filter(|s| s.is_loaded()) {
                vmedia::eject(self.client(), slot).await?;
            }
        }
        Ok(())
    }
    async fn subscriptions(&self) -> HwResult<Vec<Subscription>> {
        Ok(events::list(self.client()).await?)
    }
    async fn create_subscription(&self, new: &NewSubscription) -> HwResult<Subscription> {
        Ok(events::create(self.client(), new).await?)
    }
    async fn delete_subscription(&self, id: &str) -> HwResult<()> {
        Ok(events::delete(self.client(), id).await?)
    }
}
