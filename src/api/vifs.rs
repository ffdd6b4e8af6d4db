//! /v1/nodes/{node}/vifs (1.28+): list, attach (`{"id": "<vif>"}`), detach.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::resource::{self, gate};
use super::{AppState, Ctx};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/nodes/{ident}/vifs", get(list).post(attach))
        .route("/v1/nodes/{ident}/vifs/{vif}", delete(detach))
}

/// VIFs appeared in 1.28; before, Ironic answers 404 to every method.
const SINCE: u32 = 28;

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let vifs: Vec<Value> = state
        .conductor
        .vifs(&ident)
        .await?
        .into_iter()
        .map(|id| json!({ "id": id }))
        .collect();
    Ok(Json(json!({ "vifs": vifs })))
}

async fn attach(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    gate(ctx.version, SINCE, false)?;
    let obj = body.as_object().ok_or_else(|| {
        ApiError::bad_request(
            "Invalid VIF: the body must be a JSON object such as {\"id\": \"<vif>\"}",
        )
    })?;
    let vif = obj.get("id").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("Missing mandatory parameter: id (the VIF to attach)")
    })?;
    resource::check_ident(vif)?;
    state.conductor.attach_vif(&ident, vif).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn detach(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((ident, vif)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, SINCE, false)?;
    state.conductor.detach_vif(&ident, &vif).await?;
    Ok(StatusCode::NO_CONTENT)
}
