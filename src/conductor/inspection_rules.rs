//! The conductor's side of inspection rules: after an inspection, the stored rules of the
//! `main` phase and the built-in ones (`[inspection_rules] built_in_rules`) are applied to the
//! node, its traits and ports, and the plugin data (`crate::inspection_rules`), and what they
//! changed is saved. A rule that fails fails the inspection, as in Ironic.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::Conductor;
use crate::inspection_rules::{self, ApiCall, Hooks, Subject};
use crate::store::{Node, Port};

/// Node fields rules may change (read-only ones are shown to templates, e.g. `{node.driver}`).
const NODE_MAPS: &[&str] = &[
    "driver_info",
    "instance_info",
    "properties",
    "extra",
    "driver_internal_info",
    "network_data",
];
const NODE_TEXTS: &[&str] = &[
    "name",
    "description",
    "owner",
    "lessee",
    "resource_class",
    "shard",
    "retired_reason",
];

/// Applies the rules to `node` (changed in memory; the caller saves it) and `plugin_data`;
/// traits and ports the rules change are saved here.
pub(crate) async fn apply(
    conductor: &Conductor,
    node: &mut Node,
    inventory: &Value,
    plugin_data: &mut Value,
) -> Result<(), String> {
    let store = &conductor.store;
    let mut rules = store
        .inspection_rules_of_phase("main")
        .await
        .map_err(|e| format!("cannot read the inspection rules: {e}"))?;
    if let Some(path) = &conductor.settings.built_in_rules {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the built-in inspection rules {}: {e}",
                path.display()
            )
        })?;
        rules.extend(inspection_rules::built_in(&text).map_err(|e| {
            format!(
                "the built-in inspection rules {} are invalid: {e}",
                path.display()
            )
        })?);
    }
    if rules.is_empty() {
        return Ok(());
    }
    let traits = store
        .node_traits(&node.uuid)
        .await
        .map_err(|e| e.to_string())?;
    let ports = store
        .ports(Some(&node.uuid))
        .await
        .map_err(|e| e.to_string())?;
    let mut subject = Subject {
        node: node_doc(node),
        inventory: inventory.clone(),
        plugin_data: plugin_data.clone(),
        traits: traits.clone(),
        ports: ports.iter().map(port_doc).collect(),
    };
    inspection_rules::apply(
        &rules,
        &mut subject,
        conductor.settings.rules_mask_secrets,
        &HttpHooks,
    )
    .await?;
    node_from_doc(node, &subject.node)?;
    if subject.traits != traits {
        store
            .set_node_traits(&node.uuid, &subject.traits)
            .await
            .map_err(|e| format!("cannot save the traits the inspection rules set: {e}"))?;
    }
    for (mut port, doc) in ports.into_iter().zip(&subject.ports) {
        if port_doc(&port) != *doc {
            port_from_doc(&mut port, doc)?;
            store
                .save_port(&port)
                .await
                .map_err(|e| format!("cannot save port {}: {e}", port.uuid))?;
        }
    }
    *plugin_data = subject.plugin_data;
    Ok(())
}

/// The node as rules see it: its fields by API name.
fn node_doc(n: &Node) -> Map<String, Value> {
    let doc = json!({
        "uuid": n.uuid, "name": n.name, "driver": n.driver, "driver_info": n.driver_info,
        "instance_info": n.instance_info, "properties": n.properties, "extra": n.extra,
        "driver_internal_info": n.driver_internal_info, "network_data": n.network_data,
        "provision_state": n.provision_state, "power_state": n.power_state,
        "maintenance": n.maintenance, "description": n.description, "owner": n.owner,
        "lessee": n.lessee, "resource_class": n.resource_class, "shard": n.shard,
        "retired": n.retired, "retired_reason": n.retired_reason,
        "conductor_group": n.conductor_group, "chassis_uuid": n.chassis_uuid,
        "boot_interface": n.boot_interface, "deploy_interface": n.deploy_interface,
        "inspect_interface": n.inspect_interface, "management_interface": n.management_interface,
        "power_interface": n.power_interface, "instance_uuid": n.instance_uuid,
    });
    match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Writes back what rules changed; a change to a field rules may not set is an error.
fn node_from_doc(n: &mut Node, doc: &Map<String, Value>) -> Result<(), String> {
    let before = node_doc(n);
    for (key, value) in doc {
        if before.get(key) == Some(value) {
            continue;
        }
        let bad =
            |what: &str| format!("inspection rules cannot set node field {key} to {value}: {what}");
        if NODE_MAPS.contains(&key.as_str()) {
            let map = match value {
                Value::Null => Map::new(),
                Value::Object(m) => m.clone(),
                _ => return Err(bad("it must be an object")),
            };
            match key.as_str() {
                "driver_info" => n.driver_info = map,
                "instance_info" => n.instance_info = map,
                "properties" => n.properties = map,
                "extra" => n.extra = map,
                "driver_internal_info" => n.driver_internal_info = map,
                _ => n.network_data = map,
            }
        } else if NODE_TEXTS.contains(&key.as_str()) {
            let text = match value {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(bad("it must be a string")),
            };
            match key.as_str() {
                "name" => n.name = text,
                "description" => n.description = text,
                "owner" => n.owner = text,
                "lessee" => n.lessee = text,
                "resource_class" => n.resource_class = text,
                "shard" => n.shard = text,
                _ => n.retired_reason = text,
            }
        } else if key == "retired" {
            n.retired = value.as_bool().ok_or_else(|| bad("it must be a boolean"))?;
        } else {
            return Err(bad(&format!(
                "rules may set {}, {} and retired",
                NODE_MAPS.join(", "),
                NODE_TEXTS.join(", ")
            )));
        }
    }
    Ok(())
}

fn port_doc(p: &Port) -> Map<String, Value> {
    let doc = json!({
        "uuid": p.uuid, "address": p.address, "node_uuid": p.node_uuid, "extra": p.extra,
        "pxe_enabled": p.pxe_enabled, "local_link_connection": p.local_link_connection,
        "physical_network": p.physical_network, "is_smartnic": p.is_smartnic,
        "name": p.name, "description": p.description,
    });
    match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn port_from_doc(p: &mut Port, doc: &Map<String, Value>) -> Result<(), String> {
    let before = port_doc(p);
    for (key, value) in doc {
        if before.get(key) == Some(value) {
            continue;
        }
        let bad = |what: &str| {
            format!(
                "inspection rules cannot set field {key} of port {} to {value}: {what}",
                p.uuid
            )
        };
        let map = || match value {
            Value::Null => Ok(Map::new()),
            Value::Object(m) => Ok(m.clone()),
            _ => Err(bad("it must be an object")),
        };
        let text = || match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad("it must be a string")),
        };
        let flag = || value.as_bool().ok_or_else(|| bad("it must be a boolean"));
        match key.as_str() {
            "extra" => p.extra = map()?,
            "local_link_connection" => p.local_link_connection = map()?,
            "physical_network" => p.physical_network = text()?,
            "name" => p.name = text()?,
            "description" => p.description = text()?,
            "pxe_enabled" => p.pxe_enabled = flag()?,
            "is_smartnic" => p.is_smartnic = flag()?,
            _ => return Err(bad("rules may set extra, local_link_connection, physical_network, name, description, pxe_enabled and is_smartnic")),
        }
    }
    Ok(())
}

/// `api-call`: a GET with the action's headers, proxies and timeout, retried on 429 and 5xx
/// with exponential backoff (urllib3's Retry, as Ironic uses).
struct HttpHooks;

#[async_trait::async_trait]
impl Hooks for HttpHooks {
    async fn api_call(&self, call: &ApiCall) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(call.timeout_s))
            .build()
            .map_err(|e| e.to_string())?;
        let mut attempt = 0u32;
        loop {
            let mut req = client.get(&call.url);
            for (k, v) in &call.headers {
                req = req.header(k, v);
            }
            let retry = match req.send().await {
                Ok(resp) if matches!(resp.status().as_u16(), 429 | 500 | 502 | 503 | 504) => {
                    format!("{} answered {}", call.url, resp.status())
                }
                Ok(resp) => {
                    return resp
                        .error_for_status()
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                Err(e) => e.to_string(),
            };
            if attempt >= call.retries {
                return Err(retry);
            }
            attempt += 1;
            let backoff = call.backoff_factor * f64::from(2u32.pow(attempt - 1));
            tokio::time::sleep(Duration::from_secs_f64(backoff.clamp(0.0, 120.0))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_fields_round_trip_and_read_only_ones_are_refused() {
        let mut n = Node::new("u1".into(), "fake-hardware".into(), |_| "fake");
        let mut doc = node_doc(&n);
        doc.insert("properties".into(), json!({"cpu_arch": "x86_64"}));
        doc.insert("name".into(), json!("rack1-n1"));
        doc.insert("extra".into(), Value::Null);
        node_from_doc(&mut n, &doc).unwrap();
        assert_eq!(n.properties["cpu_arch"], "x86_64");
        assert_eq!(n.name.as_deref(), Some("rack1-n1"));
        doc.insert("provision_state".into(), json!("active"));
        assert!(node_from_doc(&mut n, &doc)
            .unwrap_err()
            .contains("cannot set node field provision_state"));
        let mut p = Port::new("p1".into(), "52:54:00:00:00:01".into(), "u1".into());
        let mut pd = port_doc(&p);
        pd.insert("physical_network".into(), json!("physnet1"));
        port_from_doc(&mut p, &pd).unwrap();
        assert_eq!(p.physical_network.as_deref(), Some("physnet1"));
        pd.insert("address".into(), json!("52:54:00:00:00:02"));
        assert!(port_from_doc(&mut p, &pd).is_err());
    }
}
