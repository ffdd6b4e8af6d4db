//! /v1/ports: a node's MAC addresses (create, list, show, delete).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::listing::{next_link, page_query, page_response, reject_unknown};
use super::node_json::iso;
use super::{resource, AppState, Ctx};
use crate::store::{Filter, Port};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/ports", get(list).post(create))
        .route("/v1/ports/", get(list).post(create))
        .route("/v1/ports/detail", get(list_detail))
        .route("/v1/ports/{ident}", get(show).delete(remove))
}

fn render(p: &Port, base: &str, detail: bool) -> Value {
    let links = json!([
        {"href": format!("{base}/v1/ports/{}", p.uuid), "rel": "self"},
        {"href": format!("{base}/ports/{}", p.uuid), "rel": "bookmark"},
    ]);
    if !detail {
        return json!({"uuid": p.uuid, "address": p.address, "links": links});
    }
    json!({
        "uuid": p.uuid,
        "address": p.address,
        "node_uuid": p.node_uuid,
        "extra": p.extra,
        "pxe_enabled": p.pxe_enabled,
        "local_link_connection": {},
        "internal_info": {},
        "physical_network": null,
        "portgroup_uuid": null,
        "is_smartnic": false,
        "name": null,
        "created_at": iso(&p.created_at),
        "updated_at": p.updated_at.as_ref().map(iso),
        "links": links,
    })
}

/// Normalises a MAC address to lowercase colon form, or explains the expected form.
pub fn normalize_mac(mac: &str) -> Result<String, String> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(parts.join(":").to_ascii_lowercase())
    } else {
        Err(format!(
            "Expected a MAC address but received {mac}: use six hex pairs like 52:54:00:12:34:56"
        ))
    }
}

/// Port list filters besides paging.
const FILTERS: &[&str] = &["node", "node_uuid", "address"];

/// Fields of a port document, and those of a list entry without `detail`.
const FIELDS: &[&str] = &[
    "uuid",
    "address",
    "node_uuid",
    "extra",
    "pxe_enabled",
    "local_link_connection",
    "internal_info",
    "physical_network",
    "portgroup_uuid",
    "is_smartnic",
    "name",
    "created_at",
    "updated_at",
    "links",
];
const BRIEF: &[&str] = &["uuid", "address", "links"];

/// A page of ports: `node` (a node's ports; also from the path), `address`, paging, `fields`
/// and `detail`, in one store query.
async fn listing(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    node: Option<&str>,
    detail_path: bool,
    path: &str,
) -> ApiResult<Response> {
    reject_unknown(q, FILTERS)?;
    let fields = if detail_path {
        None
    } else {
        resource::list_fields(q, ctx.version, FIELDS, BRIEF)?
    };
    let mut query = page_query(q, state.max_limit)?;
    query.columns = fields.clone();
    let node = node.or(q
        .get("node")
        .or_else(|| q.get("node_uuid"))
        .map(String::as_str));
    if let Some(ident) = node {
        let uuid = state.conductor.store().node(ident).await?.uuid;
        query.filters.push(Filter::Eq("node_uuid", uuid.into()));
    }
    if let Some(mac) = q.get("address") {
        // Metal3 looks nodes up by MAC: ?address=52:54:00:…
        let mac = normalize_mac(mac).map_err(ApiError::bad_request)?;
        query.filters.push(Filter::Eq("address", mac.into()));
    }
    let page = state.conductor.store().list_ports(&query).await?;
    let limit = query.limit;
    Ok(page_response(
        "ports",
        page,
        |p| match render(p, &ctx.base, true) {
            Value::Object(doc) => resource::select(doc, fields.as_deref()),
            other => other,
        },
        |p| &p.uuid,
        |m| next_link(&ctx.base, path, q, limit, m),
    ))
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    listing(&state, &ctx, &q, None, false, "ports").await
}

async fn list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    listing(&state, &ctx, &q, None, true, "ports/detail").await
}

pub async fn list_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let path = format!("nodes/{ident}/ports");
    listing(&state, &ctx, &q, Some(&ident), false, &path).await
}

pub async fn list_detail_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let path = format!("nodes/{ident}/ports/detail");
    listing(&state, &ctx, &q, Some(&ident), true, &path).await
}

const CREATE_KEYS: &[&str] = &["address", "node_uuid", "extra", "pxe_enabled", "uuid"];

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_request(
            "Invalid port: the body must be a JSON object such as {\"address\": \"52:54:00:12:34:56\", \"node_uuid\": \"…\"}",
        ));
    };
    if let Some(bad) = obj.keys().find(|k| !CREATE_KEYS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Unknown attribute for argument port: {bad}. Accepted: {}",
            CREATE_KEYS.join(", ")
        )));
    }
    let address = obj.get("address").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("Invalid port: the mandatory attribute address is missing")
    })?;
    let address = normalize_mac(address).map_err(ApiError::bad_request)?;
    let node_ident = obj
        .get("node_uuid")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request("Invalid port: the mandatory attribute node_uuid is missing")
        })?;
    let node = state.conductor.store().node(node_ident).await?;
    let extra: Map<String, Value> = match obj.get("extra") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for extra: {other} is not a JSON object"
            )))
        }
    };
    let pxe_enabled = match obj.get("pxe_enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for pxe_enabled: {other} is not a boolean"
            )))
        }
    };
    let uuid = match obj.get("uuid").and_then(Value::as_str) {
        Some(u) if uuid::Uuid::parse_str(u).is_ok() => u.to_ascii_lowercase(),
        Some(u) => {
            return Err(ApiError::bad_request(format!(
                "Expected a UUID for uuid but received {u}"
            )))
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let port = Port {
        id: 0,
        uuid,
        address,
        node_uuid: node.uuid,
        extra,
        pxe_enabled,
        created_at: Utc::now(),
        updated_at: None,
    };
    let port = state.conductor.store().create_port(&port).await?;
    let location = format!("{}/v1/ports/{}", ctx.base, port.uuid);
    Ok(super::created(render(&port, &ctx.base, true), &location))
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let port = state.conductor.store().port(&ident).await?;
    Ok(Json(render(&port, &ctx.base, true)))
}

async fn remove(State(state): State<AppState>, Path(ident): Path<String>) -> ApiResult<StatusCode> {
    let port = state.conductor.store().port(&ident).await?;
    state.conductor.store().delete_port(&port.uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalise_or_explain() {
        assert_eq!(
            normalize_mac("52:54:00:AB:cd:01").unwrap(),
            "52:54:00:ab:cd:01"
        );
        assert_eq!(
            normalize_mac("52-54-00-ab-cd-01").unwrap(),
            "52:54:00:ab:cd:01"
        );
        assert!(normalize_mac("52:54:00:ab:cd")
            .unwrap_err()
            .contains("six hex pairs"));
        assert!(normalize_mac("zz:54:00:ab:cd:01").is_err());
    }
}
