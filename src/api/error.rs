//! The one place errors become HTTP responses, in Ironic's body shape: a JSON object whose
//! `error_message` is itself a JSON string `{"faultcode", "faultstring", "debuginfo"}`.
//! Server errors never echo internals: the cause is logged, the client gets a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::conductor::ConductorError;
use crate::store::StoreError;

/// An API error: a status and a message a person understands.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error: the conductor could not complete the request; see its log for the cause.",
        )
    }
}

/// Ironic's double-encoded error body.
pub fn body(status: StatusCode, message: &str) -> serde_json::Value {
    let fault = if status.is_server_error() {
        "Server"
    } else {
        "Client"
    };
    let inner = json!({"faultcode": fault, "faultstring": message, "debuginfo": null});
    json!({"error_message": inner.to_string()})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(body(self.status, &self.message))).into_response()
    }
}

impl From<ConductorError> for ApiError {
    fn from(e: ConductorError) -> Self {
        let status = match &e {
            ConductorError::NotFound { .. } => StatusCode::NOT_FOUND,
            ConductorError::Locked { .. } | ConductorError::Conflict(_) => StatusCode::CONFLICT,
            ConductorError::Protected(_) => StatusCode::FORBIDDEN,
            ConductorError::InvalidState { .. } | ConductorError::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            ConductorError::Store(StoreError::LockLost { .. }) => StatusCode::CONFLICT,
            ConductorError::Bmc(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConductorError::Store(inner) => return ApiError::internal(inner),
            ConductorError::Internal(why) => return ApiError::internal(why),
            ConductorError::NameInUse(why) => return ApiError::internal(why),
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // Ironic's words for a list's bad sort key and unknown marker.
            StoreError::InvalidSortKey { key, valid } => ApiError::bad_request(format!(
                "The sort_key value \"{key}\" is an invalid field for sorting: use one of {valid}"
            )),
            StoreError::MarkerNotFound { kind, id } => {
                ApiError::not_found(format!("{kind} {id} could not be found."))
            }
            other => ConductorError::from(other).into(),
        }
    }
}
