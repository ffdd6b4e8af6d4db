//! `X-OpenStack-Ironic-API-Version` negotiation (Ironic's microversions): pure parsing plus the
//! middleware that stamps min/max/current headers on every response and answers 406 outside
//! the supported range.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub const HEADER: &str = "x-openstack-ironic-api-version";
pub const MIN_HEADER: &str = "x-openstack-ironic-api-minimum-version";
pub const MAX_HEADER: &str = "x-openstack-ironic-api-maximum-version";

/// A microversion `1.N`, ordered by minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32);

pub const MIN: Version = Version(1);
/// The newest version served: 1.96 adds inspection rules (1.95 is the one Metal3's
/// baremetal-operator asks for; node fields and the node lifecycle up to it are honoured).
pub const MAX: Version = Version(96);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "1.{}", self.0)
    }
}

/// Why a requested version is refused, as Ironic words it.
pub fn negotiate(header: Option<&str>) -> Result<Version, String> {
    let Some(raw) = header.map(str::trim) else {
        return Ok(MIN);
    };
    if raw.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let parsed = raw
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let Some((major, minor)) = parsed else {
        return Err("Invalid value for X-OpenStack-Ironic-API-Version header".into());
    };
    let range = format!("The supported version range is: [{MIN}, {MAX}].");
    if major != 1 {
        return Err(format!(
            "Mutually exclusive versions requested. Version {raw} requested but not supported by this service. {range}"
        ));
    }
    let v = Version(minor);
    if v < MIN || v > MAX {
        return Err(format!(
            "Version {raw} was requested but the minor version is not supported by this service. {range}"
        ));
    }
    Ok(v)
}

/// Middleware: negotiates, stores the [`Version`] as a request extension, stamps headers.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let mut resp = match negotiate(header) {
        Ok(v) => {
            req.extensions_mut().insert(v);
            let mut resp = next.run(req).await;
            if let Ok(value) = HeaderValue::from_str(&v.to_string()) {
                resp.headers_mut().insert(HEADER, value);
            }
            resp
        }
        Err(description) => {
            let inner = json!({"code": 406, "title": "Not Acceptable", "description": description});
            (
                StatusCode::NOT_ACCEPTABLE,
                Json(json!({"error_message": inner.to_string()})),
            )
                .into_response()
        }
    };
    let h = resp.headers_mut();
    // A request id, like Ironic's, that clients print with errors and logs can be grepped for.
    if let Ok(id) = HeaderValue::from_str(&format!("req-{}", uuid::Uuid::new_v4())) {
        h.insert("x-openstack-request-id", id.clone());
        h.insert("openstack-request-id", id);
    }
    h.insert(MIN_HEADER, HeaderValue::from_static("1.1"));
    if let Ok(value) = HeaderValue::from_str(&MAX.to_string()) {
        h.insert(MAX_HEADER, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        assert_eq!(negotiate(None), Ok(MIN));
        assert_eq!(negotiate(Some("latest")), Ok(MAX));
        assert_eq!(negotiate(Some("1.31")), Ok(Version(31)));
        assert_eq!(negotiate(Some("1.96")), Ok(Version(96)));
        assert!(negotiate(Some("1.97"))
            .unwrap_err()
            .contains("minor version"));
        assert!(negotiate(Some("1.0"))
            .unwrap_err()
            .contains("minor version"));
        assert!(negotiate(Some("2.0"))
            .unwrap_err()
            .contains("Mutually exclusive"));
        assert!(negotiate(Some("garbage"))
            .unwrap_err()
            .contains("Invalid value"));
        assert!(negotiate(Some("1.x"))
            .unwrap_err()
            .contains("Invalid value"));
    }
}
