//! JSON-Patch (RFC 6902, the subset Ironic accepts: add, replace, remove; members of objects
//! and items of lists) over a JSON document,
//! with Ironic's error wording. Pure: no knowledge of nodes beyond the writable-field list the
//! caller passes in.

use serde_json::{Map, Value};

/// One parsed patch operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub op: String,
    /// The path split into unescaped segments (at least one).
    pub path: Vec<String>,
    pub raw_path: String,
    pub value: Option<Value>,
}

/// Parses a request body into operations, checking shape, op names and that each path starts
/// with a field in `writable`.
pub fn parse(body: &Value, writable: &[&str]) -> Result<Vec<Op>, String> {
    let Some(items) = body.as_array() else {
        return Err("Invalid patch: the body must be a JSON array of operations like [{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"n1\"}]".into());
    };
    let mut ops = Vec::new();
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(format!(
                "Invalid patch: {item} is not an object with op and path"
            ));
        };
        if let Some(extra) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "op" | "path" | "value"))
        {
            return Err(format!(
                "Schema error for patch: additional property '{extra}' is not allowed (only op, path, value)"
            ));
        }
        let op = obj.get("op").and_then(Value::as_str).unwrap_or("");
        if !matches!(op, "add" | "replace" | "remove") {
            return Err(format!(
                "Schema error for patch: '{op}' is not one of ['add', 'replace', 'remove']"
            ));
        }
        let Some(raw_path) = obj.get("path").and_then(Value::as_str) else {
            return Err("Schema error for patch: 'path' is a required string property".into());
        };
        let path = split_pointer(raw_path)
            .filter(|p| !p.is_empty() && !p[0].is_empty())
            .ok_or_else(|| {
                format!("Invalid patch path '{raw_path}': it must look like /field or /field/key")
            })?;
        if !writable.contains(&path[0].as_str()) {
            return Err(format!(
                "Cannot patch {raw_path}. Only the following can be updated: {}",
                writable.join(", ")
            ));
        }
        let value = obj.get("value").cloned();
        if op != "remove" && value.is_none() {
            return Err(format!(
                "Schema error for patch: '{op}' on {raw_path} needs a 'value'"
            ));
        }
        ops.push(Op {
            op: op.to_string(),
            path,
            raw_path: raw_path.to_string(),
            value,
        });
    }
    Ok(ops)
}

fn split_pointer(p: &str) -> Option<Vec<String>> {
    let rest = p.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Applies `ops` to `doc` in order. A top-level `remove` sets the field to null (the caller
/// maps null to the field's default).
pub fn apply(doc: &mut Map<String, Value>, ops: &[Op]) -> Result<(), String> {
    for op in ops {
        apply_one(doc, op).map_err(|reason| {
            let mut shown = format!("{{'op': '{}', 'path': '{}'", op.op, op.raw_path);
            if let Some(v) = &op.value {
                shown.push_str(&format!(", 'value': {v}"));
            }
            shown.push('}');
            format!("Couldn't apply patch '{shown}'. Reason: {reason}")
        })?;
    }
    Ok(())
}

fn apply_one(doc: &mut Map<String, Value>, op: &Op) -> Result<(), String> {
    let (last, parents) = op
        .path
        .split_last()
        .expect("parse ensures a non-empty path");
    if parents.is_empty() {
        match op.op.as_str() {
            "remove" => {
                doc.insert(last.clone(), Value::Null);
            }
            _ => {
                doc.insert(last.clone(), op.value.clone().unwrap_or(Value::Null));
            }
        }
        return Ok(());
    }
    let mut cur: &mut Value = doc
        .get_mut(&parents[0])
        .ok_or_else(|| format!("member '{}' not found", parents[0]))?;
    for seg in &parents[1..] {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(seg)
                .ok_or_else(|| format!("member '{seg}' not found"))?,
            Value::Array(items) => {
                let i = index(seg, items.len(), false)?;
                &mut items[i]
            }
            _ => return Err(format!("'{seg}' is not inside an object")),
        };
    }
    if cur.is_null() {
        *cur = Value::Object(Map::new());
    }
    let value = || op.value.clone().unwrap_or(Value::Null);
    match cur {
        Value::Object(target) => match op.op.as_str() {
            "add" => {
                target.insert(last.clone(), value());
            }
            "replace" => {
                if !target.contains_key(last) {
                    return Err(format!("can't replace a non-existent object '{last}'"));
                }
                target.insert(last.clone(), value());
            }
            _ => {
                if target.remove(last).is_none() {
                    return Err(format!("can't remove a non-existent object '{last}'"));
                }
            }
        },
        Value::Array(items) => match op.op.as_str() {
            "add" => {
                let i = index(last, items.len(), true)?;
                items.insert(i, value());
            }
            "replace" => {
                let i = index(last, items.len(), false)?;
                items[i] = value();
            }
            _ => {
                let i = index(last, items.len(), false)?;
                items.remove(i);
            }
        },
        _ => {
            return Err(format!(
                "the parent of '{last}' is not an object or a list and cannot hold members"
            ))
        }
    }
    Ok(())
}

/// A list index from a pointer segment: a number below `len` (or equal, or `-`, when adding).
fn index(seg: &str, len: usize, adding: bool) -> Result<usize, String> {
    if adding && seg == "-" {
        return Ok(len);
    }
    let i: usize = seg
        .parse()
        .map_err(|_| format!("'{seg}' is not a valid list index"))?;
    if i < len || (adding && i == len) {
        Ok(i)
    } else {
        Err(format!("can't reach index {i} of a list of {len}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const W: &[&str] = &["name", "extra", "instance_info"];

    fn run(doc: Value, patch: Value) -> Result<Value, String> {
        let ops = parse(&patch, W)?;
        let mut m = doc.as_object().unwrap().clone();
        apply(&mut m, &ops)?;
        Ok(Value::Object(m))
    }

    #[test]
    fn add_replace_remove_nested_and_top_level() {
        let doc = json!({"name": "a", "extra": {"k": 1}, "instance_info": {}});
        let out = run(
            doc,
            json!([
                {"op": "replace", "path": "/name", "value": "b"},
                {"op": "add", "path": "/instance_info/boot_iso", "value": "http://x/y.iso"},
                {"op": "add", "path": "/extra/a~1b", "value": {"deep": true}},
                {"op": "add", "path": "/extra/a~1b/deeper", "value": 2},
                {"op": "remove", "path": "/extra/k"},
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"name": "b", "extra": {"a/b": {"deep": true, "deeper": 2}}, "instance_info": {"boot_iso": "http://x/y.iso"}})
        );
        let out = run(
            json!({"name": "a"}),
            json!([{"op": "remove", "path": "/name"}]),
        )
        .unwrap();
        assert_eq!(out, json!({"name": null}));
    }

    #[test]
    fn escapes_decode_in_rfc_6901_order() {
        // 1.98: keys holding ~ or / are reachable; "~01" is the key "~1", not "/".
        let out = run(
            json!({"name": "a", "extra": {}, "instance_info": {}}),
            json!([
                {"op": "add", "path": "/extra/~01", "value": 1},
                {"op": "add", "path": "/extra/a~0b~1c", "value": 2},
            ]),
        )
        .unwrap();
        assert_eq!(out["extra"], json!({"~1": 1, "a~b/c": 2}));
        assert!(run(
            json!({"name": "a"}),
            json!([{"op": "add", "path": "/na~1me", "value": 1}])
        )
        .unwrap_err()
        .contains("Cannot patch"));
    }

    #[test]
    fn lists_by_index() {
        let steps = json!({"name": "a", "extra": {"l": [1, 2]}, "instance_info": {}});
        let out = run(
            steps.clone(),
            json!([
                {"op": "add", "path": "/extra/l/1", "value": 9},
                {"op": "add", "path": "/extra/l/-", "value": 7},
                {"op": "replace", "path": "/extra/l/0", "value": 0},
                {"op": "remove", "path": "/extra/l/2"},
            ]),
        )
        .unwrap();
        assert_eq!(out["extra"]["l"], json!([0, 9, 7]));
        let e = run(steps, json!([{"op": "remove", "path": "/extra/l/5"}])).unwrap_err();
        assert!(e.contains("can't reach index 5 of a list of 2"), "{e}");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let doc = json!({"name": "a", "extra": {}, "instance_info": {}});
        let e = run(doc.clone(), json!([{"op": "frobnicate", "path": "/name"}])).unwrap_err();
        assert_eq!(
            e,
            "Schema error for patch: 'frobnicate' is not one of ['add', 'replace', 'remove']"
        );
        let e = run(
            doc.clone(),
            json!([{"op": "add", "path": "/nope", "value": 1}]),
        )
        .unwrap_err();
        assert!(
            e.starts_with("Cannot patch /nope. Only the following can be updated: name, extra"),
            "{e}"
        );
        let e = run(
            doc.clone(),
            json!([{"op": "remove", "path": "/extra/nope"}]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Couldn't apply patch '{'op': 'remove', 'path': '/extra/nope'}'. Reason: can't remove a non-existent object 'nope'"
        );
        let e = run(
            doc.clone(),
            json!([{"op": "replace", "path": "/extra/x", "value": 1}]),
        )
        .unwrap_err();
        assert!(e.contains("can't replace a non-existent object 'x'"), "{e}");
        let e = run(doc.clone(), json!({"op": "add"})).unwrap_err();
        assert!(e.contains("JSON array"), "{e}");
        let e = run(doc.clone(), json!([{"op": "add", "path": "/name"}])).unwrap_err();
        assert!(e.contains("needs a 'value'"), "{e}");
        let e = run(doc, json!([{"op": "add", "path": "name", "value": 1}])).unwrap_err();
        assert!(e.contains("Invalid patch path"), "{e}");
    }
}
