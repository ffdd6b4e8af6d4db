//! The store suite: every test runs on SQLite and on PostgreSQL (fresh database each).

use std::sync::Arc;

use chrono::Utc;
use ironcast::store::{
    Allocation, Chassis, InspectionRule, ListQuery, Node, NodeCriteria, Port, Portgroup,
    StepTemplate, Store, StoreError, TemplateKind, VolumeConnector, VolumeTarget,
};
use serde_json::json;

#[path = "store_list.rs"]
mod list;
use list::*;

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    (Store::connect(&url, 8).await.unwrap(), dir)
}

/// A fresh PostgreSQL database for one test, or None (skip) outside CI without one.
pub(crate) async fn postgres_store() -> Option<(Store, String)> {
    let base = crate::common::postgres_url()?;
    let db = format!("ironcast_t_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to IRONCAST_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{db}");
    Some((Store::connect(&url, 8).await.unwrap(), db))
}

pub(crate) async fn drop_postgres(store: Store, db: String) {
    store.close().await;
    let base = crate::common::postgres_url().unwrap();
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&admin)
        .await;
    admin.close().await;
}

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((store, db)) = super::postgres_store().await else { return };
                    super::$name(store.clone()).await;
                    super::drop_postgres(store, db).await;
                }
            )*
        }
    };
}

store_suite!(
    node_round_trips_every_field,
    node_lookup_by_uuid_or_name,
    unique_name_is_a_conflict,
    reservation_is_exclusive,
    concurrent_reservations_have_one_winner,
    save_never_touches_the_reservation,
    write_by_a_non_holder_is_refused,
    dropped_lock_is_released,
    ports_unique_mac_and_cascade,
    history_in_order,
    conductor_heartbeat_upserts,
    list_walks_match_a_sort_in_memory,
    list_filters_hold_on_every_page,
    list_reads_only_the_asked_columns,
    list_refuses_bad_sort_keys_and_markers,
    list_ports_by_node,
    chassis_holding_nodes_is_not_deleted,
    portgroup_with_ports_is_not_deleted,
    step_templates_by_kind,
    inspection_rules_round_trip_by_phase,
    volume_uniques_and_cascade,
    node_traits_are_sets_with_a_limit,
    allocation_claims_one_free_node_once,
    metal3_hosts_apply_status_and_fencing,
);

/// Applies report kubectl's results and bump the generation only on change; status writes never
/// defer a host applied meanwhile; manifest edits are fenced by generation; deletion marks, then
/// forgets.
async fn metal3_hosts_apply_status_and_fencing(store: Store) {
    use ironcast::store::{Applied, Metal3Write};
    let host = |name: &str, online: bool| Metal3Write::Host {
        namespace: "default".into(),
        name: name.into(),
        manifest: json!({"metadata": {"name": name}, "spec": {"online": online}})
            .as_object()
            .unwrap()
            .clone(),
    };
    let secret = Metal3Write::Secret {
        namespace: "default".into(),
        name: "bmc".into(),
        data: json!({"username": "YQ=="}).as_object().unwrap().clone(),
    };
    let done = store
        .metal3_apply(&[secret.clone(), host("h0", true), host("h1", true)])
        .await
        .unwrap();
    assert_eq!(done, [Applied::Created, Applied::Created, Applied::Created]);
    let again = store
        .metal3_apply(&[secret, host("h0", true), host("h1", false)])
        .await
        .unwrap();
    assert_eq!(
        again,
        [Applied::Unchanged, Applied::Unchanged, Applied::Configured]
    );
    let h1 = store.metal3_host("default", "h1").await.unwrap().unwrap();
    assert_eq!(h1.generation, 2);
    assert_eq!(h1.manifest["spec"]["online"], false);
    let secret = store
        .metal3_secret("default", "bmc")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.data["username"], "YQ==");

    // Writes in one apply see each other (one transaction).
    let dup = store
        .metal3_apply(&[host("h2", true), host("h2", false)])
        .await
        .unwrap();
    assert_eq!(dup, [Applied::Created, Applied::Configured]);

    // Status writes: the requeue time sticks only for the generation read.
    let later = Utc::now() + chrono::Duration::hours(1);
    let status = json!({"provisioning": {"state": "registering"}})
        .as_object()
        .unwrap()
        .clone();
    store
        .metal3_save_status(
            h1.id,
            h1.generation,
            &status,
            &Default::default(),
            Some(later),
        )
        .await
        .unwrap();
    assert!(store
        .metal3_hosts_due(Utc::now())
        .await
        .unwrap()
        .iter()
        .all(|h| h.name != "h1"));
    store
        .metal3_save_status(
            h1.id,
            h1.generation - 1,
            &status,
            &Default::default(),
            Some(later),
        )
        .await
        .unwrap();
    let due = store.metal3_hosts_due(Utc::now()).await.unwrap();
    assert!(
        due.iter().any(|h| h.name == "h1"),
        "a stale generation must not defer the host"
    );
    assert_eq!(
        store
            .metal3_host("default", "h1")
            .await
            .unwrap()
            .unwrap()
            .status["provisioning"]["state"],
        "registering"
    );

    // Manifest edits are fenced by generation.
    let edited = json!({"metadata": {"name": "h1"}, "spec": {}})
        .as_object()
        .unwrap()
        .clone();
    assert!(!store.metal3_edit_manifest(h1.id, 1, &edited).await.unwrap());
    assert!(store.metal3_edit_manifest(h1.id, 2, &edited).await.unwrap());

    assert_eq!(store.metal3_hosts(Some("default")).await.unwrap().len(), 3);
    assert!(store.metal3_hosts(Some("other")).await.unwrap().is_empty());
    store.metal3_mark_deleting("default", "h0").await.unwrap();
    let h0 = store.metal3_host("default", "h0").await.unwrap().unwrap();
    assert!(h0.deleting);
    assert!(matches!(
        store.metal3_mark_deleting("default", "nope").await,
        Err(StoreError::NotFound { .. })
    ));
    store.metal3_forget_host(h0.id).await.unwrap();
    assert!(store.metal3_host("default", "h0").await.unwrap().is_none());
}

fn sample(name: &str) -> Node {
    let mut n = Node::new(
        uuid::Uuid::new_v4().to_string(),
        "fake-hardware".into(),
        |_| "fake",
    );
    n.name = Some(name.into());
    n
}

async fn node_round_trips_every_field(store: Store) {
    let mut n = sample("full");
    n.driver_info = json!({"redfish_password": "s3cret", "nested": {"a": [1, 2, {"b": "ü"}]}})
        .as_object()
        .unwrap()
        .clone();
    n.instance_info = json!({"boot_iso": "http://x/y.iso"})
        .as_object()
        .unwrap()
        .clone();
    n.properties = json!({"cpus": 2, "memory_mb": 4096})
        .as_object()
        .unwrap()
        .clone();
    n.extra = json!({"k": null}).as_object().unwrap().clone();
    n.provision_state = "active".into();
    n.target_provision_state = Some("available".into());
    n.power_state = Some("power on".into());
    n.last_error = Some("it's \"quoted\"".into());
    n.maintenance = true;
    n.maintenance_reason = Some("why".into());
    n.instance_uuid = Some(uuid::Uuid::new_v4().to_string());
    n.deploy_interface = "ramdisk".into();
    n.automated_clean = Some(false);
    n.protected = true;
    n.boot_mode = Some("uefi".into());
    n.provision_updated_at = Some(Utc::now());
    let created = store.create_node(&n).await.unwrap();
    assert!(created.id > 0);
    let got = store.node_by_uuid(&n.uuid).await.unwrap().unwrap();
    assert_eq!(got, created);
    assert_eq!(got.driver_info, n.driver_info);
    assert_eq!(got.deploy_interface, "ramdisk");
    assert_eq!(got.automated_clean, Some(false));
    assert_eq!(got.last_error, n.last_error);
    assert!(got.maintenance && got.protected);
    assert_eq!(got.reservation, None);
    // Timestamps keep at least microsecond precision on both backends.
    let drift = (got.created_at - n.created_at)
        .num_microseconds()
        .unwrap()
        .abs();
    assert!(drift <= 1, "created_at drifted by {drift} µs");
}

async fn node_lookup_by_uuid_or_name(store: Store) {
    let a = store.create_node(&sample("alpha")).await.unwrap();
    let b = store.create_node(&sample("beta")).await.unwrap();
    assert_eq!(store.node("alpha").await.unwrap().uuid, a.uuid);
    assert_eq!(
        store.node(&b.uuid).await.unwrap().name.as_deref(),
        Some("beta")
    );
    match store.node("gamma").await {
        Err(StoreError::NotFound { kind: "Node", id }) => assert_eq!(id, "gamma"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let all = store.nodes().await.unwrap();
    assert_eq!(
        all.iter().map(|n| n.uuid.clone()).collect::<Vec<_>>(),
        vec![a.uuid.clone(), b.uuid.clone()]
    );
    let lock = store.lock_node(&a.uuid, "c1").await.unwrap().unwrap();
    store.delete_node(lock).await.unwrap();
    assert!(store.node_by_uuid(&a.uuid).await.unwrap().is_none());
    assert!(store.lock_node(&a.uuid, "c1").await.unwrap().is_none());
}

async fn unique_name_is_a_conflict(store: Store) {
    store.create_node(&sample("dup")).await.unwrap();
    match store.create_node(&sample("dup")).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("name dup"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let mut other = store.create_node(&sample("other")).await.unwrap();
    other.name = Some("dup".into());
    let lock = store.lock_node(&other.uuid, "c1").await.unwrap().unwrap();
    assert!(matches!(
        store.save_node(&lock, &other).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(lock.release().await.unwrap());
    // instance_uuid is unique too (one instance, one node); many nodes may have none.
    let instance = uuid::Uuid::new_v4().to_string();
    let mut first = sample("i1");
    first.instance_uuid = Some(instance.clone());
    store.create_node(&first).await.unwrap();
    let mut second = sample("i2");
    second.instance_uuid = Some(instance.clone());
    match store.create_node(&second).await {
        Err(StoreError::Conflict(m)) => {
            assert_eq!(
                m,
                format!("Instance {instance} is already associated with a node.")
            )
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
}

async fn reservation_is_exclusive(store: Store) {
    let n = store.create_node(&sample("lock")).await.unwrap();
    assert!(store.reserve_node(&n.uuid, "c1").await.unwrap());
    assert!(!store.reserve_node(&n.uuid, "c2").await.unwrap());
    assert!(!store.release_node(&n.uuid, "c2").await.unwrap());
    assert_eq!(
        store
            .node_by_uuid(&n.uuid)
            .await
            .unwrap()
            .unwrap()
            .reservation
            .as_deref(),
        Some("c1")
    );
    assert!(store.release_node(&n.uuid, "c1").await.unwrap());
    assert!(store.reserve_node(&n.uuid, "c2").await.unwrap());
    let m = store.create_node(&sample("lock2")).await.unwrap();
    assert!(store.reserve_node(&m.uuid, "c2").await.unwrap());
    assert_eq!(store.release_all_nodes("c2").await.unwrap(), 2);
    assert_eq!(store.release_all_nodes("c2").await.unwrap(), 0);
}

async fn concurrent_reservations_have_one_winner(store: Store) {
    let n = store.create_node(&sample("race")).await.unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        let uuid = n.uuid.clone();
        tasks.push(tokio::spawn(async move {
            store.reserve_node(&uuid, &format!("c{i}")).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn save_never_touches_the_reservation(store: Store) {
    let n = store.create_node(&sample("keep")).await.unwrap();
    let lock = store.lock_node(&n.uuid, "c1").await.unwrap().unwrap();
    let mut stale = n.clone();
    stale.reservation = None;
    stale.description = Some("changed".into());
    let saved = store.save_node(&lock, &stale).await.unwrap();
    assert_eq!(saved.reservation.as_deref(), Some("c1"));
    assert_eq!(saved.description.as_deref(), Some("changed"));
    assert!(saved.updated_at.is_some());
}

/// A write by anyone but the holder is refused with LockLost and changes nothing: after the
/// lock was released, after another holder took the node, and for a guard of another node.
async fn write_by_a_non_holder_is_refused(store: Store) {
    let n = store.create_node(&sample("fenced")).await.unwrap();
    let other = store.create_node(&sample("other")).await.unwrap();
    let mine = store.lock_node(&n.uuid, "c1").await.unwrap().unwrap();
    let theirs = store.lock_node(&other.uuid, "c1").await.unwrap().unwrap();
    let mut changed = n.clone();
    changed.description = Some("overwrite".into());
    // A guard of another node cannot write this one.
    assert!(matches!(
        store.save_node(&theirs, &changed).await,
        Err(StoreError::LockLost { .. })
    ));
    // The lock is lost to a takeover: c1's write is refused, naming the new holder.
    assert!(store.release_node(&n.uuid, "c1").await.unwrap());
    assert!(store.reserve_node(&n.uuid, "c2").await.unwrap());
    match store.save_node(&mine, &changed).await {
        Err(StoreError::LockLost { node, holder, now }) => {
            assert_eq!((node.as_str(), holder.as_str()), (n.uuid.as_str(), "c1"));
            assert_eq!(now.as_deref(), Some("c2"));
        }
        other => panic!("expected LockLost, got {other:?}"),
    }
    // The refused holder is told, so its work stops.
    tokio::time::timeout(std::time::Duration::from_secs(5), mine.lost())
        .await
        .expect("a refused write marks the lock lost");
    // Nor may the stale holder delete it, or free c2's lock.
    match store.delete_node(mine).await {
        Err(StoreError::LockLost { .. }) => {}
        other => panic!("expected LockLost, got {other:?}"),
    }
    let kept = store.node_by_uuid(&n.uuid).await.unwrap().unwrap();
    assert_eq!(kept.description, n.description);
    assert_eq!(kept.reservation.as_deref(), Some("c2"));
    // A lock of a deleted node reports NotFound, not a silent success.
    assert!(store.release_node(&n.uuid, "c2").await.unwrap());
    let lock = store.lock_node(&n.uuid, "c3").await.unwrap().unwrap();
    let again = store.lock_node(&n.uuid, "c3").await.unwrap();
    assert!(again.is_none(), "the lock is exclusive even for one holder");
    store.delete_node(lock).await.unwrap();
    assert!(matches!(
        store.save_node(&theirs, &other).await.map(|_| ()),
        Ok(())
    ));
}

/// A guard dropped while held (a cancelled request, a panicking task) releases the node, and
/// its late release never frees a lock taken since by someone else.
async fn dropped_lock_is_released(store: Store) {
    let n = store.create_node(&sample("dropped")).await.unwrap();
    let lock = store.lock_node(&n.uuid, "c1").await.unwrap().unwrap();
    drop(lock);
    let (s, uuid) = (&store, n.uuid.as_str());
    let again = crate::common::poll("the dropped lock is released", || async move {
        s.lock_node(uuid, "c2").await.unwrap()
    })
    .await;
    // A panic while holding the guard releases it too.
    let m = store.create_node(&sample("panicked")).await.unwrap();
    let s2 = store.clone();
    let uuid = m.uuid.clone();
    let task = tokio::spawn(async move {
        let _held = s2.lock_node(&uuid, "c1").await.unwrap().unwrap();
        panic!("a bug while holding the lock");
    });
    assert!(task.await.unwrap_err().is_panic());
    let uuid = m.uuid.as_str();
    crate::common::poll("the panicking task's lock is released", || async move {
        let row = s.node_by_uuid(uuid).await.unwrap().unwrap();
        row.reservation.is_none().then_some(())
    })
    .await;
    assert_eq!(
        store
            .node_by_uuid(&n.uuid)
            .await
            .unwrap()
            .unwrap()
            .reservation
            .as_deref(),
        Some("c2")
    );
    assert!(again.release().await.unwrap());
}

async fn ports_unique_mac_and_cascade(store: Store) {
    let n = store.create_node(&sample("withports")).await.unwrap();
    let port = |mac: &str| Port::new(uuid::Uuid::new_v4().to_string(), mac.into(), n.uuid.clone());
    let mut named = port("52:54:00:00:00:01");
    named.name = Some("eth0".into());
    named.local_link_connection = json!({"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": "Eth1/1"})
        .as_object()
        .unwrap()
        .clone();
    named.physical_network = Some("physnet1".into());
    let p1 = store.create_port(&named).await.unwrap();
    assert_eq!(p1.local_link_connection, named.local_link_connection);
    assert_eq!(p1.physical_network.as_deref(), Some("physnet1"));
    store.create_port(&port("52:54:00:00:00:02")).await.unwrap();
    match store.create_port(&port("52:54:00:00:00:01")).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("52:54:00:00:00:01"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.port("eth0").await.unwrap().uuid, p1.uuid);
    let mut renamed = p1.clone();
    renamed.name = None;
    renamed.is_smartnic = true;
    let saved = store.save_port(&renamed).await.unwrap();
    assert!(saved.is_smartnic && saved.name.is_none() && saved.updated_at.is_some());
    assert_eq!(
        store.port(&p1.uuid).await.unwrap().address,
        "52:54:00:00:00:01"
    );
    assert_eq!(store.ports(Some(&n.uuid)).await.unwrap().len(), 2);
    store.delete_port(&p1.uuid).await.unwrap();
    assert_eq!(store.ports(None).await.unwrap().len(), 1);
    store
        .add_history(&n.uuid, "c1", "provisioning", "INFO", "x")
        .await
        .unwrap();
    let lock = store.lock_node(&n.uuid, "c1").await.unwrap().unwrap();
    store.delete_node(lock).await.unwrap();
    assert!(store.ports(None).await.unwrap().is_empty());
    assert!(store.history(&n.uuid).await.unwrap().is_empty());
}

async fn history_in_order(store: Store) {
    let n = store.create_node(&sample("hist")).await.unwrap();
    for i in 0..5 {
        store
            .add_history(
                &n.uuid,
                "c1",
                "deploy_step",
                if i == 4 { "ERROR" } else { "INFO" },
                &format!("step {i}"),
            )
            .await
            .unwrap();
    }
    let h = store.history(&n.uuid).await.unwrap();
    assert_eq!(
        h.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        vec!["step 0", "step 1", "step 2", "step 3", "step 4"]
    );
    assert_eq!(h[4].severity, "ERROR");
    assert!(h.windows(2).all(|w| w[0].created_at <= w[1].created_at));
}

async fn conductor_heartbeat_upserts(store: Store) {
    store.heartbeat("c1").await.unwrap();
    let first = store.conductors().await.unwrap();
    assert_eq!(first.len(), 1);
    // Back-dated rather than waited for: the next heartbeat must move it forward.
    let old = first[0].heartbeat_at - chrono::Duration::hours(1);
    store.set_heartbeat_at("c1", old).await.unwrap();
    let dated = store.conductor("c1").await.unwrap().unwrap().heartbeat_at;
    assert!(dated < first[0].heartbeat_at);
    store.heartbeat("c1").await.unwrap();
    store.conductor_offline("c1").await.unwrap();
    let again = store.conductors().await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].heartbeat_at > dated);
    assert!(!again[0].online);
}

async fn chassis_holding_nodes_is_not_deleted(store: Store) {
    let c = Chassis {
        id: 0,
        uuid: uuid::Uuid::new_v4().to_string(),
        description: Some("rack 1 ♡".into()),
        extra: json!({"row": 3}).as_object().unwrap().clone(),
        created_at: Utc::now(),
        updated_at: None,
    };
    let created = store.create_chassis(&c).await.unwrap();
    assert_eq!(created.description, c.description);
    assert!(matches!(
        store.create_chassis(&c).await,
        Err(StoreError::Conflict(_))
    ));
    let mut changed = created.clone();
    changed.description = None;
    let saved = store.save_chassis(&changed).await.unwrap();
    assert_eq!(saved.description, None);
    assert!(saved.updated_at.is_some());
    let mut n = sample("in-chassis");
    n.chassis_uuid = Some(c.uuid.clone());
    store.create_node(&n).await.unwrap();
    let err = store.delete_chassis(&c.uuid).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("contains nodes")),
        "{err}"
    );
    let page = store
        .list_chassis(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    let lock = store.lock_node(&n.uuid, "c1").await.unwrap().unwrap();
    store.delete_node(lock).await.unwrap();
    store.delete_chassis(&c.uuid).await.unwrap();
    assert!(matches!(
        store.chassis(&c.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_chassis(&c.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn portgroup_with_ports_is_not_deleted(store: Store) {
    let n = store.create_node(&sample("bonded")).await.unwrap();
    let pg = Portgroup {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: Some("bond0".into()),
        address: Some("52:54:00:00:01:00".into()),
        node_uuid: n.uuid.clone(),
        mode: Some("802.3ad".into()),
        standalone_ports_supported: true,
        created_at: Utc::now(),
        ..Portgroup::default()
    };
    let created = store.create_portgroup(&pg).await.unwrap();
    assert_eq!(store.portgroup("bond0").await.unwrap().uuid, pg.uuid);
    let mut twin = pg.clone();
    twin.uuid = uuid::Uuid::new_v4().to_string();
    twin.address = None;
    assert!(matches!(
        store.create_portgroup(&twin).await,
        Err(StoreError::Conflict(m)) if m.contains("bond0")
    ));
    let mut member = Port::new(
        uuid::Uuid::new_v4().to_string(),
        "52:54:00:00:01:01".into(),
        n.uuid.clone(),
    );
    member.portgroup_uuid = Some(created.uuid.clone());
    store.create_port(&member).await.unwrap();
    assert_eq!(store.portgroup_ports(&pg.uuid).await.unwrap().len(), 1);
    assert!(matches!(
        store.delete_portgroup(&pg.uuid).await,
        Err(StoreError::Invalid(m)) if m.contains("contains ports")
    ));
    store.delete_port(&member.uuid).await.unwrap();
    store.delete_portgroup(&pg.uuid).await.unwrap();
    assert!(matches!(
        store.portgroup(&pg.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn step_templates_by_kind(store: Store) {
    let t = StepTemplate {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: "CUSTOM_RAID".into(),
        steps: vec![
            json!({"interface": "raid", "step": "create_configuration", "args": {}, "priority": 10}),
        ],
        created_at: Utc::now(),
        ..StepTemplate::default()
    };
    store
        .create_template(TemplateKind::DeployTemplate, &t)
        .await
        .unwrap();
    // The same name is free in the other table, taken in the same one.
    store
        .create_template(TemplateKind::Runbook, &t)
        .await
        .unwrap();
    let mut twin = t.clone();
    twin.uuid = uuid::Uuid::new_v4().to_string();
    assert!(matches!(
        store.create_template(TemplateKind::Runbook, &twin).await,
        Err(StoreError::Conflict(m)) if m.contains("runbook with name CUSTOM_RAID")
    ));
    let mut changed = store
        .template(TemplateKind::Runbook, "CUSTOM_RAID")
        .await
        .unwrap();
    assert_eq!(changed.steps, t.steps);
    changed.public = true;
    changed.owner = Some("project-a".into());
    let saved = store
        .save_template(TemplateKind::Runbook, &changed)
        .await
        .unwrap();
    assert!(saved.public && saved.updated_at.is_some());
    assert!(
        !store
            .template(TemplateKind::DeployTemplate, &t.uuid)
            .await
            .unwrap()
            .public
    );
    store
        .delete_template(TemplateKind::DeployTemplate, &t.uuid)
        .await
        .unwrap();
    assert!(store.template(TemplateKind::Runbook, &t.uuid).await.is_ok());
}

/// Rules keep their JSON conditions and actions; a phase reads only its rules, across pages.
async fn inspection_rules_round_trip_by_phase(store: Store) {
    let rule = |phase: &str, priority: i64| InspectionRule {
        uuid: uuid::Uuid::new_v4().to_string(),
        priority,
        phase: Some(phase.into()),
        conditions: vec![json!({"op": "eq", "args": {"values": [1, 1]}, "loop": ["a"]})],
        actions: vec![json!({"op": "log", "args": ["{node.uuid}"]})],
        created_at: Utc::now(),
        ..InspectionRule::default()
    };
    let mut main = Vec::new();
    for i in 0..1003 {
        main.push(
            store
                .create_inspection_rule(&rule("main", i))
                .await
                .unwrap(),
        );
    }
    store
        .create_inspection_rule(&rule("other", 1))
        .await
        .unwrap();
    assert!(matches!(
        store.create_inspection_rule(&main[0]).await,
        Err(StoreError::Conflict(m)) if m.contains("already exists")
    ));
    let of_main = store.inspection_rules_of_phase("main").await.unwrap();
    assert_eq!(of_main.len(), 1003);
    assert_eq!(of_main[0].conditions, main[0].conditions);
    let mut changed = main[1].clone();
    changed.sensitive = true;
    changed.description = Some("d".into());
    let saved = store.save_inspection_rule(&changed).await.unwrap();
    assert!(saved.sensitive && saved.updated_at.is_some());
    assert_eq!(
        store
            .inspection_rule(&main[1].uuid)
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("d")
    );
    store.delete_inspection_rule(&main[1].uuid).await.unwrap();
    assert!(matches!(
        store.inspection_rule(&main[1].uuid).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn volume_uniques_and_cascade(store: Store) {
    let n = store.create_node(&sample("bfv")).await.unwrap();
    let c = VolumeConnector {
        uuid: uuid::Uuid::new_v4().to_string(),
        node_uuid: n.uuid.clone(),
        kind: "iqn".into(),
        connector_id: "iqn.2026-11.org.example:n1".into(),
        created_at: Utc::now(),
        ..VolumeConnector::default()
    };
    store.create_volume_connector(&c).await.unwrap();
    let mut twin = c.clone();
    twin.uuid = uuid::Uuid::new_v4().to_string();
    assert!(matches!(
        store.create_volume_connector(&twin).await,
        Err(StoreError::Conflict(m)) if m.contains("type iqn and connector ID")
    ));
    let t = VolumeTarget {
        uuid: uuid::Uuid::new_v4().to_string(),
        node_uuid: n.uuid.clone(),
        volume_type: "iscsi".into(),
        volume_id: "vol-1".into(),
        boot_index: 0,
        created_at: Utc::now(),
        ..VolumeTarget::default()
    };
    store.create_volume_target(&t).await.unwrap();
    let mut second = t.clone();
    second.uuid = uuid::Uuid::new_v4().to_string();
    assert!(matches!(
        store.create_volume_target(&second).await,
        Err(StoreError::Conflict(m)) if m.contains("boot index '0'")
    ));
    second.boot_index = 1;
    let saved = store.create_volume_target(&second).await.unwrap();
    assert_eq!(saved.boot_index, 1);
    let lock = store.lock_node(&n.uuid, "c1").await.unwrap().unwrap();
    store.delete_node(lock).await.unwrap();
    assert!(store.volume_connector(&c.uuid).await.is_err());
    assert!(store.volume_target(&t.uuid).await.is_err());
}

async fn node_traits_are_sets_with_a_limit(store: Store) {
    let n = store.create_node(&sample("traits")).await.unwrap();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    store
        .set_node_traits(&n.uuid, &names(&["CUSTOM_B", "CUSTOM_A", "CUSTOM_B"]))
        .await
        .unwrap();
    assert_eq!(
        store.node_traits(&n.uuid).await.unwrap(),
        names(&["CUSTOM_A", "CUSTOM_B"])
    );
    store.add_node_trait(&n.uuid, "CUSTOM_A").await.unwrap();
    store.add_node_trait(&n.uuid, "CUSTOM_C").await.unwrap();
    assert!(matches!(
        store.remove_node_trait(&n.uuid, "CUSTOM_Z").await,
        Err(StoreError::NotFound { .. })
    ));
    store.remove_node_trait(&n.uuid, "CUSTOM_B").await.unwrap();
    let mut shown = [store.node(&n.uuid).await.unwrap()];
    store.fill_traits(&mut shown).await.unwrap();
    assert_eq!(shown[0].traits, names(&["CUSTOM_A", "CUSTOM_C"]));
    let fifty: Vec<String> = (0..50).map(|i| format!("CUSTOM_T{i:02}")).collect();
    store.set_node_traits(&n.uuid, &fifty).await.unwrap();
    assert!(matches!(
        store.add_node_trait(&n.uuid, "CUSTOM_ONE_MORE").await,
        Err(StoreError::Invalid(m)) if m.contains("(51 vs. 50)")
    ));
    let mut too_many = fifty.clone();
    too_many.push("CUSTOM_X".into());
    assert!(store.set_node_traits(&n.uuid, &too_many).await.is_err());
    assert_eq!(store.node_traits(&n.uuid).await.unwrap(), fifty);
    store.clear_node_traits(&n.uuid).await.unwrap();
    assert!(store.node_traits(&n.uuid).await.unwrap().is_empty());
}

async fn allocation_claims_one_free_node_once(store: Store) {
    let free = |name: &str| {
        let mut n = sample(name);
        n.provision_state = "available".into();
        n.power_state = Some("power off".into());
        n.resource_class = Some("gold".into());
        n
    };
    let a = store.create_node(&free("a")).await.unwrap();
    let b = store.create_node(&free("b")).await.unwrap();
    let mut busy = free("busy");
    busy.maintenance = true;
    store.create_node(&busy).await.unwrap();
    store
        .set_node_traits(&b.uuid, &["CUSTOM_GPU".to_string()])
        .await
        .unwrap();
    let gold = NodeCriteria {
        resource_class: Some("gold".into()),
        ..NodeCriteria::default()
    };
    let mut found = store.allocation_candidates(&gold, 10).await.unwrap();
    found.sort();
    let mut both = vec![a.uuid.clone(), b.uuid.clone()];
    both.sort();
    assert_eq!(found, both, "maintenance nodes are no candidates");
    let gpu = NodeCriteria {
        traits: vec!["CUSTOM_GPU".into()],
        ..gold.clone()
    };
    assert_eq!(
        store.allocation_candidates(&gpu, 10).await.unwrap(),
        vec![b.uuid.clone()]
    );
    let new = |name: &str| Allocation {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: Some(name.into()),
        state: "allocating".into(),
        resource_class: Some("gold".into()),
        created_at: Utc::now(),
        ..Allocation::default()
    };
    let first = store.create_allocation(&new("first")).await.unwrap();
    let second = store.create_allocation(&new("second")).await.unwrap();
    assert!(matches!(
        store.create_allocation(&new("first")).await,
        Err(StoreError::Conflict(m)) if m.contains("name first")
    ));
    assert!(store.fill_allocation(&first.uuid, &b.uuid).await.unwrap());
    assert!(
        !store.fill_allocation(&second.uuid, &b.uuid).await.unwrap(),
        "b is taken"
    );
    let held = store.node(&b.uuid).await.unwrap();
    assert_eq!(held.allocation_uuid.as_deref(), Some(first.uuid.as_str()));
    assert_eq!(held.instance_uuid.as_deref(), Some(first.uuid.as_str()));
    assert_eq!(store.allocation("first").await.unwrap().state, "active");
    assert_eq!(
        store
            .allocation_of_node(&b.uuid)
            .await
            .unwrap()
            .unwrap()
            .uuid,
        first.uuid
    );
    assert_eq!(
        store.allocation_candidates(&gold, 10).await.unwrap(),
        vec![a.uuid.clone()]
    );
    store
        .fail_allocation(&second.uuid, "none left")
        .await
        .unwrap();
    let failed = store.allocation(&second.uuid).await.unwrap();
    assert_eq!(
        (failed.state.as_str(), failed.last_error.as_deref()),
        ("error", Some("none left"))
    );
    store.delete_allocation(&first.uuid).await.unwrap();
    let freed = store.node(&b.uuid).await.unwrap();
    assert_eq!((freed.allocation_uuid, freed.instance_uuid), (None, None));
    // Backfill: a deployed node already holding another instance is refused.
    let mut deployed = sample("deployed");
    deployed.provision_state = "active".into();
    deployed.instance_uuid = Some(uuid::Uuid::new_v4().to_string());
    let deployed = store.create_node(&deployed).await.unwrap();
    let mut backfill = new("backfill");
    backfill.state = "active".into();
    backfill.node_uuid = Some(deployed.uuid.clone());
    assert!(matches!(
        store.create_backfilled_allocation(&backfill).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.allocation("backfill").await.is_err(), "nothing saved");
    backfill.uuid = deployed.instance_uuid.clone().unwrap();
    let made = store.create_backfilled_allocation(&backfill).await.unwrap();
    assert_eq!(made.node_uuid.as_deref(), Some(deployed.uuid.as_str()));
    let lock = store
        .lock_node(&deployed.uuid, "c1")
        .await
        .unwrap()
        .unwrap();
    store.delete_node(lock).await.unwrap();
    assert!(
        store.allocation("backfill").await.is_err(),
        "deleted with its node"
    );
}

/// Both backends have the same migrations, by name.
#[test]
fn store_migrations_match_between_backends() {
    let names = |backend: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}
