//! Out-of-band inspection (Ironic's `redfish` inspect interface): the System's processors,
//! memory, disks (SimpleStorage, else Storage drives), NICs with MACs (EthernetInterfaces),
//! boot mode and vendor, read by following links, into [`Inventory`]. A sub-resource the BMC
//! lacks or fails on leaves its part empty with a warning, as Ironic does; the System itself
//! must answer.

use serde_json::Value;

use super::client::Client;
use super::error::Result;
use crate::hardware::inventory::{
    Boot, Cpu, Disk, Firmware, Interface, Inventory, Memory, SystemVendor,
};

/// The `@odata.id` under `key` of `v`.
pub(crate) fn link(v: &Value, key: &str) -> Option<String> {
    v[key]["@odata.id"].as_str().map(String::from)
}

/// Every member of the collection at `path`, fetched.
pub(crate) async fn members(client: &Client, path: &str) -> Result<Vec<Value>> {
    let coll: Value = client.get_as(path).await?;
    let mut out = Vec::new();
    for m in coll["Members"].as_array().into_iter().flatten() {
        if let Some(p) = m["@odata.id"].as_str() {
            out.push(client.get_as(p).await?);
        }
    }
    Ok(out)
}

/// A sub-resource read that may fail: logged, and treated as absent.
async fn optional(client: &Client, sys: &Value, key: &str) -> Vec<Value> {
    let Some(path) = link(sys, key) else {
        return Vec::new();
    };
    match members(client, &path).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(resource = %path, error = %e, "inspection: cannot read {key}, left out");
            Vec::new()
        }
    }
}

/// Redfish InstructionSet → Ironic's cpu_arch (Ironic's PROCESSOR_INSTRUCTION_SET_MAP).
pub fn architecture(instruction_set: &str) -> &'static str {
    match instruction_set {
        "x86-64" => "x86_64",
        "x86" => "i686",
        "IA-64" => "ia64",
        "ARM-A64" => "aarch64",
        "ARM-A32" => "arm",
        "MIPS64" => "mips64",
        "MIPS32" => "mips",
        "PowerISA" => "ppc64le",
        _ => "",
    }
}

fn number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(String::from)
}

/// Reads the inventory of the System at `system`.
pub async fn inventory(client: &Client, system: &str) -> Result<Inventory> {
    let sys: Value = client.get_as(system).await?;
    let processors = optional(client, &sys, "Processors").await;
    let cpu_count = number(&sys["ProcessorSummary"]["Count"]).unwrap_or_else(|| {
        processors
            .iter()
            .filter_map(|p| number(&p["TotalThreads"]).or_else(|| number(&p["TotalCores"])))
            .sum()
    });
    let first = processors.first().cloned().unwrap_or(Value::Null);
    let cpu = Cpu {
        count: cpu_count as u32,
        architecture: architecture(first["InstructionSet"].as_str().unwrap_or("")).into(),
        model_name: text(&first["Model"]).or_else(|| text(&sys["ProcessorSummary"]["Model"])),
        frequency: number(&first["MaxSpeedMHz"]).map(|m| m.to_string()),
        flags: Vec::new(),
    };
    let memory = Memory {
        physical_mb: sys["MemorySummary"]["TotalSystemMemoryGiB"]
            .as_f64()
            .map(|g| (g * 1024.0) as u64)
            .unwrap_or(0),
        total: None,
    };
    let mut disks = Vec::new();
    for storage in optional(client, &sys, "SimpleStorage").await {
        for dev in storage["Devices"].as_array().into_iter().flatten() {
            disks.push(Disk {
                name: text(&dev["Name"]).unwrap_or_default(),
                size: number(&dev["CapacityBytes"]).unwrap_or(0),
                model: text(&dev["Model"]),
                vendor: text(&dev["Manufacturer"]),
                ..Disk::default()
            });
        }
    }
    if disks.is_empty() {
        for storage in optional(client, &sys, "Storage").await {
            for d in storage["Drives"].as_array().into_iter().flatten() {
                let Some(path) = d["@odata.id"].as_str() else {
                    continue;
                };
                match client.get_as::<Value>(path).await {
                    Ok(drive) => disks.push(Disk {
                        name: text(&drive["Name"]).unwrap_or_default(),
                        size: number(&drive["CapacityBytes"]).unwrap_or(0),
                        rotational: drive["MediaType"] == "HDD",
                        model: text(&drive["Model"]),
                        vendor: text(&drive["Manufacturer"]),
                        serial: text(&drive["SerialNumber"]),
                        ..Disk::default()
                    }),
                    Err(e) => {
                        tracing::warn!(drive = path, error = %e, "inspection: cannot read drive")
                    }
                }
            }
        }
    }
    let interfaces = optional(client, &sys, "EthernetInterfaces")
        .await
        .iter()
        .filter_map(|nic| {
            let mac = text(&nic["MACAddress"]).or_else(|| text(&nic["PermanentMACAddress"]))?;
            Some(Interface {
                name: text(&nic["Id"]).unwrap_or_else(|| mac.clone()),
                mac_address: mac.to_ascii_lowercase(),
                speed_mbps: number(&nic["SpeedMbps"]),
                has_carrier: nic["LinkStatus"] == "LinkUp",
                ..Interface::default()
            })
        })
        .collect();
    let boot = match sys["Boot"]["BootSourceOverrideMode"].as_str() {
        Some("UEFI") => Some("uefi"),
        Some("Legacy") => Some("bios"),
        _ => None,
    }
    .map(|m| Boot {
        current_boot_mode: m.into(),
        pxe_interface: None,
    });
    let system_vendor = Some(SystemVendor {
        manufacturer: text(&sys["Manufacturer"]).unwrap_or_default(),
        product_name: text(&sys["Model"]).unwrap_or_default(),
        serial_number: text(&sys["SerialNumber"]).unwrap_or_default(),
        firmware: Firmware {
            version: text(&sys["BiosVersion"]).unwrap_or_default(),
            ..Firmware::default()
        },
    });
    Ok(Inventory {
        cpu,
        memory,
        disks,
        interfaces,
        boot,
        system_vendor,
        bmc_address: client.base().host_str().map(String::from),
        hostname: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_sets() {
        assert_eq!(architecture("x86-64"), "x86_64");
        assert_eq!(architecture("ARM-A64"), "aarch64");
        assert_eq!(architecture("unknown"), "");
    }
}
