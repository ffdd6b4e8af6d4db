//! A node's boot device (`/v1/nodes/{node}/management/boot_device[/supported]`) and console
//! (`/v1/nodes/{node}/states/console`, also reachable as `/v1/nodes/states/console/{node}`
//! as in Ironic's object routing).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::resource;
use super::{AppState, Ctx};
use crate::conductor::management::{boot_device, BOOT_DEVICES};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/nodes/{ident}/management/boot_device",
            get(show_boot_device).put(set_boot_device),
        )
        .route(
            "/v1/nodes/{ident}/management/boot_device/supported",
            get(supported_boot_devices),
        )
        .route(
            "/v1/nodes/{ident}/states/console",
            get(show_console).put(set_console),
        )
        .route("/v1/nodes/states/console/{ident}", get(show_console))
}

async fn show_boot_device(
    State(state): State<AppState>,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let node = state.conductor.store().node(&ident).await?;
    let (device, persistent) = boot_device(&node);
    Ok(Json(
        json!({"boot_device": device, "persistent": persistent}),
    ))
}

async fn supported_boot_devices(
    State(state): State<AppState>,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    state.conductor.store().node(&ident).await?;
    let names: Vec<&str> = BOOT_DEVICES.iter().map(|(n, _)| *n).collect();
    Ok(Json(json!({ "supported_boot_devices": names })))
}

async fn set_boot_device(
    State(state): State<AppState>,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let obj = resource::object(&body, &["boot_device", "persistent"])?;
    let device = obj
        .get("boot_device")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Missing mandatory parameter: boot_device (e.g. {\"boot_device\": \"pxe\"})",
            )
        })?;
    let persistent = match obj.get("persistent") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => resource::parse_bool("persistent", s)?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for persistent: {other} is not a boolean"
            )))
        }
    };
    state
        .conductor
        .set_boot_device(&ident, device, persistent)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn show_console(
    State(state): State<AppState>,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let node = state.conductor.store().node(&ident).await?;
    // The fake console has no connection details; a disabled console has none at all.
    let info = if node.console_enabled {
        json!({"type": node.console_interface, "url": null})
    } else {
        Value::Null
    };
    Ok(Json(
        json!({"console_enabled": node.console_enabled, "console_info": info}),
    ))
}

async fn set_console(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let obj = resource::object(&body, &["enabled"])?;
    let enabled = match obj.get("enabled") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => resource::parse_bool("enabled", s)?,
        _ => {
            return Err(ApiError::bad_request(
                "Missing mandatory parameter: enabled (true or false)",
            ))
        }
    };
    let node = state.conductor.set_console(&ident, enabled).await?;
    let mut resp = StatusCode::ACCEPTED.into_response();
    let location = format!("{}/v1/nodes/{}/states/console", ctx.base, node.uuid);
    if let Ok(loc) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}
