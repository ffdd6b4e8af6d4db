//! BIOS settings (Ironic's `redfish` bios interface): the System's `Bios` resource for current
//! values, its attribute registry (when the BMC publishes one) for types and limits, the
//! `@Redfish.Settings` object to change them and `#Bios.ResetBios` for factory defaults.

use serde_json::{json, Map, Value};

use super::client::Client;
use super::error::{RedfishError, Result};
use super::inspect::{link, members};
use super::task;
use crate::hardware::BiosSetting;

async fn bios_of(client: &Client, system: &str) -> Result<(String, Value)> {
    let sys: Value = client.get_as(system).await?;
    let path = link(&sys, "Bios").ok_or_else(|| {
        RedfishError::Unsupported(format!("BIOS settings: {system} has no Bios link"))
    })?;
    let bios = client.get_as(&path).await?;
    Ok((path, bios))
}

/// The current settings, with the registry's facts merged in where it has them.
pub async fn settings(client: &Client, system: &str) -> Result<Vec<BiosSetting>> {
    let (_, bios) = bios_of(client, system).await?;
    let registry = match bios["AttributeRegistry"].as_str() {
        Some(name) => registry(client, name).await.unwrap_or_else(|e| {
            tracing::debug!(registry = name, error = %e, "BIOS attribute registry unavailable");
            Map::new()
        }),
        None => Map::new(),
    };
    let attrs = bios["Attributes"].as_object().cloned().unwrap_or_default();
    let mut out: Vec<BiosSetting> = attrs
        .iter()
        .map(|(name, value)| with_registry(name, value, registry.get(name)))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn with_registry(name: &str, value: &Value, entry: Option<&Value>) -> BiosSetting {
    let value = match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let Some(e) = entry else {
        return BiosSetting {
            name: name.into(),
            value,
            ..BiosSetting::default()
        };
    };
    BiosSetting {
        name: name.into(),
        value,
        attribute_type: e["Type"].as_str().map(String::from),
        allowable_values: e["Value"].as_array().map(|vs| {
            vs.iter()
                .filter_map(|v| v["ValueName"].as_str().map(String::from))
                .collect()
        }),
        lower_bound: e["LowerBound"].as_i64(),
        upper_bound: e["UpperBound"].as_i64(),
        min_length: e["MinLength"].as_i64(),
        max_length: e["MaxLength"].as_i64(),
        read_only: e["ReadOnly"].as_bool(),
        reset_required: e["ResetRequired"].as_bool(),
        unique: e["IsSystemUniqueProperty"].as_bool(),
    }
}

/// The registry named `name`: its attributes by AttributeName.
async fn registry(client: &Client, name: &str) -> Result<Map<String, Value>> {
    let root = client.get("/redfish/v1/").await?.body;
    let Some(path) = link(&root, "Registries") else {
        return Ok(Map::new());
    };
    for file in members(client, &path).await? {
        let id = file["Id"].as_str().unwrap_or("");
        let registry = file["Registry"].as_str().unwrap_or("");
        if id != name && registry != name && !name.starts_with(id) {
            continue;
        }
        for loc in file["Location"].as_array().into_iter().flatten() {
            let Some(uri) = loc["Uri"].as_str() else {
                continue;
            };
            let reg: Value = client.get_as(uri).await?;
            let mut out = Map::new();
            for a in reg["RegistryEntries"]["Attributes"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(n) = a["AttributeName"].as_str() {
                    out.insert(n.into(), a.clone());
                }
            }
            return Ok(out);
        }
    }
    Ok(Map::new())
}

/// Writes `pairs` to the BIOS settings object (the BMC applies them at the next boot).
pub async fn apply(client: &Client, system: &str, pairs: &[(String, Value)]) -> Result<()> {
    let (path, bios) = bios_of(client, system).await?;
    let target = bios["@Redfish.Settings"]["SettingsObject"]["@odata.id"]
        .as_str()
        .map(String::from)
        .unwrap_or(path);
    let attrs: Map<String, Value> = pairs.iter().cloned().collect();
    let r = client
        .patch(&target, &json!({ "Attributes": attrs }), None)
        .await?;
    task::follow(client, r, "apply BIOS settings").await?;
    Ok(())
}

/// Resets the BIOS to factory defaults.
pub async fn reset(client: &Client, system: &str) -> Result<()> {
    let (_, bios) = bios_of(client, system).await?;
    let target = bios["Actions"]["#Bios.ResetBios"]["target"]
        .as_str()
        .ok_or_else(|| {
            RedfishError::Unsupported("BIOS factory reset: no #Bios.ResetBios action".into())
        })?;
    let r = client.post(target, &json!({})).await?;
    task::follow(client, r, "reset BIOS").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_facts_fill_the_setting() {
        let entry = json!({"AttributeName": "ProcTurboMode", "Type": "Enumeration", "ReadOnly": false,
            "ResetRequired": true, "Value": [{"ValueName": "Enabled"}, {"ValueName": "Disabled"}]});
        let s = with_registry("ProcTurboMode", &json!("Enabled"), Some(&entry));
        assert_eq!(s.value.as_deref(), Some("Enabled"));
        assert_eq!(s.attribute_type.as_deref(), Some("Enumeration"));
        assert_eq!(s.allowable_values.unwrap(), ["Enabled", "Disabled"]);
        assert_eq!(s.reset_required, Some(true));
        let plain = with_registry("NumCores", &json!(10), None);
        assert_eq!(plain.value.as_deref(), Some("10"));
        assert_eq!(plain.attribute_type, None);
    }
}
