//! Nodes as Ironic JSON: rendering (per microversion, secrets masked, links) and the typed
//! setters that turn a JSON value back into a node field (creation and JSON-Patch).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::version::Version;
use crate::conductor::default_interface;
use crate::store::Node;

/// Fields a client may set (POST) or patch, in Ironic's order of its error message.
pub const WRITABLE: &[&str] = &[
    "automated_clean",
    "bios_interface",
    "boot_interface",
    "chassis_uuid",
    "conductor_group",
    "console_interface",
    "deploy_interface",
    "description",
    "disable_power_off",
    "driver",
    "driver_info",
    "extra",
    "inspect_interface",
    "instance_info",
    "instance_name",
    "instance_uuid",
    "lessee",
    "maintenance",
    "management_interface",
    "name",
    "network_data",
    "network_interface",
    "owner",
    "power_interface",
    "properties",
    "protected",
    "protected_reason",
    "raid_interface",
    "rescue_interface",
    "resource_class",
    "retired",
    "retired_reason",
    "shard",
    "storage_interface",
    "vendor_interface",
    "parent_node",
    "firmware_interface",
];

/// Every field of a node document and the microversion that introduced it.
pub const FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("automated_clean", 47),
    ("bios_interface", 40),
    ("boot_interface", 31),
    ("boot_mode", 75),
    ("clean_step", 7),
    ("conductor_group", 46),
    ("console_enabled", 1),
    ("console_interface", 31),
    ("disable_power_off", 95),
    ("deploy_interface", 31),
    ("deploy_step", 44),
    ("description", 51),
    ("driver", 1),
    ("driver_info", 1),
    ("driver_internal_info", 3),
    ("extra", 1),
    ("fault", 42),
    ("firmware_interface", 86),
    ("inspection_finished_at", 6),
    ("inspection_started_at", 6),
    ("inspect_interface", 31),
    ("instance_info", 1),
    ("instance_name", 104),
    ("instance_uuid", 1),
    ("health", 109),
    ("last_error", 1),
    ("lessee", 65),
    ("maintenance", 1),
    ("maintenance_reason", 1),
    ("management_interface", 31),
    ("name", 5),
    ("network_data", 66),
    ("network_interface", 20),
    ("owner", 50),
    ("parent_node", 83),
    ("power_interface", 31),
    ("power_state", 1),
    ("properties", 1),
    ("protected", 48),
    ("protected_reason", 48),
    ("provision_state", 1),
    ("provision_updated_at", 1),
    ("raid_config", 12),
    ("raid_interface", 31),
    ("rescue_interface", 38),
    ("reservation", 1),
    ("resource_class", 21),
    ("retired", 61),
    ("retired_reason", 61),
    ("secure_boot", 75),
    ("service_step", 87),
    ("shard", 82),
    ("storage_interface", 33),
    ("target_power_state", 1),
    ("target_provision_state", 1),
    ("target_raid_config", 12),
    ("traits", 37),
    ("vendor_interface", 31),
    ("links", 1),
    ("conductor", 49),
    ("allocation_uuid", 52),
    ("chassis_uuid", 1),
    ("ports", 1),
    ("states", 14),
    ("portgroups", 24),
    ("volume", 32),
];

/// The fields of `GET /v1/nodes/{node}/states` at `v` (Ironic's `node_states_convert`): each
/// shows the same value as the node's own field.
pub fn state_fields(v: Version) -> impl Iterator<Item = &'static str> {
    const STATES: &[(&str, u32)] = &[
        ("console_enabled", 1),
        ("last_error", 1),
        ("power_state", 1),
        ("provision_state", 1),
        ("target_power_state", 1),
        ("target_provision_state", 1),
        ("provision_updated_at", 1),
        ("raid_config", 12),
        ("target_raid_config", 12),
        ("boot_mode", 75),
        ("secure_boot", 75),
    ];
    STATES
        .iter()
        .filter(move |(_, since)| v >= Version(*since))
        .map(|(f, _)| *f)
}

/// Longest resource class (Ironic's schema).
pub const MAX_RESOURCE_CLASS: usize = 80;

/// 406 when a field a client sets (POST or JSON-Patch) is newer than the version, as Ironic.
pub fn check_settable<'a>(names: impl IntoIterator<Item = &'a str>, v: Version) -> bool {
    names.into_iter().all(|n| {
        FIELDS
            .iter()
            .find(|(f, _)| *f == n)
            .is_none_or(|(_, since)| v >= Version(*since))
    })
}

/// Fields of a list entry without `detail`.
pub const BRIEF: &[&str] = &[
    "uuid",
    "name",
    "instance_uuid",
    "power_state",
    "provision_state",
    "maintenance",
    "links",
];

/// Substrings of a key whose value is a secret, shown as `******`.
const SECRET_KEYS: &[&str] = &["password", "token", "secret", "credential", "private_key"];

pub const MASK: &str = "******";

/// Masks secrets in a driver_info / instance_info map (one level, like Ironic).
pub fn mask(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let lk = k.to_ascii_lowercase();
            let secret = SECRET_KEYS.iter().any(|s| lk.contains(s)) || lk == "configdrive";
            let shown = if secret && !v.is_null() {
                Value::String(MASK.into())
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

/// A timestamp as Ironic writes it: RFC 3339 with microseconds and `+00:00`.
pub fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn ts(t: &Option<DateTime<Utc>>) -> Value {
    t.as_ref()
        .map(|t| Value::String(iso(t)))
        .unwrap_or(Value::Null)
}

fn link_pair(base: &str, path: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{path}"), "rel": "self"},
        {"href": format!("{base}/{path}"), "rel": "bookmark"},
    ])
}

/// Context for rendering: negotiated version, base URL for links, this conductor's name.
pub struct Render<'a> {
    pub version: Version,
    pub base: &'a str,
    pub conductor: &'a str,
}

/// The value of one node field as Ironic shows it (secrets masked).
pub fn field(node: &Node, name: &str, r: &Render) -> Value {
    let s = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
    let obj = |m: &Map<String, Value>| Value::Object(m.clone());
    match name {
        "uuid" => json!(node.uuid),
        "created_at" => json!(iso(&node.created_at)),
        "updated_at" => ts(&node.updated_at),
        "automated_clean" => json!(node.automated_clean),
        "bios_interface" => json!(node.bios_interface),
        "boot_interface" => json!(node.boot_interface),
        "boot_mode" => s(&node.boot_mode),
        "clean_step" => obj(&node.clean_step),
        "conductor_group" => json!(node.conductor_group),
        "console_enabled" => json!(node.console_enabled),
        "console_interface" => json!(node.console_interface),
        "disable_power_off" => json!(node.disable_power_off),
        "deploy_interface" => json!(node.deploy_interface),
        "deploy_step" => obj(&node.deploy_step),
        "description" => s(&node.description),
        "driver" => json!(node.driver),
        "driver_info" => Value::Object(mask(&node.driver_info)),
        "driver_internal_info" => obj(&node.driver_internal_info),
        "extra" => obj(&node.extra),
        "fault" => s(&node.fault),
        "firmware_interface" => json!(node.firmware_interface),
        "inspection_finished_at" => ts(&node.inspection_finished_at),
        "inspection_started_at" => ts(&node.inspection_started_at),
        "inspect_interface" => json!(node.inspect_interface),
        "instance_info" => Value::Object(mask(&node.instance_info)),
        "instance_name" => s(&node.instance_name),
        "health" => s(&node.health),
        "instance_uuid" => s(&node.instance_uuid),
        "last_error" => s(&node.last_error),
        "lessee" => s(&node.lessee),
        "maintenance" => json!(node.maintenance),
        "maintenance_reason" => s(&node.maintenance_reason),
        "management_interface" => json!(node.management_interface),
        "name" => s(&node.name),
        "network_data" => obj(&node.network_data),
        "network_interface" => json!(node.network_interface),
        "owner" => s(&node.owner),
        "parent_node" => s(&node.parent_node),
        "power_interface" => json!(node.power_interface),
        "power_state" => s(&node.power_state),
        "properties" => obj(&node.properties),
        "protected" => json!(node.protected),
        "protected_reason" => s(&node.protected_reason),
        "provision_state" => {
            // Before 1.2, "available" was spelled as no state at all.
            if r.version < Version(2) && node.provision_state == "available" {
                Value::Null
            } else {
                json!(node.provision_state)
            }
        }
        "provision_updated_at" => ts(&node.provision_updated_at),
        "raid_config" | "target_raid_config" => node
            .driver_internal_info
            .get(name)
            .cloned()
            .unwrap_or_else(|| json!({})),
        "service_step" => node
            .driver_internal_info
            .get(crate::conductor::SERVICE_STEP_KEY)
            .cloned()
            .unwrap_or_else(|| json!({})),
        "raid_interface" => json!(node.raid_interface),
        "rescue_interface" => json!(node.rescue_interface),
        "reservation" => s(&node.reservation),
        "resource_class" => s(&node.resource_class),
        "retired" => json!(node.retired),
        "retired_reason" => s(&node.retired_reason),
        "secure_boot" => Value::Null,
        "shard" => s(&node.shard),
        "storage_interface" => json!(node.storage_interface),
        "target_power_state" => s(&node.target_power_state),
        "target_provision_state" => s(&node.target_provision_state),
        "traits" => json!(node.traits),
        "vendor_interface" => json!(node.vendor_interface),
        "links" => link_pair(r.base, &format!("nodes/{}", node.uuid)),
        "conductor" => json!(r.conductor),
        "allocation_uuid" => s(&node.allocation_uuid),
        "chassis_uuid" => s(&node.chassis_uuid),
        "ports" | "states" | "portgroups" | "volume" => {
            link_pair(r.base, &format!("nodes/{}/{name}", node.uuid))
        }
        _ => Value::Null,
    }
}

/// Whether `name` is a node field at `version`.
pub fn known_field(name: &str, version: Version) -> bool {
    FIELDS
        .iter()
        .any(|(f, since)| *f == name && version >= Version(*since))
}

/// The node document with the given fields (None: every field of the version).
pub fn render(node: &Node, fields: Option<&[String]>, r: &Render) -> Value {
    let mut out = Map::new();
    match fields {
        Some(wanted) => {
            for f in wanted {
                out.insert(f.clone(), field(node, f, r));
            }
            // Ironic always adds links to a field-filtered document.
            out.insert("links".into(), field(node, "links", r));
        }
        None => {
            for (f, since) in FIELDS {
                if r.version >= Version(*since) {
                    out.insert((*f).to_string(), field(node, f, r));
                }
            }
        }
    }
    Value::Object(out)
}

/// The writable fields of `node`, unmasked, as a document JSON-Patch works on.
pub fn writable_doc(node: &Node) -> Map<String, Value> {
    let r = Render {
        version: super::version::MAX,
        base: "",
        conductor: "",
    };
    WRITABLE
        .iter()
        .map(|f| {
            let v = match *f {
                "driver_info" => Value::Object(node.driver_info.clone()),
                "instance_info" => Value::Object(node.instance_info.clone()),
                _ => field(node, f, &r),
            };
            ((*f).to_string(), v)
        })
        .collect()
}

fn want_str(field: &str, v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(format!(
            "Invalid value for {field}: {other} is not a string (or null)"
        )),
    }
}

fn want_bool(field: &str, v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(format!(
            "Invalid value for {field}: {other} is not a boolean"
        )),
    }
}

fn want_map(field: &str, v: &Value) -> Result<Map<String, Value>, String> {
    match v {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => {
            super::limits::check_field_size(field, m)?;
            Ok(m.clone())
        }
        other => Err(format!(
            "Invalid value for {field}: {other} is not a JSON object"
        )),
    }
}

fn looks_like_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if name.is_empty() || !ok_chars || name.len() > 255 {
        return Err(format!(
            "Expected a logical name but received {name:?}: use letters, digits and - . _ ~ only"
        ));
    }
    if looks_like_uuid(name) {
        return Err(format!(
            "Expected a logical name but received {name:?}, which looks like a UUID"
        ));
    }
    Ok(())
}

/// Sets one writable field of `node` from a JSON value, checking its type. Null means the
/// field's default.
pub fn set_field(node: &mut Node, name: &str, v: &Value) -> Result<(), String> {
    let iface =
        |v: &Value, node: &Node| -> Result<String, String> {
            let iface = name.trim_end_matches("_interface");
            Ok(want_str(name, v)?
                .unwrap_or_else(|| default_interface(&node.driver, iface).to_string()))
        };
    match name {
        "automated_clean" => node.automated_clean = want_bool(name, v)?,
        "maintenance" => node.maintenance = want_bool(name, v)?.unwrap_or(false),
        "protected" => node.protected = want_bool(name, v)?.unwrap_or(false),
        "retired" => node.retired = want_bool(name, v)?.unwrap_or(false),
        "disable_power_off" => node.disable_power_off = want_bool(name, v)?.unwrap_or(false),
        "driver_info" => node.driver_info = want_map(name, v)?,
        "instance_info" => node.instance_info = want_map(name, v)?,
        "properties" => node.properties = want_map(name, v)?,
        "extra" => node.extra = want_map(name, v)?,
        "network_data" => node.network_data = want_map(name, v)?,
        "driver" => {
            node.driver = want_str(name, v)?
                .ok_or_else(|| "driver cannot be removed: every node needs one".to_string())?
        }
        "name" => {
            let n = want_str(name, v)?;
            if let Some(n) = &n {
                check_name(n)?;
            }
            node.name = n;
        }
        "instance_uuid" => {
            let u = want_str(name, v)?;
            if let Some(u) = &u {
                if !looks_like_uuid(u) {
                    return Err(format!(
                        "Expected a UUID for instance_uuid but received {u:?}"
                    ));
                }
            }
            node.instance_uuid = u;
        }
        "chassis_uuid" => node.chassis_uuid = want_str(name, v)?,
        // Case-insensitive, stored lowercase (as Ironic), so the list filter is one equality.
        "conductor_group" => {
            node.conductor_group = want_str(name, v)?.unwrap_or_default().to_ascii_lowercase()
        }
        "description" => node.description = want_str(name, v)?,
        "instance_name" => {
            let n = want_str(name, v)?;
            if let Some(n) = &n {
                let len = n.chars().count();
                if !(1..=255).contains(&len) {
                    return Err(format!(
                        "Invalid instance_name: it must hold 1 to 255 characters (got {len})"
                    ));
                }
            }
            node.instance_name = n;
        }
        "lessee" => node.lessee = want_str(name, v)?,
        "owner" => node.owner = want_str(name, v)?,
        "protected_reason" => node.protected_reason = want_str(name, v)?,
        "resource_class" => {
            let rc = want_str(name, v)?;
            if let Some(rc) = &rc {
                if rc.chars().count() > MAX_RESOURCE_CLASS {
                    return Err(format!(
                        "Invalid resource_class {rc:?}: at most {MAX_RESOURCE_CLASS} characters"
                    ));
                }
            }
            node.resource_class = rc;
        }
        "retired_reason" => node.retired_reason = want_str(name, v)?,
        "shard" => node.shard = want_str(name, v)?,
        "parent_node" => node.parent_node = want_str(name, v)?,
        "bios_interface" => node.bios_interface = iface(v, node)?,
        "boot_interface" => node.boot_interface = iface(v, node)?,
        "console_interface" => node.console_interface = iface(v, node)?,
        "deploy_interface" => node.deploy_interface = iface(v, node)?,
        "firmware_interface" => node.firmware_interface = iface(v, node)?,
        "inspect_interface" => node.inspect_interface = iface(v, node)?,
        "management_interface" => node.management_interface = iface(v, node)?,
        "network_interface" => {
            node.network_interface = want_str(name, v)?.unwrap_or_else(|| "noop".into())
        }
        "power_interface" => node.power_interface = iface(v, node)?,
        "raid_interface" => node.raid_interface = iface(v, node)?,
        "rescue_interface" => node.rescue_interface = iface(v, node)?,
        "storage_interface" => {
            node.storage_interface = want_str(name, v)?.unwrap_or_else(|| "noop".into())
        }
        "vendor_interface" => node.vendor_interface = iface(v, node)?,
        other => return Err(format!("{other} cannot be set")),
    }
    Ok(())
}

/// Builds a new node from a POST body, refusing unknown fields.
/// Ironic (1.104): a node without an instance_name takes instance_info's display_name
/// (what Nova sets) when instance_info changes.
pub fn name_instance_from_info(node: &mut Node) {
    if node.instance_name.is_none() {
        if let Some(name) = node
            .instance_info
            .get("display_name")
            .and_then(Value::as_str)
        {
            node.instance_name = Some(name.to_string());
        }
    }
}

pub fn from_create(body: &Value) -> Result<Node, String> {
    let Some(obj) = body.as_object() else {
        return Err("Invalid node: the body must be a JSON object such as {\"driver\": \"fake-hardware\", \"name\": \"n1\"}".into());
    };
    if let Some(bad) = obj
        .keys()
        .find(|k| !WRITABLE.contains(&k.as_str()) && k.as_str() != "uuid")
    {
        return Err(format!(
            "Unknown attribute for argument node: {bad}. Settable at creation: uuid, {}",
            WRITABLE.join(", ")
        ));
    }
    let driver = obj
        .get("driver")
        .and_then(Value::as_str)
        .ok_or("Invalid node: the mandatory attribute driver is missing (e.g. \"driver\": \"fake-hardware\")")?;
    let uuid = match obj.get("uuid") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(u)) if looks_like_uuid(u) => u.to_ascii_lowercase(),
        Some(other) => return Err(format!("Expected a UUID for uuid but received {other}")),
    };
    let mut node = Node::new(uuid, driver.to_string(), |iface| {
        default_interface(driver, iface)
    });
    for (k, v) in obj {
        if k != "uuid" && k != "driver" {
            set_field(&mut node, k, v)?;
        }
    }
    if node.protected_reason.is_some() && !node.protected {
        return Err("The protected_reason field can only be set when protected is True".into());
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_others_shown() {
        let m = json!({"ipmi_password": "s", "redfish_password": "t", "auth_token": "u",
                       "ipmi_username": "admin", "address": "x", "empty_password": null})
        .as_object()
        .unwrap()
        .clone();
        let out = mask(&m);
        assert_eq!(out["ipmi_password"], MASK);
        assert_eq!(out["redfish_password"], MASK);
        assert_eq!(out["auth_token"], MASK);
        assert_eq!(out["ipmi_username"], "admin");
        assert_eq!(out["empty_password"], Value::Null);
    }

    #[test]
    fn create_rejects_unknown_and_bad_types() {
        assert!(from_create(&json!({"driver": "fake-hardware", "bogus": 1}))
            .unwrap_err()
            .contains("Unknown attribute for argument node: bogus"));
        assert!(from_create(&json!({"name": "x"}))
            .unwrap_err()
            .contains("driver is missing"));
        assert!(from_create(&json!({"driver": "fake-hardware", "extra": 3}))
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(
            from_create(&json!({"driver": "fake-hardware", "name": "a b"}))
                .unwrap_err()
                .contains("logical name")
        );
        let n = from_create(&json!({"driver": "fake-hardware", "name": "n1",
                                     "driver_info": {"ipmi_password": "p"}}))
        .unwrap();
        assert_eq!(n.name.as_deref(), Some("n1"));
        assert_eq!(n.deploy_interface, "fake");
        assert_eq!(n.provision_state, "enroll");
        assert_eq!(n.driver_info["ipmi_password"], "p");
    }

    #[test]
    fn instance_name_is_bounded_and_follows_display_name() {
        let mut n =
            from_create(&json!({"driver": "fake-hardware", "instance_name": "web-1"})).unwrap();
        assert_eq!(n.instance_name.as_deref(), Some("web-1"));
        assert!(set_field(&mut n, "instance_name", &json!(""))
            .unwrap_err()
            .contains("1 to 255"));
        assert!(set_field(&mut n, "instance_name", &json!("x".repeat(256))).is_err());
        set_field(&mut n, "instance_name", &Value::Null).unwrap();
        n.instance_info
            .insert("display_name".into(), json!("from-nova"));
        name_instance_from_info(&mut n);
        assert_eq!(n.instance_name.as_deref(), Some("from-nova"));
        n.instance_info
            .insert("display_name".into(), json!("renamed"));
        name_instance_from_info(&mut n);
        assert_eq!(
            n.instance_name.as_deref(),
            Some("from-nova"),
            "set names are kept"
        );
        let r = Render {
            version: Version(104),
            base: "",
            conductor: "",
        };
        assert_eq!(render(&n, None, &r)["instance_name"], "from-nova");
        assert!(check_settable(["instance_name"], Version(104)));
        assert!(!check_settable(["instance_name"], Version(103)));
        assert!(!check_settable(["health"], Version(108)));
    }

    #[test]
    fn fields_follow_the_microversion() {
        let node = Node::new("u".into(), "fake-hardware".into(), |_| "fake");
        let r = |v| Render {
            version: Version(v),
            base: "http://h",
            conductor: "c",
        };
        let old = render(&node, None, &r(1));
        assert!(old.get("name").is_none());
        assert!(old.get("deploy_interface").is_none());
        assert!(old.get("provision_state").is_some());
        let new = render(&node, None, &r(95));
        assert!(new.get("instance_name").is_none());
        assert!(new.get("health").is_none());
        assert_eq!(new["deploy_interface"], "fake");
        assert_eq!(new["disable_power_off"], false);
        assert_eq!(new["links"][0]["href"], "http://h/v1/nodes/u");
    }
}
