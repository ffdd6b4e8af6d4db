//! The list facility on both backends: every page walk in every order equals the same rows
//! sorted in memory; filters, projection, bad sort keys and markers.

use std::cmp::Ordering;

use ironcast::store::{Filter, ListQuery, Node, Page, Port, Store, StoreError};
use serde_json::json;

/// 23 nodes with names (some NULL, some equal only by case), states, maintenance, owners.
async fn fleet(store: &Store) -> Vec<Node> {
    let mut out = Vec::new();
    for i in 0..23 {
        let mut n = super::sample(&format!("n{:02}", (i * 7) % 23));
        if i % 5 == 0 {
            n.name = None;
        }
        n.provision_state = ["enroll", "manageable", "available"][i % 3].into();
        n.maintenance = i % 4 == 0;
        n.owner = (i % 2 == 0).then(|| format!("owner{}", i % 3));
        n.lessee = (i % 3 == 0).then(|| "shared".to_string());
        n.resource_class = Some(["small", "large"][i % 2].into());
        n.description = Some(format!("Rack {} slot {i}", i % 4));
        n.driver_info = json!({"redfish_password": "p", "i": i})
            .as_object()
            .unwrap()
            .clone();
        out.push(store.create_node(&n).await.unwrap());
    }
    out
}

/// The order Ironic gives: the key (NULLs first ascending), then id, both in one direction.
fn reference(nodes: &[Node], key: fn(&Node) -> Option<String>, desc: bool) -> Vec<String> {
    let mut v: Vec<&Node> = nodes.iter().collect();
    v.sort_by(|a, b| {
        let o = match (key(a), key(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(&y),
        }
        .then(a.id.cmp(&b.id));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    v.into_iter().map(|n| n.uuid.clone()).collect()
}

/// Every page of `q`, following the marker; checks each page's size and `more`.
async fn walk(store: &Store, mut q: ListQuery) -> Vec<Node> {
    let mut all = Vec::new();
    loop {
        let Page { rows, more } = store.list_nodes(&q).await.unwrap();
        assert!(rows.len() <= q.limit);
        if more {
            assert_eq!(rows.len(), q.limit, "a page before the last is full");
        }
        q.marker = rows.last().map(|n| n.uuid.clone());
        all.extend(rows);
        if !more {
            return all;
        }
    }
}

pub async fn list_walks_match_a_sort_in_memory(store: Store) {
    let nodes = fleet(&store).await;
    type Key = fn(&Node) -> Option<String>;
    let keys: [(&str, Key); 5] = [
        ("id", |n| Some(format!("{:08}", n.id))),
        ("name", |n| n.name.clone()),
        ("provision_state", |n| Some(n.provision_state.clone())),
        ("maintenance", |n| Some(n.maintenance.to_string())),
        ("owner", |n| n.owner.clone()),
    ];
    for (key, f) in keys {
        for desc in [false, true] {
            for limit in [1, 4, 23, 50] {
                let q = ListQuery {
                    sort_key: Some(key.into()),
                    desc,
                    limit,
                    ..ListQuery::default()
                };
                let got: Vec<String> = walk(&store, q).await.into_iter().map(|n| n.uuid).collect();
                assert_eq!(
                    got,
                    reference(&nodes, f, desc),
                    "sort {key} desc={desc} limit={limit}"
                );
            }
        }
    }
}

pub async fn list_filters_hold_on_every_page(store: Store) {
    let nodes = fleet(&store).await;
    type Keep = Box<dyn Fn(&Node) -> bool>;
    let cases: Vec<(Vec<Filter>, Keep)> = vec![
        (
            vec![Filter::Eq("provision_state", "manageable".into())],
            Box::new(|n| n.provision_state == "manageable"),
        ),
        (
            vec![
                Filter::Eq("maintenance", true.into()),
                Filter::IsNull("name", false),
            ],
            Box::new(|n| n.maintenance && n.name.is_some()),
        ),
        (
            vec![Filter::In("owner", vec!["owner0".into(), "owner2".into()])],
            Box::new(|n| matches!(n.owner.as_deref(), Some("owner0" | "owner2"))),
        ),
        (
            vec![Filter::AnyEq(&["owner", "lessee"], "shared".into())],
            Box::new(|n| n.lessee.as_deref() == Some("shared")),
        ),
        (
            vec![Filter::Contains("description", "RACK 1".into())],
            Box::new(|n| n.description.as_deref().unwrap().starts_with("Rack 1 ")),
        ),
        (vec![Filter::In("owner", vec![])], Box::new(|_| false)),
    ];
    for (filters, keep) in cases {
        let q = ListQuery {
            filters: filters.clone(),
            sort_key: Some("name".into()),
            desc: true,
            limit: 2,
            ..ListQuery::default()
        };
        let got: Vec<String> = walk(&store, q).await.into_iter().map(|n| n.uuid).collect();
        let kept: Vec<Node> = nodes.iter().filter(|n| keep(n)).cloned().collect();
        assert_eq!(
            got,
            reference(&kept, |n| n.name.clone(), true),
            "{filters:?}"
        );
    }
}

pub async fn list_reads_only_the_asked_columns(store: Store) {
    let nodes = fleet(&store).await;
    let q = ListQuery {
        columns: Some(vec![
            "name".into(),
            "provision_state".into(),
            "links".into(),
        ]),
        limit: 3,
        ..ListQuery::default()
    };
    let page = store.list_nodes(&q).await.unwrap();
    assert!(page.more);
    for (got, stored) in page.rows.iter().zip(&nodes) {
        assert_eq!(got.uuid, stored.uuid);
        assert_eq!(got.id, stored.id);
        assert_eq!(got.name, stored.name);
        assert_eq!(got.provision_state, stored.provision_state);
        assert!(got.driver_info.is_empty(), "driver_info was not asked for");
        assert!(got.description.is_none(), "description was not asked for");
    }
    let full = store.list_nodes(&ListQuery::default()).await.unwrap();
    assert_eq!(full.rows, nodes);
    assert!(!full.more);
}

pub async fn list_refuses_bad_sort_keys_and_markers(store: Store) {
    fleet(&store).await;
    for key in ["driver_info", "no_such_column", "name; DROP TABLE nodes"] {
        let q = ListQuery {
            sort_key: Some(key.into()),
            ..ListQuery::default()
        };
        match store.list_nodes(&q).await {
            Err(StoreError::InvalidSortKey { key: k, valid }) => {
                assert_eq!(k, key);
                assert!(valid.contains("provision_state"), "{valid}");
            }
            other => panic!("sort by {key}: expected InvalidSortKey, got {other:?}"),
        }
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let q = ListQuery {
        marker: Some(missing.clone()),
        ..ListQuery::default()
    };
    match store.list_nodes(&q).await {
        Err(StoreError::MarkerNotFound { kind: "Node", id }) => assert_eq!(id, missing),
        other => panic!("expected MarkerNotFound, got {other:?}"),
    }
}

pub async fn list_ports_by_node(store: Store) {
    let a = store.create_node(&super::sample("pa")).await.unwrap();
    let b = store.create_node(&super::sample("pb")).await.unwrap();
    let mut made = Vec::new();
    for i in 0..7 {
        let node = if i % 2 == 0 { &a } else { &b };
        let p = Port {
            uuid: uuid::Uuid::new_v4().to_string(),
            address: format!("52:54:00:00:00:{i:02x}"),
            node_uuid: node.uuid.clone(),
            pxe_enabled: true,
            created_at: chrono::Utc::now(),
            ..Port::default()
        };
        made.push(store.create_port(&p).await.unwrap());
    }
    let mut q = ListQuery {
        filters: vec![Filter::Eq("node_uuid", a.uuid.clone().into())],
        sort_key: Some("address".into()),
        desc: true,
        limit: 3,
        ..ListQuery::default()
    };
    let mut got = Vec::new();
    loop {
        let page = store.list_ports(&q).await.unwrap();
        q.marker = page.rows.last().map(|p| p.uuid.clone());
        got.extend(page.rows.into_iter().map(|p| p.address));
        if !page.more {
            break;
        }
    }
    let mut want: Vec<String> = made
        .iter()
        .filter(|p| p.node_uuid == a.uuid)
        .map(|p| p.address.clone())
        .collect();
    want.sort();
    want.reverse();
    assert_eq!(got, want);
}
