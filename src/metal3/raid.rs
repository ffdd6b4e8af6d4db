//! `spec.raid` as BMO applies it while preparing (`pkg/provisioner/ironic/raid.go`:
//! `checkRAIDConfigure`, `BuildTargetRAIDCfg`, `BuildRAIDCleanSteps`), for a node whose RAID
//! interface does hardware RAID, as every Redfish BMC type's does: the node's
//! target_raid_config and the manual clean steps (`raid.delete_configuration`, then
//! `raid.create_configuration` when volumes are asked for). Pure: no I/O.

use serde_json::{json, Map, Value};

use super::manifest::HostSpec;

/// What preparing asks of the node for `spec.raid`.
#[derive(Debug, Clone, PartialEq)]
pub struct RaidPlan {
    /// The node's new target_raid_config (`{"logical_disks": [...]}`); None leaves it, as BMO
    /// does when only deleting.
    pub target: Option<Value>,
    /// Ironic's `clean_steps` for a manual clean.
    pub steps: Value,
}

fn volumes<'a>(raid: Option<&'a Value>, key: &str) -> Option<&'a Vec<Value>> {
    raid?.get(key)?.as_array()
}

/// The plan for `spec`, given the RAID configuration preparing last applied (`applied`,
/// status.provisioning.raid), on a node whose raid_interface is `raid_interface`: None when
/// nothing is to be done (no hardwareRAIDVolumes, or the same as applied); an error, in BMO's
/// words, for software RAID (the Redfish RAID interfaces build none) or repeated volume names.
pub fn plan(
    spec: &HostSpec,
    applied: Option<&Value>,
    raid_interface: &str,
) -> Result<Option<RaidPlan>, String> {
    let raid = spec.raid.as_ref();
    let hardware = volumes(raid, "hardwareRAIDVolumes");
    let software = volumes(raid, "softwareRAIDVolumes").is_some_and(|v| !v.is_empty());
    if raid.is_some() && hardware.is_none_or(Vec::is_empty) && software {
        return Err(format!(
            "node's driver {raid_interface} does not support software RAID"
        ));
    }
    // No hardwareRAIDVolumes keeps the RAID configuration there is.
    let Some(hardware) = hardware else {
        return Ok(None);
    };
    if volumes(applied, "hardwareRAIDVolumes") == Some(hardware) {
        return Ok(None);
    }
    let mut steps = vec![json!({"interface": "raid", "step": "delete_configuration"})];
    if hardware.is_empty() {
        return Ok(Some(RaidPlan {
            target: None,
            steps: Value::Array(steps),
        }));
    }
    steps.push(json!({"interface": "raid", "step": "create_configuration"}));
    let mut disks = logical_disks(hardware)?;
    // BMO: the first volume is the root volume unless rootDeviceHints choose the disk.
    if spec.root_device_hints.is_none() {
        disks[0].insert("is_root_volume".into(), json!(true));
    }
    let disks: Vec<Value> = disks.into_iter().map(Value::Object).collect();
    Ok(Some(RaidPlan {
        target: Some(json!({ "logical_disks": disks })),
        steps: Value::Array(steps),
    }))
}

/// BMO's buildTargetHardwareRAIDCfg: one Ironic logical disk per volume.
fn logical_disks(volumes: &[Value]) -> Result<Vec<Map<String, Value>>, String> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut disks = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(format!(
                    "the names({name}) of volume[{i}] and volume[{first}] are repeated"
                ));
            }
            seen.push((name, i));
        }
        let mut d = Map::new();
        // Ironic's schema takes a size or "MAX"; an unsized volume uses what there is.
        d.insert(
            "size_gb".into(),
            v.get("sizeGibibytes")
                .filter(|s| s.is_u64())
                .cloned()
                .unwrap_or_else(|| json!("MAX")),
        );
        d.insert(
            "raid_level".into(),
            v.get("level").cloned().unwrap_or(json!("")),
        );
        if !name.is_empty() {
            d.insert("volume_name".into(), json!(name));
        }
        if let Some(r) = v.get("rotational").and_then(Value::as_bool) {
            d.insert("disk_type".into(), json!(if r { "hdd" } else { "ssd" }));
        }
        if let Some(n) = v.get("numberOfPhysicalDisks").filter(|n| n.is_u64()) {
            d.insert("number_of_physical_disks".into(), n.clone());
        }
        disks.push(d);
    }
    Ok(disks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(raid: &str) -> HostSpec {
        HostSpec {
            raid: serde_yaml::from_str(raid).unwrap(),
            ..HostSpec::default()
        }
    }

    #[test]
    fn hardware_volumes_become_a_target_and_delete_then_create() {
        let s = spec("{hardwareRAIDVolumes: [{name: root, level: '1', sizeGibibytes: 20, rotational: false, numberOfPhysicalDisks: 2}, {level: '0'}]}");
        let p = plan(&s, None, "redfish").unwrap().unwrap();
        assert_eq!(
            p.steps,
            json!([
                {"interface": "raid", "step": "delete_configuration"},
                {"interface": "raid", "step": "create_configuration"},
            ])
        );
        assert_eq!(
            p.target.unwrap(),
            json!({"logical_disks": [
                {"size_gb": 20, "raid_level": "1", "volume_name": "root", "disk_type": "ssd",
                 "number_of_physical_disks": 2, "is_root_volume": true},
                {"size_gb": "MAX", "raid_level": "0"},
            ]})
        );
        // Applied already: nothing to do.
        assert_eq!(plan(&s, s.raid.as_ref(), "redfish").unwrap(), None);
    }

    #[test]
    fn root_device_hints_leave_the_root_volume_unset() {
        let mut s = spec("{hardwareRAIDVolumes: [{level: '1', sizeGibibytes: 1}]}");
        s.root_device_hints = Some(Default::default());
        let p = plan(&s, None, "redfish").unwrap().unwrap();
        assert!(p.target.unwrap()["logical_disks"][0]
            .get("is_root_volume")
            .is_none());
    }

    #[test]
    fn an_empty_list_only_deletes_and_none_keeps() {
        let p = plan(&spec("{hardwareRAIDVolumes: []}"), None, "redfish")
            .unwrap()
            .unwrap();
        assert_eq!(
            p.steps,
            json!([{"interface": "raid", "step": "delete_configuration"}])
        );
        assert_eq!(p.target, None);
        assert_eq!(plan(&HostSpec::default(), None, "redfish").unwrap(), None);
        assert_eq!(plan(&spec("{}"), None, "redfish").unwrap(), None);
    }

    #[test]
    fn bmo_refusals() {
        assert_eq!(
            plan(
                &spec("{softwareRAIDVolumes: [{level: '1'}]}"),
                None,
                "redfish"
            )
            .unwrap_err(),
            "node's driver redfish does not support software RAID"
        );
        assert_eq!(
            plan(
                &spec("{hardwareRAIDVolumes: [{name: a, level: '1'}, {name: a, level: '0'}]}"),
                None,
                "redfish"
            )
            .unwrap_err(),
            "the names(a) of volume[1] and volume[0] are repeated"
        );
    }
}
