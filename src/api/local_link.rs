//! A port's `local_link_connection` (the switch port its NIC is cabled to) as Ironic's schema
//! has it, and the keys each microversion allows and shows: `network_type` from 1.64, the OVN
//! VTEP keys only from 1.90 to 1.104 (1.105 removed them again). Pure.

use serde_json::{Map, Value};

use super::ports::normalize_mac;
use super::version::Version;

const KEYS: &[&str] = &[
    "port_id",
    "switch_id",
    "hostname",
    "switch_info",
    "network_type",
    "vtep-logical-switch",
    "vtep-physical-switch",
];
const VTEP: &[&str] = &["vtep-logical-switch", "vtep-physical-switch"];
/// The key sets one of which a non-empty connection must hold (Ironic's `anyOf`).
const SHAPES: &[&[&str]] = &[
    &["port_id", "switch_id"],
    &["port_id", "hostname"],
    &["port_id", "vtep-logical-switch", "vtep-physical-switch"],
];

/// Whether `v` knows the OVN VTEP keys (Ironic's `allow_ovn_vtep_version`).
fn vtep_allowed(v: Version) -> bool {
    v >= Version(90) && v < Version(105)
}

/// Why a connection was refused: the key is newer (or older) than the version (406), or the
/// value breaks the schema (400).
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Version,
    Invalid(String),
}

/// Checks `llc` against Ironic's schema and the version, and normalises `switch_id` (a MAC
/// address in lower-case colon form, or a 16-hex-digit OpenFlow datapath id in lower case).
pub fn check(llc: &mut Map<String, Value>, v: Version) -> Result<(), Refusal> {
    if llc.contains_key("network_type") && v < Version(64) {
        return Err(Refusal::Version);
    }
    if llc.contains_key("vtep-logical-switch") && !vtep_allowed(v) {
        return Err(Refusal::Version);
    }
    if llc.is_empty() {
        return Ok(());
    }
    let invalid =
        |why: String| Refusal::Invalid(format!("Schema error for local_link_connection: {why}"));
    if let Some(k) = llc.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "additional property '{k}' is not allowed (allowed: {})",
            KEYS.join(", ")
        )));
    }
    if let Some((k, _)) = llc.iter().find(|(_, val)| !val.is_string()) {
        return Err(invalid(format!("'{k}' must be a string")));
    }
    let has = |k: &str| llc.contains_key(k);
    if has(VTEP[0]) != has(VTEP[1]) {
        return Err(invalid(
            "vtep-logical-switch and vtep-physical-switch go together".into(),
        ));
    }
    let network_type = llc.get("network_type").and_then(Value::as_str);
    if let Some(t) = network_type {
        if t != "managed" && t != "unmanaged" {
            return Err(invalid(format!(
                "network_type '{t}' is not one of ['managed', 'unmanaged']"
            )));
        }
    }
    let fits = SHAPES.iter().any(|shape| shape.iter().all(|k| has(k)))
        || network_type == Some("unmanaged");
    if !fits {
        return Err(invalid(
            "it needs port_id with switch_id (a switch), with hostname (a Smart NIC) or with \
             both vtep keys, or network_type 'unmanaged'"
                .into(),
        ));
    }
    if let Some(id) = llc.get("switch_id").and_then(Value::as_str) {
        let normal = normalize_switch_id(id).ok_or_else(|| {
            Refusal::Invalid(format!(
                "Expected a MAC address or OpenFlow datapath ID but received {id}."
            ))
        })?;
        llc.insert("switch_id".into(), Value::String(normal));
    }
    Ok(())
}

fn normalize_switch_id(id: &str) -> Option<String> {
    if let Ok(mac) = normalize_mac(id) {
        return Some(mac);
    }
    let datapath = id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit());
    datapath.then(|| id.to_ascii_lowercase())
}

/// Whether a Smart NIC port's connection names its port and host (Ironic's rule for
/// `is_smartnic`).
pub fn fits_smart_nic(llc: &Map<String, Value>) -> bool {
    llc.contains_key("port_id") && llc.contains_key("hostname")
}

/// The connection as version `v` shows it: one holding VTEP keys is shown empty where the
/// version does not know them (Ironic's `hide_fields_in_newer_versions`).
pub fn shown(llc: &Map<String, Value>, v: Version) -> Value {
    if !vtep_allowed(v) && VTEP.iter().any(|k| llc.contains_key(*k)) {
        return Value::Object(Map::new());
    }
    Value::Object(llc.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn switch_ids_are_normalised_or_refused() {
        let mut llc = map(json!({"port_id": "Eth1", "switch_id": "AA-BB-CC-DD-EE-FF"}));
        check(&mut llc, Version(95)).unwrap();
        assert_eq!(llc["switch_id"], "aa:bb:cc:dd:ee:ff");
        let mut dp = map(json!({"port_id": "p", "switch_id": "0123456789ABCDEF"}));
        check(&mut dp, Version(95)).unwrap();
        assert_eq!(dp["switch_id"], "0123456789abcdef");
        let mut bad = map(json!({"port_id": "p", "switch_id": "switch-1"}));
        let Err(Refusal::Invalid(why)) = check(&mut bad, Version(95)) else {
            panic!("switch-1 is neither a MAC nor a datapath id")
        };
        assert!(why.contains("received switch-1"), "{why}");
    }

    #[test]
    fn shapes_and_keys_follow_the_schema() {
        let ok = [
            json!({}),
            json!({"port_id": "p", "hostname": "h"}),
            json!({"network_type": "unmanaged"}),
            json!({"port_id": "p", "switch_id": "aa:bb:cc:dd:ee:ff", "switch_info": "s"}),
        ];
        for v in ok {
            check(&mut map(v.clone()), Version(95)).unwrap_or_else(|e| panic!("{v}: {e:?}"));
        }
        let bad = [
            json!({"port_id": "p"}),
            json!({"switch_id": "aa:bb:cc:dd:ee:ff"}),
            json!({"port_id": "p", "hostname": "h", "colour": "red"}),
            json!({"port_id": "p", "hostname": 3}),
            json!({"network_type": "other"}),
            json!({"port_id": "p", "vtep-logical-switch": "l"}),
        ];
        for v in bad {
            assert!(
                matches!(
                    check(&mut map(v.clone()), Version(95)),
                    Err(Refusal::Invalid(_))
                ),
                "{v} should be refused"
            );
        }
    }

    #[test]
    fn newer_keys_need_their_versions() {
        let nt = json!({"network_type": "unmanaged"});
        assert_eq!(
            check(&mut map(nt.clone()), Version(63)),
            Err(Refusal::Version)
        );
        assert_eq!(check(&mut map(nt), Version(64)), Ok(()));
        let vtep = json!({"port_id": "p", "vtep-logical-switch": "l",
                          "vtep-physical-switch": "s"});
        assert_eq!(
            check(&mut map(vtep.clone()), Version(89)),
            Err(Refusal::Version)
        );
        assert_eq!(check(&mut map(vtep.clone()), Version(90)), Ok(()));
        assert_eq!(check(&mut map(vtep.clone()), Version(104)), Ok(()));
        assert_eq!(check(&mut map(vtep), Version(105)), Err(Refusal::Version));
    }

    #[test]
    fn vtep_connections_are_hidden_outside_1_90_to_1_104() {
        let vtep = map(json!({"port_id": "p", "vtep-logical-switch": "l",
                              "vtep-physical-switch": "s"}));
        assert_eq!(shown(&vtep, Version(89)), json!({}));
        assert_eq!(shown(&vtep, Version(90))["port_id"], "p");
        assert_eq!(shown(&vtep, Version(104))["vtep-logical-switch"], "l");
        assert_eq!(shown(&vtep, Version(105)), json!({}));
        let plain = map(json!({"port_id": "p", "hostname": "h"}));
        assert_eq!(shown(&plain, Version(105))["hostname"], "h");
    }
}
