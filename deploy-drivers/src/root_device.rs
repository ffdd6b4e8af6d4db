//! The root device: Ironic's `root_device` hints matched against the agent's inventory, else
//! the default choice (pure, table-tested).
//!
//! Hints (Ironic's names): `name`, `size` (GiB), `serial`, `wwn`, `model`, `vendor`,
//! `rotational`, `hctl`, `by_path`. Every hint given must match. A value may start with one of
//! Ironic's operators: for `size`, `==` (the default), `!=`, `>=`, `<=`, `>`, `<`; for strings,
//! `s==` (the default), `s!=`, `s>=`, `s<=`, `s>`, `s<`, `<in>` (substring) and `<or>`
//! (alternatives: `<or> a <or> b`). Strings compare case-insensitively, as Ironic normalises
//! them; `name` gets `/dev/` and `by_path` `/dev/disk/by-path/` when given without.
//!
//! Without hints the choice is Ironic's agent's: the smallest non-removable disk of at least
//! 4 GiB. A disk's size compares in whole GiB (rounded down), as Ironic's agent does.
//!
//! Spec: ironic-lib `parse_root_device_hints` / `match_root_device_hints`.

use serde_json::{Map, Value};

use crate::ports::InventoryDisk;

const GIB: u64 = 1 << 30;
/// The smallest disk the default choice takes (Ironic's agent: 4 GiB).
pub const MIN_DEFAULT_DISK: u64 = 4 * GIB;

/// The hint names Ironic accepts that ironcast matches.
pub const HINTS: &[&str] = &[
    "name",
    "size",
    "serial",
    "wwn",
    "model",
    "vendor",
    "rotational",
    "hctl",
    "by_path",
];

/// Why hints cannot be used or no disk fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootDeviceError {
    #[error("root_device hint {0:?} is unknown: use {hints}", hints = HINTS.join(", "))]
    UnknownHint(String),
    #[error("root_device hint {hint} = {value} is not valid: {why}")]
    BadValue {
        hint: String,
        value: String,
        why: String,
    },
    #[error("root_device must be a JSON object of hints such as {{\"size\": \">= 20\"}}, not {0}")]
    NotAnObject(String),
    #[error("no disk matches the root_device hints {hints}; the agent found: {found}")]
    NoMatch { hints: String, found: String },
    #[error("no disk of at least 4 GiB that is not removable; the agent found: {0}. Give root_device hints")]
    NoDefault(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

impl Op {
    fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Ge => a >= b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Lt => a < b,
        }
    }
}

/// One parsed hint.
#[derive(Debug, Clone, PartialEq)]
enum Hint {
    /// `size` in GiB.
    Size(Op, u64),
    Rotational(bool),
    Text {
        field: String,
        test: TextTest,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum TextTest {
    Cmp(Op, String),
    Contains(String),
    AnyOf(Vec<String>),
}

/// Parsed `root_device` hints, all of which a disk must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    list: Vec<Hint>,
    /// The hints as given, for messages.
    source: String,
}

impl Hints {
    /// Parses the `root_device` value (a JSON object) of properties or instance_info.
    pub fn parse(value: &Value) -> Result<Hints, RootDeviceError> {
        let map: &Map<String, Value> = value
            .as_object()
            .ok_or_else(|| RootDeviceError::NotAnObject(value.to_string()))?;
        let mut out = Vec::new();
        for (key, v) in map {
            let bad = |why: &str| RootDeviceError::BadValue {
                hint: key.clone(),
                value: v.to_string(),
                why: why.to_string(),
            };
            let hint = match key.as_str() {
                "size" => {
                    let (op, n) = match v {
                        Value::Number(n) => (Op::Eq, n.as_u64()),
                        Value::String(s) => {
                            let (op, rest) = split_op(s, &["==", "!=", ">=", "<=", ">", "<"]);
                            (op.unwrap_or(Op::Eq), rest.trim().parse().ok())
                        }
                        _ => (Op::Eq, None),
                    };
                    let n = n.ok_or_else(|| {
                        bad("give a whole number of GiB, optionally after ==, !=, >=, <=, > or <")
                    })?;
                    Hint::Size(op, n)
                }
                "rotational" => Hint::Rotational(match v {
                    Value::Bool(b) => *b,
                    Value::String(s) => parse_bool(s).ok_or_else(|| bad("use true or false"))?,
                    Value::Number(n) if n.as_u64() == Some(0) => false,
                    Value::Number(n) if n.as_u64() == Some(1) => true,
                    _ => return Err(bad("use true or false")),
                }),
                "name" | "serial" | "wwn" | "model" | "vendor" | "hctl" | "by_path" => {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return Err(bad("give a string")),
                    };
                    Hint::Text {
                        field: key.clone(),
                        test: parse_text(key, &s).ok_or_else(|| bad("the value is empty"))?,
                    }
                }
                other => return Err(RootDeviceError::UnknownHint(other.to_string())),
            };
            out.push(hint);
        }
        Ok(Hints {
            list: out,
            source: value.to_string(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The disk size these hints pin exactly (`size` with `==`), in bytes.
    pub fn exact_size(&self) -> Option<u64> {
        self.list.iter().find_map(|h| match h {
            Hint::Size(Op::Eq, gib) => gib.checked_mul(GIB),
            _ => None,
        })
    }

    /// Whether `disk` matches every hint.
    pub fn matches(&self, disk: &InventoryDisk) -> bool {
        self.list.iter().all(|h| match h {
            Hint::Size(op, gib) => op.holds(disk.size / GIB, *gib),
            Hint::Rotational(want) => disk.rotational == *want,
            Hint::Text { field, test } => {
                let value = match field.as_str() {
                    "name" => Some(disk.name.as_str()),
                    "serial" => disk.serial.as_deref(),
                    "wwn" => disk.wwn.as_deref(),
                    "model" => disk.model.as_deref(),
                    "vendor" => disk.vendor.as_deref(),
                    "hctl" => disk.hctl.as_deref(),
                    "by_path" => disk.by_path.as_deref(),
                    _ => None,
                };
                value.is_some_and(|v| test.holds(&normalise(field, v)))
            }
        })
    }
}

/// Picks the root disk: the first disk (in inventory order) matching `hints`, else with no
/// hints the smallest non-removable disk of at least 4 GiB.
pub fn choose<'a>(
    hints: &Hints,
    disks: &'a [InventoryDisk],
) -> Result<&'a InventoryDisk, RootDeviceError> {
    let found = || {
        let list: Vec<String> = disks
            .iter()
            .map(|d| format!("{} ({} bytes)", d.name, d.size))
            .collect();
        if list.is_empty() {
            "no disks".to_string()
        } else {
            list.join(", ")
        }
    };
    if !hints.is_empty() {
        return disks
            .iter()
            .find(|d| hints.matches(d))
            .ok_or_else(|| RootDeviceError::NoMatch {
                hints: hints.source.clone(),
                found: found(),
            });
    }
    disks
        .iter()
        .filter(|d| !d.removable && d.size >= MIN_DEFAULT_DISK)
        .min_by_key(|d| d.size)
        .ok_or_else(|| RootDeviceError::NoDefault(found()))
}

fn split_op<'a>(s: &'a str, ops: &[&str]) -> (Option<Op>, &'a str) {
    let t = s.trim_start();
    for op in ops {
        if let Some(rest) = t.strip_prefix(op) {
            let op = match op.trim_start_matches('s') {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                ">=" => Op::Ge,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Lt,
            };
            return (Some(op), rest);
        }
    }
    (None, t)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_text(field: &str, s: &str) -> Option<TextTest> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix("<or>") {
        let alts: Vec<String> = rest
            .split("<or>")
            .map(|a| normalise(field, a.trim()))
            .filter(|a| !a.is_empty())
            .collect();
        return (!alts.is_empty()).then_some(TextTest::AnyOf(alts));
    }
    if let Some(rest) = t.strip_prefix("<in>") {
        let needle = rest.trim().to_lowercase();
        return (!needle.is_empty()).then_some(TextTest::Contains(needle));
    }
    let (op, rest) = split_op(t, &["s==", "s!=", "s>=", "s<=", "s>", "s<"]);
    let value = normalise(field, rest.trim());
    (!value.is_empty()).then_some(TextTest::Cmp(op.unwrap_or(Op::Eq), value))
}

/// Ironic's normalisation: lower case, and full device paths for `name` and `by_path`.
fn normalise(field: &str, v: &str) -> String {
    let v = v.trim().to_lowercase();
    if v.is_empty() {
        return v;
    }
    match field {
        "name" if !v.starts_with("/dev/") => format!("/dev/{v}"),
        "by_path" if !v.starts_with("/dev/disk/by-path/") => format!("/dev/disk/by-path/{v}"),
        _ => v,
    }
}

impl TextTest {
    fn holds(&self, value: &str) -> bool {
        match self {
            TextTest::Cmp(op, want) => op.holds(value, want.as_str()),
            TextTest::Contains(needle) => value.contains(needle.as_str()),
            TextTest::AnyOf(alts) => alts.iter().any(|a| a == value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn disk(name: &str, gib: u64) -> InventoryDisk {
        InventoryDisk {
            name: name.into(),
            size: gib * GIB,
            ..InventoryDisk::default()
        }
    }

    fn disks() -> Vec<InventoryDisk> {
        vec![
            InventoryDisk {
                removable: true,
                ..disk("/dev/sdz", 8)
            },
            InventoryDisk {
                serial: Some("S123".into()),
                model: Some("Samsung SSD 860".into()),
                vendor: Some("ATA".into()),
                wwn: Some("0x5002538e4000aaaa".into()),
                hctl: Some("0:0:0:0".into()),
                by_path: Some("/dev/disk/by-path/pci-0000:00:1f.2-ata-1".into()),
                ..disk("/dev/sda", 500)
            },
            InventoryDisk {
                rotational: true,
                model: Some("WDC WD40".into()),
                ..disk("/dev/sdb", 4000)
            },
            disk("/dev/vda", 20),
            disk("/dev/vdb", 2),
        ]
    }

    #[test]
    fn hints_choose_the_first_matching_disk() {
        let cases = [
            (json!({"name": "/dev/sdb"}), "/dev/sdb"),
            (json!({"name": "sda"}), "/dev/sda"),
            (json!({"size": 20}), "/dev/vda"),
            (json!({"size": "20"}), "/dev/vda"),
            (json!({"size": ">= 100"}), "/dev/sda"),
            (json!({"size": "> 500"}), "/dev/sdb"),
            (json!({"size": "< 4"}), "/dev/vdb"),
            (json!({"size": "!= 8"}), "/dev/sda"),
            (json!({"serial": "s123"}), "/dev/sda"),
            (json!({"model": "<in> wdc"}), "/dev/sdb"),
            (json!({"model": "s== WDC WD40"}), "/dev/sdb"),
            (json!({"vendor": "ata", "size": "<= 600"}), "/dev/sda"),
            (json!({"wwn": "0x5002538E4000AAAA"}), "/dev/sda"),
            (json!({"rotational": true}), "/dev/sdb"),
            (json!({"rotational": "false", "size": 20}), "/dev/vda"),
            (json!({"hctl": "0:0:0:0"}), "/dev/sda"),
            (json!({"by_path": "pci-0000:00:1f.2-ata-1"}), "/dev/sda"),
            (json!({"name": "<or> /dev/vdx <or> /dev/vda"}), "/dev/vda"),
        ];
        let d = disks();
        for (hints, want) in cases {
            let h = Hints::parse(&hints).unwrap_or_else(|e| panic!("{hints}: {e}"));
            assert_eq!(choose(&h, &d).map(|d| d.name.as_str()), Ok(want), "{hints}");
        }
    }

    #[test]
    fn without_hints_the_smallest_fixed_disk_of_4_gib_or_more() {
        let d = disks();
        assert_eq!(choose(&Hints::default(), &d).unwrap().name, "/dev/vda");
        let small = vec![disk("/dev/vdb", 2)];
        let err = choose(&Hints::default(), &small).unwrap_err();
        assert!(
            err.to_string().contains("/dev/vdb (2147483648 bytes)"),
            "{err}"
        );
    }

    #[test]
    fn bad_hints_and_no_match_say_why() {
        let cases = [
            (json!({"colour": "red"}), "hint \"colour\" is unknown"),
            (json!({"size": "big"}), "whole number of GiB"),
            (json!({"size": true}), "whole number of GiB"),
            (json!({"rotational": "maybe"}), "true or false"),
            (json!({"serial": ""}), "empty"),
            (json!({"model": ["x"]}), "give a string"),
            (json!("sda"), "JSON object"),
        ];
        for (hints, want) in cases {
            let err = Hints::parse(&hints).unwrap_err().to_string();
            assert!(err.contains(want), "{hints}: {err}");
        }
        let h = Hints::parse(&json!({"serial": "nope"})).unwrap();
        let err = choose(&h, &disks()).unwrap_err().to_string();
        assert!(
            err.contains("no disk matches") && err.contains("/dev/sda (536870912000 bytes)"),
            "{err}"
        );
    }

    #[test]
    fn exact_size_is_known_only_for_equality() {
        assert_eq!(
            Hints::parse(&json!({"size": 10})).unwrap().exact_size(),
            Some(10 * GIB)
        );
        assert_eq!(
            Hints::parse(&json!({"size": ">= 10"}))
                .unwrap()
                .exact_size(),
            None
        );
    }
}
