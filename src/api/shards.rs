//! /v1/shards (1.82+): how many nodes each shard holds, most first; nodes without a shard
//! count under the name "None", as in Ironic. There is no single-shard resource.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::resource::gate;
use super::{AppState, Ctx};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/shards", get(list))
        .route("/v1/shards/", get(list))
        .route("/v1/shards/{name}", get(show))
}

/// Shards appeared in 1.82.
const SINCE: u32 = 82;

async fn list(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let counts = state.conductor.store().shard_counts().await?;
    let shards: Vec<Value> = counts
        .into_iter()
        .map(|(name, count)| json!({"name": name.unwrap_or_else(|| "None".into()), "count": count}))
        .collect();
    Ok(Json(json!({ "shards": shards })))
}

async fn show(ctx: Ctx, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    Err(ApiError::not_found(format!(
        "There is no single shard resource ({name}): GET /v1/shards lists them all, and GET /v1/nodes?shard={name} the nodes of one"
    )))
}
