//! /v1/nodes: create, list (fields, detail, limit, marker, sort), show, JSON-Patch, delete,
//! states, provision and power actions, validate, history, maintenance.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::node_json::{self, Render};
use super::version::Version;
use super::{patch, AppState, Ctx};
use crate::conductor::states::Event;
use crate::conductor::{check_driver, parse_clean_steps, ConductorError, CLEAN_STEPS_KEY};
use crate::store::Node;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/nodes", get(list).post(create))
        .route("/v1/nodes/", get(list).post(create))
        .route("/v1/nodes/detail", get(list_detail))
        .route("/v1/nodes/{ident}", get(show).patch(update).delete(remove))
        .route("/v1/nodes/{ident}/states", get(states))
        .route("/v1/nodes/{ident}/states/provision", put(provision))
        .route("/v1/nodes/{ident}/states/power", put(power))
        .route("/v1/nodes/{ident}/validate", get(validate))
        .route("/v1/nodes/{ident}/history", get(history))
        .route(
            "/v1/nodes/{ident}/maintenance",
            put(maintenance_on).delete(maintenance_off),
        )
        .route("/v1/heartbeat/{ident}", post(heartbeat))
        .route("/v1/nodes/{ident}/ports", get(super::ports::list_for_node))
        .route(
            "/v1/nodes/{ident}/ports/detail",
            get(super::ports::list_detail_for_node),
        )
}

fn render_ctx<'a>(state: &'a AppState, ctx: &'a Ctx) -> Render<'a> {
    Render {
        version: ctx.version,
        base: &ctx.base,
        conductor: state.conductor.name(),
    }
}

/// Parses `?fields=a,b`, checking each against the version's fields.
fn parse_fields(q: &HashMap<String, String>, v: Version) -> ApiResult<Option<Vec<String>>> {
    let Some(raw) = q.get("fields") else {
        return Ok(None);
    };
    let fields: Vec<String> = raw
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let bad: Vec<&str> = fields
        .iter()
        .filter(|f| !node_json::known_field(f, v))
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Field(s) \"{}\" are not valid at API version {v}",
            bad.join(", ")
        )));
    }
    Ok(Some(fields))
}

const SORT_KEYS: &[&str] = &[
    "id",
    "uuid",
    "name",
    "created_at",
    "updated_at",
    "provision_updated_at",
    "provision_state",
    "power_state",
    "driver",
    "maintenance",
    "instance_uuid",
    "resource_class",
    "conductor_group",
    "owner",
    "lessee",
];

fn cmp_json(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

async fn list(
    state: State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let detail = match q.get("detail").map(|s| s.to_ascii_lowercase()) {
        None => false,
        Some(s) if s == "true" || s == "1" => true,
        Some(s) if s == "false" || s == "0" => false,
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value {s:?} for detail: use true or false"
            )))
        }
    };
    list_nodes(state, ctx, q, detail, "nodes").await
}

async fn list_detail(
    state: State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list_nodes(state, ctx, q, true, "nodes/detail").await
}

/// The node list under another resource (e.g. a chassis's nodes), `q` carrying its filter.
pub(super) async fn list_filtered(
    state: State<AppState>,
    ctx: Ctx,
    q: HashMap<String, String>,
    detail: bool,
) -> ApiResult<Json<Value>> {
    let resource = if detail { "nodes/detail" } else { "nodes" };
    list_nodes(state, ctx, q, detail, resource).await
}

async fn list_nodes(
    State(state): State<AppState>,
    ctx: Ctx,
    q: HashMap<String, String>,
    detail: bool,
    resource: &str,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(&q, ctx.version)?;
    if detail && fields.is_some() {
        return Err(ApiError::bad_request(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    let limit = match q.get("limit") {
        None => 1000,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => n.min(1000) as usize,
            Ok(_) => return Err(ApiError::bad_request("Limit must be positive")),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid limit {l:?}: it must be a positive integer"
                )))
            }
        },
    };
    let sort_key = q.get("sort_key").map(String::as_str).unwrap_or("id");
    if !SORT_KEYS.contains(&sort_key) {
        return Err(ApiError::bad_request(format!(
            "The sort_key value \"{sort_key}\" is an invalid field for sorting: use one of {}",
            SORT_KEYS.join(", ")
        )));
    }
    let desc = match q.get("sort_dir").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
            )))
        }
    };
    let r = render_ctx(&state, &ctx);
    let mut nodes = state.conductor.store().nodes().await?;
    // Filters Ironic offers that the lifecycle uses.
    if let Some(ps) = q.get("provision_state") {
        nodes.retain(|n| &n.provision_state == ps);
    }
    if let Some(d) = q.get("driver") {
        nodes.retain(|n| &n.driver == d);
    }
    if let Some(m) = q.get("maintenance") {
        let want = m.eq_ignore_ascii_case("true");
        nodes.retain(|n| n.maintenance == want);
    }
    if let Some(a) = q.get("associated") {
        let want = a.eq_ignore_ascii_case("true");
        nodes.retain(|n| n.instance_uuid.is_some() == want);
    }
    if let Some(rc) = q.get("resource_class") {
        nodes.retain(|n| n.resource_class.as_deref() == Some(rc.as_str()));
    }
    if let Some(c) = q.get("chassis_uuid") {
        nodes.retain(|n| n.chassis_uuid.as_deref() == Some(c.as_str()));
    }
    if sort_key != "id" {
        nodes.sort_by(|a, b| {
            cmp_json(
                &node_json::field(a, sort_key, &r),
                &node_json::field(b, sort_key, &r),
            )
            .then(a.id.cmp(&b.id))
        });
    }
    if desc {
        nodes.reverse();
    }
    let start = match q.get("marker") {
        None => 0,
        Some(m) => {
            nodes.iter().position(|n| &n.uuid == m).ok_or_else(|| {
                ApiError::bad_request(format!(
                "Marker {m} could not be found: use the uuid of the last node of the previous page"
            ))
            })? + 1
        }
    };
    let page: Vec<&Node> = nodes.iter().skip(start).take(limit).collect();
    let more = start + page.len() < nodes.len();
    let brief: Vec<String> = node_json::BRIEF
        .iter()
        .filter(|f| node_json::known_field(f, ctx.version))
        .map(|f| f.to_string())
        .collect();
    let docs: Vec<Value> = page
        .iter()
        .map(|n| {
            if detail {
                node_json::render(n, None, &r)
            } else {
                node_json::render(n, Some(fields.as_deref().unwrap_or(&brief)), &r)
            }
        })
        .collect();
    let mut out = json!({ "nodes": docs });
    if more {
        if let Some(last) = page.last() {
            let mut next = format!(
                "{}/v1/{resource}?limit={limit}&marker={}",
                ctx.base, last.uuid
            );
            if let Some(f) = q.get("fields") {
                next.push_str(&format!("&fields={f}"));
            }
            if sort_key != "id" {
                next.push_str(&format!("&sort_key={sort_key}"));
            }
            if desc {
                next.push_str("&sort_dir=desc");
            }
            out["next"] = json!(next);
        }
    }
    Ok(Json(out))
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let mut node = node_json::from_create(&body).map_err(ApiError::bad_request)?;
    check_chassis(&state, node.chassis_uuid.as_deref()).await?;
    if ctx.version < Version(11) {
        // Before 1.11 new nodes started out available (Ironic's behaviour).
        node.provision_state = "available".into();
    }
    let node = state.conductor.create_node(node).await?;
    let r = render_ctx(&state, &ctx);
    let location = format!("{}/v1/nodes/{}", ctx.base, node.uuid);
    Ok(super::created(
        node_json::render(&node, None, &r),
        &location,
    ))
}

/// A node's chassis must exist: Ironic answers 400 with the chassis's not-found message.
async fn check_chassis(state: &AppState, chassis: Option<&str>) -> ApiResult<()> {
    if let Some(uuid) = chassis {
        state
            .conductor
            .store()
            .chassis(uuid)
            .await
            .map_err(super::resource::missing_is_bad_request)?;
    }
    Ok(())
}

async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(&q, ctx.version)?;
    let ident = super::resource::strip_json(&ident, ctx.version);
    let node = state.conductor.store().node(ident).await?;
    Ok(Json(node_json::render(
        &node,
        fields.as_deref(),
        &render_ctx(&state, &ctx),
    )))
}

async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let ops = patch::parse(&body, node_json::WRITABLE).map_err(ApiError::bad_request)?;
    if let Some(op) = ops
        .iter()
        .find(|o| o.path == ["chassis_uuid"] && o.op != "remove")
    {
        let uuid = op.value.as_ref().and_then(Value::as_str);
        check_chassis(&state, uuid).await?;
    }
    let ident = super::resource::strip_json(&ident, ctx.version);
    let node = state
        .conductor
        .update_node(ident, move |node| {
            let before = node_json::writable_doc(node);
            let mut doc = before.clone();
            patch::apply(&mut doc, &ops).map_err(ConductorError::Invalid)?;
            for (k, v) in &doc {
                if before.get(k) != Some(v) {
                    node_json::set_field(node, k, v).map_err(ConductorError::Invalid)?;
                }
            }
            if before.get("driver") != doc.get("driver") {
                check_driver(&node.driver)?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(node_json::render(
        &node,
        None,
        &render_ctx(&state, &ctx),
    )))
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<StatusCode> {
    let ident = super::resource::strip_json(&ident, ctx.version);
    state.conductor.delete_node(ident).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn states(
    State(state): State<AppState>,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let n = state.conductor.store().node(&ident).await?;
    Ok(Json(json!({
        "console_enabled": n.console_enabled,
        "last_error": n.last_error,
        "power_state": n.power_state,
        "provision_state": n.provision_state,
        "provision_updated_at": n.provision_updated_at.as_ref().map(node_json::iso),
        "raid_config": {},
        "target_power_state": n.target_power_state,
        "target_provision_state": n.target_provision_state,
        "target_raid_config": {},
        "boot_mode": n.boot_mode,
        "secure_boot": null,
    })))
}

const PROVISION_KEYS: &[&str] = &[
    "target",
    "configdrive",
    "clean_steps",
    "deploy_steps",
    "service_steps",
    "rescue_password",
    "disable_ramdisk",
];

fn accepted(ctx: &Ctx, uuid: &str) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/v1/nodes/{uuid}/states", ctx.base)) {
        headers.insert(header::LOCATION, loc);
    }
    (StatusCode::ACCEPTED, headers).into_response()
}

fn object(body: &Value, what: &str, example: &str) -> ApiResult<Map<String, Value>> {
    body.as_object().cloned().ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid {what} request: the body must be a JSON object such as {example}"
        ))
    })
}

async fn provision(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let obj = object(&body, "provision", "{\"target\": \"active\"}")?;
    if let Some(bad) = obj.keys().find(|k| !PROVISION_KEYS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Unknown attribute for provision request: {bad}. Accepted: {}",
            PROVISION_KEYS.join(", ")
        )));
    }
    let target = obj.get("target").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("Missing mandatory parameter: target (e.g. \"active\", \"deleted\", \"manage\", \"provide\")")
    })?;
    let event = Event::from_target(target)
        .filter(|e| e.is_verb())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "\"{target}\" is not a valid provision target: use manage, provide, clean, active, deleted, rebuild, abort or inspect"
            ))
        })?;
    let config_drive = match obj.get("configdrive").filter(|v| !v.is_null()) {
        Some(_) if event != Event::Deploy && event != Event::Rebuild => {
            return Err(ApiError::bad_request(
                "Adding a config drive is only supported when setting provision state to active or rebuild",
            ))
        }
        Some(cd) => Some(checked_config_drive(cd)?),
        None => None,
    };
    let clean_steps = match (obj.get("clean_steps").filter(|v| !v.is_null()), event) {
        (Some(steps), Event::Clean) => Some(
            worker_clean_steps(steps)?,
        ),
        (None, Event::Clean) => {
            return Err(ApiError::bad_request(
                "clean_steps is required when setting target provision state to clean, e.g. [{\"interface\": \"deploy\", \"step\": \"erase_devices_metadata\"}]",
            ))
        }
        (Some(_), _) => {
            return Err(ApiError::bad_request(
                "clean_steps is only allowed when setting target provision state to clean",
            ))
        }
        (None, _) => None,
    };
    let node = state
        .conductor
        .provision_with(&ident, event, move |n| {
            if let Some(cd) = config_drive {
                n.instance_info.insert("configdrive".into(), cd);
            }
            if let Some(steps) = clean_steps {
                n.driver_internal_info.insert(CLEAN_STEPS_KEY.into(), steps);
            }
        })
        .await?;
    Ok(accepted(&ctx, &node.uuid))
}

/// Largest config drive a deploy may carry (Ironic's limit): 64 MiB, as given (JSON text or
/// gzipped base64).
pub const CONFIG_DRIVE_MAX: usize = 64 << 20;

/// Refuses a config drive over [`CONFIG_DRIVE_MAX`] or of a shape no deploy can use.
fn checked_config_drive(cd: &Value) -> ApiResult<Value> {
    let len = match cd {
        Value::String(s) => s.len(),
        Value::Object(_) => cd.to_string().len(),
        _ => {
            return Err(ApiError::bad_request(
                "configdrive must be a JSON object (meta_data, user_data, network_data), a URL, or a gzipped base64-encoded image",
            ))
        }
    };
    if len > CONFIG_DRIVE_MAX {
        return Err(ApiError::bad_request(format!(
            "The config drive is {len} bytes, over the limit of {CONFIG_DRIVE_MAX} bytes (64 MiB): make it smaller or serve it from a URL"
        )));
    }
    Ok(cd.clone())
}

/// Checks a manual clean's `clean_steps` (an unknown step is named) and returns them as saved.
fn worker_clean_steps(steps: &Value) -> ApiResult<Value> {
    parse_clean_steps(steps).map_err(ApiError::bad_request)?;
    Ok(steps.clone())
}

/// Ironic's agent heartbeat: a node in wait call-back has booted and finishes its deploy.
async fn heartbeat(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Response> {
    let node = state.conductor.finish_wait(&ident, Ok(())).await?;
    Ok(accepted(&ctx, &node.uuid))
}

async fn power(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let obj = object(&body, "power", "{\"target\": \"power on\"}")?;
    if let Some(bad) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "target" | "timeout"))
    {
        return Err(ApiError::bad_request(format!(
            "Unknown attribute for power request: {bad}. Accepted: target, timeout"
        )));
    }
    let target = obj.get("target").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("Missing mandatory parameter: target (e.g. \"power on\")")
    })?;
    let node = state.conductor.set_power(&ident, target).await?;
    Ok(accepted(&ctx, &node.uuid))
}

async fn validate(
    State(state): State<AppState>,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let results = state.conductor.validate(&ident).await?;
    let mut out = Map::new();
    for (iface, ok, reason) in results {
        out.insert(
            iface,
            json!({"result": ok, "reason": if ok { Value::Null } else { json!(reason) }}),
        );
    }
    Ok(Json(Value::Object(out)))
}

async fn history(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let node = state.conductor.store().node(&ident).await?;
    let events = state.conductor.store().history(&node.uuid).await?;
    let list: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "uuid": e.uuid,
                "created_at": node_json::iso(&e.created_at),
                "severity": e.severity,
                "event": e.event,
                "event_type": e.event_type,
                "conductor": e.conductor,
                "user": e.user_id,
                "links": [{"href": format!("{}/v1/nodes/{}/history/{}", ctx.base, node.uuid, e.uuid), "rel": "self"}],
            })
        })
        .collect();
    Ok(Json(json!({ "history": list })))
}

async fn maintenance_on(
    State(state): State<AppState>,
    Path(ident): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    // The body is optional: `{"reason": "…"}`.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}")))?;
        v.get("reason").and_then(Value::as_str).map(String::from)
    };
    state
        .conductor
        .update_node(&ident, |n| {
            n.maintenance = true;
            n.maintenance_reason = reason;
            Ok(())
        })
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn maintenance_off(
    State(state): State<AppState>,
    Path(ident): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .conductor
        .update_node(&ident, |n| {
            n.maintenance = false;
            n.maintenance_reason = None;
            Ok(())
        })
        .await?;
    Ok(StatusCode::ACCEPTED)
}
