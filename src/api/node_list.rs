//! GET /v1/nodes and /v1/nodes/detail: Ironic's node filters (each from its microversion),
//! `fields`/`detail`, sort and page, answered by one store query that reads only the columns
//! the answer shows.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::listing::{next_link, page_query, page_response, reject_unknown};
use super::node_json::{self, Render};
use super::resource::{list_fields, not_acceptable, parse_bool};
use super::version::Version;
use super::{AppState, Ctx};
use crate::conductor::states::ProvisionState;
use crate::store::{Filter, Page, SqlValue};

/// Node list filters and the microversion that introduced each (Ironic 39.0.0's
/// `NodesController.get_all`).
const FILTERS: &[(&str, u32)] = &[
    ("chassis_uuid", 1),
    ("instance_uuid", 1),
    ("associated", 1),
    ("maintenance", 1),
    ("retired", 1),
    ("provision_state", 9),
    ("driver", 16),
    ("resource_class", 21),
    ("fault", 42),
    ("conductor_group", 46),
    ("conductor", 49),
    ("owner", 50),
    ("description_contains", 1),
    ("lessee", 65),
    ("project", 1),
    ("shard", 82),
    ("sharded", 82),
    ("include_children", 83),
    ("parent_node", 83),
    ("instance_name", 104),
];

/// Provision states Ironic knows (its state machine's), for the `provision_state` filter.
const IRONIC_STATES: &[&str] = &[
    "adopt failed",
    "adopting",
    "clean hold",
    "deploy hold",
    "rescue",
    "rescue failed",
    "rescue wait",
    "rescuing",
    "service failed",
    "service hold",
    "service wait",
    "servicing",
    "unrescue failed",
    "unrescuing",
    "verifying",
];

/// Faults Ironic sets, for the `fault` filter.
const FAULTS: &[&str] = &[
    "power failure",
    "clean failure",
    "rescue abort failure",
    "service failure",
];

fn uuid_arg(name: &str, raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_request(format!("Expected UUID for {name}: {raw}")))
}

/// The store filters for the query's node filters, checking each against the microversion.
/// `conductor` is this conductor's name (the only one a node is shown handled by).
pub fn filters(q: &HashMap<String, String>, v: Version, conductor: &str) -> ApiResult<Vec<Filter>> {
    let mut out = Vec::new();
    let text = |s: &String| SqlValue::Text(s.clone());
    for (name, since) in FILTERS {
        let Some(raw) = q.get(*name) else { continue };
        if v < Version(*since) {
            return Err(not_acceptable());
        }
        match *name {
            "chassis_uuid" => out.push(Filter::Eq("chassis_uuid", uuid_arg(name, raw)?.into())),
            "instance_uuid" => out.push(Filter::Eq("instance_uuid", uuid_arg(name, raw)?.into())),
            "associated" => out.push(Filter::IsNull("instance_uuid", !parse_bool(name, raw)?)),
            "sharded" => out.push(Filter::IsNull("shard", !parse_bool(name, raw)?)),
            "maintenance" | "retired" => out.push(Filter::Eq(name, parse_bool(name, raw)?.into())),
            "provision_state" => {
                if ProvisionState::parse(raw).is_none() && !IRONIC_STATES.contains(&raw.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "Provision state \"{raw}\" is not valid"
                    )));
                }
                out.push(Filter::Eq("provision_state", text(raw)));
            }
            "fault" => {
                if !FAULTS.contains(&raw.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "Unrecognized fault \"{raw}\" is specified, allowed faults are {}",
                        FAULTS.join(", ")
                    )));
                }
                out.push(Filter::Eq("fault", text(raw)));
            }
            "conductor_group" => out.push(Filter::Eq(
                "conductor_group",
                raw.to_ascii_lowercase().into(),
            )),
            "conductor" if raw != conductor => out.push(Filter::In("id", Vec::new())),
            "conductor" => {}
            "description_contains" => out.push(Filter::Contains("description", raw.clone())),
            "project" => out.push(Filter::AnyEq(&["owner", "lessee"], text(raw))),
            "shard" => out.push(Filter::In(
                "shard",
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(SqlValue::from)
                    .collect(),
            )),
            "include_children" => {}
            other => out.push(Filter::Eq(other, text(raw))),
        }
    }
    // As Ironic: child nodes are listed only with include_children=true or by parent_node.
    let children = match q.get("include_children") {
        Some(raw) => parse_bool("include_children", raw)?,
        None => false,
    };
    if !children && !q.contains_key("parent_node") {
        out.push(Filter::IsNull("parent_node", true));
    }
    Ok(out)
}

/// 406 for a requested field (or sort key) that exists but not at this microversion.
fn check_versioned(names: &[&str], v: Version) -> ApiResult<()> {
    let newer = names.iter().any(|n| {
        node_json::FIELDS
            .iter()
            .any(|(f, since)| f == n && v < Version(*since))
    });
    if newer {
        return Err(not_acceptable());
    }
    Ok(())
}

/// The fields a node list shows (None: all, the detail view).
fn shown_fields(
    q: &HashMap<String, String>,
    v: Version,
    detail_path: bool,
) -> ApiResult<Option<Vec<String>>> {
    if detail_path {
        if let Some(bad) = ["fields", "detail"].iter().find(|k| q.contains_key(**k)) {
            return Err(ApiError::bad_request(format!(
                "Unexpected arguments: {bad} (/v1/nodes/detail shows every field; use /v1/nodes?{bad}=…)"
            )));
        }
        return Ok(None);
    }
    if let Some(raw) = q.get("fields") {
        let names: Vec<&str> = raw.split(',').map(str::trim).collect();
        check_versioned(&names, v)?;
    }
    let known: Vec<&str> = node_json::FIELDS
        .iter()
        .filter(|(_, since)| v >= Version(*since))
        .map(|(f, _)| *f)
        .collect();
    let brief: Vec<&str> = node_json::BRIEF
        .iter()
        .copied()
        .filter(|f| known.contains(f))
        .collect();
    list_fields(q, v, &known, &brief)
}

async fn list(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    detail_path: bool,
) -> ApiResult<Response> {
    let names: Vec<&str> = FILTERS.iter().map(|(n, _)| *n).collect();
    reject_unknown(q, &names)?;
    let fields = shown_fields(q, ctx.version, detail_path)?;
    let mut query = page_query(q, state.max_limit)?;
    if let Some(key) = &query.sort_key {
        check_versioned(&[key.as_str()], ctx.version)?;
    }
    query.filters = filters(q, ctx.version, state.conductor.name())?;
    query.columns = fields.clone();
    if let Some(chassis) = q.get("chassis_uuid") {
        // As Ironic: a chassis that does not exist is 404, not an empty list.
        state.conductor.store().chassis(chassis).await?;
    }
    let mut page = state.conductor.store().list_nodes(&query).await?;
    let shows_traits = fields
        .as_ref()
        .is_none_or(|f| f.iter().any(|f| f == "traits"));
    if shows_traits {
        super::nodes::fill_traits(state, ctx, &mut page.rows).await?;
    }
    let r = Render {
        version: ctx.version,
        base: &ctx.base,
        conductor: state.conductor.name(),
    };
    let path = if detail_path { "nodes/detail" } else { "nodes" };
    let limit = query.limit;
    // One node at most with instance_uuid: Ironic gives no next link.
    let one = q.contains_key("instance_uuid");
    let page = Page {
        more: page.more && !one,
        rows: page.rows,
    };
    Ok(page_response(
        "nodes",
        page,
        |n| node_json::render(n, fields.as_deref(), &r),
        |n| &n.uuid,
        |m| next_link(&ctx.base, path, q, limit, m),
    ))
}

/// The node list under another resource (a chassis's nodes), `q` carrying its filter.
pub(super) async fn list_filtered(
    State(state): State<AppState>,
    ctx: Ctx,
    q: HashMap<String, String>,
    detail: bool,
) -> ApiResult<Response> {
    list(&state, &ctx, &q, detail).await
}

pub async fn list_brief(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    list(&state, &ctx, &q, false).await
}

pub async fn list_detail(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    list(&state, &ctx, &q, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_map_to_columns_and_hide_children() {
        let got = filters(
            &q(&[
                ("provision_state", "manageable"),
                ("maintenance", "true"),
                ("associated", "false"),
                ("shard", "a, b"),
                ("conductor_group", "Rack1"),
                ("project", "p"),
            ]),
            Version(95),
            "c1",
        )
        .unwrap();
        assert!(got.contains(&Filter::Eq("provision_state", "manageable".into())));
        assert!(got.contains(&Filter::Eq("maintenance", true.into())));
        assert!(got.contains(&Filter::IsNull("instance_uuid", true)));
        assert!(got.contains(&Filter::In("shard", vec!["a".into(), "b".into()])));
        assert!(got.contains(&Filter::Eq("conductor_group", "rack1".into())));
        assert!(got.contains(&Filter::AnyEq(&["owner", "lessee"], "p".into())));
        assert!(got.contains(&Filter::IsNull("parent_node", true)));
        let with_children = filters(&q(&[("include_children", "true")]), Version(95), "c1");
        assert_eq!(with_children.unwrap(), vec![]);
    }

    #[test]
    fn filters_refuse_bad_values_and_old_versions() {
        let status = |pairs: &[(&str, &str)], v: u32| {
            filters(&q(pairs), Version(v), "c1")
                .unwrap_err()
                .status
                .as_u16()
        };
        assert_eq!(status(&[("maintenance", "maybe")], 95), 400);
        assert_eq!(status(&[("provision_state", "flying")], 95), 400);
        assert_eq!(status(&[("fault", "bad luck")], 95), 400);
        assert_eq!(status(&[("chassis_uuid", "not-a-uuid")], 95), 400);
        assert_eq!(status(&[("driver", "fake-hardware")], 15), 406);
        assert_eq!(status(&[("shard", "s")], 81), 406);
        assert_eq!(status(&[("instance_name", "i")], 95), 406);
    }

    #[test]
    fn another_conductor_matches_nothing() {
        let got = filters(&q(&[("conductor", "other")]), Version(95), "c1").unwrap();
        assert!(got.contains(&Filter::In("id", vec![])));
        let mine = filters(&q(&[("conductor", "c1")]), Version(95), "c1").unwrap();
        assert_eq!(mine, vec![Filter::IsNull("parent_node", true)]);
    }

    #[test]
    fn fields_newer_than_the_version_are_406_unknown_are_400() {
        let status = |pairs: &[(&str, &str)], v: u32| {
            shown_fields(&q(pairs), Version(v), false)
                .unwrap_err()
                .status
                .as_u16()
        };
        assert_eq!(status(&[("fields", "uuid,shard")], 81), 406);
        assert_eq!(status(&[("fields", "uuid,bogus")], 95), 400);
        assert_eq!(status(&[("fields", "uuid")], 7), 406);
        let brief = shown_fields(&q(&[]), Version(95), false).unwrap().unwrap();
        assert!(brief.contains(&"provision_state".to_string()));
        assert!(!brief.contains(&"driver_info".to_string()));
        assert_eq!(shown_fields(&q(&[]), Version(95), true).unwrap(), None);
        assert!(shown_fields(&q(&[("fields", "uuid")]), Version(95), true).is_err());
    }
}
