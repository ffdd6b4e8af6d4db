//! /v1/allocations (1.52+): create (a node is picked in the background, or backfilled from a
//! deployed node with `node`, 1.58+), list (node, resource_class, state, owner filters), show
//! by UUID or name, JSON-Patch of name and extra (1.57+), delete; `owner` from 1.60; and
//! /v1/nodes/{node}/allocation (show, delete).

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
use super::resource::{self, gate, links, not_acceptable};
use super::version::Version;
use super::{patch, traits, AppState, Ctx};
use crate::store::{Allocation, Filter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/allocations", get(list).post(create))
        .route("/v1/allocations/", get(list).post(create))
        .route(
            "/v1/allocations/{ident}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/v1/nodes/{node}/allocation",
            get(show_for_node).delete(remove_for_node),
        )
}

/// Allocations appeared in 1.52, their JSON-Patch in 1.57, backfilling in 1.58, owner in 1.60.
const SINCE: u32 = 52;
const PATCH_SINCE: u32 = 57;
const BACKFILL_SINCE: Version = Version(58);
const OWNER_SINCE: Version = Version(60);
/// Longest resource class (Ironic's schema).
const MAX_RESOURCE_CLASS: usize = 80;

const FIELDS: &[&str] = &[
    "uuid",
    "name",
    "node_uuid",
    "state",
    "last_error",
    "resource_class",
    "traits",
    "candidate_nodes",
    "extra",
    "owner",
    "created_at",
    "updated_at",
    "links",
];

fn known(v: Version) -> Vec<&'static str> {
    FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "owner" || v >= OWNER_SINCE)
        .collect()
}

fn render(a: &Allocation, base: &str, v: Version) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(a.uuid));
    m.insert("name".into(), json!(a.name));
    m.insert("node_uuid".into(), json!(a.node_uuid));
    m.insert("state".into(), json!(a.state));
    m.insert("last_error".into(), json!(a.last_error));
    m.insert("resource_class".into(), json!(a.resource_class));
    m.insert("traits".into(), json!(a.traits));
    m.insert("candidate_nodes".into(), json!(a.candidate_nodes));
    m.insert("extra".into(), Value::Object(a.extra.clone()));
    if v >= OWNER_SINCE {
        m.insert("owner".into(), json!(a.owner));
    }
    m.insert("created_at".into(), json!(iso(&a.created_at)));
    m.insert("updated_at".into(), json!(a.updated_at.as_ref().map(iso)));
    m.insert("links".into(), links(base, "allocations", &a.uuid));
    m
}

/// `?fields=`: `owner` before 1.60 is 406, an unknown field 400.
fn fields(q: &HashMap<String, String>, v: Version) -> ApiResult<Option<Vec<String>>> {
    if let Some(raw) = q.get("fields") {
        if v < OWNER_SINCE && raw.split(',').any(|f| f.trim() == "owner") {
            return Err(not_acceptable());
        }
    }
    resource::parse_fields(q, v, &known(v))
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    reject_unknown(&q, &["node", "resource_class", "state", "owner"])?;
    if q.contains_key("owner") && ctx.version < OWNER_SINCE {
        return Err(not_acceptable());
    }
    let fields = fields(&q, ctx.version)?;
    let mut query = page_query(&q, state.max_limit)?;
    query.columns = fields.clone();
    let store = state.conductor.store();
    if let Some(ident) = q.get("node") {
        let node = store
            .node(ident)
            .await
            .map_err(resource::missing_is_bad_request)?;
        query
            .filters
            .push(Filter::Eq("node_uuid", node.uuid.into()));
    }
    for key in ["resource_class", "state", "owner"] {
        if let Some(v) = q.get(key) {
            query.filters.push(Filter::Eq(key, v.clone().into()));
        }
    }
    let page = store.list_allocations(&query).await?;
    let listed = Listed {
        key: "allocations",
        path: "allocations",
        q: &q,
        limit: query.limit,
        fields: fields.as_deref(),
    };
    Ok(listed.answer(
        &ctx.base,
        &page,
        |a| &a.uuid,
        |a| render(a, &ctx.base, ctx.version),
    ))
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let ident = resource::strip_json(&ident, ctx.version);
    resource::check_ident(ident)?;
    let fields = fields(&q, ctx.version)?;
    let a = state.conductor.store().allocation(ident).await?;
    Ok(Json(resource::select(
        render(&a, &ctx.base, ctx.version),
        fields.as_deref(),
    )))
}

/// The allocation of a node: the node must exist (else 400, as Ironic), the allocation too.
async fn of_node(state: &AppState, ctx: &Ctx, node: &str) -> ApiResult<Allocation> {
    gate(ctx.version, SINCE, false)?;
    let node = resource::strip_json(node, ctx.version);
    let store = state.conductor.store();
    let n = store
        .node(node)
        .await
        .map_err(resource::missing_is_bad_request)?;
    store
        .allocation_of_node(&n.uuid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Allocation for node {node} was not found")))
}

async fn show_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(node): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let fields = fields(&q, ctx.version)?;
    let a = of_node(&state, &ctx, &node).await?;
    Ok(Json(resource::select(
        render(&a, &ctx.base, ctx.version),
        fields.as_deref(),
    )))
}

async fn remove_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(node): Path<String>,
) -> ApiResult<StatusCode> {
    let a = of_node(&state, &ctx, &node).await?;
    state.conductor.delete_allocation(&a).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn opt_str(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => resource::want_str(key, v),
    }
}

/// A list of strings (or null: empty).
fn str_list(obj: &Map<String, Value>, key: &str) -> ApiResult<Vec<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(String::from).ok_or_else(|| {
                    ApiError::bad_request(format!("Invalid value for {key}: {i} is not a string"))
                })
            })
            .collect(),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid value for {key}: {other} is not a list of strings"
        ))),
    }
}

fn check_name(name: &Option<String>, verb: &str) -> ApiResult<()> {
    match name {
        Some(n) if !resource::is_logical_name(n) => Err(ApiError::bad_request(format!(
            "Cannot {verb} allocation with invalid name '{n}'"
        ))),
        _ => Ok(()),
    }
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    gate(ctx.version, SINCE, true)?;
    let obj = resource::object(
        &body,
        &[
            "candidate_nodes",
            "extra",
            "name",
            "node",
            "owner",
            "resource_class",
            "traits",
            "uuid",
        ],
    )?;
    if obj.contains_key("owner") && ctx.version < OWNER_SINCE {
        return Err(not_acceptable());
    }
    let name = opt_str(obj, "name")?;
    check_name(&name, "create")?;
    let resource_class = opt_str(obj, "resource_class")?.filter(|rc| !rc.is_empty());
    if let Some(rc) = &resource_class {
        if rc.chars().count() > MAX_RESOURCE_CLASS {
            return Err(ApiError::bad_request(format!(
                "Invalid resource_class {rc:?}: at most {MAX_RESOURCE_CLASS} characters"
            )));
        }
    }
    let wanted_traits = str_list(obj, "traits")?;
    for t in &wanted_traits {
        traits::check(t)?;
    }
    let mut a = Allocation {
        id: 0,
        uuid: String::new(),
        name,
        node_uuid: None,
        state: "allocating".into(),
        last_error: None,
        resource_class,
        traits: wanted_traits,
        candidate_nodes: Vec::new(),
        extra: match obj.get("extra") {
            Some(v) => resource::want_map("extra", v)?,
            None => Map::new(),
        },
        owner: opt_str(obj, "owner")?,
        created_at: Utc::now(),
        updated_at: None,
    };
    let store = state.conductor.store();
    let node = match opt_str(obj, "node")? {
        Some(_) if ctx.version < BACKFILL_SINCE => {
            return Err(ApiError::bad_request(
                "Cannot set node when creating an allocation in this API version (backfilling needs 1.58)",
            ))
        }
        Some(ident) => Some(
            store
                .node(&ident)
                .await
                .map_err(resource::missing_is_bad_request)?,
        ),
        None => None,
    };
    if a.resource_class.is_none() {
        match &node {
            Some(n) => a.resource_class = n.resource_class.clone(),
            None => {
                return Err(ApiError::bad_request(
                    "The resource_class field is mandatory when not backfilling",
                ))
            }
        }
    }
    a.candidate_nodes = state
        .conductor
        .resolve_candidates(&str_list(obj, "candidate_nodes")?)
        .await?;
    a.uuid = match obj.get("uuid") {
        None | Some(Value::Null) => match node.as_ref().and_then(|n| n.instance_uuid.clone()) {
            // A backfill without a UUID takes the node's instance_uuid (Ironic).
            Some(instance) => instance,
            None => resource::new_uuid(None)?,
        },
        given => resource::new_uuid(given)?,
    };
    let made = match &node {
        Some(n) => state.conductor.backfill_allocation(a, n).await?,
        None => state.conductor.create_allocation(a).await?,
    };
    let location = format!("{}/v1/allocations/{}", ctx.base, made.uuid);
    Ok(super::created(
        Value::Object(render(&made, &ctx.base, ctx.version)),
        &location,
    ))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, PATCH_SINCE, true)?;
    let ident = resource::strip_json(&ident, ctx.version);
    resource::check_ident(ident)?;
    let ops = patch::parse(&body, &["name", "extra"]).map_err(ApiError::bad_request)?;
    let store = state.conductor.store();
    let mut a = store.allocation(ident).await?;
    let mut doc = Map::new();
    doc.insert("name".into(), json!(a.name));
    doc.insert("extra".into(), Value::Object(a.extra.clone()));
    patch::apply(&mut doc, &ops).map_err(ApiError::bad_request)?;
    a.name = resource::want_str("name", doc.get("name").unwrap_or(&Value::Null))?;
    check_name(&a.name, "update")?;
    a.extra = resource::want_map("extra", doc.get("extra").unwrap_or(&Value::Null))?;
    let a = store.save_allocation(&a).await?;
    Ok(Json(Value::Object(render(&a, &ctx.base, ctx.version))))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, SINCE, true)?;
    let ident = resource::strip_json(&ident, ctx.version);
    resource::check_ident(ident)?;
    let a = state.conductor.store().allocation(ident).await?;
    state.conductor.delete_allocation(&a).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_shown_and_asked_for_from_1_60() {
        let a = Allocation {
            uuid: "u".into(),
            state: "active".into(),
            ..Allocation::default()
        };
        assert!(render(&a, "http://h", Version(59)).get("owner").is_none());
        assert!(render(&a, "http://h", OWNER_SINCE).contains_key("owner"));
        let q: HashMap<String, String> = [("fields".to_string(), "uuid,owner".to_string())].into();
        assert_eq!(fields(&q, Version(59)).unwrap_err().status, 406);
        assert!(fields(&q, OWNER_SINCE).unwrap().is_some());
    }
}
