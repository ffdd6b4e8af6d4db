//! ironcast's extension API for Metal3 manifests (not part of Ironic's): what `ironcast apply`,
//! `get bmh` and `delete bmh` call.
//!
//! - `POST /v1/metal3/manifests`: a multi-document YAML body (BareMetalHost + Secrets), applied
//!   all or nothing; answers each document's result as kubectl reports it.
//! - `GET /v1/metal3/baremetalhosts[?namespace=NS]`: every host with its status, in BMO's shape.
//! - `GET|DELETE /v1/metal3/baremetalhosts/{namespace}/{name}`: one host; delete deprovisions
//!   first, then removes the node and the host (202: the reconciler does it).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::metal3::{self, Metal3Error};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/metal3/manifests", post(apply))
        .route("/v1/metal3/baremetalhosts", get(list))
        .route(
            "/v1/metal3/baremetalhosts/{namespace}/{name}",
            get(show).delete(remove),
        )
}

impl From<Metal3Error> for ApiError {
    fn from(e: Metal3Error) -> Self {
        match e {
            Metal3Error::Invalid(m) => ApiError::bad_request(m),
            Metal3Error::NotFound(m) => ApiError::not_found(format!("BareMetalHost {m} not found")),
            Metal3Error::Store(s) => s.into(),
            Metal3Error::Corrupt(m) => ApiError::internal(m),
        }
    }
}

async fn apply(State(st): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("The manifest is not UTF-8 text: send YAML"))?;
    let done = metal3::apply(st.conductor.store(), text).await?;
    Ok((StatusCode::OK, Json(json!({ "applied": done }))).into_response())
}

async fn list(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<serde_json::Value>> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "namespace") {
        return Err(ApiError::bad_request(format!(
            "Unknown parameter {k}: only namespace is accepted"
        )));
    }
    let rows = st
        .conductor
        .store()
        .metal3_hosts(q.get("namespace").map(String::as_str))
        .await?;
    let items: Vec<_> = rows.iter().map(metal3::host_object).collect();
    Ok(Json(json!({
        "apiVersion": "metal3.io/v1alpha1",
        "kind": "BareMetalHostList",
        "items": items,
    })))
}

async fn show(
    State(st): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let row = st
        .conductor
        .store()
        .metal3_host(&namespace, &name)
        .await?
        .ok_or_else(|| Metal3Error::NotFound(format!("{namespace}/{name}")))?;
    Ok(Json(metal3::host_object(&row)))
}

async fn remove(
    State(st): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    match st
        .conductor
        .store()
        .metal3_mark_deleting(&namespace, &name)
        .await
    {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(crate::store::StoreError::NotFound { .. }) => {
            Err(Metal3Error::NotFound(format!("{namespace}/{name}")).into())
        }
        Err(e) => Err(e.into()),
    }
}
