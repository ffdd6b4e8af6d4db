//! /v1/conductors (1.49+): the conductors of the heartbeat table, alive while online and
//! heard from within `[conductor] heartbeat_timeout_s`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::node_json::iso;
use super::resource::{self, gate, links};
use super::{AppState, Ctx};
use crate::conductor::SUPPORTED_DRIVERS;
use crate::store::ConductorRow;

const SINCE: u32 = 49;
const FIELDS: &[&str] = &[
    "hostname",
    "conductor_group",
    "alive",
    "drivers",
    "created_at",
    "updated_at",
    "links",
];
const BRIEF: &[&str] = &["hostname", "conductor_group", "alive", "links"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/conductors", get(list))
        .route("/v1/conductors/", get(list))
        .route("/v1/conductors/{hostname}", get(show))
}

fn render(state: &AppState, c: &ConductorRow, base: &str) -> Map<String, Value> {
    let timeout = chrono::Duration::seconds(state.conductor.heartbeat_timeout_s() as i64);
    let alive = c.online && Utc::now() - c.heartbeat_at < timeout;
    match json!({
        "hostname": c.hostname,
        "conductor_group": "",
        "alive": alive,
        "drivers": SUPPORTED_DRIVERS,
        "created_at": iso(&c.created_at),
        "updated_at": iso(&c.heartbeat_at),
        "links": links(base, "conductors", &c.hostname),
    }) {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal"),
    }
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let fields = resource::list_fields(&q, ctx.version, FIELDS, BRIEF)?;
    let rows = state.conductor.store().conductors().await?;
    let docs: Vec<Value> = rows
        .iter()
        .map(|c| resource::select(render(&state, c, &ctx.base), fields.as_deref()))
        .collect();
    Ok(Json(json!({ "conductors": docs })))
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(hostname): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let fields = resource::parse_fields(&q, ctx.version, FIELDS)?;
    let row = state
        .conductor
        .store()
        .conductor(&hostname)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Conductor {hostname} could not be found.")))?;
    Ok(Json(resource::select(
        render(&state, &row, &ctx.base),
        fields.as_deref(),
    )))
}
