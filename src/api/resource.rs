//! What every Ironic collection resource shares (chassis, portgroups, allocations, deploy
//! templates, runbooks, volume connectors and targets): `links`, `?fields=` and `?detail=`
//! checks, field selection, identifiers, and the microversion gates. Paging is `listing`'s.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::version::Version;

/// `self` and `bookmark` links of `{collection}/{id}`.
pub fn links(base: &str, collection: &str, id: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{collection}/{id}"), "rel": "self"},
        {"href": format!("{base}/{collection}/{id}"), "rel": "bookmark"},
    ])
}

/// 406 as Ironic answers a resource or action the negotiated microversion lacks.
pub fn require(ctx_version: Version, since: Version) -> ApiResult<()> {
    if ctx_version < since {
        return Err(not_acceptable());
    }
    Ok(())
}

pub fn not_acceptable() -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "Request not acceptable: the requested API version does not offer this resource or field; send a newer X-OpenStack-Ironic-API-Version",
    )
}

/// Parses `?fields=a,b` (1.8+, else 406), each checked against `known`.
pub fn parse_fields(
    q: &HashMap<String, String>,
    v: Version,
    known: &[&str],
) -> ApiResult<Option<Vec<String>>> {
    let Some(raw) = q.get("fields") else {
        return Ok(None);
    };
    require(v, Version(8))?;
    let fields: Vec<String> = raw
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let bad: Vec<&str> = fields
        .iter()
        .filter(|f| !known.contains(&f.as_str()))
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Field(s) \"{}\" are not valid",
            bad.join(", ")
        )));
    }
    Ok(Some(fields))
}

/// `?detail=` (1.43+) combined with `?fields=`: the fields a list entry shows, None for all.
pub fn list_fields(
    q: &HashMap<String, String>,
    v: Version,
    known: &[&str],
    brief: &[&str],
) -> ApiResult<Option<Vec<String>>> {
    let fields = parse_fields(q, v, known)?;
    let detail = match q.get("detail") {
        None => None,
        Some(d) => {
            if v < Version(43) {
                return Err(ApiError::bad_request(format!(
                    "Invalid query parameter ?detail={d} received."
                )));
            }
            Some(parse_bool("detail", d)?)
        }
    };
    if fields.is_some() && detail == Some(true) {
        return Err(ApiError::bad_request(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    Ok(match (fields, detail) {
        (Some(f), _) => Some(f),
        (None, Some(true)) => None,
        (None, _) => Some(brief.iter().map(|f| f.to_string()).collect()),
    })
}

/// The fields a list entry shows: all on a `/detail` route (where `?fields=` is refused, as
/// in Ironic), else [`list_fields`].
pub fn route_fields(
    q: &HashMap<String, String>,
    v: Version,
    known: &[&str],
    brief: &[&str],
    detail_route: bool,
) -> ApiResult<Option<Vec<String>>> {
    if !detail_route {
        return list_fields(q, v, known, brief);
    }
    if q.contains_key("fields") {
        return Err(ApiError::bad_request(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    Ok(None)
}

/// A boolean query value as Ironic accepts it.
pub fn parse_bool(name: &str, raw: &str) -> ApiResult<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "y" | "t" => Ok(true),
        "false" | "0" | "no" | "off" | "n" | "f" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "Invalid value for {name}: {raw:?} is not a boolean; use true or false"
        ))),
    }
}

/// Keeps only `fields` of `doc` (plus `links`, as Ironic does); None keeps everything.
pub fn select(mut doc: Map<String, Value>, fields: Option<&[String]>) -> Value {
    if let Some(fields) = fields {
        doc.retain(|k, _| k == "links" || fields.iter().any(|f| f == k));
    }
    Value::Object(doc)
}

/// A JSON value that must be an object (or null: empty), e.g. `extra`.
pub fn want_map(field: &str, v: &Value) -> ApiResult<Map<String, Value>> {
    match v {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {field}: {other} is not a JSON object"
        ))),
    }
}

/// A JSON value that must be a string or null.
pub fn want_str(field: &str, v: &Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {field}: {other} is not a string"
        ))),
    }
}

/// A UUID given by the client, or a fresh one.
pub fn new_uuid(v: Option<&Value>) -> ApiResult<String> {
    match v {
        None | Some(Value::Null) => Ok(uuid::Uuid::new_v4().to_string()),
        Some(Value::String(u)) if uuid::Uuid::parse_str(u).is_ok() => Ok(u.to_ascii_lowercase()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Expected a UUID but received {}.",
            other
                .as_str()
                .map(String::from)
                .unwrap_or(other.to_string())
        ))),
    }
}

/// The body as an object whose keys are all in `allowed`, else Ironic's schema error.
pub fn object<'a>(body: &'a Value, allowed: &[&str]) -> ApiResult<&'a Map<String, Value>> {
    let obj = body.as_object().ok_or_else(|| {
        ApiError::bad_request(format!("Invalid input: {body} is not of type 'object'"))
    })?;
    if let Some(bad) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{bad}' was unexpected)"
        )));
    }
    Ok(obj)
}

/// Whether `s` is a logical name Ironic accepts (RFC 3986 unreserved characters).
pub fn is_logical_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

/// A path identifier that must be a UUID or a logical name, as Ironic checks it.
pub fn check_ident(ident: &str) -> ApiResult<()> {
    if uuid::Uuid::parse_str(ident).is_ok() || is_logical_name(ident) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "Expected a logical name or UUID but received {ident}."
    )))
}

/// A path identifier that must be a UUID.
pub fn check_uuid(ident: &str) -> ApiResult<()> {
    uuid::Uuid::parse_str(ident)
        .map(|_| ())
        .map_err(|_| ApiError::bad_request(format!("Expected a UUID but received {ident}.")))
}

/// A store NotFound turned into 400: a reference in a body (not the URL) names nothing.
pub fn missing_is_bad_request(e: crate::store::StoreError) -> ApiError {
    let mut err = ApiError::from(e);
    if err.status == StatusCode::NOT_FOUND {
        err.status = StatusCode::BAD_REQUEST;
    }
    err
}

/// Up to 1.90 Ironic accepts a `.json` suffix on a path identifier (`/v1/nodes/<uuid>.json`).
pub fn strip_json(ident: &str, v: Version) -> &str {
    if v <= Version(90) {
        ident.strip_suffix(".json").unwrap_or(ident)
    } else {
        ident
    }
}

/// A resource the negotiated microversion lacks: Ironic answers reads with 404 and writes
/// with 405, as if the route were not there.
pub fn gate(v: Version, since: u32, write: bool) -> ApiResult<()> {
    if v >= Version(since) {
        return Ok(());
    }
    Err(if write {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("This method is not allowed at API version {v}: it needs 1.{since} or newer."),
        )
    } else {
        ApiError::not_found(format!(
            "The resource could not be found: it needs API version 1.{since} or newer (requested {v})."
        ))
    })
}
