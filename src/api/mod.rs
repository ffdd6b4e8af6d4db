//! The Ironic-compatible HTTP API (/v1); only this module knows Ironic JSON.
//!
//! Handlers are thin: extract → one call into the conductor or store → render. [`app`] builds
//! the whole router so tests drive it in-process; `serve` binds it. Every response carries
//! the microversion headers (`version::layer`); every error is Ironic's double-encoded body
//! (`error`). Secrets in driver_info/instance_info are masked on the way out.
//!
//! Spec: Ironic API reference (nodes, ports, drivers, states) at microversions 1.1 to `version::MAX`, and
//! the recorded exchanges of Ironic 39.0.0 in shared/ironic-samples.
//! `metal3.rs` is ironcast's extension for Metal3 BareMetalHost manifests (`/v1/metal3/…`).

mod agent;
mod allocations;
mod auth;
mod auth_guard;
mod body;
mod capture;
mod chassis;
mod conductors;
pub mod error;
mod hardware;
mod inspection_rules;
pub mod limits;
mod listing;
mod local_link;
mod management;
mod metal3;
mod metrics;
mod node_json;
mod node_list;
mod nodes;
mod patch;
mod portgroups;
mod ports;
mod provision_rules;
mod resource;
mod root;
mod shards;
mod step_templates;
mod traits;
pub mod version;
mod vifs;
mod volume;

pub use auth::{Htpasswd, HtpasswdError};
pub use ports::normalize_mac;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;

use crate::conductor::Conductor;
use error::ApiError;
use version::Version;

pub use limits::{BODY_LIMIT, CONFIG_DRIVE_BODY_LIMIT};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub conductor: Conductor,
    /// Base URL for links; empty: from the request's Host header.
    pub public_url: String,
    /// Most items a list page answers (`[api] max_limit`).
    pub max_limit: usize,
    /// Basic-auth users; None: no authentication (loopback only, enforced by `serve`).
    pub auth: Option<Arc<Htpasswd>>,
}

/// The whole API as one router.
/// 201 Created with `body` and a Location header pointing at `location`.
pub(crate) fn created(body: serde_json::Value, location: &str) -> axum::response::Response {
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(loc) = axum::http::HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .merge(nodes::router())
        .merge(hardware::router())
        .merge(capture::router())
        .merge(chassis::router())
        .merge(traits::router())
        .merge(allocations::router())
        .merge(shards::router())
        .merge(management::router())
        .merge(vifs::router())
        .merge(conductors::router())
        .merge(portgroups::router())
        .merge(step_templates::router())
        .merge(inspection_rules::router())
        .merge(volume::router())
        .merge(ports::router())
        .merge(root::drivers_router())
        .merge(metrics::router())
        .merge(metal3::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::layer));
    let routed = Router::new()
        .merge(root::router())
        .merge(agent::router())
        .merge(nodes::heartbeat_router())
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(version::layer))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // Body limits per route (`limits::body_limit`), refused early by Content-Length.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn(limits::layer))
        .with_state(state);
    // Rewritten before routing, so it wraps the routed app rather than layering inside it.
    Router::new().fallback_service(tower::ServiceExt::map_request(routed, default_to_v1))
}

/// Ironic serves a path without a version prefix as v1 (`/nodes/detail` is `/v1/nodes/detail`);
/// clients such as tempest rely on it.
fn default_to_v1(mut req: Request) -> Request {
    // Ironic (pecan) serves `/v1/nodes/<id>/vmedia/` as `/v1/nodes/<id>/vmedia`.
    let trimmed = req.uri().path().trim_end_matches('/');
    if trimmed.len() > 3 && trimmed.len() < req.uri().path().len() {
        let rewritten = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = rewritten.parse() {
            *req.uri_mut() = uri;
        }
    }
    let path = req.uri().path();
    // `/metrics` is Prometheus', not Ironic's: it has no v1 twin.
    if path == "/" || path == "/v1" || path.starts_with("/v1/") || path == "/metrics" {
        return req;
    }
    let rewritten = match req.uri().query() {
        Some(q) => format!("/v1{path}?{q}"),
        None => format!("/v1{path}"),
    };
    if let Ok(uri) = rewritten.parse() {
        *req.uri_mut() = uri;
    }
    req
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "The resource could not be found: {} {} is not part of this API (see GET /v1 for the resources)",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> impl IntoResponse {
    let err = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "The method {} is not allowed for {}",
            req.method(),
            req.uri().path()
        ),
    );
    err.into_response()
}

/// Per-request context: negotiated version and the base URL for links.
pub struct Ctx {
    pub version: Version,
    pub base: String,
    /// Whether the client asked for its version (the header) rather than getting 1.1 by default.
    pub version_asked: bool,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ctx, ApiError> {
        let version = parts
            .extensions
            .get::<Version>()
            .copied()
            .unwrap_or(version::MIN);
        let base = if state.public_url.is_empty() {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1:6385");
            format!("http://{host}")
        } else {
            state.public_url.trim_end_matches('/').to_string()
        };
        let version_asked = parts.headers.contains_key(version::HEADER);
        Ok(Ctx {
            version,
            base,
            version_asked,
        })
    }
}
