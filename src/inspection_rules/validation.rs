//! A rule as Ironic checks it before storing: its JSON schema (`create_request_body`), then
//! `validate_rule` (phase, priority range, each operator's and action's arguments). Messages
//! are jsonschema's and Ironic's words.

use serde_json::{Map, Value};

use super::args::{self, Signature};

/// The phases rules run in (Ironic's InspectionPhase).
pub const PHASES: &[&str] = &["main"];

const FIELDS: &[&str] = &[
    "actions",
    "conditions",
    "description",
    "phase",
    "priority",
    "sensitive",
    "uuid",
];

/// Checks a rule document; `built_in` rules (from the operator's file) may use any priority.
pub fn validate(rule: &Value, built_in: bool) -> Result<(), String> {
    schema(rule).map_err(|e| format!("Schema error: {e}"))?;
    let rule = rule.as_object().ok_or("not an object")?;
    let mut errors = Vec::new();
    match rule.get("phase") {
        None => {}
        Some(Value::String(p)) if PHASES.contains(&p.as_str()) => {}
        Some(p) => errors.push(format!(
            "Invalid phase: {}. Valid phases are: {}",
            super::pyformat::py_str(p, false),
            PHASES.join(", ")
        )),
    }
    let priority = rule.get("priority").and_then(Value::as_i64).unwrap_or(0);
    if priority < 0 && !built_in {
        errors.push("Priority cannot be negative for user-defined rules.".into());
    }
    if priority > 9999 && !built_in {
        errors.push("Priority must be between 0 and 9999 for user-defined rules.".into());
    }
    let plugin = |kind: &str, sig: Option<&Signature>, op: &str, item: &Value| {
        let sig = sig.ok_or_else(|| format!("Unsupported {kind} operator: {op}"))?;
        sig.validate(item.get("args").unwrap_or(&Value::Object(Map::new())))
            .map_err(|e| format!("Invalid parameters for {kind} operator {op}: {e}"))
    };
    for c in list(rule, "conditions") {
        let op = c.get("op").and_then(Value::as_str).unwrap_or("");
        let result = args::parse_inverted(op)
            .and_then(|(name, _)| plugin("condition", args::find(args::OPERATORS, name), name, c));
        errors.extend(result.err());
    }
    for a in list(rule, "actions") {
        let op = a.get("op").and_then(Value::as_str).unwrap_or("");
        errors.extend(plugin("action", args::find(args::ACTIONS, op), op, a).err());
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!(
            "Multiple validation errors occurred: {}",
            errors.join("; ")
        )),
    }
}

fn list<'a>(rule: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    rule.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Python's repr of a JSON value, as jsonschema's messages quote instances.
fn r(v: &Value) -> String {
    super::pyformat::py_repr(v, false)
}

fn one_of(v: &Value, allowed: &[String]) -> Result<(), String> {
    if v.as_str().is_some_and(|s| allowed.iter().any(|a| a == s)) {
        return Ok(());
    }
    let shown: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    Err(format!("{} is not one of [{}]", r(v), shown.join(", ")))
}

fn array_or_object(v: &Value) -> Result<(), String> {
    if v.is_array() || v.is_object() {
        Ok(())
    } else {
        Err(format!("{} is not of type 'array', 'object'", r(v)))
    }
}

fn string_or_null(v: &Value, max: Option<usize>) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) if max.is_some_and(|m| s.chars().count() > m) => {
            Err(format!("{} is too long", r(v)))
        }
        Value::String(_) => Ok(()),
        other => Err(format!("{} is not of type 'string', 'null'", r(other))),
    }
}

/// Ironic's `create_request_body` schema, checked in its order of keywords.
fn schema(rule: &Value) -> Result<(), String> {
    let obj = rule
        .as_object()
        .ok_or_else(|| format!("{} is not of type 'object'", r(rule)))?;
    if let Some(bad) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "Additional properties are not allowed ('{bad}' was unexpected)"
        ));
    }
    if !obj.contains_key("actions") {
        return Err("'actions' is a required property".into());
    }
    let ops = |table: &[Signature], inverted: bool| -> Vec<String> {
        let mut v: Vec<String> = table.iter().map(|s| s.op.to_string()).collect();
        if inverted {
            v.extend(table.iter().map(|s| format!("!{}", s.op)));
        }
        v
    };
    for (key, value) in obj {
        match key.as_str() {
            "actions" | "conditions" => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("{} is not of type 'array'", r(value)))?;
                if key == "actions" && items.is_empty() {
                    return Err("[] should be non-empty".into());
                }
                let allowed = if key == "actions" {
                    ops(args::ACTIONS, false)
                } else {
                    ops(args::OPERATORS, true)
                };
                for item in items {
                    let m = item
                        .as_object()
                        .ok_or_else(|| format!("{} is not of type 'object'", r(item)))?;
                    for required in ["op", "args"] {
                        if !m.contains_key(required) {
                            return Err(format!("'{required}' is a required property"));
                        }
                    }
                    one_of(&m["op"], &allowed)?;
                    array_or_object(&m["args"])?;
                    if let Some(l) = m.get("loop") {
                        array_or_object(l)?;
                    }
                    if let (Some(mult), "conditions") = (m.get("multiple"), key.as_str()) {
                        let modes: Vec<String> =
                            ["any", "all", "first", "last"].map(String::from).to_vec();
                        one_of(mult, &modes)?;
                    }
                }
            }
            "description" => string_or_null(value, Some(255))?,
            "phase" => string_or_null(value, Some(16))?,
            "uuid" => string_or_null(value, None)?,
            "priority" => match value.as_i64() {
                Some(p) if p < 0 => return Err(format!("{p} is less than the minimum of 0")),
                Some(_) => {}
                None => return Err(format!("{} is not of type 'integer'", r(value))),
            },
            "sensitive" if !matches!(value, Value::Bool(_) | Value::Null) => {
                return Err(format!("{} is not of type 'boolean', 'null'", r(value)));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(extra: Value) -> Value {
        let mut r = json!({"actions": [{"op": "log", "args": {"msg": "hi"}}]});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    }

    #[test]
    fn refuses_what_ironic_refuses() {
        assert!(validate(&rule(json!({})), false).is_ok());
        assert!(validate(
            &rule(json!({"priority": 9999, "phase": "main", "sensitive": true})),
            false
        )
        .is_ok());
        let err = |r: Value| validate(&r, false).unwrap_err();
        assert_eq!(
            err(rule(json!({"priority": -1}))),
            "Schema error: -1 is less than the minimum of 0"
        );
        assert_eq!(
            err(rule(json!({"priority": 5000.5}))),
            "Schema error: 5000.5 is not of type 'integer'"
        );
        assert_eq!(
            err(rule(json!({"priority": 10000}))),
            "Priority must be between 0 and 9999 for user-defined rules."
        );
        assert!(validate(&rule(json!({"priority": 10000})), true).is_ok());
        assert_eq!(
            err(rule(json!({"phase": "late"}))),
            "Invalid phase: late. Valid phases are: main"
        );
        assert_eq!(
            err(json!({"actions": []})),
            "Schema error: [] should be non-empty"
        );
        assert_eq!(
            err(json!({})),
            "Schema error: 'actions' is a required property"
        );
        assert!(err(rule(json!({"name": "x"}))).contains("('name' was unexpected)"));
        assert!(err(json!({"actions": [{"op": "boom", "args": {}}]}))
            .contains("'boom' is not one of ['fail', 'log'"));
        assert!(
            err(rule(json!({"conditions": [{"op": "eq", "args": "x"}]})))
                .contains("is not of type 'array', 'object'")
        );
        assert_eq!(
            err(json!({"actions": [{"op": "log", "args": {}}]})),
            "Invalid parameters for action operator log: missing required argument(s): msg"
        );
        assert_eq!(
            err(json!({"actions": [{"op": "log", "args": {"msg": "m", "colour": 1}}]})),
            "Invalid parameters for action operator log: unexpected argument(s): colour"
        );
        // Positional arguments, and the inverted operators.
        assert!(validate(
            &rule(json!({"conditions": [{"op": "!eq", "args": [[1, 1]]}]})),
            false
        )
        .is_ok());
        assert!(validate(
            &json!({"actions": [{"op": "set-attribute", "args": ["/properties/x", 1]}]}),
            false
        )
        .is_ok());
        assert!(
            err(json!({"actions": [{"op": "set-attribute", "args": ["/properties/x"]}]}))
                .contains("Missing: value")
        );
        assert!(validate(
            &json!({"actions": [{"op": "set-plugin-data", "args": {"path": "a.b", "value": 1}}]}),
            false
        )
        .is_ok());
    }
}
