//! Manual clean and service steps (Ironic's `clean_steps` / `service_steps` lists): parsed into
//! what the conductor runs — the deploy interface's agent steps, or the bios, firmware and raid
//! interfaces' steps on the [`super::Hardware`] port. Pure: every refusal names the step and
//! says what is accepted.

use deploy_drivers::CleanStep;
use serde_json::Value;

/// One step of a manual clean or a service.
#[derive(Debug, Clone, PartialEq)]
pub enum ManualStep {
    /// A deploy-interface step the agent runs (erase_devices, erase_devices_metadata).
    Deploy(CleanStep),
    /// bios.apply_configuration: `(name, value)` pairs.
    BiosApply(Vec<(String, Value)>),
    /// bios.factory_reset.
    BiosReset,
    /// firmware.update: `(component, url)` in order.
    FirmwareUpdate(Vec<(String, String)>),
    /// raid.create_configuration from the node's target_raid_config.
    RaidCreate,
    /// raid.delete_configuration.
    RaidDelete,
    /// A step that does nothing but hold its place (Ironic's `deploy.hold`-like no-ops,
    /// `management.*` steps a fake interface answers).
    Noop(String),
}

impl ManualStep {
    /// `interface.step`, as Ironic names it in clean_step and errors.
    pub fn name(&self) -> String {
        match self {
            ManualStep::Deploy(s) => format!("deploy.{}", s.name()),
            ManualStep::BiosApply(_) => "bios.apply_configuration".into(),
            ManualStep::BiosReset => "bios.factory_reset".into(),
            ManualStep::FirmwareUpdate(_) => "firmware.update".into(),
            ManualStep::RaidCreate => "raid.create_configuration".into(),
            ManualStep::RaidDelete => "raid.delete_configuration".into(),
            ManualStep::Noop(n) => n.clone(),
        }
    }

    /// The interface the step belongs to ("deploy", "bios", …).
    pub fn interface(&self) -> String {
        self.name()
            .split_once('.')
            .map(|(i, _)| i.to_string())
            .unwrap_or_default()
    }
}

/// Every step accepted, for error messages.
pub const KNOWN: &str = "deploy.erase_devices, deploy.erase_devices_metadata, bios.apply_configuration, bios.factory_reset, firmware.update, raid.create_configuration, raid.delete_configuration";

/// Reads a `clean_steps` or `service_steps` list (`what` names it in errors).
pub fn parse(list: &Value, what: &str) -> Result<Vec<ManualStep>, String> {
    let items = list.as_array().ok_or_else(|| {
        format!("{what} must be a list such as [{{\"interface\": \"deploy\", \"step\": \"erase_devices_metadata\"}}], not {list}")
    })?;
    items.iter().map(|item| parse_one(item, what)).collect()
}

/// The steps a service accepts (Ironic's `service_steps`, 1.87).
pub const SERVICE_KNOWN: &str = "bios.apply_configuration, bios.factory_reset, firmware.update, raid.create_configuration, raid.delete_configuration";

/// Reads a `service_steps` list: as [`parse`], but the agent's erase steps are refused, since
/// a serviced node is deployed and Ironic offers no erase as a service step.
pub fn parse_service(list: &Value) -> Result<Vec<ManualStep>, String> {
    let steps = parse(list, "service_steps")?;
    if let Some(s) = steps.iter().find(|s| matches!(s, ManualStep::Deploy(_))) {
        return Err(format!(
            "service_steps step \"{}\" is not a service step (it would erase a deployed node): use one of {SERVICE_KNOWN}",
            s.name()
        ));
    }
    Ok(steps)
}

fn parse_one(item: &Value, what: &str) -> Result<ManualStep, String> {
    let interface = item.get("interface").and_then(Value::as_str);
    let step = item.get("step").and_then(Value::as_str);
    let (Some(interface), Some(step)) = (interface, step) else {
        return Err(format!(
            "{what} entry {item} needs \"interface\" and \"step\", e.g. {{\"interface\": \"deploy\", \"step\": \"erase_devices_metadata\"}}"
        ));
    };
    let args = item.get("args").cloned().unwrap_or(Value::Null);
    if !(args.is_null() || args.is_object()) {
        return Err(format!(
            "{what} step {interface}.{step}: \"args\" must be an object, not {args}"
        ));
    }
    let settings = || -> Result<Vec<Value>, String> {
        args.get("settings")
            .and_then(Value::as_array)
            .cloned()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                format!(
                    "{what} step {interface}.{step} needs args {{\"settings\": [...]}} with at least one entry"
                )
            })
    };
    Ok(match (interface, step) {
        ("deploy", name) => ManualStep::Deploy(CleanStep::parse(name).ok_or_else(|| {
            format!("{what} step \"deploy.{name}\" is not supported: use one of {KNOWN}")
        })?),
        ("bios", "apply_configuration") => {
            let mut pairs = Vec::new();
            for s in settings()? {
                let name = s.get("name").and_then(Value::as_str).ok_or_else(|| {
                    format!("{what} step bios.apply_configuration: setting {s} needs a \"name\"")
                })?;
                let value = s.get("value").cloned().ok_or_else(|| {
                    format!(
                        "{what} step bios.apply_configuration: setting {name:?} needs a \"value\""
                    )
                })?;
                pairs.push((name.to_string(), value));
            }
            ManualStep::BiosApply(pairs)
        }
        ("bios", "factory_reset") => ManualStep::BiosReset,
        ("firmware", "update") => {
            let mut updates = Vec::new();
            for s in settings()? {
                let component = s.get("component").and_then(Value::as_str);
                let url = s.get("url").and_then(Value::as_str);
                let (Some(component), Some(url)) = (component, url) else {
                    return Err(format!(
                        "{what} step firmware.update: setting {s} needs \"component\" (bios or bmc) and \"url\""
                    ));
                };
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "{what} step firmware.update: url {url:?} of component {component:?} must be http:// or https://"
                    ));
                }
                updates.push((component.to_string(), url.to_string()));
            }
            ManualStep::FirmwareUpdate(updates)
        }
        ("raid", "create_configuration") => ManualStep::RaidCreate,
        ("raid", "delete_configuration") => ManualStep::RaidDelete,
        (i, s) => {
            return Err(format!(
                "{what} step \"{i}.{s}\" is not supported: use one of {KNOWN}"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_steps_bmo_sends() {
        let steps = parse(
            &json!([
                {"interface": "raid", "step": "delete_configuration"},
                {"interface": "raid", "step": "create_configuration"},
                {"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}},
                {"interface": "firmware", "step": "update", "args": {"settings": [{"component": "bios", "url": "http://x/fw.bin"}]}},
                {"interface": "bios", "step": "factory_reset"},
                {"interface": "deploy", "step": "erase_devices_metadata"},
            ]),
            "clean_steps",
        )
        .unwrap();
        let names: Vec<String> = steps.iter().map(ManualStep::name).collect();
        assert_eq!(
            names,
            [
                "raid.delete_configuration",
                "raid.create_configuration",
                "bios.apply_configuration",
                "firmware.update",
                "bios.factory_reset",
                "deploy.erase_devices_metadata"
            ]
        );
        assert_eq!(
            steps[2],
            ManualStep::BiosApply(vec![("ProcTurboMode".into(), json!("Disabled"))])
        );
        assert_eq!(steps[3].interface(), "firmware");
    }

    #[test]
    fn refusals_name_the_step() {
        let bad = |v: Value| parse(&v, "clean_steps").unwrap_err();
        assert!(bad(json!({})).contains("must be a list"));
        assert!(bad(json!([{"interface": "deploy"}])).contains("needs \"interface\" and \"step\""));
        assert!(bad(json!([{"interface": "power", "step": "x"}]))
            .contains("\"power.x\" is not supported"));
        assert!(
            bad(json!([{"interface": "bios", "step": "apply_configuration"}])).contains("settings")
        );
        assert!(bad(json!([{"interface": "firmware", "step": "update", "args": {"settings": [{"component": "bios", "url": "ftp://x"}]}}])).contains("http://"));
        assert!(bad(json!([{"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"value": 1}]}}])).contains("needs a \"name\""));
    }

    #[test]
    fn service_steps_take_the_hardware_steps_but_never_an_erase() {
        let ok = parse_service(&json!([
            {"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"name": "A", "value": "B"}]}},
            {"interface": "firmware", "step": "update", "args": {"settings": [{"component": "bmc", "url": "http://x/f.bin"}]}},
            {"interface": "raid", "step": "delete_configuration"},
        ]))
        .unwrap();
        assert_eq!(ok.len(), 3);
        let err =
            parse_service(&json!([{"interface": "deploy", "step": "erase_devices"}])).unwrap_err();
        assert!(
            err.contains("deploy.erase_devices") && err.contains("not a service step"),
            "{err}"
        );
        let err = parse_service(&json!([{"interface": "bios", "step": "nope"}])).unwrap_err();
        assert!(err.starts_with("service_steps step"), "{err}");
    }
}
