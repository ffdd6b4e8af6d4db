//! Inspection rules as Ironic applies them (API 1.96, `ironic/common/inspection_rules/`): after
//! inspection, each rule of the phase, highest priority first, whose conditions all hold runs
//! its actions on the node, its traits and ports, and the plugin data.
//!
//! Pure logic over a [`Subject`] (JSON documents); the conductor builds it from the node and
//! saves what changed. Only `api-call` does I/O, through [`Hooks`].
//!
//! - `pyformat`: Python's `str.format` subset for `{node.uuid}`, `{inventory[cpu][count]}`.
//! - `args`: each operator's and action's signature, positional arguments, interpolation.
//! - `conditions`, `actions`: what each does; `validation`: the checks before storing.

mod actions;
mod args;
mod conditions;
pub mod pyformat;
mod validation;

use serde_json::{Map, Value};

use crate::store::InspectionRule;
pub use validation::{validate, PHASES};

/// What the rules read and change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    /// The node's fields by their API names (`uuid`, `properties`, `driver_info`, …).
    pub node: Map<String, Value>,
    pub inventory: Value,
    pub plugin_data: Value,
    pub traits: Vec<String>,
    /// The node's ports, each by API field names (with `uuid`).
    pub ports: Vec<Map<String, Value>>,
}

/// `[inspection_rules] mask_secrets`: whether rules read passwords in the inspection data as
/// `***` (always; never; only rules not marked sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskSecrets {
    #[default]
    Always,
    Never,
    Sensitive,
}

/// An `api-call` action's request: a GET, retried on 429 and 5xx.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub timeout_s: f64,
    pub retries: u32,
    pub backoff_factor: f64,
}

/// The I/O an action may need.
#[async_trait::async_trait]
pub trait Hooks: Send + Sync {
    /// Performs the GET; an error says why it failed.
    async fn api_call(&self, call: &ApiCall) -> Result<(), String>;
}

/// Applies `rules` (the stored ones of the phase, then built-in ones) to `subject`. An error
/// (a `fail` action, a condition or action that cannot run) fails the inspection; the
/// changes made so far stay in `subject` for the caller to drop.
pub async fn apply(
    rules: &[InspectionRule],
    subject: &mut Subject,
    mask: MaskSecrets,
    hooks: &dyn Hooks,
) -> Result<(), String> {
    let mut ordered: Vec<&InspectionRule> = rules.iter().collect();
    // Stable: rules of equal priority keep their order (stored by id, then built-in).
    ordered.sort_by_key(|r| std::cmp::Reverse(r.priority));
    for rule in ordered {
        let masked = match mask {
            MaskSecrets::Always => true,
            MaskSecrets::Never => false,
            MaskSecrets::Sensitive => !rule.sensitive,
        };
        let holds = {
            let ctx = pyformat::Context {
                node: &subject.node,
                inventory: &subject.inventory,
                plugin_data: &subject.plugin_data,
                item: None,
                mask: masked,
            };
            let mut all = true;
            for c in &rule.conditions {
                if !conditions::check(c, &ctx).map_err(|e| format!("rule {}: {e}", rule.uuid))? {
                    all = false;
                    break;
                }
            }
            all
        };
        if !holds {
            tracing::debug!(rule = %rule.uuid, "inspection rule: conditions not met");
            continue;
        }
        tracing::info!(rule = %rule.uuid, "inspection rule: applying actions");
        for a in &rule.actions {
            actions::run(a, subject, masked, hooks)
                .await
                .map_err(|e| format!("rule {}: {e}", rule.uuid))?;
        }
    }
    Ok(())
}

/// Reads built-in rules (`[inspection_rules] built_in_rules`, a YAML list of rules): each is
/// checked as Ironic checks them (any priority), and one without a uuid gets
/// `00000000-0000-0000-0000-<index>`.
pub fn built_in(yaml: &str) -> Result<Vec<InspectionRule>, String> {
    let doc: Value = serde_yaml::from_str(yaml).map_err(|e| format!("not YAML: {e}"))?;
    let Value::Array(items) = doc else {
        return Err("the file should contain a list of rules".into());
    };
    let mut synthetic = 0u64;
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let get = |k: &str| item.get(k).cloned().unwrap_or(Value::Null);
        let uuid = match get("uuid") {
            Value::String(u) => u,
            _ => {
                synthetic += 1;
                format!("00000000-0000-0000-0000-{:012x}", synthetic - 1)
            }
        };
        let as_list = |v: Value| match v {
            Value::Array(a) => a,
            _ => Vec::new(),
        };
        let rule = serde_json::json!({
            "uuid": uuid,
            "priority": item.get("priority").cloned().unwrap_or(Value::from(0)),
            "description": get("description"),
            "sensitive": item.get("sensitive").cloned().unwrap_or(Value::Bool(false)),
            "phase": item.get("phase").cloned().unwrap_or(Value::from("main")),
            "actions": as_list(get("actions")),
            "conditions": as_list(get("conditions")),
        });
        validate(&rule, true).map_err(|e| format!("rule {} (uuid {uuid}): {e}", i + 1))?;
        out.push(InspectionRule {
            uuid,
            priority: rule["priority"].as_i64().unwrap_or(0),
            description: rule["description"].as_str().map(String::from),
            sensitive: rule["sensitive"].as_bool().unwrap_or(false),
            phase: rule["phase"].as_str().map(String::from),
            conditions: as_list(rule["conditions"].clone()),
            actions: as_list(rule["actions"].clone()),
            ..InspectionRule::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoCalls;

    #[async_trait::async_trait]
    impl Hooks for NoCalls {
        async fn api_call(&self, call: &ApiCall) -> Result<(), String> {
            Err(format!("no network here ({})", call.url))
        }
    }

    fn rule(priority: i64, conditions: Value, actions: Value) -> InspectionRule {
        InspectionRule {
            uuid: format!("rule-{priority}"),
            priority,
            conditions: serde_json::from_value(conditions).unwrap(),
            actions: serde_json::from_value(actions).unwrap(),
            ..InspectionRule::default()
        }
    }

    fn subject() -> Subject {
        Subject {
            node: json!({"uuid": "n1", "properties": {}, "driver_info": {}, "extra": {}})
                .as_object()
                .unwrap()
                .clone(),
            inventory: json!({"cpu": {"count": 8}, "bmc_address": "10.1.2.3", "system": {"product_name": "R640"}}),
            plugin_data: json!({}),
            traits: vec![],
            ports: vec![json!({"uuid": "p1", "extra": {}})
                .as_object()
                .unwrap()
                .clone()],
        }
    }

    #[tokio::test]
    async fn matching_rules_change_the_node_in_priority_order() {
        let rules = vec![
            rule(
                10,
                json!([]),
                json!([{"op": "set-attribute", "args": {"path": "/properties/owner_hint", "value": "low"}}]),
            ),
            rule(
                90,
                json!([{"op": "eq", "args": {"values": ["{inventory[system][product_name]}", "R640"]}}]),
                json!([
                    {"op": "set-attribute", "args": {"path": "/properties/owner_hint", "value": "high"}},
                    {"op": "set-attribute", "args": ["{item[path]}", "{item[value]}"], "loop": [
                        {"path": "/driver_info/redfish_address", "value": "{inventory[bmc_address]}"},
                    ]},
                    {"op": "set-capability", "args": {"name": "boot_mode", "value": "uefi"}},
                    {"op": "add-trait", "args": {"name": "CUSTOM_R640"}},
                    {"op": "set-plugin-data", "args": {"path": "rules.seen", "value": "{node.uuid}"}},
                    {"op": "extend-attribute", "args": {"path": "extra.tags", "value": "a", "unique": true}},
                    {"op": "extend-attribute", "args": {"path": "extra.tags", "value": "a", "unique": true}},
                    {"op": "set-port-attribute", "args": {"port_id": "p1", "path": "extra/switch", "value": "sw1"}},
                ]),
            ),
            rule(
                50,
                json!([{"op": "gt", "args": {"values": [1, 2]}}]),
                json!([{"op": "fail", "args": {"msg": "never"}}]),
            ),
        ];
        let mut s = subject();
        apply(&rules, &mut s, MaskSecrets::Always, &NoCalls)
            .await
            .unwrap();
        // Priority 90 ran first, then 10 overwrote the hint.
        assert_eq!(s.node["properties"]["owner_hint"], "low");
        // The loop item's template is formatted too (Ironic formats twice inside a loop).
        assert_eq!(s.node["driver_info"]["redfish_address"], "10.1.2.3");
        assert_eq!(s.node["properties"]["capabilities"], "boot_mode:uefi");
        assert_eq!(s.traits, vec!["CUSTOM_R640".to_string()]);
        assert_eq!(s.plugin_data["rules"]["seen"], "n1");
        assert_eq!(s.node["extra"]["tags"], json!(["a"]));
        assert_eq!(s.ports[0]["extra"]["switch"], "sw1");
    }

    #[tokio::test]
    async fn a_fail_action_or_a_broken_action_fails_the_inspection() {
        let mut s = subject();
        let fail = vec![rule(
            1,
            json!([]),
            json!([{"op": "fail", "args": {"msg": "unsupported model {inventory[system][product_name]}"}}]),
        )];
        let err = apply(&fail, &mut s, MaskSecrets::Always, &NoCalls)
            .await
            .unwrap_err();
        assert!(err.contains("Failed to inspect hardware. Reason: unsupported model {inventory[system][product_name]}"), "{err}");
        let call = vec![rule(
            1,
            json!([]),
            json!([{"op": "api-call", "args": {"url": "http://hook/{node.uuid}"}}]),
        )];
        let err = apply(&call, &mut s, MaskSecrets::Always, &NoCalls)
            .await
            .unwrap_err();
        assert!(err.contains("http://hook/n1"), "{err}");
        let no_port = vec![rule(
            1,
            json!([]),
            json!([{"op": "del-port-attribute", "args": {"port_id": "nope", "path": "extra"}}]),
        )];
        assert!(apply(&no_port, &mut s, MaskSecrets::Always, &NoCalls)
            .await
            .unwrap_err()
            .contains("Port nope could not be found"));
        let no_field = vec![rule(
            1,
            json!([]),
            json!([{"op": "set-attribute", "args": {"path": "bogus", "value": 1}}]),
        )];
        assert!(apply(&no_field, &mut s, MaskSecrets::Always, &NoCalls)
            .await
            .unwrap_err()
            .contains("no field bogus"));
    }

    #[tokio::test]
    async fn secrets_are_masked_unless_the_rule_is_sensitive() {
        let mut s = subject();
        s.inventory["bmc"] = json!({"password": "hunter2"});
        let mut r = rule(
            1,
            json!([]),
            json!([{"op": "set-attribute", "args": {"path": "/extra/seen", "value": "{inventory[bmc][password]}"}}]),
        );
        apply(
            std::slice::from_ref(&r),
            &mut s,
            MaskSecrets::Sensitive,
            &NoCalls,
        )
        .await
        .unwrap();
        assert_eq!(s.node["extra"]["seen"], "***");
        r.sensitive = true;
        apply(
            std::slice::from_ref(&r),
            &mut s,
            MaskSecrets::Sensitive,
            &NoCalls,
        )
        .await
        .unwrap();
        assert_eq!(s.node["extra"]["seen"], "hunter2");
        apply(
            std::slice::from_ref(&r),
            &mut s,
            MaskSecrets::Always,
            &NoCalls,
        )
        .await
        .unwrap();
        assert_eq!(s.node["extra"]["seen"], "***");
    }

    #[test]
    fn built_in_rules_get_synthetic_uuids_and_any_priority() {
        let rules = built_in("- priority: 20000\n  actions:\n    - op: log\n      args: {msg: hi}\n- uuid: 5b1c1d9e-0000-4000-8000-000000000001\n  actions:\n    - op: log\n      args: [hello]\n").unwrap();
        assert_eq!(rules[0].uuid, "00000000-0000-0000-0000-000000000000");
        assert_eq!(rules[0].priority, 20000);
        assert_eq!(rules[1].uuid, "5b1c1d9e-0000-4000-8000-000000000001");
        assert!(built_in("actions: []")
            .unwrap_err()
            .contains("list of rules"));
        assert!(built_in("- actions: []")
            .unwrap_err()
            .contains("should be non-empty"));
    }
}
