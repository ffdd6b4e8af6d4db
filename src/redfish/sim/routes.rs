//! The simulated BMCs' Redfish resources (axum handlers) and the fault switches.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::state::{Fleet, TaskEntry};
use super::{fetch, PowerEvent};

type St = State<Arc<Fleet>>;

const RESET_TYPES: &[&str] = &[
    "On",
    "ForceOff",
    "GracefulShutdown",
    "ForceRestart",
    "GracefulRestart",
    "ForceOn",
];
const TARGETS: &[&str] = &["None", "Pxe", "Cd", "Hdd", "UefiHttp"];

pub fn router(fleet: Arc<Fleet>) -> Router {
    Router::new()
        .route("/redfish/v1", get(root))
        .route("/redfish/v1/", get(root))
        .route("/redfish/v1/SessionService/Sessions", post(create_session))
        .route(
            "/redfish/v1/SessionService/Sessions/{sid}",
            axum::routing::delete(delete_session),
        )
        .route("/redfish/v1/Systems", get(systems))
        .route(
            "/redfish/v1/Systems/{id}",
            get(get_system).patch(patch_system),
        )
        .route(
            "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset",
            post(reset),
        )
        .route("/redfish/v1/Managers", get(managers))
        .route("/redfish/v1/Managers/{id}", get(get_manager))
        .route(
            "/redfish/v1/{kind}/{id}/VirtualMedia",
            get(vmedia_collection),
        )
        .route(
            "/redfish/v1/{kind}/{id}/VirtualMedia/Cd",
            get(get_cd).patch(patch_cd),
        )
        .route(
            "/redfish/v1/{kind}/{id}/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia",
            post(insert),
        )
        .route(
            "/redfish/v1/{kind}/{id}/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia",
            post(eject),
        )
        .route(
            "/redfish/v1/TaskService/TaskMonitors/{tid}",
            get(task_monitor),
        )
        .layer(middleware::from_fn_with_state(fleet.clone(), gate))
        .with_state(fleet)
}

fn error(status: StatusCode, msg: &str) -> Response {
    let body = json!({"error": {
        "code": "Base.1.8.GeneralError",
        "message": msg,
        "@Message.ExtendedInfo": [{"MessageId": "Base.1.8.GeneralError", "Message": msg}]
    }});
    (status, Json(body)).into_response()
}

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("{what} not found"))
}

fn vendor(f: &Fleet) -> &str {
    f.faults.vendor.as_deref().unwrap_or("Ironcast")
}

/// 503 fault, then auth (sessions or Basic) for everything but the root and session login.
async fn gate(State(f): St, req: Request, next: Next) -> Response {
    let n = f.counters.requests.fetch_add(1, Ordering::SeqCst);
    if n < f.faults.unavailable_first {
        f.counters.unavailable_sent.fetch_add(1, Ordering::SeqCst);
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is temporarily unavailable",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().expect("static header"));
        return r;
    }
    let path = req.uri().path();
    let open = matches!(path, "/redfish/v1" | "/redfish/v1/")
        || (req.method() == Method::POST && path == "/redfish/v1/SessionService/Sessions");
    if open {
        return next.run(req).await;
    }
    let Some((user, pass)) = &f.credentials else {
        return next.run(req).await;
    };
    let h = req.headers();
    if let Some(tok) = h.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        if f.sessions
            .lock()
            .map(|s| s.values().any(|t| t == tok))
            .unwrap_or(false)
        {
            return next.run(req).await;
        }
        return error(StatusCode::UNAUTHORIZED, "session expired or unknown");
    }
    if let Some(basic) = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        if f.faults.session_only {
            f.counters.basic_refused.fetch_add(1, Ordering::SeqCst);
            return error(
                StatusCode::UNAUTHORIZED,
                "Basic authentication is disabled; create a session",
            );
        }
        let ok = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|s| s == format!("{user}:{pass}"));
        if ok {
            return next.run(req).await;
        }
    }
    error(StatusCode::UNAUTHORIZED, "authentication required")
}

async fn root(State(f): St) -> Response {
    Json(json!({
        "@odata.id": "/redfish/v1/",
        "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
        "Id": "RootService",
        "Name": "ironcast simulated BMC",
        "RedfishVersion": "1.11.0",
        "Vendor": vendor(&f),
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
        "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}
    }))
    .into_response()
}

async fn create_session(State(f): St, body: Option<Json<Value>>) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let user = body["UserName"].as_str().unwrap_or("");
    let pass = body["Password"].as_str().unwrap_or("");
    if let Some((u, p)) = &f.credentials {
        if user != u || pass != p {
            return error(StatusCode::UNAUTHORIZED, "invalid user name or password");
        }
    }
    let sid = f
        .counters
        .next_id
        .fetch_add(1, Ordering::SeqCst)
        .to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(mut s) = f.sessions.lock() {
        s.insert(sid.clone(), token.clone());
    }
    f.counters.sessions_created.fetch_add(1, Ordering::SeqCst);
    let loc = format!("/redfish/v1/SessionService/Sessions/{sid}");
    (
        StatusCode::CREATED,
        [("x-auth-token", token), ("location", loc.clone())],
        Json(json!({"@odata.id": loc, "Id": sid, "UserName": user})),
    )
        .into_response()
}

async fn delete_session(State(f): St, Path(sid): Path<String>) -> Response {
    let removed = f.sessions.lock().ok().and_then(|mut s| s.remove(&sid));
    match removed {
        Some(_) => {
            f.counters.sessions_deleted.fetch_add(1, Ordering::SeqCst);
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found("session"),
    }
}

fn members(prefix: &str, ids: &[String]) -> Value {
    let m: Vec<Value> = ids
        .iter()
        .map(|id| json!({"@odata.id": format!("{prefix}/{id}")}))
        .collect();
    json!({"Members@odata.count": m.len(), "Members": m, "@odata.id": prefix})
}

async fn systems(State(f): St) -> Response {
    Json(members("/redfish/v1/Systems", &f.order)).into_response()
}

async fn managers(State(f): St) -> Response {
    Json(members("/redfish/v1/Managers", &f.order)).into_response()
}

async fn get_manager(State(f): St, Path(id): Path<String>) -> Response {
    if f.system(&id).is_none() {
        return not_found("manager");
    }
    Json(json!({
        "@odata.id": format!("/redfish/v1/Managers/{id}"),
        "Id": id,
        "ManagerType": "BMC",
        "VirtualMedia": {"@odata.id": format!("/redfish/v1/Managers/{id}/VirtualMedia")},
        "Links": {"ManagerForServers": [{"@odata.id": format!("/redfish/v1/Systems/{id}")}]}
    }))
    .into_response()
}

fn etag(generation: u32) -> String {
    format!("W/\"{generation}\"")
}

fn with_etag(generation: u32, mut body: Value) -> Response {
    body["@odata.etag"] = json!(etag(generation));
    ([(header::ETAG, etag(generation))], Json(body)).into_response()
}

fn targets(f: &Fleet) -> Vec<&'static str> {
    let mut t = TARGETS.to_vec();
    if vendor(f).to_ascii_lowercase().contains("supermicro") {
        t.push("UsbCd");
    }
    t
}

async fn get_system(State(f): St, Path(id): Path<String>) -> Response {
    let Some(sys) = f.system(&id) else {
        return not_found("system");
    };
    let Ok(s) = sys.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
    };
    let mut body = json!({
        "@odata.id": format!("/redfish/v1/Systems/{id}"),
        "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
        "Id": id,
        "Name": format!("sim-{id}"),
        "Manufacturer": vendor(&f),
        "PowerState": if s.on { "On" } else { "Off" },
        "Status": {"State": "Enabled", "Health": s.health.unwrap_or("OK")},
        "Boot": {
            "BootSourceOverrideTarget": s.boot_target,
            "BootSourceOverrideTarget@Redfish.AllowableValues": targets(&f),
            "BootSourceOverrideEnabled": s.boot_enabled,
            "BootSourceOverrideEnabled@Redfish.AllowableValues": ["Disabled", "Once", "Continuous"],
            "BootSourceOverrideMode": if s.uefi { "UEFI" } else { "Legacy" },
            "BootSourceOverrideMode@Redfish.AllowableValues": ["UEFI", "Legacy"]
        },
        "Actions": {"#ComputerSystem.Reset": {
            "target": format!("/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset"),
            "ResetType@Redfish.AllowableValues": RESET_TYPES
        }},
        "Links": {"ManagedBy": [{"@odata.id": format!("/redfish/v1/Managers/{id}")}]},
        "Oem": {"Ironcast": {
            "BootedFrom": s.booted_from,
            "BootedCmdline": s.booted,
            "BootedEntries": s.booted_entries,
            "BootError": s.boot_error,
            "MediaBytes": s.image_len
        }}
    });
    if !f.faults.vmedia_under_managers_only {
        body["VirtualMedia"] =
            json!({"@odata.id": format!("/redfish/v1/Systems/{id}/VirtualMedia")});
    }
    with_etag(s.generation, body)
}

/// 412 when If-Match does not match `current`; the stale-ETag fault makes the first guarded
/// write see a newer generation, as if another client had written in between.
fn precondition(f: &Fleet, headers: &HeaderMap, current: &mut u32) -> Option<Response> {
    let given = headers.get(header::IF_MATCH)?.to_str().ok()?.to_string();
    if f.counters.stale_etag_armed.swap(0, Ordering::SeqCst) == 1 {
        *current += 1;
    }
    if given != "*" && given != etag(*current) {
        f.counters
            .precondition_failed
            .fetch_add(1, Ordering::SeqCst);
        return Some(error(
            StatusCode::PRECONDITION_FAILED,
            "the resource changed; re-read it and retry",
        ));
    }
    None
}

fn pick(allowed: &[&'static str], v: &str) -> Option<&'static str> {
    allowed.iter().copied().find(|a| *a == v)
}

async fn patch_system(
    State(f): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(sys) = f.system(&id) else {
        return not_found("system");
    };
    let Ok(mut s) = sys.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
    };
    let mut generation = s.generation;
    if let Some(r) = precondition(&f, &headers, &mut generation) {
        s.generation = generation;
        return r;
    }
    let Some(boot) = body.get("Boot") else {
        return error(StatusCode::BAD_REQUEST, "only Boot can be changed");
    };
    let allowed_targets = targets(&f);
    let target = match boot.get("BootSourceOverrideTarget").and_then(Value::as_str) {
        None => None,
        Some(t) => match pick(&allowed_targets, t) {
            Some(t) => Some(t),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("BootSourceOverrideTarget {t} is not allowed"),
                )
            }
        },
    };
    let enabled = match boot
        .get("BootSourceOverrideEnabled")
        .and_then(Value::as_str)
    {
        None => None,
        Some(e) => match pick(&["Disabled", "Once", "Continuous"], e) {
            Some(e) => Some(e),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("BootSourceOverrideEnabled {e} is not allowed"),
                )
            }
        },
    };
    let uefi = match boot.get("BootSourceOverrideMode").and_then(Value::as_str) {
        None => None,
        Some("UEFI") => Some(true),
        Some("Legacy") => Some(false),
        Some(m) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("BootSourceOverrideMode {m} is not allowed"),
            )
        }
    };
    if let Some(t) = target {
        s.boot_target = t;
        if enabled.is_none() && s.boot_enabled == "Disabled" {
            s.boot_enabled = "Once";
        }
    }
    if let Some(e) = enabled {
        s.boot_enabled = e;
    }
    if let Some(u) = uefi {
        s.uefi = u;
    }
    s.generation = generation + 1;
    StatusCode::NO_CONTENT.into_response()
}

async fn reset(State(f): St, Path(id): Path<String>, body: Option<Json<Value>>) -> Response {
    if f.system(&id).is_none() {
        return not_found("system");
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let Some(kind) = body["ResetType"]
        .as_str()
        .and_then(|t| pick(RESET_TYPES, t))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("ResetType must be one of {RESET_TYPES:?}"),
        );
    };
    if f.faults.reset_as_task {
        let tid = f.counters.next_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut t) = f.tasks.lock() {
            t.insert(
                tid,
                TaskEntry {
                    polls_left: 1,
                    system: id,
                    reset: kind,
                },
            );
        }
        let loc = format!("/redfish/v1/TaskService/TaskMonitors/{tid}");
        return (
            StatusCode::ACCEPTED,
            [
                (header::LOCATION, loc),
                (header::RETRY_AFTER, "1".to_string()),
            ],
            Json(json!({"TaskState": "New", "TaskStatus": "OK"})),
        )
            .into_response();
    }
    apply_reset(&f, &id, kind).await;
    StatusCode::NO_CONTENT.into_response()
}

async fn task_monitor(State(f): St, Path(tid): Path<u32>) -> Response {
    f.counters.task_polls.fetch_add(1, Ordering::SeqCst);
    let entry = {
        let Ok(mut tasks) = f.tasks.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
        };
        let Some(t) = tasks.get_mut(&tid) else {
            return not_found("task");
        };
        if t.polls_left > 0 {
            t.polls_left -= 1;
            return (
                StatusCode::ACCEPTED,
                [(header::RETRY_AFTER, "1")],
                Json(json!({"TaskState": "Running", "TaskStatus": "OK", "PercentComplete": 50})),
            )
                .into_response();
        }
        tasks.remove(&tid)
    };
    let Some(t) = entry else {
        return not_found("task");
    };
    if f.faults.task_fails {
        return Json(json!({"TaskState": "Exception", "TaskStatus": "Critical",
            "Messages": [{"Message": format!("reset {} failed: power supply fault", t.reset)}]}))
        .into_response();
    }
    apply_reset(&f, &t.system, t.reset).await;
    Json(json!({"TaskState": "Completed", "TaskStatus": "OK", "PercentComplete": 100}))
        .into_response()
}

/// Applies a reset; a power-on (or restart) boots the system from its override. The power
/// hook hears of every power-off and boot.
async fn apply_reset(f: &Arc<Fleet>, id: &str, kind: &str) {
    let Some(sys) = f.system(id) else { return };
    let tell = |event: PowerEvent| {
        if let Some(hook) = &f.on_power {
            hook(id, event);
        }
    };
    let (boot_cd, off_first) = {
        let Ok(mut s) = sys.lock() else { return };
        let was_on = s.on;
        s.on = !matches!(kind, "ForceOff" | "GracefulShutdown");
        s.generation += 1;
        let boots = s.on && (!was_on || kind.contains("Restart"));
        let off_first = was_on && (!s.on || boots);
        if !boots {
            drop(s);
            if off_first {
                tell(PowerEvent::Off);
            }
            return;
        }
        let from = if s.boot_enabled == "Disabled" {
            "Hdd"
        } else {
            s.boot_target
        };
        let from = match from {
            "UsbCd" => "Cd",
            "None" => "Hdd",
            other => other,
        };
        if s.boot_enabled == "Once" {
            s.boot_enabled = "Disabled";
            s.boot_target = "None";
        }
        s.booted_from = Some(from);
        s.boots += 1;
        s.booted = None;
        s.booted_entries.clear();
        s.boot_error = None;
        if from != "Cd" || s.image.is_none() {
            if from == "Cd" {
                s.boot_error = Some("no media inserted in the virtual CD".into());
            }
            drop(s);
            if off_first {
                tell(PowerEvent::Off);
            }
            tell(PowerEvent::Booted {
                from,
                cmdline: None,
            });
            return;
        }
        (f.media_path(id), off_first)
    };
    if off_first {
        tell(PowerEvent::Off);
    }
    let inspector = f.inspector.clone();
    let result = tokio::task::spawn_blocking(move || inspector(&boot_cd))
        .await
        .unwrap_or_else(|e| Err(format!("boot inspector crashed: {e}")));
    let cmdline = match sys.lock() {
        Ok(mut s) => match result {
            Ok(entries) => {
                s.booted = entries.first().cloned();
                s.booted_entries = entries;
                s.booted.clone()
            }
            Err(e) => {
                s.boot_error = Some(e);
                None
            }
        },
        Err(_) => return,
    };
    tell(PowerEvent::Booted {
        from: "Cd",
        cmdline,
    });
}

fn slot_owner(f: &Fleet, kind: &str, id: &str) -> Option<Response> {
    let ok_kind = kind == "Managers" || (kind == "Systems" && !f.faults.vmedia_under_managers_only);
    (!ok_kind || f.system(id).is_none()).then(|| not_found("virtual media"))
}

async fn vmedia_collection(State(f): St, Path((kind, id)): Path<(String, String)>) -> Response {
    if let Some(r) = slot_owner(&f, &kind, &id) {
        return r;
    }
    Json(members(
        &format!("/redfish/v1/{kind}/{id}/VirtualMedia"),
        &["Cd".to_string()],
    ))
    .into_response()
}

async fn get_cd(State(f): St, Path((kind, id)): Path<(String, String)>) -> Response {
    if let Some(r) = slot_owner(&f, &kind, &id) {
        return r;
    }
    let Some(Ok(s)) = f.system(&id).map(|s| s.lock()) else {
        return not_found("system");
    };
    let base = format!("/redfish/v1/{kind}/{id}/VirtualMedia/Cd");
    let mut actions = json!({
        "#VirtualMedia.EjectMedia": {"target": format!("{base}/Actions/VirtualMedia.EjectMedia")}
    });
    if !f.faults.insert_patch_only {
        actions["#VirtualMedia.InsertMedia"] =
            json!({"target": format!("{base}/Actions/VirtualMedia.InsertMedia")});
    }
    with_etag(
        s.vmedia_generation,
        json!({
            "@odata.id": base,
            "@odata.type": "#VirtualMedia.v1_3_0.VirtualMedia",
            "Id": "Cd",
            "Name": "Virtual CD",
            "MediaTypes": ["CD", "DVD"],
            "Image": s.image,
            "Inserted": s.image.is_some(),
            "WriteProtected": true,
            "ConnectedVia": if s.image.is_some() { "URI" } else { "NotConnected" },
            "Actions": actions,
            "Oem": {"Hpe": {"BootOnNextServerReset": s.boot_on_next_server_reset}}
        }),
    )
}

/// Fetches `url` for system `id` and marks it inserted.
async fn do_insert(f: &Arc<Fleet>, id: &str, url: &str) -> Response {
    let Some(sys) = f.system(id) else {
        return not_found("system");
    };
    if sys.lock().map(|s| s.image.is_some()).unwrap_or(true) {
        return error(
            StatusCode::CONFLICT,
            "media already inserted; eject it first",
        );
    }
    if !f
        .fetching
        .lock()
        .map(|mut s| s.insert(id.to_string()))
        .unwrap_or(false)
    {
        return error(StatusCode::CONFLICT, "an insert is already in progress");
    }
    let dest = f.media_path(id);
    let result = fetch::fetch(&f.http, url, &dest, &f.counters).await;
    if let Ok(mut s) = f.fetching.lock() {
        s.remove(id);
    }
    match result {
        Ok(len) => {
            if let Ok(mut s) = sys.lock() {
                s.image = Some(url.to_string());
                s.image_len = len;
                s.vmedia_generation += 1;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(msg) => {
            let _ = tokio::fs::remove_file(&dest).await;
            error(
                StatusCode::BAD_REQUEST,
                &format!("cannot fetch {url}: {msg}"),
            )
        }
    }
}

async fn do_eject(f: &Arc<Fleet>, id: &str) -> Response {
    let Some(sys) = f.system(id) else {
        return not_found("system");
    };
    f.counters.ejects.fetch_add(1, Ordering::SeqCst);
    f.counters
        .insert_failures_left
        .store(f.faults.insert_fails_after_eject, Ordering::SeqCst);
    if let Ok(mut s) = sys.lock() {
        s.image = None;
        s.image_len = 0;
        s.boot_on_next_server_reset = false;
        s.vmedia_generation += 1;
    }
    let _ = tokio::fs::remove_file(f.media_path(id)).await;
    StatusCode::NO_CONTENT.into_response()
}

async fn insert(
    State(f): St,
    Path((kind, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = slot_owner(&f, &kind, &id) {
        return r;
    }
    if f.faults.insert_patch_only {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "InsertMedia is not supported; PATCH the resource",
        );
    }
    f.counters.insert_actions.fetch_add(1, Ordering::SeqCst);
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    if f.faults.reject_insert_flags
        && (body.get("Inserted").is_some() || body.get("WriteProtected").is_some())
    {
        f.counters
            .insert_flags_rejected
            .fetch_add(1, Ordering::SeqCst);
        return error(
            StatusCode::BAD_REQUEST,
            "The property Inserted is not in the list of valid properties for the resource",
        );
    }
    let Some(url) = body["Image"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "Image is required");
    };
    let left = &f.counters.insert_failures_left;
    if left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        f.counters
            .insert_failures_sent
            .fetch_add(1, Ordering::SeqCst);
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "virtual media is busy: the previous media is still being detached",
        );
    }
    do_insert(&f, &id, url).await
}

async fn eject(State(f): St, Path((kind, id)): Path<(String, String)>) -> Response {
    if let Some(r) = slot_owner(&f, &kind, &id) {
        return r;
    }
    do_eject(&f, &id).await
}

async fn patch_cd(
    State(f): St,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = slot_owner(&f, &kind, &id) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let Some(sys) = f.system(&id) else {
        return not_found("system");
    };
    {
        let Ok(mut s) = sys.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
        };
        let mut generation = s.vmedia_generation;
        if let Some(r) = precondition(&f, &headers, &mut generation) {
            s.vmedia_generation = generation;
            return r;
        }
        if let Some(b) = body
            .pointer("/Oem/Hpe/BootOnNextServerReset")
            .and_then(Value::as_bool)
        {
            s.boot_on_next_server_reset = b;
            s.vmedia_generation += 1;
        }
    }
    match body.get("Image") {
        Some(Value::String(url)) => {
            f.counters.insert_patches.fetch_add(1, Ordering::SeqCst);
            do_insert(&f, &id, url).await
        }
        Some(Value::Null) => do_eject(&f, &id).await,
        _ if body.get("Inserted") == Some(&Value::Bool(false)) => do_eject(&f, &id).await,
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}
