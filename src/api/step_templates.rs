//! /v1/deploy_templates (1.55+) and /v1/runbooks (1.92+): named lists of steps. Both have the
//! same life (create, list, show by UUID or name, JSON-Patch, delete) and differ in a
//! [`Spec`]: the step's ordering key (`priority` or `order`), the interfaces a step may name,
//! and runbooks' `disable_ramdisk`, `public` and `owner`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::listing::{page_query, reject_unknown, Listed};
use super::node_json::iso;
use super::resource::{self, gate, links};
use super::{patch, AppState, Ctx};
use crate::store::{StepTemplate, TemplateKind};

/// What tells a deploy template from a runbook.
pub struct Spec {
    kind: TemplateKind,
    /// URL segment and list key.
    collection: &'static str,
    since: u32,
    /// The step's ordering key.
    order_key: &'static str,
    interfaces: &'static [&'static str],
    /// Fields besides uuid, name, steps, extra, created_at, updated_at, links.
    own_fields: &'static [&'static str],
}

const DEPLOY_TEMPLATES: Spec = Spec {
    kind: TemplateKind::DeployTemplate,
    collection: "deploy_templates",
    since: 55,
    order_key: "priority",
    // Ironic's DEPLOYING_INTERFACE_PRIORITY.
    interfaces: &[
        "vendor",
        "power",
        "management",
        "firmware",
        "deploy",
        "bios",
        "raid",
    ],
    own_fields: &[],
};

const RUNBOOKS: Spec = Spec {
    kind: TemplateKind::Runbook,
    collection: "runbooks",
    since: 92,
    order_key: "order",
    // Ironic's CLEANING_INTERFACE_PRIORITY.
    interfaces: &[
        "vendor",
        "power",
        "management",
        "firmware",
        "deploy",
        "bios",
        "raid",
    ],
    own_fields: &["disable_ramdisk", "public", "owner"],
};

const BRIEF: &[&str] = &["uuid", "name", "links"];

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(routes(&DEPLOY_TEMPLATES))
        .merge(routes(&RUNBOOKS))
}

fn routes(spec: &'static Spec) -> Router<AppState> {
    let c = spec.collection;
    let list = move |state: State<AppState>, ctx: Ctx, q: Query<HashMap<String, String>>| {
        listing(spec, state, ctx, q, false)
    };
    let detail = move |state: State<AppState>, ctx: Ctx, q: Query<HashMap<String, String>>| {
        listing(spec, state, ctx, q, true)
    };
    let create =
        move |state: State<AppState>, ctx: Ctx, body: JsonBody| create(spec, state, ctx, body);
    let show =
        move |state: State<AppState>,
              ctx: Ctx,
              path: Path<String>,
              q: Query<HashMap<String, String>>| show(spec, state, ctx, path, q);
    let update = move |state: State<AppState>, ctx: Ctx, path: Path<String>, body: JsonBody| {
        update(spec, state, ctx, path, body)
    };
    let remove =
        move |state: State<AppState>, ctx: Ctx, path: Path<String>| remove(spec, state, ctx, path);
    Router::new()
        .route(&format!("/v1/{c}"), get(list).post(create))
        .route(&format!("/v1/{c}/"), get(list).post(create))
        .route(&format!("/v1/{c}/detail"), get(detail))
        .route(
            &format!("/v1/{c}/{{ident}}"),
            get(show).patch(update).delete(remove),
        )
}

fn fields(spec: &Spec) -> Vec<&'static str> {
    let mut f = vec![
        "uuid",
        "name",
        "steps",
        "extra",
        "created_at",
        "updated_at",
        "links",
    ];
    f.extend(spec.own_fields);
    f
}

fn render(spec: &Spec, t: &StepTemplate, base: &str) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("uuid".into(), json!(t.uuid));
    doc.insert("name".into(), json!(t.name));
    doc.insert("steps".into(), json!(t.steps));
    doc.insert("extra".into(), json!(t.extra));
    doc.insert("created_at".into(), json!(iso(&t.created_at)));
    doc.insert("updated_at".into(), json!(t.updated_at.as_ref().map(iso)));
    doc.insert("links".into(), links(base, spec.collection, &t.uuid));
    for f in spec.own_fields {
        let v = match *f {
            "disable_ramdisk" => json!(t.disable_ramdisk),
            "public" => json!(t.public),
            _ => json!(t.owner),
        };
        doc.insert((*f).to_string(), v);
    }
    doc
}

/// A trait name as Ironic's TRAITS_SCHEMA accepts: `CUSTOM_` + `[A-Z0-9_]`, or a standard
/// trait (upper-case words joined by `_`; the os-traits catalogue itself is not bundled).
pub fn check_trait(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && (!name.starts_with("CUSTOM") || name.starts_with("CUSTOM_") && name.len() > 7);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid trait: use CUSTOM_ followed by A-Z, 0-9 and _ (at most 255 characters), or a standard trait"
        ))
    }
}

/// Checks and normalises the steps: a non-empty list of {interface, step, args, order key},
/// no unknown keys, no interface/step twice. A numeric string order becomes a number.
fn check_steps(spec: &Spec, v: &Value) -> ApiResult<Vec<Value>> {
    let bad = |why: String| ApiError::bad_request(format!("Invalid steps: {why}"));
    let Value::Array(items) = v else {
        return Err(bad(format!("{v} is not a list of steps")));
    };
    if items.is_empty() {
        return Err(bad("at least one step is required".into()));
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for item in items {
        let Value::Object(step) = item else {
            return Err(bad(format!("{item} is not an object")));
        };
        let allowed = ["interface", "step", "args", spec.order_key];
        if let Some(k) = step.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let interface = step.get("interface").and_then(Value::as_str).unwrap_or("");
        if !spec.interfaces.contains(&interface) {
            return Err(bad(format!(
                "interface {interface:?} is not one of {}",
                spec.interfaces.join(", ")
            )));
        }
        let name = step.get("step").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err(bad("every step needs a non-empty 'step'".into()));
        }
        let args = match step.get("args") {
            Some(Value::Object(a)) => Value::Object(a.clone()),
            None if spec.kind == TemplateKind::Runbook => json!({}),
            _ => return Err(bad("every step needs 'args', an object".into())),
        };
        let order = match step.get(spec.order_key) {
            Some(Value::Number(n)) if n.as_u64().is_some() => json!(n),
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                json!(s.parse::<u64>().map_err(|e| bad(e.to_string()))?)
            }
            _ => {
                return Err(bad(format!(
                    "every step needs '{}', a non-negative integer",
                    spec.order_key
                )))
            }
        };
        if seen.contains(&(interface, name)) {
            return Err(bad(format!(
                "Duplicate steps: a {} cannot have the same interface and step twice (interface: {interface}, step: {name})",
                spec.kind.noun()
            )));
        }
        seen.push((interface, name));
        out.push(
            json!({"interface": interface, "step": name, "args": args, spec.order_key: order}),
        );
    }
    Ok(out)
}

/// Sets one writable field from JSON.
fn set_field(spec: &Spec, t: &mut StepTemplate, name: &str, v: &Value) -> ApiResult<()> {
    match name {
        "name" => {
            let n = resource::want_str(name, v)?.ok_or_else(|| {
                ApiError::bad_request("name is a mandatory attribute and cannot be removed")
            })?;
            check_trait(&n).map_err(ApiError::bad_request)?;
            t.name = n;
        }
        "steps" => t.steps = check_steps(spec, v)?,
        "extra" => t.extra = resource::want_map(name, v)?,
        "disable_ramdisk" | "public" if spec.own_fields.contains(&name) => {
            let b = match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid value for {name}: {other} is not a boolean"
                    )))
                }
            };
            if name == "public" {
                t.public = b;
            } else {
                t.disable_ramdisk = b;
            }
        }
        "owner" if spec.own_fields.contains(&name) => t.owner = resource::want_str(name, v)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{other}' was unexpected)"
            )))
        }
    }
    Ok(())
}

async fn listing(
    spec: &'static Spec,
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    detail: bool,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, spec.since, false)?;
    reject_unknown(&q, &[])?;
    let known = fields(spec);
    let fields = if detail {
        None
    } else {
        resource::list_fields(&q, ctx.version, &known, BRIEF)?
    };
    let mut query = page_query(&q, state.max_limit)?;
    query.columns = fields.clone();
    let page = state
        .conductor
        .store()
        .list_templates(spec.kind, &query)
        .await?;
    let path = if detail {
        format!("{}/detail", spec.collection)
    } else {
        spec.collection.to_string()
    };
    let listed = Listed {
        key: spec.collection,
        path: &path,
        q: &q,
        limit: query.limit,
        fields: fields.as_deref(),
    };
    Ok(listed.answer(
        &ctx.base,
        &page,
        |t| &t.uuid,
        |t| render(spec, t, &ctx.base),
    ))
}

async fn create(
    spec: &'static Spec,
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    gate(ctx.version, spec.since, true)?;
    let mut allowed = vec!["uuid", "name", "steps", "extra"];
    allowed.extend(spec.own_fields);
    let obj = resource::object(&body, &allowed)?;
    for required in ["name", "steps"] {
        if obj.get(required).is_none_or(Value::is_null) {
            return Err(ApiError::bad_request(format!(
                "'{required}' is a required property"
            )));
        }
    }
    let mut t = StepTemplate {
        uuid: resource::new_uuid(obj.get("uuid"))?,
        created_at: Utc::now(),
        ..StepTemplate::default()
    };
    for (k, v) in obj {
        if k != "uuid" {
            set_field(spec, &mut t, k, v)?;
        }
    }
    let t = state
        .conductor
        .store()
        .create_template(spec.kind, &t)
        .await?;
    let location = format!("{}/v1/{}/{}", ctx.base, spec.collection, t.uuid);
    Ok(super::created(
        Value::Object(render(spec, &t, &ctx.base)),
        &location,
    ))
}

async fn show(
    spec: &'static Spec,
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, spec.since, false)?;
    let ident = resource::strip_json(&ident, ctx.version);
    let fields = resource::parse_fields(&q, ctx.version, &fields(spec))?;
    let t = state.conductor.store().template(spec.kind, ident).await?;
    Ok(Json(resource::select(
        render(spec, &t, &ctx.base),
        fields.as_deref(),
    )))
}

async fn update(
    spec: &'static Spec,
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, spec.since, true)?;
    let ident = resource::strip_json(&ident, ctx.version);
    let mut writable = vec!["name", "steps", "extra"];
    writable.extend(spec.own_fields);
    let ops = patch::parse(&body, &writable).map_err(ApiError::bad_request)?;
    let store = state.conductor.store();
    let mut t = store.template(spec.kind, ident).await?;
    let full = render(spec, &t, "");
    let mut doc: Map<String, Value> = writable
        .iter()
        .map(|f| (f.to_string(), full.get(*f).cloned().unwrap_or(Value::Null)))
        .collect();
    let before = doc.clone();
    patch::apply(&mut doc, &ops).map_err(ApiError::bad_request)?;
    for (k, v) in &doc {
        if before.get(k) != Some(v) {
            set_field(spec, &mut t, k, v)?;
        }
    }
    let t = store.save_template(spec.kind, &t).await?;
    Ok(Json(Value::Object(render(spec, &t, &ctx.base))))
}

async fn remove(
    spec: &'static Spec,
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, spec.since, true)?;
    let ident = resource::strip_json(&ident, ctx.version);
    let store = state.conductor.store();
    let t = store.template(spec.kind, ident).await?;
    store.delete_template(spec.kind, &t.uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traits_and_steps_as_ironic_checks_them() {
        assert!(check_trait("CUSTOM_TRAIT_1").is_ok());
        assert!(check_trait("HW_CPU_X86_VMX").is_ok());
        assert!(check_trait("invalid-name").is_err());
        assert!(check_trait("CUSTOM_").is_err());
        assert!(check_trait("").is_err());
        let step = |order: Value| json!([{"interface": "bios", "step": "apply_configuration", "args": {}, "priority": order}]);
        let steps = check_steps(&DEPLOY_TEMPLATES, &step(json!("10"))).unwrap();
        assert_eq!(steps[0]["priority"], 10);
        assert!(check_steps(&DEPLOY_TEMPLATES, &json!({"key": "value"})).is_err());
        assert!(check_steps(&DEPLOY_TEMPLATES, &json!([])).is_err());
        assert!(check_steps(&DEPLOY_TEMPLATES, &step(json!(-1))).is_err());
        let twice = json!([
            {"interface": "bios", "step": "x", "args": {}, "priority": 1},
            {"interface": "bios", "step": "x", "args": {}, "priority": 2},
        ]);
        assert!(check_steps(&DEPLOY_TEMPLATES, &twice)
            .unwrap_err()
            .message
            .contains("Duplicate steps"));
        assert!(check_steps(&RUNBOOKS, &step(json!(1))).is_err());
    }
}
