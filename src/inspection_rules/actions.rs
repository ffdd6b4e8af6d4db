//! Actions: what a matching rule does to the node, its traits and ports, and the plugin data.
//! They change the [`Subject`] in memory; the conductor saves what changed.

use serde_json::{Map, Value};

use super::args::{self, Signature};
use super::conditions::py_eq;
use super::pyformat::{py_str, Context};
use super::{ApiCall, Hooks, Subject};

/// Runs `action` (once, or once per `loop` item) on `subject`.
pub async fn run(
    action: &Value,
    subject: &mut Subject,
    mask: bool,
    hooks: &dyn Hooks,
) -> Result<(), String> {
    let op = action.get("op").and_then(Value::as_str).unwrap_or("");
    let sig = args::find(args::ACTIONS, op).ok_or_else(|| {
        format!(
            "Unsupported action: '{op}'. Supported actions are: {}.",
            args::ACTIONS
                .iter()
                .map(|s| s.op)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let raw = action
        .get("args")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let items: Vec<Option<Value>> = match action.get("loop") {
        Some(Value::Object(m)) if !m.is_empty() => vec![Some(Value::Object(m.clone()))],
        Some(Value::Array(items)) if !items.is_empty() => items.iter().cloned().map(Some).collect(),
        _ => vec![None],
    };
    for item in items {
        let named = {
            let ctx = Context {
                node: &subject.node,
                inventory: &subject.inventory,
                plugin_data: &subject.plugin_data,
                item: item.as_ref(),
                mask,
            };
            sig.prepare(&raw, &ctx)?
        };
        execute(sig, &named, subject, hooks).await?;
    }
    Ok(())
}

fn arg<'a>(a: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    a.get(name)
        .ok_or_else(|| format!("missing required argument(s): {name}"))
}

fn text(a: &Map<String, Value>, name: &str) -> Result<String, String> {
    arg(a, name).map(|v| py_str(v, false))
}

fn flag(a: &Map<String, Value>, name: &str) -> bool {
    a.get(name)
        .is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false)) && v != &Value::from(0))
}

async fn execute(
    sig: &Signature,
    a: &Map<String, Value>,
    s: &mut Subject,
    hooks: &dyn Hooks,
) -> Result<(), String> {
    let failed = |why: String| format!("Inspection rule action execution failed. Reason: {why}");
    match sig.op {
        "fail" => Err(format!(
            "Failed to inspect hardware. Reason: {}",
            text(a, "msg")?
        )),
        "log" => {
            let msg = text(a, "msg")?;
            let node = s.node.get("uuid").and_then(Value::as_str).unwrap_or("");
            match a.get("level").map(|l| py_str(l, false).to_lowercase()).as_deref() {
                None | Some("info") => tracing::info!(node, "inspection rule: {msg}"),
                Some("debug") => tracing::debug!(node, "inspection rule: {msg}"),
                Some("warning") => tracing::warn!(node, "inspection rule: {msg}"),
                Some("error") | Some("critical") => tracing::error!(node, "inspection rule: {msg}"),
                Some(other) => {
                    return Err(format!(
                        "Inspection rule execution failed. Reason: Invalid log level: {other}. Choose from debug, info, warning, error, critical"
                    ))
                }
            }
            Ok(())
        }
        "set-attribute" | "extend-attribute" | "del-attribute" => {
            let path = text(a, "path")?;
            edit(&mut s.node, sig.op, &path, a).map_err(|e| {
                failed(format!(
                    "Failed to change attribute {path} of the node: {e}"
                ))
            })
        }
        "set-port-attribute" | "extend-port-attribute" | "del-port-attribute" => {
            let port_id = text(a, "port_id")?;
            let path = text(a, "path")?;
            let port = s
                .ports
                .iter_mut()
                .find(|p| p.get("uuid").and_then(Value::as_str) == Some(port_id.as_str()))
                .ok_or_else(|| format!("Port {port_id} could not be found."))?;
            let op = sig.op.replace("-port", "");
            edit(port, &op, &path, a).map_err(|e| {
                failed(format!(
                    "Failed to change attribute {path} for port {port_id}: {e}"
                ))
            })
        }
        "set-capability" => {
            let cap = format!("{}:{}", text(a, "name")?, text(a, "value")?);
            let props = object_field(&mut s.node, "properties")?;
            let caps = match props.get("capabilities").map(|c| py_str(c, false)) {
                Some(c) if !c.is_empty() => format!("{c},{cap}"),
                _ => cap,
            };
            props.insert("capabilities".into(), Value::String(caps));
            Ok(())
        }
        "unset-capability" => {
            let prefix = format!("{}:", text(a, "name")?);
            let props = object_field(&mut s.node, "properties")?;
            let caps = props
                .get("capabilities")
                .map(|c| py_str(c, false))
                .unwrap_or_default();
            let kept: Vec<&str> = caps
                .split(',')
                .filter(|c| !c.starts_with(&prefix))
                .collect();
            props.insert("capabilities".into(), Value::String(kept.join(",")));
            Ok(())
        }
        "add-trait" => {
            let name = text(a, "name")?;
            if !s.traits.contains(&name) {
                s.traits.push(name);
            }
            Ok(())
        }
        "remove-trait" => {
            let name = text(a, "name")?;
            if !s.traits.contains(&name) {
                tracing::warn!(trait_name = %name, "inspection rule: trait to remove is not on the node");
            }
            s.traits.retain(|t| *t != name);
            Ok(())
        }
        "set-plugin-data" | "extend-plugin-data" | "unset-plugin-data" => {
            let path = text(a, "path")?;
            plugin_data(&mut s.plugin_data, sig.op, &path, a)
                .map_err(|e| failed(format!("Failed to change plugin data at {path}: {e}")))
        }
        "api-call" => {
            let call = ApiCall {
                url: text(a, "url")?,
                headers: match a.get("headers") {
                    Some(Value::Object(h)) => h
                        .iter()
                        .map(|(k, v)| (k.clone(), py_str(v, false)))
                        .collect(),
                    _ => Vec::new(),
                },
                timeout_s: number(a, "timeout", 5.0)?,
                retries: number(a, "retries", 3.0)? as u32,
                backoff_factor: number(a, "backoff_factor", 0.3)?,
            };
            if call.timeout_s <= 0.0 {
                return Err(failed(
                    "Invalid parameter: timeout must be greater than zero".into(),
                ));
            }
            hooks
                .api_call(&call)
                .await
                .map_err(|e| failed(format!("Request to {} failed: {e}", call.url)))
        }
        other => Err(format!("Unsupported action '{other}'.")),
    }
}

fn number(a: &Map<String, Value>, name: &str, default: f64) -> Result<f64, String> {
    match a.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => py_str(v, false)
            .trim()
            .parse()
            .map_err(|_| format!("Inspection rule action execution failed. Reason: Invalid parameter: {name} is not a number")),
    }
}

/// A node field that must be an object (properties, driver_info, …).
fn object_field<'a>(
    doc: &'a mut Map<String, Value>,
    name: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    match doc.get_mut(name) {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(format!("node field {name} is not an object")),
    }
}

/// Ironic's `normalize_path`: "/a/b" or "a.b".
fn parts(path: &str) -> Vec<String> {
    if path.contains('/') {
        path.trim_matches('/')
            .split('/')
            .map(String::from)
            .collect()
    } else {
        path.split('.').map(String::from).collect()
    }
}

/// set / extend / del of `path` inside `doc` (a node or port document).
fn edit(
    doc: &mut Map<String, Value>,
    op: &str,
    path: &str,
    a: &Map<String, Value>,
) -> Result<(), String> {
    let parts = parts(path);
    let (last, parents) = parts.split_last().ok_or("empty path")?;
    let value = a.get("value").cloned().unwrap_or(Value::Null);
    let mut current = doc;
    for (depth, part) in parents.iter().enumerate() {
        if depth == 0 && !current.contains_key(part) {
            return Err(format!("there is no field {part}"));
        }
        let entry = match op {
            "del-attribute" => current.get_mut(part).ok_or_else(|| format!("'{part}'"))?,
            _ => current
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new())),
        };
        current = entry
            .as_object_mut()
            .ok_or_else(|| format!("{part} is not an object"))?;
    }
    match op {
        "set-attribute" => {
            if parents.is_empty() && !current.contains_key(last) {
                return Err(format!("there is no field {last}"));
            }
            current.insert(last.clone(), value);
        }
        "extend-attribute" => {
            let list = current
                .entry(last.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = list else {
                return Err(format!(
                    "Cannot extend non-list attribute {path} with value {}",
                    py_str(&value, false)
                ));
            };
            if !flag(a, "unique") || !items.iter().any(|i| py_eq(i, &value)) {
                items.push(value);
            }
        }
        _ => {
            if parents.is_empty() {
                // Deleting a field resets it (the caller maps null to the field's default).
                if !current.contains_key(last) {
                    return Err(format!("there is no field {last}"));
                }
                current.insert(last.clone(), Value::Null);
            } else {
                current.remove(last).ok_or_else(|| format!("'{last}'"))?;
            }
        }
    }
    Ok(())
}

/// set / extend / unset of a dotted `path` in the plugin data.
fn plugin_data(
    data: &mut Value,
    op: &str,
    path: &str,
    a: &Map<String, Value>,
) -> Result<(), String> {
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let keys: Vec<&str> = path.split('.').collect();
    let (last, parents) = keys.split_last().ok_or("empty path")?;
    let value = a.get("value").cloned().unwrap_or(Value::Null);
    if op == "unset-plugin-data" {
        // Removes the key, and a parent it leaves empty, as Ironic's `_unset_nested_dict`.
        let mut current = data.as_object_mut().ok_or("plugin data is not an object")?;
        let mut parent_key = None;
        for key in parents {
            parent_key = Some(*key);
            match current.get_mut(*key).and_then(Value::as_object_mut) {
                Some(next) => current = next,
                None => {
                    tracing::warn!(path, "inspection rule: plugin data path not found");
                    return Ok(());
                }
            }
        }
        if current.remove(*last).is_none() {
            tracing::warn!(path, "inspection rule: plugin data path not found");
        } else if current.is_empty() && parent_key.is_some() {
            return plugin_data(data, op, &parents.join("."), a);
        }
        return Ok(());
    }
    let mut current = data.as_object_mut().ok_or("plugin data is not an object")?;
    for key in parents {
        current = current
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| format!("{key} is not an object"))?;
    }
    if op == "set-plugin-data" {
        current.insert(last.to_string(), value);
        return Ok(());
    }
    let list = current
        .entry(last.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    let Value::Array(items) = list else {
        return Err(format!("{path} is not a list"));
    };
    if !flag(a, "unique") || !items.iter().any(|i| py_eq(i, &value)) {
        items.push(value);
    }
    Ok(())
}
