//! A node's hardware as Ironic serves it: `/inventory` (1.81), `/bios` and `/bios/{name}`
//! (1.40, registry fields with `?detail=true` at 1.74), `/firmware` (1.86), `/vmedia`
//! (attach and detach 1.89, list 1.93) and the redfish vendor passthru's event subscriptions.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::resource::{gate, parse_bool};
use super::version::Version;
use super::{AppState, Ctx};
use crate::hardware::{BiosSetting, NewSubscription};
use crate::store::FactKind;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/nodes/{ident}/inventory", get(inventory))
        .route("/v1/nodes/{ident}/bios", get(bios))
        .route("/v1/nodes/{ident}/bios/{name}", get(bios_one))
        .route("/v1/nodes/{ident}/firmware", get(firmware))
        .route(
            "/v1/nodes/{ident}/states/raid",
            axum::routing::put(set_raid),
        )
        .route(
            "/v1/nodes/{ident}/vmedia",
            get(vmedia_list)
                .post(vmedia_attach)
                .delete(vmedia_detach)
                .put(vmedia_other),
        )
        .route(
            "/v1/nodes/{ident}/vendor_passthru",
            get(passthru).post(passthru).delete(passthru),
        )
        .route(
            "/v1/nodes/{ident}/vendor_passthru/methods",
            get(passthru_methods),
        )
}

async fn inventory(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, 81, false)?;
    let node = state.conductor.store().node(&ident).await?;
    match state
        .conductor
        .store()
        .fact(&node.uuid, FactKind::Inspection)
        .await?
    {
        Some(f) => Ok(Json(f.data)),
        None => Err(ApiError::not_found(format!(
            "Node inventory for node {} could not be found: inspect the node first (provision target \"inspect\" from manageable)",
            node.uuid
        ))),
    }
}

const BIOS_BRIEF: &[&str] = &["name", "value"];
const BIOS_DETAIL: &[&str] = &[
    "name",
    "value",
    "attribute_type",
    "allowable_values",
    "lower_bound",
    "max_length",
    "min_length",
    "read_only",
    "reset_required",
    "unique",
    "upper_bound",
];

fn bios_doc(ctx: &Ctx, node: &str, s: &BiosSetting, fields: &[&str], times: &Value) -> Value {
    let full = serde_json::to_value(s).unwrap_or(Value::Null);
    let mut doc = Map::new();
    for f in fields {
        doc.insert((*f).into(), full.get(*f).cloned().unwrap_or(Value::Null));
    }
    doc.insert("created_at".into(), times["created_at"].clone());
    doc.insert("updated_at".into(), times["updated_at"].clone());
    doc.insert(
        "links".into(),
        super::resource::links(&ctx.base, "nodes", &format!("{node}/bios/{}", s.name)),
    );
    Value::Object(doc)
}

async fn cached_bios(
    state: &AppState,
    ident: &str,
) -> ApiResult<(String, Vec<BiosSetting>, Value)> {
    let node = state.conductor.store().node(ident).await?;
    let fact = state
        .conductor
        .store()
        .fact(&node.uuid, FactKind::Bios)
        .await?;
    let Some(f) = fact else {
        return Ok((node.uuid, Vec::new(), Value::Null));
    };
    let settings: Vec<BiosSetting> = serde_json::from_value(f.data).unwrap_or_default();
    let times = json!({
        "created_at": super::node_json::iso(&f.created_at),
        "updated_at": f.updated_at.as_ref().map(super::node_json::iso),
    });
    Ok((node.uuid, settings, times))
}

async fn bios(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, 40, false)?;
    let detail = match q.get("detail") {
        Some(d) if ctx.version >= Version(74) => parse_bool("detail", d)?,
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "Invalid query parameter ?detail={d} received (it needs API version 1.74)."
            )))
        }
        None => false,
    };
    let fields: Vec<&str> = match q.get("fields") {
        Some(_) if detail => {
            return Err(ApiError::bad_request(
                "Can not specify ?detail=True and fields in the same request.",
            ))
        }
        Some(raw) if ctx.version >= Version(74) => {
            let asked: Vec<&str> = raw
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect();
            if let Some(bad) = asked.iter().find(|f| !BIOS_DETAIL.contains(f)) {
                return Err(ApiError::bad_request(format!(
                    "Field(s) \"{bad}\" are not valid"
                )));
            }
            asked
        }
        Some(_) => return Err(super::resource::not_acceptable()),
        None if detail => BIOS_DETAIL.to_vec(),
        None => BIOS_BRIEF.to_vec(),
    };
    let (uuid, settings, times) = cached_bios(&state, &ident).await?;
    let list: Vec<Value> = settings
        .iter()
        .map(|s| bios_doc(&ctx, &uuid, s, &fields, &times))
        .collect();
    Ok(Json(json!({ "bios": list })))
}

async fn bios_one(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((ident, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, 40, false)?;
    let (uuid, settings, times) = cached_bios(&state, &ident).await?;
    let fields = if ctx.version >= Version(74) {
        BIOS_DETAIL
    } else {
        BIOS_BRIEF
    };
    let s = settings.iter().find(|s| s.name == name).ok_or_else(|| {
        ApiError::not_found(format!(
            "BIOS setting {name} for node {uuid} could not be found."
        ))
    })?;
    let mut out = Map::new();
    out.insert(name.clone(), bios_doc(&ctx, &uuid, s, fields, &times));
    Ok(Json(Value::Object(out)))
}

async fn firmware(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, 86, false)?;
    let node = state.conductor.store().node(&ident).await?;
    let list = state
        .conductor
        .store()
        .fact(&node.uuid, FactKind::Firmware)
        .await?
        .map(|f| f.data)
        .unwrap_or_else(|| json!([]));
    Ok(Json(json!({ "firmware": list })))
}

async fn vmedia_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    gate(ctx.version, 93, false)?;
    let (_, hw) = state.conductor.hardware(&ident).await?;
    let devices = hw
        .vmedia()
        .await
        .map_err(crate::conductor::ConductorError::from)?;
    Ok(Json(json!(devices)))
}

/// Any other method on `/vmedia`: 405 from 1.89, and below it 404 as for every method there
/// (Ironic's node controller answers the whole `/vmedia` subtree 404 before 1.89).
async fn vmedia_other(ctx: Ctx) -> ApiResult<StatusCode> {
    gate(ctx.version, 89, false)?;
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for /vmedia: use GET (list), POST (attach) or DELETE (detach)",
    ))
}

/// Ironic's accepted schemes for a user's virtual media image.
const VMEDIA_SCHEMES: &[&str] = &["http", "https", "nfs", "cifs"];

async fn vmedia_attach(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    gate(ctx.version, 89, false)?;
    let obj = super::resource::object(
        &body,
        &["device_type", "image_url", "image_download_source"],
    )?;
    let device = obj
        .get("device_type")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request("Missing mandatory field: device_type (cdrom, disk or floppy)")
        })?
        .to_string();
    let url = obj
        .get("image_url")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("Missing mandatory field: image_url"))?
        .to_string();
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    if !VMEDIA_SCHEMES.contains(&scheme) {
        return Err(ApiError::bad_request(format!(
            "Unsupported or missing URL scheme: {scheme} (use http, https, nfs or cifs)"
        )));
    }
    if !matches!(device.as_str(), "cdrom" | "disk" | "floppy") {
        return Err(ApiError::bad_request(format!(
            "Invalid device type {device} (valid are cdrom, disk, floppy)"
        )));
    }
    state
        .conductor
        .with_hardware_locked(&ident, move |hw| async move {
            hw.attach_vmedia(&device, &url).await
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn vmedia_detach(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    gate(ctx.version, 89, false)?;
    let types: Option<Vec<String>> = q.get("device_types").map(|raw| {
        raw.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect()
    });
    if let Some(bad) = types
        .iter()
        .flatten()
        .find(|t| !matches!(t.as_str(), "cdrom" | "disk" | "floppy"))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid device type(s) {bad} (valid are cdrom, disk, floppy)"
        )));
    }
    state
        .conductor
        .with_hardware_locked(&ident, move |hw| async move {
            hw.detach_vmedia(types.as_deref()).await
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The redfish vendor interface's methods, as `GET …/vendor_passthru/methods` lists them.
fn methods() -> Value {
    let m = |verbs: &[&str], what: &str| json!({"http_methods": verbs, "async": false, "description": what, "attach": false, "require_exclusive_lock": false});
    json!({
        "create_subscription": m(&["POST"], "Creates a subscription on a node."),
        "delete_subscription": m(&["DELETE"], "Delete a subscription on a node."),
        "get_subscription": m(&["GET"], "Returns a subscription on a node."),
        "get_all_subscriptions": m(&["GET"], "Returns all subscriptions on a node."),
    })
}

async fn passthru_methods(
    State(state): State<AppState>,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    let node = state.conductor.store().node(&ident).await?;
    if node.vendor_interface != "redfish" {
        return Ok(Json(json!({})));
    }
    Ok(Json(methods()))
}

async fn passthru(
    State(state): State<AppState>,
    Path(ident): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: axum::http::Method,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let name = q.get("method").map(String::as_str).ok_or_else(|| {
        ApiError::bad_request("Missing argument: \"method\" (e.g. ?method=get_all_subscriptions)")
    })?;
    let args: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}")))?
    };
    let allowed = methods();
    let Some(spec) = allowed.get(name) else {
        return Err(ApiError::bad_request(format!(
            "Unsupported method ({name}) passed through to vendor extension: use create_subscription, delete_subscription, get_subscription or get_all_subscriptions"
        )));
    };
    if !spec["http_methods"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m == method.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "The method {name} does not support HTTP {method}"
        )));
    }
    let (node, hw) = state.conductor.hardware(&ident).await?;
    if node.vendor_interface != "redfish" {
        return Err(ApiError::bad_request(format!(
            "Node {} has vendor_interface {:?}, which has no method {name}: set vendor_interface to redfish",
            node.uuid, node.vendor_interface
        )));
    }
    let arg = |k: &str| args.get(k).and_then(Value::as_str).map(String::from);
    let to_api = |e: crate::hardware::HardwareError| {
        ApiError::from(crate::conductor::ConductorError::from(e))
    };
    let answer = match name {
        "get_all_subscriptions" => {
            let subs = hw.subscriptions().await.map_err(to_api)?;
            json!({
                "@odata.type": "#EventDestinationCollection.EventDestinationCollection",
                "Name": "Event Subscriptions Collection",
                "Members": subs.iter().map(|s| json!({"@odata.id": s.id})).collect::<Vec<_>>(),
                "Members@odata.count": subs.len(),
            })
        }
        "get_subscription" => {
            let id = arg("id").ok_or_else(|| {
                ApiError::bad_request("Missing argument: \"id\" of the subscription")
            })?;
            json!(hw.subscription(&id).await.map_err(to_api)?)
        }
        "delete_subscription" => {
            let id = arg("id").ok_or_else(|| {
                ApiError::bad_request("Missing argument: \"id\" of the subscription")
            })?;
            hw.delete_subscription(&id).await.map_err(to_api)?;
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        _ => {
            // Ironic's redfish vendor (and gophercloud's CreateSubscriptionOpts) name the
            // arguments as Redfish does; the snake_case names are accepted too.
            let field = |pascal: &str, snake: &str| {
                args.get(pascal)
                    .or_else(|| args.get(snake))
                    .filter(|v| !v.is_null())
            };
            let text = |pascal: &str, snake: &str| -> ApiResult<Option<String>> {
                match field(pascal, snake) {
                    None => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(ApiError::bad_request(format!(
                        "{pascal} {other} is not a valid string"
                    ))),
                }
            };
            let destination = text("Destination", "destination")?.ok_or_else(|| {
                ApiError::bad_request(
                    "Missing argument: \"Destination\" (the URL events are sent to)",
                )
            })?;
            if !(destination.starts_with("http://") || destination.starts_with("https://")) {
                return Err(ApiError::bad_request(format!(
                    "Destination {destination:?} is not a valid URI: use an http:// or https:// URL"
                )));
            }
            let event_types = match field("EventTypes", "event_types") {
                None => vec!["Alert".to_string()],
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                    .iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect(),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "EventTypes {other} is not a valid value: give a list of strings such as [\"Alert\"]"
                    )))
                }
            };
            let http_headers = match field("HttpHeaders", "http_headers") {
                None => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_object)
                    .flat_map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    })
                    .collect(),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "HttpHeaders {other} is not a list of headers"
                    )))
                }
            };
            let new = NewSubscription {
                destination,
                event_types,
                context: text("Context", "context")?.unwrap_or_default(),
                protocol: text("Protocol", "protocol")?.unwrap_or_else(|| "Redfish".into()),
                http_headers,
            };
            json!(hw.create_subscription(&new).await.map_err(to_api)?)
        }
    };
    Ok(Json(answer).into_response())
}

/// Ironic's RAID levels.
const RAID_LEVELS: &[&str] = &["0", "1", "2", "5", "6", "1+0", "5+0", "6+0"];

/// `PUT /states/raid`: the node's target_raid_config, which raid.create_configuration builds.
async fn set_raid(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    // Ironic's NodeStatesController.raid answers 406 before 1.12.
    super::resource::require(ctx.version, Version(12))?;
    let obj = super::resource::object(&body, &["logical_disks"])?;
    // An empty configuration clears the target, as in Ironic's set_target_raid_config.
    if obj.is_empty() {
        return clear_or_set_raid(&state, &ident, None).await;
    }
    let disks = obj
        .get("logical_disks")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::bad_request(
                "target_raid_config needs \"logical_disks\": a list such as [{\"size_gb\": 100, \"raid_level\": \"1\"}] (an empty list clears it)",
            )
        })?;
    for d in disks {
        let level = d.get("raid_level").and_then(Value::as_str).unwrap_or("");
        if !RAID_LEVELS.contains(&level) {
            return Err(ApiError::bad_request(format!(
                "Invalid logical disk {d}: raid_level must be one of {}",
                RAID_LEVELS.join(", ")
            )));
        }
        let size_ok = match d.get("size_gb") {
            Some(Value::Number(n)) => n.as_u64().is_some(),
            Some(Value::String(s)) => s == "MAX",
            _ => false,
        };
        if !size_ok {
            return Err(ApiError::bad_request(format!(
                "Invalid logical disk {d}: size_gb must be a whole number of GiB or \"MAX\""
            )));
        }
    }
    let target = if disks.is_empty() {
        None
    } else {
        Some(json!({"logical_disks": disks}))
    };
    clear_or_set_raid(&state, &ident, target).await
}

/// Stores the node's target RAID configuration (None: clears it).
async fn clear_or_set_raid(
    state: &AppState,
    ident: &str,
    target: Option<Value>,
) -> ApiResult<StatusCode> {
    state
        .conductor
        .update_node(ident, move |n| {
            match target {
                Some(t) => n
                    .driver_internal_info
                    .insert(crate::conductor::TARGET_RAID_KEY.into(), t),
                None => n
                    .driver_internal_info
                    .remove(crate::conductor::TARGET_RAID_KEY),
            };
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
