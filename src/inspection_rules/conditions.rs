//! Condition operators, with Python's comparison semantics over JSON values (Ironic compares
//! the Python values its templates produce: a formatted field is always a string).

use std::cmp::Ordering;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::args::{self, Signature};
use super::pyformat::{py_str, Context};

/// Whether `condition` holds, looping over its `loop` items when it has any (`multiple`:
/// any, all, first or last decides).
pub fn check(condition: &Value, ctx: &Context) -> Result<bool, String> {
    let op = condition.get("op").and_then(Value::as_str).unwrap_or("");
    let (name, inverted) = args::parse_inverted(op)?;
    let sig = args::find(args::OPERATORS, name).ok_or_else(|| {
        format!(
            "Unsupported operator: '{name}'. Supported operators are: {}.",
            args::OPERATORS
                .iter()
                .map(|s| s.op)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let raw_args = condition
        .get("args")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let once = |item: Option<&Value>| -> Result<bool, String> {
        let ctx = Context {
            item,
            node: ctx.node,
            inventory: ctx.inventory,
            plugin_data: ctx.plugin_data,
            mask: ctx.mask,
        };
        let mut named = sig.prepare(&raw_args, &ctx)?;
        // In a loop interpolation turns numbers into strings: compare as strings throughout.
        if item.is_some() && sig.optional.contains(&"force_strings") {
            named.insert("force_strings".into(), Value::Bool(true));
        }
        let result = evaluate(sig, &named)?;
        Ok(result != inverted)
    };
    let multiple = condition
        .get("multiple")
        .and_then(Value::as_str)
        .unwrap_or("any");
    match condition.get("loop") {
        Some(Value::Object(m)) if !m.is_empty() => once(condition.get("loop")),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut results = Vec::new();
            for item in items {
                let r = once(Some(item))?;
                if multiple == "first" && r {
                    return Ok(true);
                }
                if multiple == "last" {
                    results.clear();
                }
                results.push(r);
            }
            Ok(match multiple {
                "any" => results.iter().any(|r| *r),
                "all" => results.iter().all(|r| *r),
                _ => results.first().copied().unwrap_or(false),
            })
        }
        _ => once(None),
    }
}

fn arg<'a>(named: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    named
        .get(name)
        .ok_or_else(|| format!("missing required argument(s): {name}"))
}

fn evaluate(sig: &Signature, a: &Map<String, Value>) -> Result<bool, String> {
    match sig.op {
        "eq" | "lt" | "gt" => compare_all(sig.op, a),
        "is-empty" => Ok(matches!(
            py_str(arg(a, "value")?, false).as_str(),
            "" | "None" | "[]" | "{}"
        )),
        "in-net" => in_net(arg(a, "address")?, arg(a, "subnet")?),
        "matches" | "contains" => {
            let regex = py_str(arg(a, "regex")?, false);
            let value = py_str(arg(a, "value")?, false);
            regex_check(sig.op == "matches", &regex, &value)
        }
        "one-of" => {
            let value = arg(a, "value")?;
            match a.get("values").unwrap_or(&Value::Array(Vec::new())) {
                Value::Array(items) => Ok(items.iter().any(|i| py_eq(value, i))),
                Value::String(s) => match value {
                    Value::String(v) => Ok(s.contains(v.as_str())),
                    _ => Err("'in <string>' requires string as left operand".into()),
                },
                Value::Object(m) => Ok(value.as_str().is_some_and(|k| m.contains_key(k))),
                other => Err(format!(
                    "argument of type '{}' is not iterable",
                    kind(other)
                )),
            }
        }
        "is-none" => Ok(arg(a, "value")?.is_null()),
        "is-true" => Ok(match arg(a, "value")? {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => matches!(s.to_lowercase().as_str(), "yes" | "true"),
            _ => false,
        }),
        "is-false" => Ok(match arg(a, "value")? {
            Value::Bool(b) => !*b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f == 0.0),
            Value::String(s) => matches!(s.to_lowercase().as_str(), "no" | "false"),
            Value::Null => true,
            _ => false,
        }),
        other => Err(format!("Unsupported operator '{other}'.")),
    }
}

/// eq, lt, gt over consecutive pairs of `values` (fewer than two: true).
fn compare_all(op: &str, a: &Map<String, Value>) -> Result<bool, String> {
    let values = arg(a, "values")?;
    let Value::Array(values) = values else {
        return Err(format!(
            "Inspection rule condition check failed. Reason: Failed to check condition: '{op}' on values: {}: Expected list for 'values', got: {}",
            py_str(values, false),
            kind(values)
        ));
    };
    let force = a.get("force_strings").is_some_and(truthy);
    let values: Vec<Value> = if force {
        values
            .iter()
            .map(|v| Value::String(py_str(v, false)))
            .collect()
    } else {
        values.clone()
    };
    for pair in values.windows(2) {
        let holds = match op {
            "eq" => py_eq(&pair[0], &pair[1]),
            "lt" => py_cmp(&pair[0], &pair[1], "<")? == Ordering::Less,
            _ => py_cmp(&pair[0], &pair[1], ">")? == Ordering::Greater,
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A number as Python sees it (bool is an int).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Python's `==`.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
            }
            _ => a == b,
        },
    }
}

/// Python's ordering of two values; a TypeError where Python has one.
fn py_cmp(a: &Value, b: &Value, sym: &str) -> Result<Ordering, String> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x
            .partial_cmp(&y)
            .ok_or_else(|| "cannot compare NaN".to_string());
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !py_eq(p, q) {
                    return py_cmp(p, q, sym);
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => Err(format!(
            "'{sym}' not supported between instances of '{}' and '{}'",
            kind(a),
            kind(b)
        )),
    }
}

fn regex_check(full: bool, pattern: &str, value: &str) -> Result<bool, String> {
    // Python's re.match anchors at the start; Ironic appends '$' unless the pattern ends so.
    let pattern = if full {
        let end = if pattern.ends_with('$') { "" } else { "$" };
        format!(r"\A(?:{pattern}{end})")
    } else {
        pattern.to_string()
    };
    let re = regex::Regex::new(&pattern).map_err(|e| {
        format!("Inspection rule execution failed. Reason: invalid regular expression: {e}")
    })?;
    Ok(re.is_match(value))
}

/// Whether `address` is in `subnet` (CIDR, or one address), as netaddr answers it.
fn in_net(address: &Value, subnet: &Value) -> Result<bool, String> {
    let subnet = py_str(subnet, false);
    let (net, prefix) = match subnet.split_once('/') {
        Some((n, p)) => (n, Some(p)),
        None => (subnet.as_str(), None),
    };
    let invalid = || {
        format!(
            "Inspection rule execution failed. Reason: invalid value: invalid IPNetwork {subnet}"
        )
    };
    let net: IpAddr = net.trim().parse().map_err(|_| invalid())?;
    let bits = if net.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        Some(p) => p
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(invalid)?,
        None => bits,
    };
    let address = py_str(address, false);
    let addr: IpAddr = address
        .trim()
        .parse()
        .map_err(|_| format!("failed to detect a valid IP address from '{address}'"))?;
    let to_bits = |ip: IpAddr| match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    if addr.is_ipv4() != net.is_ipv4() {
        return Ok(false);
    }
    let mask = if prefix == 0 {
        0
    } else {
        (u128::MAX << (bits - prefix))
            & if bits == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            }
    };
    Ok(to_bits(addr) & mask == to_bits(net) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(cond: Value, inventory: &Value) -> Result<bool, String> {
        let node = json!({"uuid": "u1"});
        let ctx = Context {
            node: node.as_object().unwrap(),
            inventory,
            plugin_data: &Value::Null,
            item: None,
            mask: true,
        };
        check(&cond, &ctx)
    }

    #[test]
    fn operators_as_ironic_evaluates_them() {
        let inv = json!({"cpu": {"count": 8, "architecture": "x86_64"}, "bmc_address": "192.168.1.7", "system": {"product_name": "p2"}});
        // A formatted field is a string: "8" is not 8, but is "8".
        assert!(!holds(
            json!({"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 8]}}),
            &inv
        )
        .unwrap());
        assert!(holds(
            json!({"op": "eq", "args": {"values": ["{inventory[cpu][count]}", "8"]}}),
            &inv
        )
        .unwrap());
        assert!(holds(
            json!({"op": "!eq", "args": {"values": ["{inventory[cpu][count]}", 8]}}),
            &inv
        )
        .unwrap());
        assert!(holds(json!({"op": "lt", "args": {"values": [1, 2, 3]}}), &inv).unwrap());
        assert!(holds(json!({"op": "gt", "args": [[3, 1]]}), &inv).is_ok_and(|b| b));
        // Python refuses to order a str and an int.
        assert!(holds(
            json!({"op": "gt", "args": {"values": ["{inventory[cpu][count]}", 4]}}),
            &inv
        )
        .unwrap_err()
        .contains("not supported between"));
        assert!(holds(json!({"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "192.168.0.0/16"}}), &inv).unwrap());
        assert!(!holds(json!({"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "10.0.0.0/8"}}), &inv).unwrap());
        assert!(holds(json!({"op": "matches", "args": {"value": "{inventory[cpu][architecture]}", "regex": "x86.*"}}), &inv).unwrap());
        assert!(!holds(json!({"op": "matches", "args": {"value": "{inventory[cpu][architecture]}", "regex": "86"}}), &inv).unwrap());
        assert!(holds(json!({"op": "contains", "args": {"value": "{inventory[cpu][architecture]}", "regex": "86"}}), &inv).unwrap());
        assert!(holds(json!({"op": "one-of", "args": {"value": "{inventory[cpu][architecture]}", "values": ["aarch64", "x86_64"]}}), &inv).unwrap());
        assert!(holds(
            json!({"op": "is-empty", "args": {"value": "{inventory[missing]}"}}),
            &inv
        )
        .unwrap());
        assert!(!holds(
            json!({"op": "is-empty", "args": {"value": "{inventory[cpu]}"}}),
            &inv
        )
        .unwrap());
        assert!(holds(json!({"op": "is-true", "args": {"value": "True"}}), &inv).unwrap());
        assert!(holds(json!({"op": "is-false", "args": {"value": null}}), &inv).unwrap());
        assert!(holds(json!({"op": "is-none", "args": {"value": null}}), &inv).unwrap());
    }

    #[test]
    fn loops_compare_as_strings_and_combine_by_multiple() {
        let inv = json!({"system": {"product_name": "p2"}, "cpu": {"count": 8}});
        let looped = |multiple: &str, items: Value| json!({"op": "eq", "args": ["{inventory[system][product_name]}", "{item}"], "loop": items, "multiple": multiple});
        // List args: `values` takes the first item, so the loop compares a one-item list.
        let with_values = |multiple: &str, items: Value| json!({"op": "eq", "args": {"values": ["{inventory[system][product_name]}", "{item}"]}, "loop": items, "multiple": multiple});
        assert!(holds(with_values("any", json!(["p1", "p2", "p3"])), &inv).unwrap());
        assert!(!holds(with_values("all", json!(["p1", "p2"])), &inv).unwrap());
        assert!(holds(with_values("last", json!(["p1", "p2"])), &inv).unwrap());
        assert!(!holds(with_values("first", json!(["p1", "p3"])), &inv).unwrap());
        // force_strings in a loop: the count 8 and the item 8 compare equal as "8".
        let count = json!({"op": "eq", "args": {"values": ["{inventory[cpu][count]}", "{item}"]}, "loop": [8]});
        assert!(holds(count, &inv).unwrap());
        // The positional form takes the first item as `values`: a string, which fails.
        assert!(holds(looped("any", json!(["p1"])), &inv).is_err());
    }
}
