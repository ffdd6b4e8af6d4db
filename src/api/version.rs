//! `X-OpenStack-Ironic-API-Version` negotiation (Ironic's microversions): pure parsing plus the
//! middleware that stamps min/max/current headers on every response and answers 406 outside
//! the supported range.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub const HEADER: &str = "x-openstack-ironic-api-version";
pub const MIN_HEADER: &str = "x-openstack-ironic-api-minimum-version";
pub const MAX_HEADER: &str = "x-openstack-ironic-api-maximum-version";

/// A microversion `1.N`, ordered by minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32);

pub const MIN: Version = Version(1);
/// The newest version served: the highest one whose every change, and every earlier one's, is
/// implemented (see [`LATER`]).
pub const MAX: Version = Version(newest_complete(95, LATER));

/// One of Ironic's microversions after 1.95 (Ironic 39.0.0 reaches 1.115).
pub struct Change {
    pub minor: u32,
    /// What the version changes, in Ironic's words where it has them.
    pub what: &'static str,
    /// What Metal3's baremetal-operator (pkg/provisioner/ironic, gophercloud v2) does with it.
    pub bmo: &'static str,
    /// Whether ironcast implements all of it: only then may it be advertised.
    pub done: bool,
}

/// Ironic's microversions from 1.96 on (`ironic/api/controllers/v1/versions.py` and
/// `utils.py` of Ironic 39.0.0). BMO (`clients/features.go`) asks for 1.89 at least and picks
/// the highest of 1.109 (health), 1.95 (disable_power_off), 1.93 (vmedia GET) the server offers.
pub const LATER: &[Change] = &[
    Change {
        minor: 96,
        what: "Inspection rules migrated from ironic-inspector: /v1/inspection_rules CRUD, \
               applied after inspection",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 97,
        what: "port.description (at most 255 characters); ports list filter \
               description_contains (any version)",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 98,
        what: "JSON-Patch paths decode RFC 6901 escapes (~0 is ~, ~1 is /) in the field name too, \
               so keys containing ~ or / can be patched",
        bmo: "not used (its paths are plain, e.g. /instance_info/image_source)",
        done: true,
    },
    Change {
        minor: 99,
        what: "ports and portgroups lists filter by conductor_groups (the node's); not \
               combinable with node, portgroup or address",
        bmo: "not used (BMO sets the node's conductor_group, never lists ports by it)",
        done: true,
    },
    Change {
        minor: 100,
        what: "port.vendor (at most 32 characters)",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 101,
        what: "port.category (at most 80 characters)",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 102,
        what: "portgroup.physical_network (at most 64): setting it sets every member port's; a \
               member port's own physical_network cannot be patched",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 103,
        what: "portgroup.category (at most 80 characters)",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 104,
        what: "node.instance_name (1 to 255 characters; taken from instance_info.display_name \
               when unset; cleared by undeploy); nodes list filter instance_name",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 105,
        what: "OVN VTEP keys (vtep-logical-switch, vtep-physical-switch) of \
               port.local_link_connection refused (406) and hidden again, as before 1.90",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 106,
        what: "portgroups list filter shard (the node's shard); 406 before",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 107,
        what: "X-OpenStack-Request-Id: every answer carries x-openstack-request-id (and \
               openstack-request-id), a well-formed inbound one is logged as the global id",
        bmo: "not used (gophercloud only logs it)",
        done: true,
    },
    Change {
        minor: 108,
        what: "disable_ramdisk with the service verb (406 before; 400 with verbs other than \
               clean and service)",
        bmo: "not used (BMO's servicing sends service_steps only)",
        done: true,
    },
    Change {
        minor: 109,
        what: "node.health: the BMC's overall health (OK, Warning, Critical or null), read-only, \
               refreshed with the power state; changes recorded in node history",
        bmo: "HasHealthAPI: shown in the BareMetalHost's status; BMO picks 1.109 when offered",
        done: true,
    },
    Change {
        minor: 110,
        what: "abort of a deploy waiting in wait call-back (406 before)",
        bmo: "the version a newer BMO picks; it aborts a deploy stuck in wait call-back",
        done: true,
    },
    Change {
        minor: 111,
        what: "port.available_for_dynamic_portgroup (settable boolean), \
               portgroup.dynamic_portgroup (read-only boolean)",
        bmo: "not used",
        done: true,
    },
    Change {
        minor: 112,
        what: "runbook traits (/v1/runbooks/{id}/traits), relaxed runbook names, description",
        bmo: "not used",
        done: false,
    },
    Change {
        minor: 113,
        what: "node history entries show project",
        bmo: "not used",
        done: false,
    },
    Change {
        minor: 114,
        what: "firmware components show vendor, model, serial_number",
        bmo: "not used",
        done: false,
    },
    Change {
        minor: 115,
        what: "node history entries show state, target_provision_state, duration_seconds",
        bmo: "not used",
        done: false,
    },
];

/// The highest version after `base` reached by an unbroken run of implemented changes.
const fn newest_complete(base: u32, later: &[Change]) -> u32 {
    let mut newest = base;
    let mut i = 0;
    while i < later.len() {
        if later[i].minor != newest + 1 || !later[i].done {
            break;
        }
        newest += 1;
        i += 1;
    }
    newest
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "1.{}", self.0)
    }
}

/// Why a requested version is refused, as Ironic words it.
pub fn negotiate(header: Option<&str>) -> Result<Version, String> {
    let Some(raw) = header.map(str::trim) else {
        return Ok(MIN);
    };
    if raw.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let parsed = raw
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let Some((major, minor)) = parsed else {
        return Err("Invalid value for X-OpenStack-Ironic-API-Version header".into());
    };
    let range = format!("The supported version range is: [{MIN}, {MAX}].");
    if major != 1 {
        return Err(format!(
            "Mutually exclusive versions requested. Version {raw} requested but not supported by this service. {range}"
        ));
    }
    let v = Version(minor);
    if v < MIN || v > MAX {
        return Err(format!(
            "Version {raw} was requested but the minor version is not supported by this service. {range}"
        ));
    }
    Ok(v)
}

/// Whether `s` is a request id in oslo's form, `req-` and a lower-case UUID: only such an
/// inbound `X-OpenStack-Request-Id` is taken as the caller's (global) id.
pub fn is_request_id(s: &str) -> bool {
    s.strip_prefix("req-").is_some_and(|u| {
        u.len() == 36
            && uuid::Uuid::parse_str(u).is_ok()
            && !u.chars().any(|c| c.is_ascii_uppercase())
    })
}

/// Middleware: negotiates, stores the [`Version`] as a request extension, stamps headers.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let global_id = req
        .headers()
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_request_id(v))
        .map(str::to_string);
    let header = req
        .headers()
        .get(HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let mut resp = match negotiate(header) {
        Ok(v) => {
            req.extensions_mut().insert(v);
            let mut resp = next.run(req).await;
            if let Ok(value) = HeaderValue::from_str(&v.to_string()) {
                resp.headers_mut().insert(HEADER, value);
            }
            resp
        }
        Err(description) => {
            let inner = json!({"code": 406, "title": "Not Acceptable", "description": description});
            (
                StatusCode::NOT_ACCEPTABLE,
                Json(json!({"error_message": inner.to_string()})),
            )
                .into_response()
        }
    };
    let h = resp.headers_mut();
    // A request id, like Ironic's, that clients print with errors and logs can be grepped for.
    let id = format!("req-{}", uuid::Uuid::new_v4());
    if let Some(global) = global_id.as_deref() {
        // A caller's own id (1.107), logged beside ours so one request can be followed across
        // services.
        tracing::info!(request_id = %id, global_request_id = %global, "request from a caller with its own id");
    }
    if let Ok(id) = HeaderValue::from_str(&id) {
        h.insert("x-openstack-request-id", id.clone());
        h.insert("openstack-request-id", id);
    }
    h.insert(MIN_HEADER, HeaderValue::from_static("1.1"));
    if let Ok(value) = HeaderValue::from_str(&MAX.to_string()) {
        h.insert(MAX_HEADER, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        assert_eq!(negotiate(None), Ok(MIN));
        assert_eq!(negotiate(Some("latest")), Ok(MAX));
        assert_eq!(negotiate(Some("1.31")), Ok(Version(31)));
        assert_eq!(negotiate(Some("1.95")), Ok(Version(95)));
        let past = format!("1.{}", MAX.0 + 1);
        assert!(negotiate(Some(&past))
            .unwrap_err()
            .contains("minor version"));
        assert!(negotiate(Some("1.0"))
            .unwrap_err()
            .contains("minor version"));
        assert!(negotiate(Some("2.0"))
            .unwrap_err()
            .contains("Mutually exclusive"));
        assert!(negotiate(Some("garbage"))
            .unwrap_err()
            .contains("Invalid value"));
        assert!(negotiate(Some("1.x"))
            .unwrap_err()
            .contains("Invalid value"));
    }

    #[test]
    fn max_is_the_end_of_the_unbroken_run_of_done_versions() {
        // The table is Ironic's order, one entry per version, none skipped.
        for (i, change) in LATER.iter().enumerate() {
            assert_eq!(change.minor, 96 + i as u32, "{}", change.what);
        }
        let first_missing = LATER.iter().find(|c| !c.done).map(|c| c.minor);
        match first_missing {
            Some(minor) => assert_eq!(MAX, Version(minor - 1)),
            None => assert_eq!(MAX, Version(95 + LATER.len() as u32)),
        }
        assert!(LATER.iter().filter(|c| c.minor <= MAX.0).all(|c| c.done));
    }

    #[test]
    fn only_oslo_shaped_request_ids_are_taken() {
        assert!(is_request_id("req-0f8b5d0e-4a39-4c8e-9a53-2b1f6f6b7c11"));
        assert!(!is_request_id("req-0F8B5D0E-4A39-4C8E-9A53-2B1F6F6B7C11"));
        assert!(!is_request_id("0f8b5d0e-4a39-4c8e-9a53-2b1f6f6b7c11"));
        assert!(!is_request_id("req-x"));
        assert!(!is_request_id("req-0f8b5d0e4a394c8e9a532b1f6f6b7c11"));
    }
}
