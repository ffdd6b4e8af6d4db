//! /v1/ports: a node's NICs (create, list, show, JSON-Patch, delete), with Ironic's field set
//! per microversion and its rules for portgroup members (same node, same physical network,
//! standalone ports).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::listing::{next_link, page_query, page_response, reject_unknown};
use super::node_json::iso;
use super::resource::{self, links, not_acceptable};
use super::version::Version;
use super::{local_link, patch, AppState, Ctx};
use crate::store::{Filter as StoreFilter, Port, Portgroup};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/ports", get(list).post(create))
        .route("/v1/ports/", get(list).post(create))
        .route("/v1/ports/detail", get(list_detail))
        .route("/v1/ports/{ident}", get(show).patch(update).delete(remove))
}

/// Every port field and the microversion that shows it.
const FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("address", 1),
    ("node_uuid", 1),
    ("extra", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("links", 1),
    ("internal_info", 18),
    ("local_link_connection", 19),
    ("pxe_enabled", 19),
    ("portgroup_uuid", 24),
    ("physical_network", 34),
    ("is_smartnic", 53),
    ("name", 88),
    ("description", 97),
    ("vendor", 100),
    ("category", 101),
    ("available_for_dynamic_portgroup", 111),
];
const BRIEF: &[&str] = &["uuid", "address", "links"];
/// What a client may send (POST) or patch, and the version that allows it.
const SETTABLE: &[(&str, u32)] = &[
    ("address", 1),
    ("node_uuid", 1),
    ("extra", 1),
    ("local_link_connection", 19),
    ("pxe_enabled", 19),
    ("portgroup_uuid", 24),
    ("physical_network", 34),
    ("is_smartnic", 53),
    ("name", 88),
    ("description", 97),
    ("vendor", 100),
    ("category", 101),
    ("available_for_dynamic_portgroup", 111),
];

/// Free-text port fields and their longest value (Ironic's port schema).
const TEXT_LIMITS: &[(&str, usize)] = &[("description", 255), ("vendor", 32), ("category", 80)];

fn known(v: Version) -> Vec<&'static str> {
    FIELDS
        .iter()
        .filter(|(_, since)| v >= Version(*since))
        .map(|(f, _)| *f)
        .collect()
}

fn render(p: &Port, base: &str, v: Version) -> Map<String, Value> {
    let all = json!({
        "uuid": p.uuid,
        "address": p.address,
        "node_uuid": p.node_uuid,
        "extra": p.extra,
        "created_at": iso(&p.created_at),
        "updated_at": p.updated_at.as_ref().map(iso),
        "links": links(base, "ports", &p.uuid),
        "internal_info": p.internal_info,
        "local_link_connection": local_link::shown(&p.local_link_connection, v),
        "pxe_enabled": p.pxe_enabled,
        "portgroup_uuid": p.portgroup_uuid,
        "physical_network": p.physical_network,
        "is_smartnic": p.is_smartnic,
        "name": p.name,
        "description": p.description,
        "vendor": p.vendor,
        "category": p.category,
        "available_for_dynamic_portgroup": p.available_for_dynamic_portgroup,
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

/// Which ports a list shows.
#[derive(Default)]
pub struct Filter<'a> {
    pub node: Option<&'a str>,
    pub portgroup: Option<&'a str>,
}

/// Port list filters besides paging (Ironic 39.0.0's `PortsController.get_all`).
const FILTERS: &[&str] = &[
    "node",
    "node_uuid",
    "address",
    "portgroup",
    "shard",
    "description_contains",
    "conductor_groups",
];

/// A comma-separated list parameter's items (Ironic's `string_list`).
pub fn string_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The port list (also under /v1/nodes/{node}/ports and /v1/portgroups/{pg}/ports): filters,
/// paging, `fields` and `detail`, in one store query.
pub async fn listing(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    filter: Filter<'_>,
    detail: bool,
    path: &str,
) -> ApiResult<Response> {
    reject_unknown(q, FILTERS)?;
    let known = known(ctx.version);
    let fields = resource::route_fields(q, ctx.version, &known, BRIEF, detail)?;
    let mut query = page_query(q, state.max_limit)?;
    query.columns = fields.clone();
    let store = state.conductor.store();
    let node = filter.node.or(q
        .get("node")
        .or_else(|| q.get("node_uuid"))
        .map(String::as_str));
    let portgroup = filter.portgroup.or(q.get("portgroup").map(String::as_str));
    let shard = q.get("shard").map(|s| string_list(s));
    let groups = q.get("conductor_groups").map(|s| string_list(s));
    if shard.is_some() && ctx.version < Version(82) {
        return Err(not_acceptable());
    }
    let exclusive = [node.is_some(), portgroup.is_some(), shard.is_some()];
    if exclusive.iter().filter(|set| **set).count() > 1 {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Operation not permitted: filter ports by only one of node, portgroup and shard.",
        ));
    }
    if groups.is_some() && (node.is_some() || portgroup.is_some() || q.contains_key("address")) {
        return Err(ApiError::bad_request(
            "Filtering by conductor_groups cannot be combined with node_ident, portgroup_ident, or node address filters.",
        ));
    }
    if let Some(ident) = node {
        let uuid = store.node(ident).await?.uuid;
        query
            .filters
            .push(StoreFilter::Eq("node_uuid", uuid.into()));
    }
    if let Some(ident) = portgroup {
        if ctx.version < Version(24) {
            return Err(not_acceptable());
        }
        let uuid = store.portgroup(ident).await?.uuid;
        query
            .filters
            .push(StoreFilter::Eq("portgroup_uuid", uuid.into()));
    }
    if let Some(mac) = q.get("address") {
        // Metal3 looks nodes up by MAC: ?address=52:54:00:…
        let mac = normalize_mac(mac).map_err(ApiError::bad_request)?;
        query.filters.push(StoreFilter::Eq("address", mac.into()));
    }
    if let Some(shards) = shard {
        let shards = shards.into_iter().map(Into::into).collect();
        query.filters.push(StoreFilter::NodeIn("shard", shards));
    }
    if let Some(groups) = groups {
        // Node conductor groups are stored in lower case.
        let groups = groups
            .into_iter()
            .map(|g| g.to_ascii_lowercase().into())
            .collect();
        query
            .filters
            .push(StoreFilter::NodeIn("conductor_group", groups));
    }
    if let Some(text) = q.get("description_contains") {
        query
            .filters
            .push(StoreFilter::Contains("description", text.clone()));
    }
    let page = store.list_ports(&query).await?;
    let limit = query.limit;
    Ok(page_response(
        "ports",
        page,
        |p| resource::select(render(p, &ctx.base, ctx.version), fields.as_deref()),
        |p| &p.uuid,
        |m| next_link(&ctx.base, path, q, limit, m),
    ))
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    listing(&state, &ctx, &q, Filter::default(), false, "ports").await
}

async fn list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    listing(&state, &ctx, &q, Filter::default(), true, "ports/detail").await
}

pub async fn list_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let filter = Filter {
        node: Some(&ident),
        portgroup: None,
    };
    let path = format!("nodes/{ident}/ports");
    listing(&state, &ctx, &q, filter, false, &path).await
}

pub async fn list_detail_for_node(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let filter = Filter {
        node: Some(&ident),
        portgroup: None,
    };
    let path = format!("nodes/{ident}/ports/detail");
    listing(&state, &ctx, &q, filter, true, &path).await
}

/// 406 for a field the negotiated version does not offer for writing.
fn check_settable<'a>(v: Version, names: impl IntoIterator<Item = &'a str>) -> ApiResult<()> {
    for name in names {
        if let Some((_, since)) = SETTABLE.iter().find(|(f, _)| *f == name) {
            resource::require(v, Version(*since))?;
        }
    }
    Ok(())
}

fn want_bool(field: &str, v: &Value) -> ApiResult<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => resource::parse_bool(field, s).map(Some),
        other => Err(ApiError::bad_request(format!(
            "Invalid value for {field}: {other} is not a boolean"
        ))),
    }
}

/// Sets one settable field of `port` from JSON (null: the field's default), as version `ver`
/// allows.
fn set_field(port: &mut Port, name: &str, v: &Value, ver: Version) -> ApiResult<()> {
    match name {
        "address" => {
            let mac = resource::want_str(name, v)?.ok_or_else(|| {
                ApiError::bad_request("address is a mandatory attribute and cannot be removed")
            })?;
            port.address = normalize_mac(&mac).map_err(ApiError::bad_request)?;
        }
        "node_uuid" => {
            let node = resource::want_str(name, v)?.ok_or_else(|| {
                ApiError::bad_request("node_uuid is a mandatory attribute and cannot be removed")
            })?;
            resource::check_uuid(&node)?;
            port.node_uuid = node;
        }
        "extra" => port.extra = resource::want_map(name, v)?,
        "local_link_connection" => {
            let mut llc = resource::want_map(name, v)?;
            local_link::check(&mut llc, ver).map_err(|refusal| match refusal {
                local_link::Refusal::Version => not_acceptable(),
                local_link::Refusal::Invalid(why) => ApiError::bad_request(why),
            })?;
            port.local_link_connection = llc;
        }
        "description" | "vendor" | "category" => {
            let text = resource::want_str(name, v)?;
            let limit = TEXT_LIMITS
                .iter()
                .find(|(f, _)| *f == name)
                .map_or(usize::MAX, |(_, n)| *n);
            if let Some(t) = &text {
                if t.chars().count() > limit {
                    return Err(ApiError::bad_request(format!(
                        "Invalid {name}: it is longer than {limit} characters"
                    )));
                }
            }
            match name {
                "description" => port.description = text,
                "vendor" => port.vendor = text,
                _ => port.category = text,
            }
        }
        "pxe_enabled" => port.pxe_enabled = want_bool(name, v)?.unwrap_or(true),
        "is_smartnic" => port.is_smartnic = want_bool(name, v)?.unwrap_or(false),
        "available_for_dynamic_portgroup" => {
            port.available_for_dynamic_portgroup = want_bool(name, v)?.unwrap_or(false)
        }
        "portgroup_uuid" => {
            let pg = resource::want_str(name, v)?;
            if let Some(pg) = &pg {
                resource::check_uuid(pg)?;
            }
            port.portgroup_uuid = pg;
        }
        "physical_network" => {
            let net = resource::want_str(name, v)?;
            match net.as_deref() {
                Some("") => {
                    return Err(ApiError::bad_request(
                        "A non-empty value is required when setting physical_network",
                    ))
                }
                Some(n) if n.chars().count() > 64 => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid physical_network: '{n}' is longer than 64 characters"
                    )))
                }
                _ => {}
            }
            port.physical_network = net;
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
            port.name = n;
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{other}' was unexpected)"
            )))
        }
    }
    Ok(())
}

/// A Smart NIC port must say which port of which host it is (Ironic's rule).
fn check_smart_nic(port: &Port) -> ApiResult<()> {
    if port.is_smartnic && !local_link::fits_smart_nic(&port.local_link_connection) {
        return Err(ApiError::bad_request(
            "Smart NIC port must have port_id and hostname in local_link_connection",
        ));
    }
    Ok(())
}

/// Ironic's rules between a port, its node and its portgroup, checked before any write.
async fn check_relations(state: &AppState, port: &Port, pxe_set: bool) -> ApiResult<()> {
    let store = state.conductor.store();
    store
        .node(&port.node_uuid)
        .await
        .map_err(resource::missing_is_bad_request)?;
    let Some(pg_uuid) = &port.portgroup_uuid else {
        return Ok(());
    };
    let pg: Portgroup = store
        .portgroup(pg_uuid)
        .await
        .map_err(resource::missing_is_bad_request)?;
    if pg.node_uuid != port.node_uuid {
        return Err(ApiError::bad_request(
            "Port can not be added to a portgroup belonging to a different node.",
        ));
    }
    if pxe_set && port.pxe_enabled && !pg.standalone_ports_supported {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "Port group {} doesn't support standalone ports. This port cannot be created as a member of that portgroup as the port's 'pxe_enabled' field was set to True.",
                pg.uuid
            ),
        ));
    }
    let mut physnets: Vec<Option<String>> = store
        .portgroup_ports(&pg.uuid)
        .await?
        .into_iter()
        .filter(|p| p.uuid != port.uuid)
        .map(|p| p.physical_network)
        .collect();
    physnets.sort();
    physnets.dedup();
    let group_net = match physnets.as_slice() {
        [] if pg.physical_network.is_some() => pg.physical_network.clone(),
        [] => {
            // The first member with a physical network gives the portgroup its own.
            if port.physical_network.is_some() {
                let mut pg = pg;
                pg.physical_network = port.physical_network.clone();
                store.save_portgroup(&pg).await?;
            }
            return Ok(());
        }
        [one] => one.clone(),
        many => {
            let shown: Vec<&str> = many
                .iter()
                .map(|n| n.as_deref().unwrap_or("None"))
                .collect();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "Port group {} has member ports with different physical networks ({}).",
                    pg.uuid,
                    shown.join(", ")
                ),
            ));
        }
    };
    if port.physical_network != group_net {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "Port with physical network {} cannot become a member of port group {} which has ports in physical network {}.",
                port.physical_network.as_deref().unwrap_or("None"),
                pg.uuid,
                group_net.as_deref().unwrap_or("None")
            ),
        ));
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let mut allowed: Vec<&str> = SETTABLE.iter().map(|(f, _)| *f).collect();
    allowed.push("uuid");
    let obj = resource::object(&body, &allowed)?;
    check_settable(ctx.version, obj.keys().map(String::as_str))?;
    let address = obj.get("address").ok_or_else(|| {
        ApiError::bad_request("Invalid port: the mandatory attribute address is missing")
    })?;
    let node = obj.get("node_uuid").ok_or_else(|| {
        ApiError::bad_request("Invalid port: the mandatory attribute node_uuid is missing")
    })?;
    let mut port = Port::new(
        resource::new_uuid(obj.get("uuid"))?,
        String::new(),
        String::new(),
    );
    set_field(&mut port, "address", address, ctx.version)?;
    set_field(&mut port, "node_uuid", node, ctx.version)?;
    for (k, v) in obj {
        if !matches!(k.as_str(), "uuid" | "address" | "node_uuid") {
            set_field(&mut port, k, v, ctx.version)?;
        }
    }
    check_smart_nic(&port)?;
    check_relations(&state, &port, obj.contains_key("pxe_enabled")).await?;
    let port = state.conductor.store().create_port(&port).await?;
    let location = format!("{}/v1/ports/{}", ctx.base, port.uuid);
    Ok(super::created(
        Value::Object(render(&port, &ctx.base, ctx.version)),
        &location,
    ))
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    resource::check_ident(&ident)?;
    let fields = resource::parse_fields(&q, ctx.version, &known(ctx.version))?;
    let port = state.conductor.store().port(&ident).await?;
    Ok(Json(resource::select(
        render(&port, &ctx.base, ctx.version),
        fields.as_deref(),
    )))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    resource::check_ident(&ident)?;
    let settable: Vec<&str> = SETTABLE.iter().map(|(f, _)| *f).collect();
    let ops = patch::parse(&body, &settable).map_err(ApiError::bad_request)?;
    check_settable(ctx.version, ops.iter().map(|o| o.path[0].as_str()))?;
    let store = state.conductor.store();
    let mut port = store.port(&ident).await?;
    let full = render(&port, "", super::version::MAX);
    let mut doc: Map<String, Value> = settable
        .iter()
        .map(|f| (f.to_string(), full.get(*f).cloned().unwrap_or(Value::Null)))
        .collect();
    let before = doc.clone();
    patch::apply(&mut doc, &ops).map_err(ApiError::bad_request)?;
    for (k, v) in &doc {
        if before.get(k) != Some(v) {
            set_field(&mut port, k, v, ctx.version)?;
        }
    }
    check_smart_nic(&port)?;
    let physnet_patched = ops.iter().any(|o| o.path[0] == "physical_network");
    if physnet_patched && ctx.version >= Version(102) && port.portgroup_uuid.is_some() {
        // From 1.102 the portgroup owns its members' physical network.
        return Err(ApiError::bad_request(
            "physical_network cannot be changed while the port belongs to a portgroup.",
        ));
    }
    let pg_changed = before.get("portgroup_uuid") != doc.get("portgroup_uuid");
    let physnet_changed = before.get("physical_network") != doc.get("physical_network");
    if pg_changed || physnet_changed || before.get("node_uuid") != doc.get("node_uuid") {
        check_relations(&state, &port, false).await?;
    }
    let port = store.save_port(&port).await?;
    Ok(Json(Value::Object(render(&port, &ctx.base, ctx.version))))
}

async fn remove(State(state): State<AppState>, Path(ident): Path<String>) -> ApiResult<StatusCode> {
    resource::check_ident(&ident)?;
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

    #[test]
    fn fields_follow_the_microversion() {
        let p = Port::new("u".into(), "52:54:00:00:00:01".into(), "n".into());
        let old = render(&p, "http://h", Version(1));
        assert!(old.get("pxe_enabled").is_none());
        assert!(old.get("physical_network").is_none());
        let new = render(&p, "http://h", Version(95));
        assert_eq!(new["pxe_enabled"], true);
        assert_eq!(new["physical_network"], Value::Null);
        assert_eq!(new["name"], Value::Null);
    }
}
