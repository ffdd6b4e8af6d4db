//! Version documents (GET / and /v1) and the drivers resource.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::version::{MAX, MIN};
use super::{AppState, Ctx};
use crate::conductor::SUPPORTED_DRIVERS;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/v1", get(v1))
        .route("/v1/", get(v1))
}

pub fn drivers_router() -> Router<AppState> {
    Router::new()
        .route("/v1/drivers", get(drivers))
        .route("/v1/drivers/{name}", get(driver))
        .route("/v1/drivers/{name}/properties", get(driver_properties))
        .route(
            "/v1/drivers/{name}/raid/logical_disk_properties",
            get(logical_disk_properties),
        )
}

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v1",
        "links": [{"href": format!("{base}/v1/"), "rel": "self"}],
        "status": "CURRENT",
        "min_version": MIN.to_string(),
        "version": MAX.to_string(),
    })
}

async fn root(ctx: Ctx) -> Json<Value> {
    let v = version_doc(&ctx.base);
    Json(json!({
        "name": "OpenStack Ironic API",
        "description": "ironcast: an Ironic-compatible bare-metal provisioning conductor.",
        "default_version": v,
        "versions": [v],
    }))
}

fn res(base: &str, name: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{name}/"), "rel": "self"},
        {"href": format!("{base}/{name}/"), "rel": "bookmark"},
    ])
}

async fn v1(ctx: Ctx) -> Json<Value> {
    let b = &ctx.base;
    Json(json!({
        "id": "v1",
        "links": [{"href": format!("{b}/v1/"), "rel": "self"}],
        "media_types": {"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"},
        "chassis": res(b, "chassis"),
        "nodes": res(b, "nodes"),
        "ports": res(b, "ports"),
        "drivers": res(b, "drivers"),
        "version": version_doc(b),
    }))
}

fn driver_doc(state: &AppState, ctx: &Ctx, name: &str) -> Value {
    json!({
        "name": name,
        "hosts": [state.conductor.name()],
        "type": "dynamic",
        "links": [
            {"href": format!("{}/v1/drivers/{name}", ctx.base), "rel": "self"},
            {"href": format!("{}/drivers/{name}", ctx.base), "rel": "bookmark"},
        ],
        "properties": [
            {"href": format!("{}/v1/drivers/{name}/properties", ctx.base), "rel": "self"},
            {"href": format!("{}/drivers/{name}/properties", ctx.base), "rel": "bookmark"},
        ],
    })
}

async fn drivers(State(state): State<AppState>, ctx: Ctx) -> Json<Value> {
    let list: Vec<Value> = SUPPORTED_DRIVERS
        .iter()
        .map(|d| driver_doc(&state, &ctx, d))
        .collect();
    Json(json!({ "drivers": list }))
}

async fn driver(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if !SUPPORTED_DRIVERS.contains(&name.as_str()) {
        return Err(ApiError::not_found(format!(
            "Could not find the following driver(s) or hardware type(s): {name}."
        )));
    }
    Ok(Json(driver_doc(&state, &ctx, &name)))
}

fn known_driver(name: &str) -> ApiResult<()> {
    if SUPPORTED_DRIVERS.contains(&name) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "Could not find the following driver(s) or hardware type(s): {name}."
        )))
    }
}

/// The driver_info keys a driver reads, with what each means (Ironic's driver properties).
async fn driver_properties(Path(name): Path<String>) -> ApiResult<Json<Value>> {
    known_driver(&name)?;
    Ok(Json(match name.as_str() {
        "redfish" => json!({
            "redfish_address": "The URL address to the Redfish controller. Required.",
            "redfish_system_id": "The canonical path to the ComputerSystem resource. Optional.",
            "redfish_username": "User account with admin/server-profile access privilege. Optional.",
            "redfish_password": "User account password. Optional.",
            "redfish_verify_ca": "false to skip TLS verification, or a CA bundle path. Optional.",
        }),
        _ => json!({
            "deploy_forces_oob_reboot": "Whether to reboot out of band after deploy (the fake driver ignores it). Optional.",
        }),
    }))
}

/// The keys of a RAID logical disk a driver accepts (1.12+), as Ironic's RAID schema.
async fn logical_disk_properties(ctx: Ctx, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    super::resource::require(ctx.version, super::version::Version(12))?;
    known_driver(&name)?;
    Ok(Json(json!({
        "size_gb": "Size in GiB (integer) of the logical disk, or MAX. Required.",
        "raid_level": "RAID level: 0, 1, 2, 5, 6, 1+0, 5+0, 6+0. Required.",
        "volume_name": "Name of the volume. Optional.",
        "is_root_volume": "Whether this is the root volume. Optional.",
        "share_physical_disks": "Whether to share physical disks with other logical disks. Optional.",
        "disk_type": "hdd or ssd. Optional.",
        "interface_type": "sata, scsi or sas. Optional.",
        "number_of_physical_disks": "Number of physical disks to use. Optional.",
        "controller": "Controller to use. Optional.",
        "physical_disks": "Physical disks to use. Optional.",
    })))
}
