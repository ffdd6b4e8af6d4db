//! Ironic's list query parameters, shared by every collection: `limit` (capped by
//! `[api] max_limit`), `marker`, `sort_key`, `sort_dir`, unknown-parameter refusal, and the
//! `next` link, which carries every parameter of the request. Parsing only: the store's
//! `ListQuery` filters, sorts and pages in SQL (see `store::list`).
//!
//! A collection handler: `reject_unknown` with its own filters, `page_query` for the page,
//! push its `Filter`s and projected `columns`, call the store, then `page_response`.

use std::collections::HashMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use crate::store::{ListQuery, Page};

/// Parameters every list accepts.
pub const PAGING: &[&str] = &[
    "limit", "marker", "sort_key", "sort_dir", "fields", "detail",
];

/// 400 naming every query parameter that is neither in [`PAGING`] nor in `filters`, as Ironic
/// ("Unexpected arguments: a, b").
pub fn reject_unknown(q: &HashMap<String, String>, filters: &[&str]) -> ApiResult<()> {
    let mut bad: Vec<&str> = q
        .keys()
        .map(String::as_str)
        .filter(|k| !PAGING.contains(k) && !filters.contains(k))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort_unstable();
    Err(ApiError::bad_request(format!(
        "Unexpected arguments: {}",
        bad.join(", ")
    )))
}

/// `limit` as Ironic reads it: absent → `max_limit`; not an integer or not positive → 400;
/// larger than `max_limit` → `max_limit`.
pub fn limit(q: &HashMap<String, String>, max_limit: usize) -> ApiResult<usize> {
    let Some(raw) = q.get("limit") else {
        return Ok(max_limit);
    };
    let n: i64 = raw.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Expected an integer for limit: {raw} (a positive number of items per page)"
        ))
    })?;
    if n <= 0 {
        return Err(ApiError::bad_request("Limit must be positive"));
    }
    Ok((n as usize).min(max_limit))
}

/// The page part of a list: limit, marker (a UUID), sort key and direction; no filters yet.
/// An unknown sort key is refused by the store, which knows the columns.
pub fn page_query(q: &HashMap<String, String>, max_limit: usize) -> ApiResult<ListQuery> {
    let marker = match q.get("marker") {
        None => None,
        Some(m) if uuid::Uuid::parse_str(m).is_ok() => Some(m.to_ascii_lowercase()),
        Some(m) => {
            return Err(ApiError::bad_request(format!(
                "Expected UUID for marker: {m} (the uuid of the last item of the previous page)"
            )))
        }
    };
    let desc = match q.get("sort_dir").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
            )))
        }
    };
    Ok(ListQuery {
        sort_key: q.get("sort_key").cloned(),
        desc,
        marker,
        limit: limit(q, max_limit)?,
        ..ListQuery::default()
    })
}

/// The link to the page after `marker`: `{base}/v1/{path}?` every parameter of the request
/// but `limit` and `marker` (by name, URL-encoded), then `limit` and `marker`.
pub fn next_link(
    base: &str,
    path: &str,
    q: &HashMap<String, String>,
    limit: usize,
    marker: &str,
) -> String {
    let mut keys: Vec<&String> = q
        .keys()
        .filter(|k| *k != "limit" && *k != "marker")
        .collect();
    keys.sort();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for k in keys {
        query.append_pair(k, &q[k]);
    }
    query.append_pair("limit", &limit.to_string());
    query.append_pair("marker", marker);
    format!("{base}/v1/{path}?{}", query.finish())
}

/// The answer `{key: [docs…], "next": …}` as bytes, each document rendered and written out
/// before the next is made: a page never holds every document as a JSON tree at once (a
/// 1000-node detail page did, some 40 MiB of small maps). `next` is present when more rows
/// follow, with the last row's uuid as marker.
pub fn page_response<T>(
    key: &str,
    page: Page<T>,
    render: impl Fn(&T) -> Value,
    uuid: impl Fn(&T) -> &str,
    next: impl FnOnce(&str) -> String,
) -> Response {
    let mut out = Vec::with_capacity(64 + page.rows.len() * 256);
    out.extend_from_slice(b"{");
    write_json(&mut out, &Value::from(key));
    out.extend_from_slice(b": [");
    for (i, row) in page.rows.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_json(&mut out, &render(row));
    }
    out.extend_from_slice(b"]");
    if let (true, Some(last)) = (page.more, page.rows.last()) {
        out.extend_from_slice(b", \"next\": ");
        write_json(&mut out, &Value::from(next(uuid(last))));
    }
    out.extend_from_slice(b"}");
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// `{key: [docs…]}` plus `next` as one JSON tree, for small collections; a collection that
/// may hold thousands of large documents answers with [`page_response`] instead.
pub fn page_json<T>(
    key: &str,
    page: &Page<T>,
    docs: Vec<Value>,
    uuid: impl Fn(&T) -> &str,
    next: impl FnOnce(&str) -> String,
) -> Value {
    let mut out = serde_json::json!({ key: docs });
    if let (true, Some(last)) = (page.more, page.rows.last()) {
        out["next"] = Value::from(next(uuid(last)));
    }
    out
}

/// How a small collection answers one page: its key, the path its `next` link names, the
/// request's parameters and page size, and the fields each entry shows (None: all).
pub struct Listed<'a> {
    pub key: &'a str,
    pub path: &'a str,
    pub q: &'a HashMap<String, String>,
    pub limit: usize,
    pub fields: Option<&'a [String]>,
}

impl Listed<'_> {
    /// `{key: [entries…], "next": …}`: each row rendered, then reduced to the fields.
    pub fn answer<T>(
        &self,
        base: &str,
        page: &Page<T>,
        uuid: impl Fn(&T) -> &str,
        render: impl Fn(&T) -> serde_json::Map<String, Value>,
    ) -> axum::Json<Value> {
        let docs = page
            .rows
            .iter()
            .map(|row| super::resource::select(render(row), self.fields))
            .collect();
        axum::Json(page_json(self.key, page, docs, uuid, |m| {
            next_link(base, self.path, self.q, self.limit, m)
        }))
    }
}

fn write_json(out: &mut Vec<u8>, v: &Value) {
    // Writing a Value into a Vec cannot fail: its keys are strings and the Vec grows.
    let _ = serde_json::to_writer(out, v);
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

    #[tokio::test]
    async fn a_page_is_one_json_document_with_next_only_when_more_follow() {
        let body = |more| async move {
            let page = Page {
                rows: vec!["a".to_string(), "b \"quoted\"".to_string()],
                more,
            };
            let resp = page_response(
                "things",
                page,
                |s| serde_json::json!({ "uuid": s }),
                |s| s,
                |m| format!("next after {m}"),
            );
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        let full = body(true).await;
        assert_eq!(full["things"][1]["uuid"], "b \"quoted\"");
        assert_eq!(full["next"], "next after b \"quoted\"");
        assert!(body(false).await.get("next").is_none());
    }

    #[test]
    fn limit_as_ironic_reads_it() {
        assert_eq!(limit(&q(&[]), 1000).unwrap(), 1000);
        assert_eq!(limit(&q(&[("limit", "5")]), 1000).unwrap(), 5);
        assert_eq!(limit(&q(&[("limit", "5000")]), 1000).unwrap(), 1000);
        assert_eq!(
            limit(&q(&[("limit", "0")]), 1000).unwrap_err().message,
            "Limit must be positive"
        );
        assert!(limit(&q(&[("limit", "-3")]), 1000).is_err());
        assert!(limit(&q(&[("limit", "ten")]), 1000)
            .unwrap_err()
            .message
            .contains("Expected an integer for limit: ten"));
    }

    #[test]
    fn unknown_parameters_are_named() {
        let err = reject_unknown(
            &q(&[("limit", "1"), ("zeta", "1"), ("alpha", "2")]),
            &["driver"],
        )
        .unwrap_err();
        assert_eq!(err.message, "Unexpected arguments: alpha, zeta");
        assert!(reject_unknown(&q(&[("driver", "x"), ("fields", "uuid")]), &["driver"]).is_ok());
    }

    #[test]
    fn next_carries_every_parameter_but_the_page() {
        let link = next_link(
            "http://h",
            "nodes",
            &q(&[
                ("provision_state", "clean wait"),
                ("limit", "7"),
                ("marker", "old"),
                ("sort_key", "name"),
                ("driver", "fake-hardware"),
            ]),
            5,
            "m-1",
        );
        assert_eq!(
            link,
            "http://h/v1/nodes?driver=fake-hardware&provision_state=clean+wait&sort_key=name\
             &limit=5&marker=m-1"
        );
    }

    #[test]
    fn markers_must_be_uuids() {
        let err = page_query(&q(&[("marker", "node-7")]), 10).unwrap_err();
        assert!(err.message.starts_with("Expected UUID for marker: node-7"));
        let ok = page_query(
            &q(&[
                ("marker", "6DCA9D5D-1B1B-4EA7-BF9A-E2CAB6289D16"),
                ("sort_dir", "desc"),
            ]),
            10,
        )
        .unwrap();
        assert_eq!(
            ok.marker.as_deref(),
            Some("6dca9d5d-1b1b-4ea7-bf9a-e2cab6289d16")
        );
        assert!(ok.desc);
        assert!(page_query(&q(&[("sort_dir", "up")]), 10).is_err());
    }
}
