//! /v1/nodes: create, list (fields, detail, limit, marker, sort), show, JSON-Patch, delete,
//! states, provision and power actions, validate, history, maintenance.

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
use super::{node_list, patch, provision_rules, AppState, Ctx};
use crate::conductor::states::Event;
use crate::conductor::{
    check_driver, parse_clean_steps, ConductorError, CLEAN_STEPS_KEY, SERVICE_STEPS_KEY,
    SERVICE_STEP_KEY,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/nodes", get(node_list::list_brief).post(create))
        .route("/v1/nodes/", get(node_list::list_brief).post(create))
        .route("/v1/nodes/detail", get(node_list::list_detail))
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
        .route("/v1/nodes/{ident}/ports", get(super::ports::list_for_node))
        .route(
            "/v1/nodes/{ident}/ports/detail",
            get(super::ports::list_detail_for_node),
        )
}

/// Ironic's agent call-back, outside basic auth: the booted ramdisk has no API credentials,
/// only the agent token of its boot.
pub fn heartbeat_router() -> Router<AppState> {
    Router::new()
        .route("/v1/heartbeat/{ident}", post(heartbeat))
        .route("/v1/heartbeat", post(heartbeat_named_in_body))
}

fn render_ctx<'a>(state: &'a AppState, ctx: &'a Ctx) -> Render<'a> {
    Render {
        version: ctx.version,
        base: &ctx.base,
        conductor: state.conductor.name(),
    }
}

/// Parses `?fields=a,b`: a field newer than the version is 406, an unknown one 400 (Ironic).
fn parse_fields(q: &HashMap<String, String>, v: Version) -> ApiResult<Option<Vec<String>>> {
    let Some(raw) = q.get("fields") else {
        return Ok(None);
    };
    let newer = raw.split(',').map(str::trim).any(|f| {
        node_json::FIELDS
            .iter()
            .any(|(name, since)| *name == f && v < Version(*since))
    });
    if v < Version(8) || newer {
        return Err(super::resource::not_acceptable());
    }
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

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    if let Some(obj) = body.as_object() {
        if !settable(&ctx, obj.keys().map(String::as_str)) {
            return Err(super::resource::not_acceptable());
        }
    }
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

/// Whether a client may set these fields at its version: one that asked for an old version
/// gets Ironic's 406 for newer fields; one that sent no version header (curl, scripts) is
/// read leniently rather than held to 1.1.
fn settable<'a>(ctx: &Ctx, names: impl IntoIterator<Item = &'a str>) -> bool {
    !ctx.version_asked || node_json::check_settable(names, ctx.version)
}

/// Node history appeared in 1.78, the agent heartbeat in 1.22.
const HISTORY_SINCE: u32 = 78;
const HEARTBEAT_SINCE: u32 = 22;

/// Ironic's 404 for an endpoint newer than an asked-for version; a request without a version
/// header (a booted ISO's curl, scripts) is served.
fn asked_gate(ctx: &Ctx, since: u32) -> ApiResult<()> {
    if ctx.version_asked {
        super::resource::gate(ctx.version, since, false)?;
    }
    Ok(())
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
    let mut node = state.conductor.store().node(ident).await?;
    fill_traits(&state, &ctx, std::slice::from_mut(&mut node)).await?;
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
    if !settable(&ctx, ops.iter().map(|o| o.path[0].as_str())) {
        return Err(super::resource::not_acceptable());
    }
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
            let unpatched = node.clone();
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
            if before.get("instance_info") != doc.get("instance_info") {
                node_json::name_instance_from_info(node);
            }
            crate::conductor::check_update(&unpatched, node)
        })
        .await?;
    let mut node = node;
    if node.instance_uuid.is_none() {
        // As Ironic: removing a node's instance_uuid deletes its allocation.
        state.conductor.drop_allocation_of(&mut node).await?;
    }
    fill_traits(&state, &ctx, std::slice::from_mut(&mut node)).await?;
    Ok(Json(node_json::render(
        &node,
        None,
        &render_ctx(&state, &ctx),
    )))
}

/// Reads the traits of nodes about to be shown, when the version shows them (1.37+).
pub(super) async fn fill_traits(
    state: &AppState,
    ctx: &Ctx,
    nodes: &mut [crate::store::Node],
) -> ApiResult<()> {
    if ctx.version >= super::traits::SINCE {
        state.conductor.store().fill_traits(nodes).await?;
    }
    Ok(())
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
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let n = state.conductor.store().node(&ident).await?;
    let r = render_ctx(&state, &ctx);
    let out: Map<String, Value> = node_json::state_fields(ctx.version)
        .map(|f| (f.to_string(), node_json::field(&n, f, &r)))
        .collect();
    Ok(Json(Value::Object(out)))
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
                "\"{target}\" is not a valid provision target: use manage, provide, clean, active, deleted, rebuild, abort, inspect, adopt, service or unhold"
            ))
        })?;
    verb_gate(&ctx, event)?;
    let disable_ramdisk = provision_rules::disable_ramdisk_flag(obj.get("disable_ramdisk"))?;
    provision_rules::check_disable_ramdisk(event, disable_ramdisk, ctx.version, ctx.version_asked)?;
    if event == Event::Abort {
        let current = state.conductor.store().node(&ident).await?;
        provision_rules::check_abort(
            &current.provision_state,
            ctx.version,
            ctx.version_asked,
            super::version::MAX,
        )?;
    }
    let ramdisk_off = disable_ramdisk == Some(true);
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
        (Some(steps), Event::Clean) => {
            let parsed = parse_clean_steps(steps).map_err(ApiError::bad_request)?;
            if ramdisk_off {
                provision_rules::check_ramdisk_free(&parsed, "clean")?;
            }
            Some(steps.clone())
        }
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
    let service_steps = match (obj.get("service_steps").filter(|v| !v.is_null()), event) {
        (Some(steps), Event::Service) => {
            crate::hardware::steps::parse_service(steps).map_err(ApiError::bad_request)?;
            Some(steps.clone())
        }
        (None, Event::Service) => {
            return Err(ApiError::bad_request(
                "service_steps is required when setting target provision state to service, e.g. [{\"interface\": \"bios\", \"step\": \"apply_configuration\", \"args\": {\"settings\": [{\"name\": \"ProcTurboMode\", \"value\": \"Disabled\"}]}}]",
            ))
        }
        (Some(_), _) => {
            return Err(ApiError::bad_request(
                "service_steps is only allowed when setting target provision state to service",
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
            if let Some(steps) = service_steps {
                n.driver_internal_info
                    .insert(SERVICE_STEPS_KEY.into(), steps);
                n.driver_internal_info.remove(SERVICE_STEP_KEY);
            }
        })
        .await?;
    Ok(accepted(&ctx, &node.uuid))
}

/// The first microversion of the verbs added since ironcast's oldest ones (Ironic's
/// MIN_VERB_VERSIONS): an older client asking for them gets Ironic's 406.
fn verb_gate(ctx: &Ctx, event: Event) -> ApiResult<()> {
    let since = match event {
        Event::Adopt => 17,
        Event::Unhold => 85,
        Event::Service => 87,
        _ => return Ok(()),
    };
    if ctx.version_asked && ctx.version < super::version::Version(since) {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "The provision target \"{}\" needs API version 1.{since} or newer (requested {}).",
                event.verb_name(),
                ctx.version
            ),
        ));
    }
    Ok(())
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

/// Ironic's agent heartbeat: a node in wait call-back has booted and finishes its deploy. The
/// caller proves it is that boot with the agent token of its kernel args, in the
/// `X-Ironcast-Agent-Token` header or, as Ironic's agent sends it, the body's `agent_token`.
async fn heartbeat(
    State(state): State<AppState>,
    ctx: Ctx,
    peer: super::agent::Peer,
    Path(ident): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    asked_gate(&ctx, HEARTBEAT_SINCE)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    heartbeat_of(&state, &ctx, &peer, &ident, &headers, &body).await
}

/// `POST /v1/heartbeat` with the node in the body's `node_ident` (Ironic routes both).
async fn heartbeat_named_in_body(
    State(state): State<AppState>,
    ctx: Ctx,
    peer: super::agent::Peer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    asked_gate(&ctx, HEARTBEAT_SINCE)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let ident = body
        .get("node_ident")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Missing mandatory parameter: node_ident (or POST /v1/heartbeat/<node>)",
            )
        })?
        .to_string();
    heartbeat_of(&state, &ctx, &peer, &ident, &headers, &body).await
}

async fn heartbeat_of(
    state: &AppState,
    ctx: &Ctx,
    peer: &super::agent::Peer,
    ident: &str,
    headers: &HeaderMap,
    body: &Value,
) -> ApiResult<Response> {
    let token = super::agent::token_header(headers)
        .or_else(|| body.get("agent_token").and_then(Value::as_str));
    let node = state.conductor.store().node(ident).await?;
    state
        .conductor
        .agent_hub()
        .check_token(&node.uuid, token)
        .map_err(|e| super::agent::refused(e, peer))?;
    let node = state.conductor.finish_wait(&node.uuid, Ok(())).await?;
    Ok(accepted(ctx, &node.uuid))
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
    asked_gate(&ctx, HISTORY_SINCE)?;
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
