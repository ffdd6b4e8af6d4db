//! /v1/nodes/{node}/traits (1.37+): list, replace all (PUT with `{"traits": […]}`), add one
//! (PUT …/traits/{trait}, no body), remove one or all. A trait is a standard os-traits name or
//! `CUSTOM_` followed by upper-case letters, digits and `_`, at most 255 characters.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::resource::not_acceptable;
use super::version::Version;
use super::{AppState, Ctx};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/nodes/{ident}/traits",
            get(list).put(set_all).delete(remove_all),
        )
        .route(
            "/v1/nodes/{ident}/traits/{name}",
            axum::routing::put(add_one).delete(remove_one),
        )
}

/// Traits appeared in 1.37.
pub const SINCE: Version = Version(37);

/// os-traits 3.9.0's standard names (`scripts/gen-os-traits` writes the file), sorted.
const STANDARD: &str = include_str!("os_traits.txt");

/// Longest trait name (Ironic's schema, Placement's column).
const MAX_LEN: usize = 255;

/// Whether `name` is a trait Ironic accepts: standard, or `CUSTOM_[A-Z0-9_]+`.
pub fn is_valid(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_LEN {
        return false;
    }
    if let Some(rest) = name.strip_prefix("CUSTOM_") {
        return !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    }
    STANDARD.lines().any(|l| l == name)
}

/// 400 unless `name` is a valid trait.
pub fn check(name: &str) -> ApiResult<()> {
    if is_valid(name) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "Invalid trait {name:?}: a trait is a standard os-traits name (e.g. HW_CPU_X86_VMX) or \
         CUSTOM_ followed by upper-case letters, digits and underscores, at most {MAX_LEN} characters"
    )))
}

/// Before 1.37 the traits routes do not exist: Ironic answers a read with 406, a write with 405
/// and a delete with 404.
fn gate(v: Version, old: StatusCode) -> ApiResult<()> {
    if v >= SINCE {
        return Ok(());
    }
    Err(match old {
        StatusCode::NOT_ACCEPTABLE => not_acceptable(),
        status => ApiError::new(
            status,
            format!("Node traits need API version {SINCE} or newer (requested {v})"),
        ),
    })
}

async fn node_uuid(state: &AppState, ident: &str) -> ApiResult<String> {
    Ok(state.conductor.store().node(ident).await?.uuid)
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, StatusCode::NOT_ACCEPTABLE)?;
    let uuid = node_uuid(&state, &ident).await?;
    let traits = state.conductor.store().node_traits(&uuid).await?;
    Ok(Json(json!({ "traits": traits })))
}

fn traits_body(body: &[u8]) -> ApiResult<Vec<String>> {
    let usage = "All node traits are replaced with PUT /v1/nodes/<node>/traits and a body such as \
                 {\"traits\": [\"CUSTOM_GOLD\"]}; one trait is added with PUT \
                 /v1/nodes/<node>/traits/<trait> and no body";
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad_request(usage));
    };
    if let Some(bad) = obj.keys().find(|k| *k != "traits") {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{bad}' was unexpected). {usage}"
        )));
    }
    let items = obj
        .get("traits")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request(usage))?;
    items
        .iter()
        .map(|t| {
            let name = t.as_str().ok_or_else(|| {
                ApiError::bad_request(format!("Invalid trait {t}: a trait is a string"))
            })?;
            check(name)?;
            Ok(name.to_string())
        })
        .collect()
}

async fn set_all(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    gate(ctx.version, StatusCode::METHOD_NOT_ALLOWED)?;
    let traits = traits_body(&body)?;
    let uuid = node_uuid(&state, &ident).await?;
    state
        .conductor
        .store()
        .set_node_traits(&uuid, &traits)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_one(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((ident, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    gate(ctx.version, StatusCode::METHOD_NOT_ALLOWED)?;
    check(&name)?;
    if !empty_body(&body) {
        return Err(ApiError::bad_request(
            "No body should be provided when adding a trait",
        ));
    }
    let uuid = node_uuid(&state, &ident).await?;
    state.conductor.store().add_node_trait(&uuid, &name).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let location = format!("{}/v1/nodes/{ident}/traits/{name}", ctx.base);
    if let Ok(loc) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// Whether a body is empty as Ironic sees it: nothing, or a JSON value Python finds false
/// (`{}`, `null`, `[]`, `""`), which clients send with a PUT that has no body.
fn empty_body(body: &[u8]) -> bool {
    if body.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Null) => true,
        Ok(Value::Object(m)) => m.is_empty(),
        Ok(Value::Array(a)) => a.is_empty(),
        Ok(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

async fn remove_all(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, StatusCode::NOT_FOUND)?;
    let uuid = node_uuid(&state, &ident).await?;
    state.conductor.store().clear_node_traits(&uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_one(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((ident, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, StatusCode::NOT_FOUND)?;
    let uuid = node_uuid(&state, &ident).await?;
    state
        .conductor
        .store()
        .remove_node_trait(&uuid, &name)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound { .. } => {
                ApiError::not_found(format!("Node {uuid} doesn't have a trait '{name}'"))
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trait_names_as_ironic_checks_them() {
        assert!(is_valid("CUSTOM_TRAIT1"));
        assert!(is_valid("HW_CPU_X86_VMX"));
        assert!(is_valid(&format!("CUSTOM_{}", "A".repeat(248))));
        assert!(!is_valid(&format!("CUSTOM_{}", "A".repeat(249))));
        assert!(!is_valid("CUSTOM_"));
        assert!(!is_valid("CUSTOM_lower"));
        assert!(!is_valid("HW_CPU_X86_NOPE"));
        assert!(!is_valid(""));
    }

    #[test]
    fn the_standard_list_is_sorted_and_complete() {
        let names: Vec<&str> = STANDARD.lines().collect();
        assert!(names.len() > 300, "os_traits.txt holds {}", names.len());
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_put_of_one_trait_takes_no_body() {
        assert!(empty_body(b""));
        assert!(empty_body(b" {} "));
        assert!(empty_body(b"null"));
        assert!(!empty_body(b"{\"traits\": []}"));
        assert!(!empty_body(b"nonsense"));
    }

    #[test]
    fn old_versions_answer_as_ironic() {
        let status = |old| gate(Version(36), old).unwrap_err().status;
        assert_eq!(status(StatusCode::NOT_ACCEPTABLE), 406);
        assert_eq!(status(StatusCode::METHOD_NOT_ALLOWED), 405);
        assert_eq!(status(StatusCode::NOT_FOUND), 404);
        assert!(gate(SINCE, StatusCode::NOT_FOUND).is_ok());
    }
}
