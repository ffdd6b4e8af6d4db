//! Conductors sharing PostgreSQL: a name a live process holds is refused, and the survivors
//! of a dead conductor (its heartbeat back-dated, not waited for) share its nodes by the hash
//! ring: its interrupted work fails with a reason, its deployed nodes are served by them, and
//! its row goes offline when nothing refers to it.

use chrono::Utc;
use ironcast::conductor::{Conductor, ConductorError, AFFINITY_KEY};
use ironcast::store::{Node, Store};
use serde_json::json;

use crate::support::settings;

async fn conductor(store: &Store, name: &str) -> Conductor {
    let c = Conductor::new(store.clone(), settings(name));
    c.recover().await.unwrap();
    c
}

/// A fake-hardware node in `state`, as conductor `owner` left it (`locked`: it was working on
/// it when it died).
async fn left(store: &Store, name: &str, state: &str, owner: &str, locked: bool) -> String {
    let mut n = Node::new(
        uuid::Uuid::new_v4().to_string(),
        "fake-hardware".into(),
        |i| ironcast::conductor::default_interface("fake-hardware", i),
    );
    n.name = Some(name.into());
    n.provision_state = state.into();
    n.driver_internal_info
        .insert(AFFINITY_KEY.into(), json!(owner));
    let n = store.create_node(&n).await.unwrap();
    if locked {
        assert!(store.reserve_node(&n.uuid, owner).await.unwrap());
    }
    n.uuid
}

#[tokio::test]
async fn takeover_a_live_name_is_refused_a_crashed_one_is_not() {
    let Some((store, db)) = crate::store::postgres_store().await else {
        return;
    };
    let host = ironcast::conductor::identity::hostname();
    // Process 1 (init) is alive on this host and registered "twin": we may not be "twin" too.
    store.register_conductor("twin", &host, 1).await.unwrap();
    let twin = Conductor::new(store.clone(), settings("twin"));
    match twin.recover().await {
        Err(ConductorError::NameInUse(why)) => assert!(why.contains("process 1 on host"), "{why}"),
        other => panic!("expected NameInUse, got {other:?}"),
    }
    // A crashed process of this host (no such pid) leaves the name free at once.
    store
        .register_conductor("crashed", &host, i64::from(i32::MAX))
        .await
        .unwrap();
    conductor(&store, "crashed").await;
    // So does a heartbeat older than the timeout, whatever host it came from.
    store
        .register_conductor("old", "elsewhere", 1)
        .await
        .unwrap();
    store
        .set_heartbeat_at("old", Utc::now() - chrono::Duration::seconds(61))
        .await
        .unwrap();
    conductor(&store, "old").await;
    crate::store::drop_postgres(store, db).await;
}

#[tokio::test]
async fn takeover_survivors_share_a_dead_conductors_nodes() {
    let Some((store, db)) = crate::store::postgres_store().await else {
        return;
    };
    let dead = conductor(&store, "dead").await;
    let alive = conductor(&store, "alive").await;
    let mut deploying = Vec::new();
    let mut active = Vec::new();
    let mut waiting = Vec::new();
    for i in 0..12 {
        deploying.push(left(&store, &format!("d{i}"), "deploying", "dead", true).await);
        active.push(left(&store, &format!("a{i}"), "active", "dead", false).await);
        waiting.push(left(&store, &format!("w{i}"), "wait call-back", "dead", false).await);
    }
    let others = left(&store, "theirs", "active", "alive", false).await;
    // While its heartbeat is fresh, nothing is taken.
    let s1 = conductor(&store, "s1").await;
    assert!(s1.take_over_dead().await.unwrap().dead.is_empty());

    store
        .set_heartbeat_at("dead", Utc::now() - chrono::Duration::seconds(61))
        .await
        .unwrap();
    drop(dead);
    let a = alive.take_over_dead().await.unwrap();
    let b = s1.take_over_dead().await.unwrap();
    assert_eq!(a.dead, vec!["dead".to_string()]);
    // Each survivor handled its share of the ring, together all of them, none twice.
    assert!(a.failed > 0 && b.failed > 0, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed, deploying.len());
    assert_eq!(a.adopted + b.adopted, active.len() + waiting.len());
    assert_eq!(a.retired.len() + b.retired.len(), 1);
    for id in &deploying {
        let n = store.node(id).await.unwrap();
        assert_eq!(n.provision_state, "deploy failed");
        assert!(n.reservation.is_none());
        let err = n.last_error.unwrap();
        assert!(err.contains("conductor dead stopped heartbeating"), "{err}");
        let owner = n.driver_internal_info[AFFINITY_KEY].as_str().unwrap();
        assert!(owner == "alive" || owner == "s1");
    }
    for (id, state) in active
        .iter()
        .map(|i| (i, "active"))
        .chain(waiting.iter().map(|i| (i, "wait call-back")))
    {
        let n = store.node(id).await.unwrap();
        assert_eq!(n.provision_state, state);
        assert!(n.reservation.is_none() && n.last_error.is_none());
        let owner = n.driver_internal_info[AFFINITY_KEY].as_str().unwrap();
        assert!(owner == "alive" || owner == "s1");
    }
    let n = store.node(&others).await.unwrap();
    assert_eq!(n.driver_internal_info[AFFINITY_KEY], "alive");
    let row = store.conductor("dead").await.unwrap().unwrap();
    assert!(!row.online);
    // Nothing left: a further pass does nothing.
    assert_eq!(alive.take_over_dead().await.unwrap(), Default::default());
    crate::store::drop_postgres(store, db).await;
}
