//! Node and port lists over HTTP: filters that hold on every page (the `next` link carries
//! them), `[api] max_limit`, bad input as Ironic answers it, and python-ironicclient's
//! `--limit 0` walking the pages.

use serde_json::{json, Value};

use crate::common::clients::{baremetal, ok};
use crate::support::{api_paged, fault, settings, Api};

/// Creates node `name` with `body`'s fields added; returns its uuid.
async fn node(api: &Api, name: &str, body: Value) -> String {
    let mut doc = json!({"driver": "fake-hardware", "name": name});
    doc.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    let (s, n) = api.call("POST", "/v1/nodes", Some(doc)).await;
    assert_eq!(s, 201, "{n}");
    n["uuid"].as_str().unwrap().to_string()
}

/// Follows `next` from `path`; returns every page's entries.
async fn walk(api: &Api, path: &str, key: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut path = path.to_string();
    loop {
        let (s, body) = api.call("GET", &path, None).await;
        assert_eq!(s, 200, "{path}: {body}");
        pages.push(body[key].as_array().unwrap().clone());
        match body["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&api.url), "{next}");
                path = next[api.url.len()..].to_string();
            }
            None => return pages,
        }
    }
}

fn names(pages: &[Vec<Value>]) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

/// Page 2 of a filtered list used to be the unfiltered list after the marker: the `next`
/// link dropped the filters.
#[tokio::test]
async fn api_list_next_link_keeps_every_filter() {
    let api = api_paged(settings("test-conductor"), 1000).await;
    for i in 0..9 {
        let class = if i % 3 == 0 { "gold" } else { "iron" };
        node(
            &api,
            &format!("n{i}"),
            json!({"resource_class": class, "owner": "o"}),
        )
        .await;
    }
    let pages = walk(
        &api,
        "/v1/nodes?resource_class=gold&owner=o&limit=2&sort_key=name&sort_dir=desc&fields=name,resource_class",
        "nodes",
    )
    .await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(names(&pages), vec!["n6", "n3", "n0"]);
    for n in pages.iter().flatten() {
        assert_eq!(n["resource_class"], "gold");
        assert!(n.get("driver").is_none(), "fields= kept on page 2: {n}");
    }
    // The detail view pages too, with every field on every page.
    let pages = walk(
        &api,
        "/v1/nodes/detail?resource_class=iron&limit=4",
        "nodes",
    )
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 2]);
    assert!(pages[1].iter().all(|n| n["driver"] == "fake-hardware"));
    // Ports of one node, by MAC order descending, two per page.
    let a = node(&api, "with-ports", json!({})).await;
    for i in 0..5 {
        let (s, p) = api
            .call(
                "POST",
                "/v1/ports",
                Some(json!({"address": format!("52:54:00:00:00:0{i}"), "node_uuid": a})),
            )
            .await;
        assert_eq!(s, 201, "{p}");
    }
    let pages = walk(
        &api,
        &format!("/v1/ports?node={a}&limit=2&sort_key=address&sort_dir=desc"),
        "ports",
    )
    .await;
    let macs: Vec<&str> = pages
        .iter()
        .flatten()
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        macs,
        vec![
            "52:54:00:00:00:04",
            "52:54:00:00:00:03",
            "52:54:00:00:00:02",
            "52:54:00:00:00:01",
            "52:54:00:00:00:00"
        ]
    );
}

/// `[api] max_limit` caps a page with or without `limit`; python-ironicclient's
/// `--limit 0` follows `next` to the end.
#[tokio::test]
async fn api_list_max_limit_and_client_walk() {
    let api = api_paged(settings("test-conductor"), 3).await;
    for i in 0..7 {
        node(&api, &format!("m{i}"), json!({})).await;
    }
    for path in ["/v1/nodes", "/v1/nodes?limit=500"] {
        let (_, body) = api.call("GET", path, None).await;
        assert_eq!(body["nodes"].as_array().unwrap().len(), 3, "{path}");
        assert!(body["next"].as_str().unwrap().contains("limit=3"), "{body}");
    }
    let (_, last) = api
        .call("GET", "/v1/nodes?limit=3&sort_key=name&sort_dir=desc", None)
        .await;
    assert_eq!(last["nodes"][0]["name"], "m6");
    let pages = walk(&api, "/v1/nodes", "nodes").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );

    let Some(bm) = crate::common::tool("baremetal") else {
        return;
    };
    let url = api.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        ok(
            baremetal(
                &bm,
                &url,
                &["node", "list", "--limit", "0", "-f", "value", "-c", "Name"],
            ),
            "baremetal node list --limit 0",
        )
    })
    .await
    .unwrap();
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    assert_eq!(got, vec!["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
}

/// Bad list input gets Ironic's status and a message naming what was wrong.
#[tokio::test]
async fn api_list_bad_input_as_ironic() {
    let api = api_paged(settings("test-conductor"), 1000).await;
    node(&api, "only", json!({})).await;
    let ghost = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(String, &str, u16, String)> = vec![
        (
            "/v1/nodes?colour=red&limit=1".into(),
            "latest",
            400,
            "Unexpected arguments: colour".into(),
        ),
        (
            "/v1/ports?colour=red".into(),
            "latest",
            400,
            "Unexpected arguments: colour".into(),
        ),
        (
            "/v1/nodes?sort_key=colour".into(),
            "latest",
            400,
            "The sort_key value \"colour\" is an invalid field for sorting".into(),
        ),
        (
            "/v1/nodes?sort_key=driver_info".into(),
            "latest",
            400,
            "invalid field for sorting".into(),
        ),
        (
            "/v1/nodes?sort_dir=up".into(),
            "latest",
            400,
            "Invalid sort direction: up".into(),
        ),
        (
            "/v1/nodes?marker=nope".into(),
            "latest",
            400,
            "Expected UUID for marker: nope".into(),
        ),
        (
            format!("/v1/nodes?marker={ghost}"),
            "latest",
            404,
            format!("Node {ghost} could not be found."),
        ),
        (
            format!("/v1/ports?marker={ghost}"),
            "latest",
            404,
            format!("Port {ghost} could not be found."),
        ),
        (
            "/v1/nodes?limit=-1".into(),
            "latest",
            400,
            "Limit must be positive".into(),
        ),
        (
            "/v1/nodes?limit=0".into(),
            "latest",
            400,
            "Limit must be positive".into(),
        ),
        (
            "/v1/nodes?limit=ten".into(),
            "latest",
            400,
            "Expected an integer for limit: ten".into(),
        ),
        (
            "/v1/nodes?maintenance=maybe".into(),
            "latest",
            400,
            "maintenance".into(),
        ),
        (
            "/v1/nodes?provision_state=flying".into(),
            "latest",
            400,
            "Provision state \"flying\" is not valid".into(),
        ),
        (
            "/v1/nodes?fields=uuid,colour".into(),
            "latest",
            400,
            "Field(s) \"colour\" are not valid".into(),
        ),
        (
            "/v1/nodes?fields=uuid,shard".into(),
            "1.81",
            406,
            "not acceptable".into(),
        ),
        (
            "/v1/nodes?sort_key=shard".into(),
            "1.81",
            406,
            "not acceptable".into(),
        ),
        (
            "/v1/nodes?driver=fake-hardware".into(),
            "1.15",
            406,
            "not acceptable".into(),
        ),
        (
            "/v1/nodes?fields=uuid&detail=true".into(),
            "latest",
            400,
            "Can not specify ?detail=True and fields".into(),
        ),
    ];
    for (path, version, status, want) in cases {
        let resp = api
            .http
            .get(format!("{}{path}", api.url))
            .header("X-OpenStack-Ironic-API-Version", version)
            .send()
            .await
            .unwrap();
        let got = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(got, status, "{path} at {version}: {body}");
        let msg = fault(&body);
        assert!(
            msg.to_lowercase().contains(&want.to_lowercase()),
            "{path}: {msg:?} lacks {want:?}"
        );
    }
}
