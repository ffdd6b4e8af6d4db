//! /v1/portgroups: bonded ports of a node (create, list, show, JSON-Patch, delete, the ports
//! of one), from microversion 1.23; mode and properties from 1.26.

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
use super::listing::{page_query, reject_unknown, Listed};
use super::node_json::iso;
use super::ports::{self, normalize_mac};
use super::resource::{self, gate, links, not_acceptable};
use super::version::Version;
use super::{patch, AppState, Ctx};
use crate::store::{Filter, Portgroup};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/portgroups", get(list).post(create))
        .route("/v1/portgroups/", get(list).post(create))
        .route("/v1/portgroups/detail", get(list_detail))
        .route(
            "/v1/portgroups/{ident}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/portgroups/{ident}/ports", get(ports_of))
        .route("/v1/portgroups/{ident}/ports/detail", get(ports_detail_of))
        .route("/v1/nodes/{node}/portgroups", get(list_for_node))
        .route(
            "/v1/nodes/{node}/portgroups/detail",
            get(list_detail_for_node),
        )
}

/// Portgroups appeared in 1.23; their sub-resources in 1.24.
const SINCE: u32 = 23;
const SUBRESOURCES_SINCE: u32 = 24;
/// Ironic's `[DEFAULT] default_portgroup_mode`.
const DEFAULT_MODE: &str = "active-backup";

const FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("address", 1),
    ("name", 1),
    ("node_uuid", 1),
    ("extra", 1),
    ("internal_info", 1),
    ("standalone_ports_supported", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("links", 1),
    ("ports", 1),
    ("mode", 26),
    ("properties", 26),
    ("physical_network", 102),
    ("category", 103),
    ("dynamic_portgroup", 111),
];
const BRIEF: &[&str] = &["uuid", "address", "name", "links"];
const SETTABLE: &[(&str, u32)] = &[
    ("address", 1),
    ("name", 1),
    ("node_uuid", 1),
    ("extra", 1),
    ("standalone_ports_supported", 1),
    ("mode", 26),
    ("properties", 26),
    ("physical_network", 102),
    ("category", 103),
];

fn known(v: Version) -> Vec<&'static str> {
    FIELDS
        .iter()
        .filter(|(_, since)| v >= Version(*since))
        .map(|(f, _)| *f)
        .collect()
}

fn render(p: &Portgroup, base: &str, v: Version) -> Map<String, Value> {
    let all = json!({
        "uuid": p.uuid,
        "address": p.address,
        "name": p.name,
        "node_uuid": p.node_uuid,
        "extra": p.extra,
        "internal_info": p.internal_info,
        "standalone_ports_supported": p.standalone_ports_supported,
        "created_at": iso(&p.created_at),
        "updated_at": p.updated_at.as_ref().map(iso),
        "links": links(base, "portgroups", &p.uuid),
        "ports": links(base, "portgroups", &format!("{}/ports", p.uuid)),
        "mode": p.mode,
        "properties": p.properties,
        "physical_network": p.physical_network,
        "category": p.category,
        "dynamic_portgroup": p.dynamic_portgroup,
    });
    let keep = known(v);
    match all {
        Value::Object(mut m) => {
            m.retain(|k, _| keep.contains(&k.as_str()));
            m
        }
        _ => unreachable!("json! of an object literal"),
    }
}

async fn listing(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    node: Option<&str>,
    detail: bool,
    path: &str,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    reject_unknown(q, &["node", "address", "shard", "conductor_groups"])?;
    let shard = q.get("shard").map(|s| ports::string_list(s));
    if shard.is_some() && ctx.version < Version(106) {
        return Err(not_acceptable());
    }
    let groups = q.get("conductor_groups").map(|s| ports::string_list(s));
    let node = node.or(q.get("node").map(String::as_str));
    let exclusive = [
        node.is_some(),
        q.contains_key("address"),
        shard.is_some(),
        groups.is_some(),
    ];
    if exclusive.iter().filter(|set| **set).count() > 1 {
        return Err(ApiError::bad_request(
            "Filtering by node, address, or shard simultaneously is not supported.",
        ));
    }
    let known = known(ctx.version);
    let fields = resource::route_fields(q, ctx.version, &known, BRIEF, detail)?;
    let mut query = page_query(q, state.max_limit)?;
    query.columns = fields.clone();
    let store = state.conductor.store();
    if let Some(ident) = node {
        let uuid = store.node(ident).await?.uuid;
        query.filters.push(Filter::Eq("node_uuid", uuid.into()));
    }
    if let Some(shards) = shard {
        let shards = shards.into_iter().map(Into::into).collect();
        query.filters.push(Filter::NodeIn("shard", shards));
    }
    if let Some(groups) = groups {
        let groups = groups
            .into_iter()
            .map(|g| g.to_ascii_lowercase().into())
            .collect();
        query
            .filters
            .push(Filter::NodeIn("conductor_group", groups));
    }
    if let Some(mac) = q.get("address") {
        let mac = normalize_mac(mac).map_err(ApiError::bad_request)?;
        query.filters.push(Filter::Eq("address", mac.into()));
    }
    let page = store.list_portgroups(&query).await?;
    let listed = Listed {
        key: "portgroups",
        path,
        q,
        limit: query.limit,
        fields: fields.as_deref(),
    };
    Ok(listed.answer(
        &ctx.base,
        &page,
        |g| &g.uuid,
        |g| render(g, &ctx.base, ctx.version),
    ))
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    listing(&state, &ctx, &q, None, false, "portgroups").await
}

async fn list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    listing(&state, &ctx, &q, None, true, "portgroups/detail").await
}

async fn list_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(node): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SUBRESOURCES_SINCE, false)?;
    let path = format!("nodes/{node}/portgroups");
    listing(&state, &ctx, &q, Some(&node), false, &path).await
}

async fn list_detail_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(node): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SUBRESOURCES_SINCE, false)?;
    let path = format!("nodes/{node}/portgroups/detail");
    listing(&state, &ctx, &q, Some(&node), true, &path).await
}

async fn ports_of(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    gate(ctx.version, SUBRESOURCES_SINCE, false)?;
    let filter = ports::Filter {
        node: None,
        portgroup: Some(&ident),
    };
    let path = format!("portgroups/{ident}/ports");
    ports::listing(&state, &ctx, &q, filter, false, &path).await
}

async fn ports_detail_of(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    gate(ctx.version, SUBRESOURCES_SINCE, false)?;
    let filter = ports::Filter {
        node: None,
        portgroup: Some(&ident),
    };
    let path = format!("portgroups/{ident}/ports/detail");
    ports::listing(&state, &ctx, &q, filter, true, &path).await
}

fn set_field(pg: &mut Portgroup, name: &str, v: &Value) -> ApiResult<()> {
    match name {
        "address" => {
            pg.address = match resource::want_str(name, v)? {
                Some(mac) => Some(normalize_mac(&mac).map_err(ApiError::bad_request)?),
                None => None,
            }
        }
        "name" => {
            let n = resource::want_str(name, v)?;
            if let Some(n) = &n {
                if !resource::is_logical_name(n) || uuid::Uuid::parse_str(n).is_ok() {
                    return Err(ApiError::bad_request(format!(
                        "Expected a logical name but received {n}."
                    )));
                }
            }
            pg.name = n;
        }
        "node_uuid" => {
            let node = resource::want_str(name, v)?.ok_or_else(|| {
                ApiError::bad_request("node_uuid is a mandatory attribute and cannot be removed")
            })?;
            resource::check_uuid(&node)?;
            pg.node_uuid = node;
        }
        "extra" => pg.extra = resource::want_map(name, v)?,
        "physical_network" | "category" => {
            let text = resource::want_str(name, v)?;
            let limit = if name == "category" { 80 } else { 64 };
            if let Some(t) = &text {
                if t.chars().count() > limit {
                    return Err(ApiError::bad_request(format!(
                        "Invalid {name}: it is longer than {limit} characters"
                    )));
                }
            }
            if name == "category" {
                pg.category = text;
            } else {
                pg.physical_network = text;
            }
        }
        "properties" => pg.properties = resource::want_map(name, v)?,
        "mode" => {
            pg.mode = Some(resource::want_str(name, v)?.unwrap_or_else(|| DEFAULT_MODE.into()))
        }
        "standalone_ports_supported" => {
            pg.standalone_ports_supported = match v {
                Value::Null => true,
                Value::Bool(b) => *b,
                Value::String(s) => resource::parse_bool(name, s)?,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid value for {name}: {other} is not a boolean"
                    )))
                }
            }
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{other}' was unexpected)"
            )))
        }
    }
    Ok(())
}

fn check_settable<'a>(v: Version, names: impl IntoIterator<Item = &'a str>) -> ApiResult<()> {
    for name in names {
        if let Some((_, since)) = SETTABLE.iter().find(|(f, _)| *f == name) {
            resource::require(v, Version(*since))?;
        }
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    gate(ctx.version, SINCE, false)?;
    let mut allowed: Vec<&str> = SETTABLE.iter().map(|(f, _)| *f).collect();
    allowed.push("uuid");
    let obj = resource::object(&body, &allowed)?;
    check_settable(ctx.version, obj.keys().map(String::as_str))?;
    let node = obj.get("node_uuid").ok_or_else(|| {
        ApiError::bad_request("Invalid portgroup: the mandatory attribute node_uuid is missing")
    })?;
    let mut pg = Portgroup {
        id: 0,
        uuid: resource::new_uuid(obj.get("uuid"))?,
        name: None,
        address: None,
        node_uuid: String::new(),
        extra: Map::new(),
        internal_info: Map::new(),
        mode: Some(DEFAULT_MODE.into()),
        properties: Map::new(),
        standalone_ports_supported: true,
        physical_network: None,
        category: None,
        dynamic_portgroup: false,
        created_at: Utc::now(),
        updated_at: None,
    };
    set_field(&mut pg, "node_uuid", node)?;
    for (k, v) in obj {
        if !matches!(k.as_str(), "uuid" | "node_uuid") {
            set_field(&mut pg, k, v)?;
        }
    }
    let store = state.conductor.store();
    store
        .node(&pg.node_uuid)
        .await
        .map_err(resource::missing_is_bad_request)?;
    let pg = store.create_portgroup(&pg).await?;
    let location = format!("{}/v1/portgroups/{}", ctx.base, pg.uuid);
    Ok(super::created(
        Value::Object(render(&pg, &ctx.base, ctx.version)),
        &location,
    ))
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let ident = resource::strip_json(&ident, ctx.version);
    resource::check_ident(ident)?;
    let fields = resource::parse_fields(&q, ctx.version, &known(ctx.version))?;
    let pg = state.conductor.store().portgroup(ident).await?;
    Ok(Json(resource::select(
        render(&pg, &ctx.base, ctx.version),
        fields.as_deref(),
    )))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, SINCE, false)?;
    let ident = resource::strip_json(&ident, ctx.version);
    resource::check_ident(ident)?;
    let settable: Vec<&str> = SETTABLE.iter().map(|(f, _)| *f).collect();
    let ops = patch::parse(&body, &settable).map_err(ApiError::bad_request)?;
    check_settable(ctx.version, ops.iter().map(|o| o.path[0].as_str()))?;
    let store = state.conductor.store();
    let mut pg = store.portgroup(ident).await?;
    let full = render(&pg, "", super::version::MAX);
    let mut doc: Map<String, Value> = settable
        .iter()
        .map(|f| (f.to_string(), full.get(*f).cloned().unwrap_or(Value::Null)))
        .collect();
    let before = doc.clone();
    patch::apply(&mut doc, &ops).map_err(ApiError::bad_request)?;
    for (k, v) in &doc {
        if before.get(k) != Some(v) {
            set_field(&mut pg, k, v)?;
        }
    }
    if before.get("node_uuid") != doc.get("node_uuid") {
        store
            .node(&pg.node_uuid)
            .await
            .map_err(resource::missing_is_bad_request)?;
    }
    let pg = store.save_portgroup(&pg).await?;
    if before.get("physical_network") != doc.get("physical_network") {
        // The portgroup's physical network is its members' (Ironic's 1.102).
        store
            .set_member_physical_network(&pg.uuid, pg.physical_network.as_deref())
            .await?;
    }
    Ok(Json(Value::Object(render(&pg, &ctx.base, ctx.version))))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, SINCE, false)?;
    let ident = resource::strip_json(&ident, ctx.version);
    resource::check_ident(ident)?;
    let store = state.conductor.store();
    let pg = store.portgroup(ident).await?;
    store.delete_portgroup(&pg.uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}
