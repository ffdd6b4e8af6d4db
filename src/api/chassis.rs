//! /v1/chassis: groups of nodes (create, list, show, JSON-Patch, delete, the nodes of one).
//! A chassis that still holds nodes cannot be deleted (400, Ironic's message).

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
use super::resource::{self, check_uuid, links};
use super::{patch, AppState, Ctx};
use crate::store::Chassis;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/chassis", get(list).post(create))
        .route("/v1/chassis/", get(list).post(create))
        .route("/v1/chassis/detail", get(list_detail))
        .route("/v1/chassis/{uuid}", get(show).patch(update).delete(remove))
        .route("/v1/chassis/{uuid}/nodes", get(nodes))
        .route("/v1/chassis/{uuid}/nodes/detail", get(nodes_detail))
}

const FIELDS: &[&str] = &[
    "uuid",
    "description",
    "extra",
    "created_at",
    "updated_at",
    "links",
    "nodes",
];
const BRIEF: &[&str] = &["uuid", "description", "links"];
const WRITABLE: &[&str] = &["description", "extra"];

fn render(c: &Chassis, base: &str) -> Map<String, Value> {
    let nodes = links(base, "chassis", &format!("{}/nodes", c.uuid));
    let doc = json!({
        "uuid": c.uuid,
        "description": c.description,
        "extra": c.extra,
        "created_at": iso(&c.created_at),
        "updated_at": c.updated_at.as_ref().map(iso),
        "links": links(base, "chassis", &c.uuid),
        "nodes": nodes,
    });
    match doc {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal"),
    }
}

/// A page of chassis: paging, `fields` and `detail` in one store query.
async fn listing(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    detail: bool,
    path: &str,
) -> ApiResult<Json<Value>> {
    reject_unknown(q, &[])?;
    let fields = resource::route_fields(q, ctx.version, FIELDS, BRIEF, detail)?;
    let mut query = page_query(q, state.max_limit)?;
    query.columns = fields.clone();
    let page = state.conductor.store().list_chassis(&query).await?;
    let listed = Listed {
        key: "chassis",
        path,
        q,
        limit: query.limit,
        fields: fields.as_deref(),
    };
    Ok(listed.answer(&ctx.base, &page, |c| &c.uuid, |c| render(c, &ctx.base)))
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    listing(&state, &ctx, &q, false, "chassis").await
}

async fn list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    listing(&state, &ctx, &q, true, "chassis/detail").await
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let obj = resource::object(&body, &["uuid", "description", "extra"])?;
    let description = match obj.get("description") {
        None => None,
        Some(v) => resource::want_str("description", v)?,
    };
    check_description(description.as_deref())?;
    let chassis = Chassis {
        id: 0,
        uuid: resource::new_uuid(obj.get("uuid"))?,
        description,
        extra: match obj.get("extra") {
            None => Map::new(),
            Some(v) => resource::want_map("extra", v)?,
        },
        created_at: Utc::now(),
        updated_at: None,
    };
    let chassis = state.conductor.store().create_chassis(&chassis).await?;
    let location = format!("{}/v1/chassis/{}", ctx.base, chassis.uuid);
    Ok(super::created(
        Value::Object(render(&chassis, &ctx.base)),
        &location,
    ))
}

fn check_description(d: Option<&str>) -> ApiResult<()> {
    match d {
        Some(d) if d.chars().count() > 255 => Err(ApiError::bad_request(format!(
            "Invalid description: {} characters is longer than the 255 allowed",
            d.chars().count()
        ))),
        _ => Ok(()),
    }
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    check_uuid(&uuid)?;
    let fields = resource::parse_fields(&q, ctx.version, FIELDS)?;
    let chassis = state.conductor.store().chassis(&uuid).await?;
    Ok(Json(resource::select(
        render(&chassis, &ctx.base),
        fields.as_deref(),
    )))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let ops = patch::parse(&body, WRITABLE).map_err(ApiError::bad_request)?;
    let store = state.conductor.store();
    let mut chassis = store.chassis(&uuid).await?;
    let mut doc = Map::new();
    doc.insert("description".into(), json!(chassis.description));
    doc.insert("extra".into(), Value::Object(chassis.extra.clone()));
    patch::apply(&mut doc, &ops).map_err(ApiError::bad_request)?;
    chassis.description = resource::want_str("description", &doc["description"])?;
    check_description(chassis.description.as_deref())?;
    chassis.extra = resource::want_map("extra", &doc["extra"])?;
    let chassis = store.save_chassis(&chassis).await?;
    Ok(Json(Value::Object(render(&chassis, &ctx.base))))
}

async fn remove(State(state): State<AppState>, Path(uuid): Path<String>) -> ApiResult<StatusCode> {
    check_uuid(&uuid)?;
    state.conductor.store().delete_chassis(&uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The nodes of a chassis: the node list with `chassis_uuid` set.
async fn nodes(
    state: State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    Query(mut q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_uuid(&uuid)?;
    state.conductor.store().chassis(&uuid).await?;
    q.insert("chassis_uuid".into(), uuid.to_ascii_lowercase());
    super::node_list::list_filtered(state, ctx, q, false).await
}

async fn nodes_detail(
    state: State<AppState>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    Query(mut q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    check_uuid(&uuid)?;
    state.conductor.store().chassis(&uuid).await?;
    q.insert("chassis_uuid".into(), uuid.to_ascii_lowercase());
    super::node_list::list_filtered(state, ctx, q, true).await
}
