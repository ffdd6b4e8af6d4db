//! Runs a manual clean's or a service's steps in order: runs of deploy-interface steps go to
//! the deploy driver's agent (one agent boot per run), bios / firmware / raid steps to the
//! node's `Hardware` port, each refused when the node's interface for it is off. BIOS and
//! firmware caches are refreshed after their steps, the RAID configuration is recorded.

use deploy_drivers::{CleanStep, DeployEvents, NodeView};
use serde_json::{json, Value};

use super::{inspection, Composed, Conductor};
use crate::hardware::steps::ManualStep;
use crate::store::Node;

/// The driver_internal_info keys of the RAID configuration asked for and the one built.
pub const TARGET_RAID_KEY: &str = "target_raid_config";
pub const RAID_KEY: &str = "raid_config";

pub(crate) async fn run(
    conductor: &Conductor,
    node: &Node,
    composed: &Composed,
    view: &NodeView,
    steps: &[ManualStep],
    events: &dyn DeployEvents,
) -> Result<(), String> {
    let mut i = 0;
    while i < steps.len() {
        // A run of agent steps shares one agent boot.
        let agent: Vec<CleanStep> = steps[i..]
            .iter()
            .map_while(|s| match s {
                ManualStep::Deploy(c) => Some(*c),
                _ => None,
            })
            .collect();
        if !agent.is_empty() {
            composed
                .deploy
                .clean(view, &composed.ports, &agent, events)
                .await
                .map_err(|e| format!("step {e}"))?;
            i += agent.len();
            continue;
        }
        let step = &steps[i];
        let name = step.name();
        check_interface(node, step)?;
        events.step(&name, "started").await;
        let hw = &composed.hardware;
        let result = match step {
            ManualStep::BiosApply(pairs) => hw.apply_bios(pairs).await,
            ManualStep::BiosReset => hw.reset_bios().await,
            ManualStep::FirmwareUpdate(updates) => {
                let mut r = Ok(());
                for (component, url) in updates {
                    r = hw.update_firmware(component, url).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            ManualStep::RaidCreate => {
                let target = node
                    .driver_internal_info
                    .get(TARGET_RAID_KEY)
                    .cloned()
                    .unwrap_or(Value::Null);
                let disks = target["logical_disks"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if disks.is_empty() {
                    return Err(format!(
                        "step {name}: the node has no target_raid_config with logical_disks: set one with PUT /v1/nodes/{}/states/raid",
                        node.uuid
                    ));
                }
                let r = hw.create_raid(&disks).await;
                if r.is_ok() {
                    events.save_internal(RAID_KEY, target).await;
                }
                r
            }
            ManualStep::RaidDelete => {
                let r = hw.delete_raid().await;
                if r.is_ok() {
                    events.save_internal(RAID_KEY, json!({})).await;
                }
                r
            }
            ManualStep::Deploy(_) | ManualStep::Noop(_) => Ok(()),
        };
        result.map_err(|e| format!("step {name}: {e}"))?;
        events.step(&name, "done").await;
        if matches!(step.interface().as_str(), "bios" | "firmware") {
            inspection::cache_settings(conductor, node, composed).await;
        }
        i += 1;
    }
    Ok(())
}

/// Ironic refuses a step whose interface is off on the node ("no-bios", …).
fn check_interface(node: &Node, step: &ManualStep) -> Result<(), String> {
    let (field, value) = match step.interface().as_str() {
        "bios" => ("bios_interface", &node.bios_interface),
        "firmware" => ("firmware_interface", &node.firmware_interface),
        "raid" => ("raid_interface", &node.raid_interface),
        _ => return Ok(()),
    };
    if value.starts_with("no-") {
        return Err(format!(
            "step {} needs the node's {field}, which is {value:?}: set it to \"redfish\" (or \"fake\" on fake-hardware)",
            step.name()
        ));
    }
    Ok(())
}
