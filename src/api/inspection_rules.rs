//! /v1/inspection_rules (1.96+): create, list, show, JSON-Patch and delete rules, checked as
//! Ironic checks them (`inspection_rules::validate`). A sensitive rule's conditions and actions
//! are never shown (null), and the flag cannot be unset. Rules are applied at inspection by
//! the conductor (`conductor::inspection`).

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
use crate::inspection_rules::validate;
use crate::store::{Filter, InspectionRule};

const SINCE: u32 = 96;
const COLLECTION: &str = "inspection_rules";
const FIELDS: &[&str] = &[
    "uuid",
    "priority",
    "description",
    "sensitive",
    "phase",
    "conditions",
    "actions",
    "created_at",
    "updated_at",
    "links",
];
/// What a list shows without `?detail=true` or `?fields=` (Ironic's DEFAULT_RETURN_FIELDS).
const BRIEF: &[&str] = &["uuid", "priority", "phase", "description"];
/// The fields a rule document has and PATCH may change.
const WRITABLE: &[&str] = &[
    "description",
    "priority",
    "sensitive",
    "phase",
    "conditions",
    "actions",
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/inspection_rules", get(list).post(create))
        .route(
            "/v1/inspection_rules/{uuid}",
            get(show).patch(update).delete(remove),
        )
}

/// Ironic's `convert_conditions`: op and args, plus loop and multiple when looping.
fn shown_condition(c: &Value) -> Value {
    let mut out = json!({"op": c.get("op"), "args": c.get("args")});
    if let Some(l) = c.get("loop").filter(|l| !is_empty(l)) {
        out["loop"] = l.clone();
        out["multiple"] = c.get("multiple").cloned().unwrap_or(json!("any"));
    }
    out
}

/// Ironic's `convert_actions`: op and args, plus loop when looping.
fn shown_action(a: &Value) -> Value {
    let mut out = json!({"op": a.get("op"), "args": a.get("args")});
    if let Some(l) = a.get("loop").filter(|l| !is_empty(l)) {
        out["loop"] = l.clone();
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Every field of the rule; `hide` (a sensitive rule) blanks conditions and actions.
fn render(r: &InspectionRule, base: &str, hide: bool) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("uuid".into(), json!(r.uuid));
    doc.insert("priority".into(), json!(r.priority));
    doc.insert("description".into(), json!(r.description));
    doc.insert("sensitive".into(), json!(r.sensitive));
    doc.insert("phase".into(), json!(r.phase));
    let (conditions, actions) = if hide && r.sensitive {
        (Value::Null, Value::Null)
    } else {
        (
            r.conditions.iter().map(shown_condition).collect(),
            r.actions.iter().map(shown_action).collect(),
        )
    };
    doc.insert("conditions".into(), conditions);
    doc.insert("actions".into(), actions);
    doc.insert("created_at".into(), json!(iso(&r.created_at)));
    doc.insert("updated_at".into(), json!(r.updated_at.as_ref().map(iso)));
    doc.insert("links".into(), links(base, COLLECTION, &r.uuid));
    doc
}

/// A checked rule document (absent or null fields: Ironic's defaults) as a row.
fn from_doc(doc: &Map<String, Value>, into: &mut InspectionRule) -> ApiResult<()> {
    let present = doc;
    validate(&Value::Object(present.clone()), false).map_err(ApiError::bad_request)?;
    let list = |k: &str| match present.get(k) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    into.priority = present.get("priority").and_then(Value::as_i64).unwrap_or(0);
    into.description = present
        .get("description")
        .and_then(Value::as_str)
        .map(String::from);
    into.sensitive = present
        .get("sensitive")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    into.phase = Some(
        present
            .get("phase")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_string(),
    );
    into.conditions = list("conditions");
    into.actions = list("actions");
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    reject_unknown(&q, &["phase"])?;
    if let Some(key) = q
        .get("sort_key")
        .filter(|k| matches!(k.as_str(), "actions" | "conditions"))
    {
        return Err(ApiError::bad_request(format!(
            "The sort_key value {key} is an invalid field for sorting"
        )));
    }
    let fields = resource::list_fields(&q, ctx.version, FIELDS, BRIEF)?;
    let mut query = page_query(&q, state.max_limit)?;
    if let Some(phase) = q.get("phase") {
        query
            .filters
            .push(Filter::Eq("phase", phase.as_str().into()));
    }
    let page = state
        .conductor
        .store()
        .list_inspection_rules(&query)
        .await?;
    // Every column is read: `sensitive` decides whether conditions and actions are shown.
    let listed = Listed {
        key: COLLECTION,
        path: COLLECTION,
        q: &q,
        limit: query.limit,
        fields: fields.as_deref(),
    };
    Ok(listed.answer(
        &ctx.base,
        &page,
        |r| &r.uuid,
        |r| render(r, &ctx.base, true),
    ))
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    gate(ctx.version, SINCE, true)?;
    let doc = body.as_object().ok_or_else(|| {
        ApiError::bad_request(format!("Schema error: {body} is not of type 'object'"))
    })?;
    let mut rule = InspectionRule {
        created_at: Utc::now(),
        ..InspectionRule::default()
    };
    from_doc(doc, &mut rule)?;
    rule.uuid = resource::new_uuid(doc.get("uuid"))?;
    let rule = state
        .conductor
        .store()
        .create_inspection_rule(&rule)
        .await?;
    let location = format!("{}/v1/{COLLECTION}/{}", ctx.base, rule.uuid);
    Ok(super::created(
        Value::Object(render(&rule, &ctx.base, true)),
        &location,
    ))
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    resource::check_uuid(&uuid)?;
    let fields = resource::parse_fields(&q, ctx.version, FIELDS)?;
    let rule = state.conductor.store().inspection_rule(&uuid).await?;
    Ok(Json(resource::select(
        render(&rule, &ctx.base, true),
        fields.as_deref(),
    )))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, true)?;
    resource::check_uuid(&uuid)?;
    let ops = patch::parse(&body, WRITABLE).map_err(ApiError::bad_request)?;
    let store = state.conductor.store();
    let mut rule = store.inspection_rule(&uuid).await?;
    let unsets_sensitive = ops.iter().any(|op| {
        op.op != "remove"
            && op.path == ["sensitive"]
            && matches!(op.value, Some(Value::Bool(false)))
    });
    if rule.sensitive && unsets_sensitive {
        return Err(ApiError::bad_request(format!(
            "Couldn't apply patch '{body}'. Reason: Inspection rules cannot have the sensitive flag unset."
        )));
    }
    let full = render(&rule, "", false);
    let mut doc: Map<String, Value> = WRITABLE
        .iter()
        .map(|f| (f.to_string(), full.get(*f).cloned().unwrap_or(Value::Null)))
        .collect();
    // The stored conditions and actions as given (with any extra keys), not as shown.
    doc.insert("conditions".into(), Value::Array(rule.conditions.clone()));
    doc.insert("actions".into(), Value::Array(rule.actions.clone()));
    patch::apply(&mut doc, &ops).map_err(ApiError::bad_request)?;
    // A removed field (null) takes its default, as a field absent at creation does.
    let doc: Map<String, Value> = doc
        .into_iter()
        .filter(|(k, v)| !v.is_null() || k == "description")
        .collect();
    from_doc(&doc, &mut rule)?;
    let rule = store.save_inspection_rule(&rule).await?;
    Ok(Json(Value::Object(render(&rule, &ctx.base, true))))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, SINCE, true)?;
    resource::check_uuid(&uuid)?;
    state
        .conductor
        .store()
        .delete_inspection_rule(&uuid.to_ascii_lowercase())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
