//! `/v1/nodes/{node}/capture`: capture a node's root disk as a named image (an ironcast
//! extension, no Ironic counterpart; the conductor's side is `conductor::capture`).
//!
//! - `POST` with `{"name": "golden", "format": "qcow2" | "raw.zst"}` (format defaults to
//!   qcow2): `202 Accepted`, `Location` the node, body the node's `capture` record. `400`
//!   for a bad name or format, or when the cache cannot hold the disk (the sizes named);
//!   `409` when the node is neither `active` nor `manageable`, or locked.
//! - `GET`: the node's last `capture` record (`404` when it never had one).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::{AppState, Ctx};
use crate::conductor::{parse_capture_request, CAPTURE_KEY};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/nodes/{ident}/capture", post(start).get(show))
}

async fn start(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let obj = body.as_object().ok_or_else(|| {
        ApiError::bad_request("The capture request must be a JSON object such as {\"name\": \"golden\", \"format\": \"qcow2\"}")
    })?;
    if let Some(bad) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "format"))
    {
        return Err(ApiError::bad_request(format!(
            "Unknown attribute for capture request: {bad}. Accepted: name, format"
        )));
    }
    let name = obj.get("name").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request(
            "Missing mandatory parameter: name (the name to register the image under)",
        )
    })?;
    let format = match obj.get("format") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) => Some(f.as_str()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be \"qcow2\" or \"raw.zst\", not {other}"
            )))
        }
    };
    let request = parse_capture_request(name, format)?;
    let node = state.conductor.capture(&ident, request).await?;
    let record = node
        .driver_internal_info
        .get(CAPTURE_KEY)
        .cloned()
        .unwrap_or(Value::Null);
    let mut resp = (StatusCode::ACCEPTED, Json(record)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v1/nodes/{}", ctx.base, node.uuid)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn show(State(state): State<AppState>, Path(ident): Path<String>) -> ApiResult<Json<Value>> {
    let node = state.conductor.store().node(&ident).await?;
    node.driver_internal_info
        .get(CAPTURE_KEY)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("Node {} has never been captured.", node.uuid)))
}
