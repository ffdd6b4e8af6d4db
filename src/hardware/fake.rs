//! fake-hardware's inspect, bios, firmware and raid interfaces, as Ironic's `fake` ones: steps
//! succeed without doing anything, nothing is cached, and inspection reports what the node's
//! properties already say (no NICs: the ports an operator made stay the only ones).

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::inventory::{Cpu, Disk, Inventory, Memory};
use super::{BiosSetting, FirmwareVersion, Hardware, HwResult};

/// A fake-hardware node's view: its properties at composition time.
pub struct FakeHardware {
    properties: Map<String, Value>,
}

impl FakeHardware {
    pub fn new(properties: Map<String, Value>) -> FakeHardware {
        FakeHardware { properties }
    }

    fn number(&self, key: &str) -> u64 {
        match self.properties.get(key) {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        }
    }
}

#[async_trait]
impl Hardware for FakeHardware {
    async fn inspect(&self) -> HwResult<Inventory> {
        let local_gb = self.number("local_gb");
        Ok(Inventory {
            cpu: Cpu {
                count: self.number("cpus") as u32,
                architecture: self
                    .properties
                    .get("cpu_arch")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                ..Cpu::default()
            },
            memory: Memory {
                physical_mb: self.number("memory_mb"),
                total: None,
            },
            disks: (local_gb > 0)
                .then(|| Disk {
                    name: "/dev/sda".into(),
                    size: (local_gb + 1) << 30,
                    ..Disk::default()
                })
                .into_iter()
                .collect(),
            ..Inventory::default()
        })
    }
    async fn bios_settings(&self) -> HwResult<Vec<BiosSetting>> {
        Ok(Vec::new())
    }
    async fn apply_bios(&self, _settings: &[(String, Value)]) -> HwResult<()> {
        Ok(())
    }
    async fn reset_bios(&self) -> HwResult<()> {
        Ok(())
    }
    async fn firmware(&self) -> HwResult<Vec<FirmwareVersion>> {
        Ok(Vec::new())
    }
    async fn update_firmware(&self, _component: &str, _url: &str) -> HwResult<()> {
        Ok(())
    }
    async fn create_raid(&self, _logical_disks: &[Value]) -> HwResult<()> {
        Ok(())
    }
    async fn delete_raid(&self) -> HwResult<()> {
        Ok(())
    }
}
