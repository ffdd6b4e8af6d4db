//! RAID through Redfish Storage (Ironic's `redfish` raid interface, simplified): a logical
//! disk of the node's target_raid_config becomes a Volume in the first Storage resource that
//! has a Volumes collection; deleting the configuration deletes every volume there.

use serde_json::{json, Value};

use super::client::Client;
use super::error::{RedfishError, Result};
use super::inspect::{link, members};
use super::task;

async fn volumes_collection(client: &Client, system: &str) -> Result<String> {
    let sys: Value = client.get_as(system).await?;
    let storage = link(&sys, "Storage")
        .ok_or_else(|| RedfishError::Unsupported(format!("RAID: {system} has no Storage")))?;
    for s in members(client, &storage).await? {
        if let Some(v) = link(&s, "Volumes") {
            return Ok(v);
        }
    }
    Err(RedfishError::Unsupported(format!(
        "RAID: no Storage under {system} has a Volumes collection"
    )))
}

/// The Redfish RAIDType of Ironic's `raid_level` ("1" → "RAID1", "1+0" → "RAID10").
pub fn raid_type(level: &str) -> Option<&'static str> {
    Some(match level {
        "0" => "RAID0",
        "1" => "RAID1",
        "5" => "RAID5",
        "6" => "RAID6",
        "1+0" => "RAID10",
        "5+0" => "RAID50",
        "6+0" => "RAID60",
        _ => return None,
    })
}

pub async fn create(client: &Client, system: &str, logical_disks: &[Value]) -> Result<()> {
    let path = volumes_collection(client, system).await?;
    for disk in logical_disks {
        let level = disk["raid_level"].as_str().unwrap_or("");
        let kind = raid_type(level).ok_or_else(|| {
            RedfishError::Unsupported(format!(
                "RAID level {level:?} (use 0, 1, 5, 6, 1+0, 5+0 or 6+0)"
            ))
        })?;
        let mut body = json!({"RAIDType": kind});
        if let Some(gb) = disk["size_gb"].as_u64() {
            body["CapacityBytes"] = json!(gb << 30);
        }
        if let Some(name) = disk["volume_name"].as_str() {
            body["Name"] = json!(name);
        }
        let r = client.post(&path, &body).await?;
        task::follow(client, r, "create volume").await?;
    }
    Ok(())
}

pub async fn delete_all(client: &Client, system: &str) -> Result<()> {
    let path = volumes_collection(client, system).await?;
    let coll: Value = client.get_as(&path).await?;
    for m in coll["Members"].as_array().into_iter().flatten() {
        if let Some(p) = m["@odata.id"].as_str() {
            let r = client.delete(p).await?;
            task::follow(client, r, "delete volume").await?;
        }
    }
    Ok(())
}
