//! Each operator's and action's arguments as Ironic declares them (its `__call__` signature):
//! required and optional names, which are interpolated, and whether `plugin_data` is passed.
//! Arguments come as an object, or (deprecated in Ironic) as a list taken positionally.

use serde_json::{Map, Value};

use super::pyformat::{self, Context, FormatError};

/// One operator's or action's signature.
pub struct Signature {
    pub op: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    /// Arguments formatted with the context (every argument is, inside a loop).
    pub formatted: &'static [&'static str],
    /// The action works on plugin data (its signature names `plugin_data`).
    pub plugin_data: bool,
}

const fn sig(
    op: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
    formatted: &'static [&'static str],
) -> Signature {
    Signature {
        op,
        required,
        optional,
        formatted,
        plugin_data: false,
    }
}

const fn with_plugin_data(s: Signature) -> Signature {
    Signature {
        plugin_data: true,
        ..s
    }
}

/// Ironic's condition operators (`operators.OPERATORS`), each also usable inverted as `!op`.
pub const OPERATORS: &[Signature] = &[
    sig("eq", &["values"], &["force_strings"], &["values"]),
    sig("lt", &["values"], &["force_strings"], &["values"]),
    sig("gt", &["values"], &["force_strings"], &["values"]),
    sig("is-empty", &["value"], &[], &["value"]),
    sig(
        "in-net",
        &["address", "subnet"],
        &[],
        &["address", "subnet"],
    ),
    sig("matches", &["value", "regex"], &[], &["value"]),
    sig("contains", &["value", "regex"], &[], &["value"]),
    sig("one-of", &["value"], &["values"], &["value"]),
    sig("is-none", &["value"], &[], &["value"]),
    sig("is-true", &["value"], &[], &["value"]),
    sig("is-false", &["value"], &[], &["value"]),
];

/// Ironic's actions (`actions.ACTIONS`).
pub const ACTIONS: &[Signature] = &[
    sig("fail", &["msg"], &[], &[]),
    sig("log", &["msg"], &["level"], &["msg"]),
    sig("set-attribute", &["path", "value"], &[], &["value"]),
    sig(
        "extend-attribute",
        &["path", "value"],
        &["unique"],
        &["value"],
    ),
    sig("del-attribute", &["path"], &[], &[]),
    sig("set-capability", &["name", "value"], &[], &["value"]),
    sig("unset-capability", &["name"], &[], &[]),
    sig("add-trait", &["name"], &[], &[]),
    sig("remove-trait", &["name"], &[], &[]),
    with_plugin_data(sig("set-plugin-data", &["path", "value"], &[], &["value"])),
    with_plugin_data(sig(
        "extend-plugin-data",
        &["path", "value"],
        &["unique"],
        &["value"],
    )),
    with_plugin_data(sig("unset-plugin-data", &["path"], &[], &[])),
    sig(
        "set-port-attribute",
        &["port_id", "path", "value"],
        &[],
        &["value"],
    ),
    sig(
        "extend-port-attribute",
        &["port_id", "path", "value"],
        &["unique"],
        &["value"],
    ),
    sig("del-port-attribute", &["port_id", "path"], &[], &[]),
    sig(
        "api-call",
        &["url"],
        &["headers", "proxies", "timeout", "retries", "backoff_factor"],
        &["url"],
    ),
];

pub fn find(table: &'static [Signature], op: &str) -> Option<&'static Signature> {
    table.iter().find(|s| s.op == op)
}

/// `"!eq"` → ("eq", true), as Ironic's `parse_inverted_operator` (one `!` at most).
pub fn parse_inverted(op: &str) -> Result<(&str, bool), String> {
    let op = op.trim();
    if op.matches('!').count() > 1 {
        return Err("Multiple exclamation marks are not allowed. To apply the invert of an operation, simply add an exclamation mark (with an optional space) before the operator, e.g. eq - !eq.".into());
    }
    match op.strip_prefix('!') {
        Some(rest) => Ok((rest.trim_start_matches('!').trim(), true)),
        None => Ok((op, false)),
    }
}

impl Signature {
    /// The arguments by name: an object as given, a list taken positionally (required names
    /// first, then optional ones; extra items are dropped, as Ironic's `zip` drops them).
    pub fn named(&self, args: &Value) -> Result<Map<String, Value>, String> {
        match args {
            Value::Object(m) => Ok(m.clone()),
            Value::Array(items) => {
                if items.len() < self.required.len() {
                    return Err(format!(
                        "Not enough arguments provided. Missing: {}",
                        self.required[items.len()..].join(", ")
                    ));
                }
                Ok(self
                    .required
                    .iter()
                    .chain(self.optional)
                    .zip(items)
                    .map(|(name, v)| (name.to_string(), v.clone()))
                    .collect())
            }
            _ => Err("args must be either a list or dictionary".into()),
        }
    }

    /// Ironic's check at creation: every required argument given, none unknown.
    pub fn validate(&self, args: &Value) -> Result<(), String> {
        let named = self.named(args)?;
        let mut missing: Vec<&str> = self
            .required
            .iter()
            .copied()
            .filter(|r| !named.contains_key(*r))
            .collect();
        missing.sort_unstable();
        let mut unexpected: Vec<&str> = named
            .keys()
            .map(String::as_str)
            .filter(|k| {
                let known = self.required.contains(k)
                    || self.optional.contains(k)
                    || (self.plugin_data && *k == "plugin_data");
                !known
            })
            .collect();
        unexpected.sort_unstable();
        let mut msg = Vec::new();
        if !missing.is_empty() {
            msg.push(format!(
                "missing required argument(s): {}",
                missing.join(", ")
            ));
        }
        if !unexpected.is_empty() {
            msg.push(format!("unexpected argument(s): {}", unexpected.join(", ")));
        }
        if msg.is_empty() {
            Ok(())
        } else {
            Err(msg.join("; "))
        }
    }

    /// The arguments ready for the call: named, then interpolated where Ironic interpolates
    /// (the formatted ones; every one inside a loop). `op` is the operator's name, for the
    /// `is-empty` rule that a missing field reads as None.
    pub fn prepare(&self, args: &Value, ctx: &Context) -> Result<Map<String, Value>, String> {
        let named = self.named(args)?;
        let in_loop = ctx.item.is_some();
        Ok(named
            .into_iter()
            .map(|(k, v)| {
                let v = if in_loop || self.formatted.contains(&k.as_str()) {
                    interpolate(&v, ctx, self.op)
                } else {
                    v
                };
                (k, v)
            })
            .collect())
    }
}

/// Ironic's `interpolate_variables`: strings formatted (twice inside a loop, so a loop item
/// may itself hold a template), objects' keys and values, lists' items.
pub fn interpolate(value: &Value, ctx: &Context, op: &str) -> Value {
    let value = if ctx.item.is_some() {
        safe_format(value, ctx, op)
    } else {
        value.clone()
    };
    match &value {
        Value::String(_) => safe_format(&value, ctx, op),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match safe_format(&Value::String(k.clone()), ctx, op) {
                        Value::String(s) => s,
                        _ => k.clone(),
                    };
                    (key, interpolate(v, ctx, op))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| match v {
                    Value::String(_) => safe_format(v, ctx, op),
                    other => interpolate(other, ctx, op),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Formats a string value; on failure keeps it (logged), except that `is-empty` reads a
/// missing field as None.
fn safe_format(value: &Value, ctx: &Context, op: &str) -> Value {
    let Value::String(s) = value else {
        return value.clone();
    };
    match pyformat::format(s, ctx) {
        Ok(done) => Value::String(done),
        Err(FormatError::Missing(_)) if op == "is-empty" => Value::Null,
        Err(e) => {
            tracing::warn!(value = %s, error = ?e, "inspection rule: interpolation failed");
            value.clone()
        }
    }
}
