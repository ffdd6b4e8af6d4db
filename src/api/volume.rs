//! /v1/volume (1.32+): a node's volume connectors and targets (create, list, show, JSON-Patch,
//! delete), also under /v1/nodes/{node}/volume. As in Ironic, a connector or target changes or
//! goes only while its node is powered off.

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
use crate::conductor::ConductorError;
use crate::store::{Filter, NodeLock, VolumeConnector, VolumeTarget};

const SINCE: u32 = 32;
/// Ironic's VALID_CONNECTOR_TYPES.
const CONNECTOR_TYPES: &[&str] = &["iqn", "ip", "mac", "wwnn", "wwpn", "port", "portgroup"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/volume", get(root))
        .route("/v1/volume/", get(root))
        .route(
            "/v1/volume/connectors",
            get(connectors).post(create_connector),
        )
        .route("/v1/volume/connectors/detail", get(connectors_detail))
        .route(
            "/v1/volume/connectors/{uuid}",
            get(show_connector)
                .patch(update_connector)
                .delete(remove_connector),
        )
        .route("/v1/volume/targets", get(targets).post(create_target))
        .route("/v1/volume/targets/detail", get(targets_detail))
        .route(
            "/v1/volume/targets/{uuid}",
            get(show_target).patch(update_target).delete(remove_target),
        )
        .route("/v1/nodes/{node}/volume", get(node_root))
        .route("/v1/nodes/{node}/volume/connectors", get(node_connectors))
        .route("/v1/nodes/{node}/volume/targets", get(node_targets))
}

async fn root(ctx: Ctx) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let b = &ctx.base;
    Ok(Json(json!({
        "links": [{"href": format!("{b}/v1/volume/"), "rel": "self"},
                  {"href": format!("{b}/volume/"), "rel": "bookmark"}],
        "connectors": links(b, "volume", "connectors"),
        "targets": links(b, "volume", "targets"),
    })))
}

async fn node_root(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(node): Path<String>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let uuid = state.conductor.store().node(&node).await?.uuid;
    let b = &ctx.base;
    Ok(Json(json!({
        "links": links(b, "nodes", &format!("{uuid}/volume/")),
        "connectors": links(b, "nodes", &format!("{uuid}/volume/connectors")),
        "targets": links(b, "nodes", &format!("{uuid}/volume/targets")),
    })))
}

const CONNECTOR_FIELDS: &[&str] = &[
    "uuid",
    "node_uuid",
    "type",
    "connector_id",
    "extra",
    "created_at",
    "updated_at",
    "links",
];
const CONNECTOR_BRIEF: &[&str] = &["uuid", "node_uuid", "type", "connector_id", "links"];
const TARGET_FIELDS: &[&str] = &[
    "uuid",
    "node_uuid",
    "volume_type",
    "properties",
    "boot_index",
    "volume_id",
    "extra",
    "created_at",
    "updated_at",
    "links",
];
const TARGET_BRIEF: &[&str] = &[
    "uuid",
    "node_uuid",
    "volume_type",
    "boot_index",
    "volume_id",
    "links",
];

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal"),
    }
}

fn render_connector(c: &VolumeConnector, base: &str) -> Map<String, Value> {
    object(json!({
        "uuid": c.uuid, "node_uuid": c.node_uuid, "type": c.kind,
        "connector_id": c.connector_id, "extra": c.extra,
        "created_at": iso(&c.created_at), "updated_at": c.updated_at.as_ref().map(iso),
        "links": links(base, "volume/connectors", &c.uuid),
    }))
}

fn render_target(t: &VolumeTarget, base: &str) -> Map<String, Value> {
    object(json!({
        "uuid": t.uuid, "node_uuid": t.node_uuid, "volume_type": t.volume_type,
        "properties": t.properties, "boot_index": t.boot_index, "volume_id": t.volume_id,
        "extra": t.extra,
        "created_at": iso(&t.created_at), "updated_at": t.updated_at.as_ref().map(iso),
        "links": links(base, "volume/targets", &t.uuid),
    }))
}

/// The fields a list shows and the store query for its page (node from the path or `?node=`).
async fn list_query(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    node: Option<&str>,
    detail: bool,
    (known, brief): (&[&str], &[&str]),
) -> ApiResult<(Option<Vec<String>>, crate::store::ListQuery)> {
    gate(ctx.version, SINCE, false)?;
    reject_unknown(q, &["node"])?;
    let fields = if detail {
        None
    } else {
        resource::list_fields(q, ctx.version, known, brief)?
    };
    let mut query = page_query(q, state.max_limit)?;
    query.columns = fields.clone();
    if let Some(ident) = node.or(q.get("node").map(String::as_str)) {
        let uuid = state.conductor.store().node(ident).await?.uuid;
        query.filters.push(Filter::Eq("node_uuid", uuid.into()));
    }
    Ok((fields, query))
}

async fn connector_list(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    node: Option<&str>,
    detail: bool,
    path: &str,
) -> ApiResult<Json<Value>> {
    let (fields, query) = list_query(
        state,
        ctx,
        q,
        node,
        detail,
        (CONNECTOR_FIELDS, CONNECTOR_BRIEF),
    )
    .await?;
    let page = state
        .conductor
        .store()
        .list_volume_connectors(&query)
        .await?;
    let listed = Listed {
        key: "connectors",
        path,
        q,
        limit: query.limit,
        fields: fields.as_deref(),
    };
    Ok(listed.answer(
        &ctx.base,
        &page,
        |c| &c.uuid,
        |c| render_connector(c, &ctx.base),
    ))
}

async fn target_list(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    node: Option<&str>,
    detail: bool,
    path: &str,
) -> ApiResult<Json<Value>> {
    let (fields, query) =
        list_query(state, ctx, q, node, detail, (TARGET_FIELDS, TARGET_BRIEF)).await?;
    let page = state.conductor.store().list_volume_targets(&query).await?;
    let listed = Listed {
        key: "targets",
        path,
        q,
        limit: query.limit,
        fields: fields.as_deref(),
    };
    Ok(listed.answer(
        &ctx.base,
        &page,
        |t| &t.uuid,
        |t| render_target(t, &ctx.base),
    ))
}

type Q = Query<HashMap<String, String>>;

async fn connectors(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> ApiResult<Json<Value>> {
    connector_list(&s, &ctx, &q, None, false, "volume/connectors").await
}
async fn connectors_detail(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    connector_list(&s, &ctx, &q, None, true, "volume/connectors/detail").await
}
async fn node_connectors(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(node): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    let path = format!("nodes/{node}/volume/connectors");
    connector_list(&s, &ctx, &q, Some(&node), false, &path).await
}
async fn targets(State(s): State<AppState>, ctx: Ctx, Query(q): Q) -> ApiResult<Json<Value>> {
    target_list(&s, &ctx, &q, None, false, "volume/targets").await
}
async fn targets_detail(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    target_list(&s, &ctx, &q, None, true, "volume/targets/detail").await
}
async fn node_targets(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(node): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    let path = format!("nodes/{node}/volume/targets");
    target_list(&s, &ctx, &q, Some(&node), false, &path).await
}

/// The node a connector or target belongs to must exist (400 otherwise, as Ironic).
async fn check_node(state: &AppState, node: &str) -> ApiResult<()> {
    state
        .conductor
        .store()
        .node(node)
        .await
        .map_err(resource::missing_is_bad_request)?;
    Ok(())
}

/// Locks the node for `action` (waiting for a power action in flight, as Ironic's task
/// manager does) and checks Ironic's rule: powered off, or for a deletion in a state where
/// node deletion is allowed.
async fn lock_for(state: &AppState, node: &str, action: &str) -> ApiResult<NodeLock> {
    check_node(state, node).await?;
    let (lock, n) = state.conductor.lock(node).await?;
    let deletable = action.ends_with("deletion")
        && matches!(
            n.provision_state.as_str(),
            "manageable" | "enroll" | "adopt failed"
        );
    if !deletable && n.power_state.as_deref() != Some("power off") {
        let _ = lock.release().await;
        return Err(ConductorError::InvalidState {
            action: action.into(),
            node: n.uuid,
            state: n.power_state.unwrap_or_else(|| "None".into()),
        }
        .into());
    }
    Ok(lock)
}

fn set_connector(c: &mut VolumeConnector, name: &str, v: &Value) -> ApiResult<()> {
    let required = |v: &Value| -> ApiResult<String> {
        resource::want_str(name, v)?
            .ok_or_else(|| ApiError::bad_request(format!("'{name}' is a required property")))
    };
    match name {
        "node_uuid" => {
            let n = required(v)?;
            resource::check_uuid(&n)?;
            c.node_uuid = n;
        }
        "type" => {
            let t = required(v)?;
            if !CONNECTOR_TYPES.contains(&t.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Invalid type {t}: use one of {}",
                    CONNECTOR_TYPES.join(", ")
                )));
            }
            c.kind = t;
        }
        "connector_id" => c.connector_id = required(v)?,
        "extra" => c.extra = resource::want_map(name, v)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{other}' was unexpected)"
            )))
        }
    }
    Ok(())
}

fn set_target(t: &mut VolumeTarget, name: &str, v: &Value) -> ApiResult<()> {
    let required = |v: &Value| -> ApiResult<String> {
        resource::want_str(name, v)?
            .ok_or_else(|| ApiError::bad_request(format!("'{name}' is a required property")))
    };
    match name {
        "node_uuid" => {
            let n = required(v)?;
            resource::check_uuid(&n)?;
            t.node_uuid = n;
        }
        "volume_type" => t.volume_type = required(v)?,
        "volume_id" => t.volume_id = required(v)?,
        "boot_index" => {
            t.boot_index = match v {
                Value::Number(n) if n.as_i64().is_some_and(|i| i >= 0) => n.as_i64().unwrap_or(0),
                Value::String(s) if s.parse::<u32>().is_ok() => s.parse::<i64>().unwrap_or(0),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid boot_index: {other} is not a non-negative integer"
                    )))
                }
            }
        }
        "properties" => t.properties = resource::want_map(name, v)?,
        "extra" => t.extra = resource::want_map(name, v)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{other}' was unexpected)"
            )))
        }
    }
    Ok(())
}

const CONNECTOR_WRITABLE: &[&str] = &["node_uuid", "type", "connector_id", "extra"];
const TARGET_WRITABLE: &[&str] = &[
    "node_uuid",
    "volume_type",
    "volume_id",
    "boot_index",
    "properties",
    "extra",
];

/// Applies a JSON-Patch to the writable fields of `doc` and returns the changed ones.
fn patched(
    doc: &Map<String, Value>,
    writable: &[&str],
    body: &Value,
) -> ApiResult<Vec<(String, Value)>> {
    let ops = patch::parse(body, writable).map_err(ApiError::bad_request)?;
    let before: Map<String, Value> = writable
        .iter()
        .map(|f| (f.to_string(), doc.get(*f).cloned().unwrap_or(Value::Null)))
        .collect();
    let mut after = before.clone();
    patch::apply(&mut after, &ops).map_err(ApiError::bad_request)?;
    Ok(after
        .into_iter()
        .filter(|(k, v)| before.get(k) != Some(v))
        .collect())
}

fn required_keys(obj: &Map<String, Value>, keys: &[&str]) -> ApiResult<()> {
    match keys
        .iter()
        .find(|k| obj.get(**k).is_none_or(Value::is_null))
    {
        Some(k) => Err(ApiError::bad_request(format!(
            "'{k}' is a required property"
        ))),
        None => Ok(()),
    }
}

async fn create_connector(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    gate(ctx.version, SINCE, false)?;
    let mut allowed = CONNECTOR_WRITABLE.to_vec();
    allowed.push("uuid");
    let obj = resource::object(&body, &allowed)?;
    required_keys(obj, &["node_uuid", "type", "connector_id"])?;
    let mut c = VolumeConnector {
        uuid: resource::new_uuid(obj.get("uuid"))?,
        created_at: Utc::now(),
        ..VolumeConnector::default()
    };
    for (k, v) in obj.iter().filter(|(k, _)| *k != "uuid") {
        set_connector(&mut c, k, v)?;
    }
    check_node(&state, &c.node_uuid).await?;
    let c = state.conductor.store().create_volume_connector(&c).await?;
    let location = format!("{}/v1/volume/connectors/{}", ctx.base, c.uuid);
    Ok(super::created(
        Value::Object(render_connector(&c, &ctx.base)),
        &location,
    ))
}

async fn show_connector(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    resource::check_uuid(&uuid)?;
    let fields = resource::parse_fields(&q, ctx.version, CONNECTOR_FIELDS)?;
    let c = state.conductor.store().volume_connector(&uuid).await?;
    Ok(Json(resource::select(
        render_connector(&c, &ctx.base),
        fields.as_deref(),
    )))
}

async fn update_connector(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    resource::check_uuid(&uuid)?;
    let store = state.conductor.store();
    let mut c = store.volume_connector(&uuid).await?;
    for (k, v) in patched(&render_connector(&c, ""), CONNECTOR_WRITABLE, &body)? {
        set_connector(&mut c, &k, &v)?;
    }
    let lock = lock_for(&state, &c.node_uuid, "volume connector update").await?;
    let saved = store.save_volume_connector(&c).await;
    let _ = lock.release().await;
    let c = saved?;
    Ok(Json(Value::Object(render_connector(&c, &ctx.base))))
}

async fn remove_connector(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, SINCE, false)?;
    resource::check_uuid(&uuid)?;
    let store = state.conductor.store();
    let c = store.volume_connector(&uuid).await?;
    let lock = lock_for(&state, &c.node_uuid, "volume connector deletion").await?;
    let deleted = store.delete_volume_connector(&c.uuid).await;
    let _ = lock.release().await;
    deleted?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_target(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    gate(ctx.version, SINCE, false)?;
    let mut allowed = TARGET_WRITABLE.to_vec();
    allowed.push("uuid");
    let obj = resource::object(&body, &allowed)?;
    required_keys(
        obj,
        &["node_uuid", "volume_type", "volume_id", "boot_index"],
    )?;
    let mut t = VolumeTarget {
        uuid: resource::new_uuid(obj.get("uuid"))?,
        created_at: Utc::now(),
        ..VolumeTarget::default()
    };
    for (k, v) in obj.iter().filter(|(k, _)| *k != "uuid") {
        set_target(&mut t, k, v)?;
    }
    check_node(&state, &t.node_uuid).await?;
    let t = state.conductor.store().create_volume_target(&t).await?;
    let location = format!("{}/v1/volume/targets/{}", ctx.base, t.uuid);
    Ok(super::created(
        Value::Object(render_target(&t, &ctx.base)),
        &location,
    ))
}

async fn show_target(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    resource::check_uuid(&uuid)?;
    let fields = resource::parse_fields(&q, ctx.version, TARGET_FIELDS)?;
    let t = state.conductor.store().volume_target(&uuid).await?;
    Ok(Json(resource::select(
        render_target(&t, &ctx.base),
        fields.as_deref(),
    )))
}

async fn update_target(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    resource::check_uuid(&uuid)?;
    let store = state.conductor.store();
    let mut t = store.volume_target(&uuid).await?;
    for (k, v) in patched(&render_target(&t, ""), TARGET_WRITABLE, &body)? {
        set_target(&mut t, &k, &v)?;
    }
    let lock = lock_for(&state, &t.node_uuid, "volume target update").await?;
    let saved = store.save_volume_target(&t).await;
    let _ = lock.release().await;
    let t = saved?;
    Ok(Json(Value::Object(render_target(&t, &ctx.base))))
}

async fn remove_target(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, SINCE, false)?;
    resource::check_uuid(&uuid)?;
    let store = state.conductor.store();
    let t = store.volume_target(&uuid).await?;
    let lock = lock_for(&state, &t.node_uuid, "volume target deletion").await?;
    let deleted = store.delete_volume_target(&t.uuid).await;
    let _ = lock.release().await;
    deleted?;
    Ok(StatusCode::NO_CONTENT)
}
