//! The conductor's side of the `Hardware` port: inspection (out of band through the port, or
//! in band through the deploy driver's agent boot), the inspection hooks' effects (stored
//! inventory, ports for inspected NICs, properties), and the BIOS settings and firmware
//! components cached for the API, as Ironic caches them after verify, inspection and steps.

use chrono::Utc;
use deploy_drivers::DeployEvents;
use serde_json::{json, Value};

use super::{Composed, Conductor};
use crate::hardware::inventory::{self, Inventory};
use crate::store::{FactKind, Node, NodeLock, Port};

/// Inspects the node by its inspect_interface and records what was found.
pub(crate) async fn inspect(
    conductor: &Conductor,
    lock: &NodeLock,
    node: &Node,
    composed: &Composed,
    events: &dyn DeployEvents,
) -> Result<(), String> {
    let iface = node.inspect_interface.as_str();
    let found: Inventory = match iface {
        "agent" => {
            let view = super::worker::node_view(node, &[]);
            let inv = composed
                .deploy
                .inspect(&view, &composed.ports, events)
                .await
                .map_err(|e| format!("inspection failed at step {e}"))?;
            inventory::from_agent(&inv)
        }
        "redfish" | "fake" => composed
            .hardware
            .inspect()
            .await
            .map_err(|e| format!("inspection failed: {e}"))?,
        other => {
            return Err(format!(
                "node {} has inspect_interface {other:?}, which cannot inspect: set it to \"redfish\" (out of band, through the BMC) or \"agent\" (in band, booting the agent)",
                node.uuid
            ))
        }
    };
    events
        .step(
            "inspect",
            &format!(
                "{} CPUs, {} MiB, {} disks, {} NICs",
                found.cpu.count,
                found.memory.physical_mb,
                found.disks.len(),
                found.interfaces.len()
            ),
        )
        .await;
    record(conductor, lock, node, &found, iface).await
}

/// Ironic's order: adds ports for new NICs and updates properties (the inspection hooks),
/// applies the inspection rules, then stores the inventory and the plugin data as the rules
/// left it. A rule that fails fails the inspection and nothing of it is stored.
async fn record(
    conductor: &Conductor,
    lock: &NodeLock,
    node: &Node,
    found: &Inventory,
    source: &str,
) -> Result<(), String> {
    let store = &conductor.store;
    let valid = inventory::ports_to_add(found, conductor.settings.add_ports);
    let existing: Vec<String> = store
        .ports(Some(&node.uuid))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.address.to_ascii_lowercase())
        .collect();
    for nic in valid.iter().filter(|n| !existing.contains(&n.mac)) {
        let mut port = Port::new(
            uuid::Uuid::new_v4().to_string(),
            nic.mac.clone(),
            node.uuid.clone(),
        );
        port.pxe_enabled = nic.pxe_enabled;
        match store.create_port(&port).await {
            Ok(_) => {
                conductor
                    .history(
                        &node.uuid,
                        "inspection",
                        "INFO",
                        &format!("port created for MAC {} ({})", nic.mac, nic.name),
                    )
                    .await
            }
            // A MAC already on another node: Ironic logs and goes on.
            Err(e) => {
                tracing::warn!(node = %node.uuid, mac = %nic.mac, error = %e, "inspection: port not created")
            }
        }
    }
    let mut fresh = store
        .node_by_uuid(&node.uuid)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("node {} vanished during inspection", node.uuid))?;
    inventory::properties(found, &mut fresh.properties);
    let inventory = json!(found);
    let mut plugin_data = inventory::plugin_data(found, &valid, source);
    super::inspection_rules::apply(conductor, &mut fresh, &inventory, &mut plugin_data).await?;
    let data = json!({"inventory": inventory, "plugin_data": plugin_data});
    store
        .put_fact(&node.uuid, FactKind::Inspection, &data)
        .await
        .map_err(|e| format!("cannot store the inspection data: {e}"))?;
    fresh.inspection_finished_at = Some(Utc::now());
    store
        .save_node(lock, &fresh)
        .await
        .map_err(|e| format!("cannot save the inspected properties: {e}"))?;
    Ok(())
}

/// Reads the BIOS settings and firmware components the node's interfaces can read and caches
/// them for `GET /bios` and `GET /firmware`. Best effort: a BMC that cannot is logged, as
/// Ironic logs a failed cache.
pub(crate) async fn cache_settings(conductor: &Conductor, node: &Node, composed: &Composed) {
    let store = &conductor.store;
    if !node.bios_interface.starts_with("no-") {
        match composed.hardware.bios_settings().await {
            Ok(settings) => {
                if let Err(e) = store
                    .put_fact(&node.uuid, FactKind::Bios, &json!(settings))
                    .await
                {
                    tracing::warn!(node = %node.uuid, error = %e, "cannot cache BIOS settings");
                }
            }
            Err(e) => tracing::warn!(node = %node.uuid, error = %e, "cannot read BIOS settings"),
        }
    }
    if !node.firmware_interface.starts_with("no-") {
        match composed.hardware.firmware().await {
            Ok(now) => {
                let before = store
                    .fact(&node.uuid, FactKind::Firmware)
                    .await
                    .ok()
                    .flatten()
                    .map(|f| f.data)
                    .unwrap_or(Value::Null);
                let merged = merge_firmware(&before, &now);
                if let Err(e) = store
                    .put_fact(&node.uuid, FactKind::Firmware, &merged)
                    .await
                {
                    tracing::warn!(node = %node.uuid, error = %e, "cannot cache firmware components");
                }
            }
            Err(e) => {
                tracing::warn!(node = %node.uuid, error = %e, "cannot read firmware versions")
            }
        }
    }
}

/// Ironic's firmware component records: `initial_version` is the first version ever seen,
/// `current_version` the latest, `last_version_flashed` set when an update changed it.
pub fn merge_firmware(before: &Value, now: &[crate::hardware::FirmwareVersion]) -> Value {
    let old = |c: &str| {
        before
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["component"] == c)
            .cloned()
    };
    let stamp = Utc::now().to_rfc3339();
    let list: Vec<Value> = now
        .iter()
        .map(|fw| match old(&fw.component) {
            Some(mut r) => {
                if r["current_version"] != fw.version.as_str() {
                    r["last_version_flashed"] = json!(fw.version);
                    r["current_version"] = json!(fw.version);
                    r["updated_at"] = json!(stamp);
                }
                r
            }
            None => json!({
                "component": fw.component,
                "initial_version": fw.version,
                "current_version": fw.version,
                "last_version_flashed": null,
                "created_at": stamp,
                "updated_at": null,
            }),
        })
        .collect();
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::FirmwareVersion;

    #[test]
    fn firmware_history_as_ironic_keeps_it() {
        let v = |x: &str| {
            vec![FirmwareVersion {
                component: "bios".into(),
                version: x.into(),
            }]
        };
        let first = merge_firmware(&Value::Null, &v("1.0.0"));
        assert_eq!(first[0]["initial_version"], "1.0.0");
        assert_eq!(first[0]["last_version_flashed"], Value::Null);
        let same = merge_firmware(&first, &v("1.0.0"));
        assert_eq!(same, first);
        let flashed = merge_firmware(&first, &v("1.1.0"));
        assert_eq!(flashed[0]["initial_version"], "1.0.0");
        assert_eq!(flashed[0]["current_version"], "1.1.0");
        assert_eq!(flashed[0]["last_version_flashed"], "1.1.0");
        assert_eq!(flashed[0]["created_at"], first[0]["created_at"]);
    }
}
