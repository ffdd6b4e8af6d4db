//! How much one request may make the API hold: body sizes per route, the number of values a
//! JSON body may parse into, and the size of each JSON field stored on a node.
//!
//! A parsed `serde_json::Value` costs far more than its text (32 bytes a value, more for maps):
//! a 64 MiB array of zeros would take gigabytes. So a body's values are counted on its bytes
//! before it is parsed, and only the provision request, where a config drive travels, may be
//! larger than [`BODY_LIMIT`].

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Largest request body on every route but the provision request (Ironic, through
/// oslo.middleware, allows 112 KiB).
pub const BODY_LIMIT: usize = 1 << 20;
/// Largest provision request: it may carry a config drive of up to 64 MiB
/// (`nodes::CONFIG_DRIVE_MAX`), and one somewhat over that limit must still arrive whole to be
/// refused with a message that names its size (a 400) rather than a bare 413.
pub const CONFIG_DRIVE_BODY_LIMIT: usize = 96 << 20;
/// Largest Metal3 manifest file: a thousand hosts with their Secrets fit several times over.
pub const MANIFEST_BODY_LIMIT: usize = 16 << 20;
/// The body limit of a request to `path`.
pub fn body_limit(path: &str) -> usize {
    if path.ends_with("/states/provision") {
        CONFIG_DRIVE_BODY_LIMIT
    } else if path.ends_with("/metal3/manifests") {
        MANIFEST_BODY_LIMIT
    } else if is_upload(path) {
        // A captured disk: as large as the disk, reserved in the cache beforehand and
        // authorised by the agent's token before a byte is read.
        usize::MAX
    } else {
        BODY_LIMIT
    }
}

/// Whether `path` is an agent's capture upload (`/v1/agent/{node}/commands/{id}/upload`).
pub fn is_upload(path: &str) -> bool {
    path.starts_with("/v1/agent/") && path.ends_with("/upload")
}

/// Refuses a body whose Content-Length passes its route's limit before reading any of it,
/// and cuts one that turns out longer while it is read.
pub async fn layer(req: Request, next: Next) -> Response {
    let limit = body_limit(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large(limit).into_response();
    }
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}

/// The answer to a body over its limit.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "The request body is too large: at most {limit} bytes here ({CONFIG_DRIVE_BODY_LIMIT} \
             only for a provision request, which may carry a config drive)"
        ),
    )
}

/// Most JSON values (scalars, arrays, objects, keys) a request body may hold.
pub const MAX_JSON_VALUES: usize = 100_000;
/// Largest stored JSON field (`extra`, `properties`, `driver_info`, `instance_info` without
/// its config drive, `network_data`), serialised: Ironic's MySQL TEXT columns hold 64 KiB.
pub const MAX_FIELD_BYTES: usize = 64 << 10;

/// The number of JSON values in `bytes`, counted without parsing: one per scalar, key, array
/// and object; the count stops early once it passes `limit`. Malformed input gets a count too;
/// the parser then says what is wrong with it.
pub fn count_json_values(bytes: &[u8], limit: usize) -> usize {
    let mut count = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut in_scalar = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                in_scalar = false;
                count += 1;
            }
            b'[' | b'{' => {
                in_scalar = false;
                count += 1;
            }
            b']' | b'}' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => in_scalar = false,
            _ if !in_scalar => {
                in_scalar = true;
                count += 1;
            }
            _ => {}
        }
        if count > limit {
            break;
        }
    }
    count
}

/// Refuses a stored JSON field larger than [`MAX_FIELD_BYTES`]; `instance_info` is measured
/// without its `configdrive`, which the provision request may set up to its own limit.
pub fn check_field_size(
    field: &str,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let size = map
        .iter()
        .filter(|(k, _)| !(field == "instance_info" && k.as_str() == "configdrive"))
        .map(|(k, v)| k.len() + 4 + serde_json::to_string(v).map_or(0, |s| s.len()))
        .sum::<usize>();
    if size > MAX_FIELD_BYTES {
        return Err(format!(
            "{field} is {size} bytes as JSON, more than the {MAX_FIELD_BYTES} a node field may \
             hold: keep large data elsewhere (an image server, a config drive) and store its URL"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_without_parsing() {
        let cases: &[(&str, usize)] = &[
            ("{}", 1),
            ("[1, 2, 3]", 4),
            (r#"{"a": "x,y:[z]", "b": [true, null, -1.5e3]}"#, 8),
            (r#""esc\"aped\\" "#, 1),
            ("[[[[]]]]", 4),
        ];
        for (text, want) in cases {
            assert_eq!(
                count_json_values(text.as_bytes(), usize::MAX),
                *want,
                "{text}"
            );
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(values_in(&parsed), *want, "{text}");
        }
    }

    fn values_in(v: &serde_json::Value) -> usize {
        // Keys are strings, counted like values.
        1 + match v {
            serde_json::Value::Array(a) => a.iter().map(values_in).sum(),
            serde_json::Value::Object(m) => m.len() + m.values().map(values_in).sum::<usize>(),
            _ => 0,
        }
    }

    #[test]
    fn counting_stops_past_the_limit() {
        let zeros = format!("[{}0]", "0,".repeat(1_000_000));
        assert_eq!(count_json_values(zeros.as_bytes(), 10), 11);
    }

    #[test]
    fn large_fields_are_refused_but_a_config_drive_is_not_counted() {
        let big = serde_json::json!({"blob": "x".repeat(MAX_FIELD_BYTES)});
        let big = big.as_object().unwrap();
        assert!(check_field_size("extra", big)
            .unwrap_err()
            .contains("extra"));
        let drive = serde_json::json!({"configdrive": "x".repeat(MAX_FIELD_BYTES)});
        assert!(check_field_size("instance_info", drive.as_object().unwrap()).is_ok());
        assert!(check_field_size("extra", drive.as_object().unwrap()).is_err());
    }
}
