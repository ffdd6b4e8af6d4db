//! The JSON body extractor: bad bodies are refused in Ironic's error shape with a message that
//! says what is wrong (Ironic itself answers 500 for malformed JSON; ironcast answers 400).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::Value;

use super::error::ApiError;
use super::limits;

/// A request body parsed as JSON.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let path = req.uri().path().to_string();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                limits::too_large(limits::body_limit(&path))
            } else {
                ApiError::bad_request(format!("Cannot read the request body: {e}"))
            }
        })?;
        let values = limits::count_json_values(&bytes, limits::MAX_JSON_VALUES);
        if values > limits::MAX_JSON_VALUES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request body holds more than {} JSON values: send fewer",
                    limits::MAX_JSON_VALUES
                ),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "The request body is empty: send a JSON document",
            ));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid JSON in request body: {e}. Check quoting and commas"
            ))
        })
    }
}
