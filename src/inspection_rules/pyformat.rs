//! The subset of Python's `str.format` Ironic's rule arguments use (`"{node.uuid}"`,
//! `"{inventory[cpu][count]}"`, `"{item[path]}"`, `{{`/`}}`), over JSON values, with Python's
//! `str()` and `repr()` of them. A field that does not resolve is an error; the caller keeps
//! the text unchanged, as Ironic's `safe_format` does.
//!
//! Not supported (an error, so the text stays as written): conversions other than `!s`/`!r`,
//! format specs (`{x:>8}`), and positional fields (`{}`, `{0}`).

use serde_json::{Map, Value};

/// Keys whose values a masked view shows as `***` (Ironic's SENSITIVE_FIELDS).
pub const SENSITIVE_FIELDS: &[&str] = &["password", "auth_token", "bmc_password"];

/// What a field can name: the node (attributes or items), the inspection data (items only,
/// masked when `mask`), and the loop's `item`.
pub struct Context<'a> {
    pub node: &'a Map<String, Value>,
    pub inventory: &'a Value,
    pub plugin_data: &'a Value,
    pub item: Option<&'a Value>,
    pub mask: bool,
}

/// Why a field did not resolve; `Missing` is Python's KeyError (the `is-empty` operator reads
/// it as "no value").
#[derive(Debug, PartialEq)]
pub enum FormatError {
    Missing(String),
    Invalid(String),
}

/// Formats `template` as Python's `template.format(**context)`.
pub fn format(template: &str, ctx: &Context) -> Result<String, FormatError> {
    let mut out = String::new();
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(FormatError::Invalid("Single '}' encountered".into())),
            '{' => {
                let rest = &template[i + 1..];
                let end = field_end(rest).ok_or_else(|| {
                    FormatError::Invalid("expected '}' before end of string".into())
                })?;
                out.push_str(&render_field(&rest[..end], ctx)?);
                for _ in 0..rest[..end].chars().count() + 1 {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Where the replacement field opened just before `s` closes (brackets may hold any text).
fn field_end(s: &str) -> Option<usize> {
    let mut in_bracket = false;
    for (i, c) in s.char_indices() {
        match c {
            '[' => in_bracket = true,
            ']' => in_bracket = false,
            '}' if !in_bracket => return Some(i),
            '{' if !in_bracket => return None,
            _ => {}
        }
    }
    None
}

fn render_field(field: &str, ctx: &Context) -> Result<String, FormatError> {
    let invalid = |why: &str| FormatError::Invalid(format!("{why} in {{{field}}}"));
    let (name, conversion) = match field.split_once('!') {
        Some((n, c)) => (n, Some(c)),
        None => (field, None),
    };
    if name.contains(':') || conversion.is_some_and(|c| c.contains(':')) {
        return Err(invalid("format specs are not supported"));
    }
    let (value, masked) = resolve(name, ctx)?;
    match conversion {
        None | Some("s") => Ok(py_str(&value, masked)),
        Some("r") => Ok(py_repr(&value, masked)),
        Some(_) => Err(invalid("unknown conversion")),
    }
}

/// One step of a field name: `.attr` or `[key]`.
enum Step<'a> {
    Attr(&'a str),
    Item(&'a str),
}

fn steps(path: &str) -> Result<Vec<Step<'_>>, FormatError> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(FormatError::Invalid(
                    "Empty attribute in format string".into(),
                ));
            }
            out.push(Step::Attr(&r[..end]));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| FormatError::Invalid("Missing ']' in format string".into()))?;
            out.push(Step::Item(&r[..end]));
            rest = &r[end + 1..];
        } else {
            return Err(FormatError::Invalid(
                "Only '.' or '[' may follow ']' in format field specifier".into(),
            ));
        }
    }
    Ok(out)
}

/// The value a field name names, and whether it is read through a masked view.
fn resolve(name: &str, ctx: &Context) -> Result<(Value, bool), FormatError> {
    let root_end = name.find(['.', '[']).unwrap_or(name.len());
    let root = &name[..root_end];
    let node_doc = Value::Object(ctx.node.clone());
    let (mut current, mut masked, mut is_node) = match root {
        "node" => (&node_doc, false, true),
        "inventory" => (ctx.inventory, ctx.mask, false),
        "plugin_data" => (ctx.plugin_data, ctx.mask, false),
        "item" => match ctx.item {
            Some(v) => (v, false, false),
            None => return Err(FormatError::Missing(format!("'{root}'"))),
        },
        "" => {
            return Err(FormatError::Invalid(
                "positional fields are not supported".into(),
            ))
        }
        other => return Err(FormatError::Missing(format!("'{other}'"))),
    };
    let masked_value = Value::String("***".into());
    for step in steps(&name[root_end..])? {
        let next = match (step, current) {
            // The node is an object: its fields are attributes and items alike.
            (Step::Attr(a) | Step::Item(a), Value::Object(m)) if is_node => {
                m.get(a).ok_or_else(|| {
                    FormatError::Invalid(format!("'Node' object has no attribute '{a}'"))
                })?
            }
            (Step::Attr(a), v) => {
                return Err(FormatError::Invalid(format!(
                    "'{}' object has no attribute '{a}'",
                    py_type(v)
                )))
            }
            (Step::Item(k), Value::Object(m)) => {
                if masked && SENSITIVE_FIELDS.contains(&k) && m.contains_key(k) {
                    &masked_value
                } else {
                    m.get(k)
                        .ok_or_else(|| FormatError::Missing(format!("'{k}'")))?
                }
            }
            (Step::Item(k), Value::Array(items)) => {
                let i: usize = k.parse().map_err(|_| {
                    FormatError::Invalid("list indices must be integers or slices, not str".into())
                })?;
                items
                    .get(i)
                    .ok_or_else(|| FormatError::Invalid("list index out of range".into()))?
            }
            (Step::Item(_), v) => {
                return Err(FormatError::Invalid(format!(
                    "'{}' object is not subscriptable",
                    py_type(v)
                )))
            }
        };
        is_node = false;
        if std::ptr::eq(next, &masked_value) {
            masked = false;
        }
        current = next;
    }
    Ok((current.clone(), masked))
}

fn py_type(v: &Value) -> &'static str {
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

/// Python's `str()` of a JSON value (`True`, `None`, `{'a': [1, 'b']}`); `masked` shows
/// sensitive keys' values as `'***'`.
pub fn py_str(v: &Value, masked: bool) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other, masked),
    }
}

/// Python's `repr()` of a JSON value.
pub fn py_repr(v: &Value, masked: bool) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Value::String(s) => repr_str(s),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| py_repr(i, masked))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| {
                    let shown = if masked && SENSITIVE_FIELDS.contains(&k.as_str()) {
                        repr_str("***")
                    } else {
                        py_repr(v, masked)
                    };
                    format!("{}: {shown}", repr_str(k))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx<'a>(
        node: &'a Map<String, Value>,
        inv: &'a Value,
        item: Option<&'a Value>,
    ) -> Context<'a> {
        Context {
            node,
            inventory: inv,
            plugin_data: &Value::Null,
            item,
            mask: true,
        }
    }

    #[test]
    fn formats_as_python_does() {
        let node = json!({"uuid": "u1", "properties": {"cpu_arch": "x86_64"}});
        let node = node.as_object().unwrap();
        let inv = json!({"cpu": {"count": 8}, "bmc_address": "10.0.0.1", "bmc": {"password": "s3cret"}, "disks": [{"name": "sda"}]});
        let item = json!({"path": "/driver_info/x", "flag": true});
        let c = ctx(node, &inv, Some(&item));
        assert_eq!(format("Node {node.uuid}", &c).unwrap(), "Node u1");
        assert_eq!(format("{node[uuid]}", &c).unwrap(), "u1");
        assert_eq!(format("{node.properties[cpu_arch]}", &c).unwrap(), "x86_64");
        assert_eq!(format("{inventory[cpu][count]}", &c).unwrap(), "8");
        assert_eq!(format("{inventory[disks][0][name]}", &c).unwrap(), "sda");
        assert_eq!(format("{item[path]}", &c).unwrap(), "/driver_info/x");
        assert_eq!(format("{item[flag]}", &c).unwrap(), "True");
        assert_eq!(format("{{ literal }}", &c).unwrap(), "{ literal }");
        assert_eq!(format("{inventory[bmc][password]}", &c).unwrap(), "***");
        assert_eq!(
            format("{inventory[bmc]}", &c).unwrap(),
            "{'password': '***'}"
        );
        // Keys in sorted order (JSON objects here do not keep insertion order).
        assert_eq!(
            format("{item!r}", &c).unwrap(),
            "{'flag': True, 'path': '/driver_info/x'}"
        );
        // Python refuses attribute access on dicts and unknown names.
        assert!(matches!(
            format("{inventory.cpu.count}", &c),
            Err(FormatError::Invalid(_))
        ));
        assert!(matches!(
            format("{inventory[nope]}", &c),
            Err(FormatError::Missing(_))
        ));
        assert!(matches!(
            format("{other}", &c),
            Err(FormatError::Missing(_))
        ));
        assert!(format("{node.uuid:>8}", &c).is_err());
        assert!(format("a } b", &c).is_err());
        assert!(format("{unclosed", &c).is_err());
    }
}
