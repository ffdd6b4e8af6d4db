//! `/v1/agent/{node}/…`: the agent protocol's endpoints (documented in `agent::protocol`).
//! Thin: check the body, hand it to the conductor's `AgentHub`, render. Not behind the API's
//! basic auth: every call is authorised by the node's agent token instead, and a refused token
//! is logged with the node and the caller's address.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::agent::protocol::{CommandOutcome, Heartbeat, Progress, TOKEN_HEADER};
use crate::capture::CaptureError;
use crate::conductor::HubError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/agent/{node}/heartbeat", post(heartbeat))
        .route("/v1/agent/{node}/commands/{id}/progress", post(progress))
        .route("/v1/agent/{node}/commands/{id}/result", post(result))
        .route("/v1/agent/{node}/commands/{id}/upload", put(upload))
}

/// The caller's address, when the server recorded it (not in in-process tests).
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("unknown"),
        }
    }
}

/// The token from `X-Ironcast-Agent-Token`, if any.
pub fn token_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok())
}

/// Maps a hub refusal to its answer, logging a refused token with who sent it.
pub fn refused(e: HubError, peer: &Peer) -> ApiError {
    match &e {
        HubError::Forbidden { node } => {
            tracing::warn!(node = %node, peer = %peer, "agent token refused");
            ApiError::new(StatusCode::FORBIDDEN, e.to_string())
        }
        HubError::UnknownCommand { .. } => ApiError::not_found(e.to_string()),
    }
}

fn parse<T: DeserializeOwned>(body: serde_json::Value, what: &str) -> ApiResult<T> {
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid {what} body: {e}")))
}

async fn heartbeat(
    State(state): State<AppState>,
    peer: Peer,
    Path(node): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let beat: Heartbeat = parse(body, "agent heartbeat")?;
    let reply = state
        .conductor
        .agent_hub()
        .heartbeat(&node, token_header(&headers), beat)
        .await
        .map_err(|e| refused(e, &peer))?;
    Ok(Json(reply).into_response())
}

async fn progress(
    State(state): State<AppState>,
    peer: Peer,
    Path((node, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let progress: Progress = parse(body, "command progress")?;
    state
        .conductor
        .agent_hub()
        .progress(&node, token_header(&headers), &id, progress)
        .map_err(|e| refused(e, &peer))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn result(
    State(state): State<AppState>,
    peer: Peer,
    Path((node, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let outcome: CommandOutcome = parse(body, "command result")?;
    state
        .conductor
        .agent_hub()
        .result(&node, token_header(&headers), &id, outcome)
        .map_err(|e| refused(e, &peer))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a capture's stream (see `agent::protocol`) into the image cache.
async fn upload(
    State(state): State<AppState>,
    peer: Peer,
    Path((node, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let conductor = &state.conductor;
    conductor
        .agent_hub()
        .expect_upload(&node, token_header(&headers), &id)
        .map_err(|e| refused(e, &peer))?;
    let captures = conductor.captures().ok_or_else(|| {
        ApiError::not_found("this conductor has no image cache to take captures into".to_string())
    })?;
    let image = captures
        .receive(&node, body.into_data_stream())
        .await
        .map_err(|e| {
            tracing::warn!(node = %node, peer = %peer, error = %e, "capture upload refused");
            match e {
                CaptureError::NotExpected { .. } => {
                    ApiError::new(StatusCode::CONFLICT, e.to_string())
                }
                CaptureError::Wire(_) | CaptureError::Mismatch(_) => {
                    ApiError::bad_request(e.to_string())
                }
                other => ApiError::internal(other.to_string()),
            }
        })?;
    Ok(Json(image).into_response())
}
