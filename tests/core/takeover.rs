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

/// The proof, at CI size: three `serve` processes on one PostgreSQL deploy simulated
/// nodes (bmc-sim fleet + redfish driver + ramdisk deploy of a live ISO); one is killed with
/// kill -9 while deploys run. Every node ends `active` or `deploy failed` with a reason, none
/// is booted twice, and the dead conductor's active nodes are served by a survivor: the URL in
/// their virtual CD is the survivor's and answers. `IRONCAST_TAKEOVER_NODES` sets the node count
/// (scripts/bench-takeover runs 1,000); the time from the kill to the last takeover is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takeover_three_serve_processes_one_killed() {
    use std::time::{Duration, Instant};

    use ironcast::redfish::sim::{Fleet, FleetOptions};
    use sha2::{Digest, Sha256};

    let Some((store, db)) = crate::store::postgres_store().await else {
        return;
    };
    let nodes: usize = std::env::var("IRONCAST_TAKEOVER_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let base = crate::common::postgres_url().unwrap();
    let db_url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let iso = ironcast::demo::demo_iso();
    let iso_path = dir.path().join("live.iso");
    std::fs::write(&iso_path, &iso).unwrap();
    let checksum = format!("sha256:{}", hex::encode(Sha256::digest(&iso)));
    let config = dir.path().join("ironcast.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\nallowed_file_dirs = [{:?}]\n",
            dir.path().display().to_string()
        ),
    )
    .unwrap();
    let mut opts = FleetOptions::new(nodes);
    opts.inspector = ironcast::demo::iso_boot_inspector();
    let fleet = Fleet::start(opts).await.unwrap();

    // Heartbeat interval and timeout (s): short in CI; the 1,000-node bench loads two cores
    // enough that a live conductor's heartbeat can be late, so it passes longer ones.
    let interval = std::env::var("IRONCAST_TAKEOVER_HEARTBEAT_S").unwrap_or_else(|_| "1".into());
    let timeout = std::env::var("IRONCAST_TAKEOVER_TIMEOUT_S").unwrap_or_else(|_| "10".into());
    let mut servers = Vec::new();
    for i in 0..3 {
        let state = dir.path().join(format!("c{i}"));
        std::fs::create_dir_all(&state).unwrap();
        let name = format!("c{i}");
        let env = [
            ("IRONCAST_CONFIG", config.to_str().unwrap()),
            ("IRONCAST_DATABASE__URL", db_url.as_str()),
            ("IRONCAST_DATABASE__MAX_CONNECTIONS", "16"),
            ("IRONCAST_CONDUCTOR__NAME", name.as_str()),
            (
                "IRONCAST_CONDUCTOR__HEARTBEAT_INTERVAL_S",
                interval.as_str(),
            ),
            ("IRONCAST_CONDUCTOR__HEARTBEAT_TIMEOUT_S", timeout.as_str()),
            ("IRONCAST_CONDUCTOR__LOCK_WAIT_MS", "10000"),
        ];
        servers.push(crate::support::spawn_serve(&state, &env));
    }
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let http = reqwest::Client::new();
    let call =
        |i: usize, method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
            let req = http
                .request(method, format!("{}{path}", urls[i % urls.len()]))
                .header("X-OpenStack-Ironic-API-Version", "latest");
            let req = match body {
                Some(b) => req.json(&b),
                None => req,
            };
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (
                    status,
                    resp.json::<serde_json::Value>().await.unwrap_or_default(),
                )
            }
        };
    let names: Vec<String> = (0..nodes).map(|i| format!("t{i:04}")).collect();
    for (i, name) in names.iter().enumerate() {
        let body = json!({
            "name": name, "driver": "redfish",
            "driver_info": {"redfish_address": fleet.address(i),
                            "redfish_username": "admin", "redfish_password": "password"},
            "instance_info": {"boot_iso": format!("file://{}", iso_path.display()),
                              "boot_iso_checksum": checksum,
                              "kernel_append_params": format!("marker={name}")},
        });
        let (s, n) = call(i, reqwest::Method::POST, "/v1/nodes".into(), Some(body)).await;
        assert_eq!(s, 201, "{n}");
    }
    let settle = |want: &'static [&'static str], alive: Vec<usize>| {
        let names = names.clone();
        let call = &call;
        async move {
            let deadline = Instant::now() + Duration::from_secs(120 + nodes as u64 / 2);
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                loop {
                    let c = alive[i % alive.len()];
                    let (_, n) =
                        call(c, reqwest::Method::GET, format!("/v1/nodes/{name}"), None).await;
                    let state = n["provision_state"].as_str().unwrap_or("").to_string();
                    if n["reservation"].is_null() && want.contains(&state.as_str()) {
                        out.push(n);
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{name} never settled in {want:?}: {n}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            out
        }
    };
    let provision = |target: &'static str| {
        let names = names.clone();
        let call = &call;
        async move {
            for (i, name) in names.iter().enumerate() {
                let path = format!("/v1/nodes/{name}/states/provision");
                let (s, n) = call(
                    i,
                    reqwest::Method::PUT,
                    path,
                    Some(json!({"target": target})),
                )
                .await;
                assert_eq!(s, 202, "{target} {name}: {n}");
            }
        }
    };
    provision("manage").await;
    settle(&["manageable"], vec![0, 1, 2]).await;
    provision("provide").await;
    settle(&["available"], vec![0, 1, 2]).await;

    // Deploy everything through all three APIs; kill c1 once a third of the nodes are active.
    provision("active").await;
    let victim = 1;
    let deadline = Instant::now() + Duration::from_secs(60 + nodes as u64 / 4);
    loop {
        let (_, list) = call(
            0,
            reqwest::Method::GET,
            "/v1/nodes?fields=name,provision_state,last_error".into(),
            None,
        )
        .await;
        let states = list["nodes"].as_array().cloned().unwrap_or_default();
        let active = states
            .iter()
            .filter(|n| n["provision_state"] == "active")
            .count();
        if active * 3 >= nodes {
            break;
        }
        assert!(Instant::now() < deadline, "deploys do not progress: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before: Vec<(String, serde_json::Value)> = {
        let mut v = Vec::new();
        for name in &names {
            let (_, n) = call(0, reqwest::Method::GET, format!("/v1/nodes/{name}"), None).await;
            v.push((name.clone(), n));
        }
        v
    };
    servers[victim].child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    servers[victim].child.wait().unwrap();
    let victims: Vec<&String> = before
        .iter()
        .filter(|(_, n)| {
            n["provision_state"] == "active"
                && n["driver_internal_info"]["conductor_affinity"] == format!("c{victim}")
        })
        .map(|(name, _)| name)
        .collect();

    let done = settle(&["active", "deploy failed"], vec![0, 2]).await;
    // The last takeover: every node the victim served names a survivor.
    let mut last_takeover = None;
    loop {
        let mut pending = 0;
        for name in &victims {
            let (_, n) = call(0, reqwest::Method::GET, format!("/v1/nodes/{name}"), None).await;
            if n["driver_internal_info"]["conductor_affinity"] == format!("c{victim}") {
                pending += 1;
            }
        }
        if pending == 0 {
            last_takeover.get_or_insert(killed.elapsed());
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "{pending} nodes never taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = last_takeover.unwrap();
    let (mut active, mut failed) = (0, 0);
    // Read again: the takeovers rewrote the nodes they adopted after `done` was read.
    let mut now = Vec::new();
    for name in &names {
        now.push(
            call(0, reqwest::Method::GET, format!("/v1/nodes/{name}"), None)
                .await
                .1,
        );
    }
    assert_eq!(now.len(), done.len());
    for (i, n) in now.iter().enumerate() {
        let id = &fleet.system_ids[i];
        match n["provision_state"].as_str().unwrap() {
            "active" => {
                active += 1;
                assert_eq!(
                    fleet.boots(id),
                    1,
                    "{}: booted {} times",
                    names[i],
                    fleet.boots(id)
                );
                let url = n["driver_internal_info"]["ramdisk_publication_url"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_eq!(
                    fleet.inserted(id).as_deref(),
                    Some(url.as_str()),
                    "{}",
                    names[i]
                );
                let resp = http.head(&url).send().await.unwrap();
                assert_eq!(resp.status().as_u16(), 200, "{} serves {url}", names[i]);
                let owner = n["driver_internal_info"]["conductor_affinity"]
                    .as_str()
                    .unwrap();
                assert_ne!(owner, format!("c{victim}"));
            }
            _ => {
                failed += 1;
                assert!(fleet.boots(id) <= 1, "{}", names[i]);
                let err = n["last_error"].as_str().unwrap_or("");
                assert!(
                    !err.is_empty(),
                    "{}: deploy failed without a reason",
                    names[i]
                );
            }
        }
    }
    assert!(
        !victims.is_empty(),
        "the victim served no active node when it was killed"
    );
    println!(
        "takeover: {nodes} nodes, {} served by the killed conductor; {active} active, {failed} deploy failed; kill -9 to last takeover: {:.2} s",
        victims.len(),
        took.as_secs_f64()
    );
    drop(servers);
    fleet.shutdown().await;
    crate::store::drop_postgres(store, db).await;
}

/// An `iso-install` node still installing (`wait call-back`, interactive: its ISO served as it
/// is) when its conductor is killed with kill -9 is served by the survivor, whose image server
/// listens on another port: the virtual CD then holds the survivor's URL, which answers with the
/// ISO, the node keeps installing (same state, not booted again), and the records name the
/// survivor's lease and publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_an_installing_iso_install_node_is_served_by_the_survivor() {
    use ironcast::redfish::sim::{Fleet, FleetOptions};
    use sha2::{Digest, Sha256};

    let Some((store, db)) = crate::store::postgres_store().await else {
        return;
    };
    let base = crate::common::postgres_url().unwrap();
    let db_url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let iso = ironcast::demo::demo_iso();
    let iso_path = dir.path().join("installer.iso");
    std::fs::write(&iso_path, &iso).unwrap();
    let config = dir.path().join("ironcast.toml");
    let allowed = dir.path().display().to_string();
    std::fs::write(
        &config,
        format!("[cache]\nallowed_file_dirs = [{allowed:?}]\n"),
    )
    .unwrap();
    let mut opts = FleetOptions::new(1);
    opts.inspector = ironcast::demo::iso_boot_inspector();
    let fleet = Fleet::start(opts).await.unwrap();
    let system = fleet.system_ids[0].clone();

    let mut servers = Vec::new();
    for name in ["c0", "c1"] {
        let state = dir.path().join(name);
        std::fs::create_dir_all(&state).unwrap();
        let env = [
            ("IRONCAST_CONFIG", config.to_str().unwrap()),
            ("IRONCAST_DATABASE__URL", db_url.as_str()),
            ("IRONCAST_CONDUCTOR__NAME", name),
            ("IRONCAST_CONDUCTOR__HEARTBEAT_INTERVAL_S", "1"),
            ("IRONCAST_CONDUCTOR__HEARTBEAT_TIMEOUT_S", "5"),
        ];
        servers.push(crate::support::spawn_serve(&state, &env));
    }
    assert_ne!(servers[0].images_url, servers[1].images_url);
    let http = reqwest::Client::new();
    let call = |url: String, method: reqwest::Method, body: Option<serde_json::Value>| {
        let req = http
            .request(method, url)
            .header("X-OpenStack-Ironic-API-Version", "latest");
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (
                status,
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let api = servers[0].url.clone();
    let body = json!({
        "name": "installing", "driver": "redfish", "deploy_interface": "iso-install",
        "automated_clean": false,
        "driver_info": {"redfish_address": fleet.address(0),
                        "redfish_username": "admin", "redfish_password": "password"},
        "instance_info": {"install_iso": format!("file://{}", iso_path.display()),
                          "install_iso_checksum": format!("sha256:{}", hex::encode(Sha256::digest(&iso))),
                          "interactive": true},
    });
    let (s, n) = call(format!("{api}/v1/nodes"), reqwest::Method::POST, Some(body)).await;
    assert_eq!(s, 201, "{n}");
    let node = |api: String| {
        let call = &call;
        async move {
            call(
                format!("{api}/v1/nodes/installing"),
                reqwest::Method::GET,
                None,
            )
            .await
            .1
        }
    };
    for (target, want) in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "wait call-back"),
    ] {
        let path = format!("{api}/v1/nodes/installing/states/provision");
        let (s, n) = call(path, reqwest::Method::PUT, Some(json!({"target": target}))).await;
        assert_eq!(s, 202, "{target}: {n}");
        let api = api.clone();
        crate::common::poll(&format!("the node reaches {want}"), || {
            let api = api.clone();
            async move {
                let n = node(api).await;
                (n["provision_state"] == want && n["reservation"].is_null()).then_some(())
            }
        })
        .await;
    }
    let before = node(api.clone()).await;
    let owner = before["driver_internal_info"][AFFINITY_KEY]
        .as_str()
        .unwrap()
        .to_string();
    let (dead, alive) = if owner == "c0" { (0, 1) } else { (1, 0) };
    let old_url = fleet
        .inserted(&system)
        .expect("the installer ISO is inserted");
    assert!(old_url.starts_with(&servers[dead].images_url), "{old_url}");
    assert_eq!(fleet.boots(&system), 1);

    servers[dead].child.kill().unwrap(); // SIGKILL
    servers[dead].child.wait().unwrap();
    let api = servers[alive].url.clone();
    let survivor = format!("c{alive}");
    let after = crate::common::poll("the survivor takes the node over", || {
        let (api, survivor) = (api.clone(), survivor.clone());
        async move {
            let n = node(api).await;
            (n["driver_internal_info"][AFFINITY_KEY] == survivor.as_str()
                && n["reservation"].is_null())
            .then_some(n)
        }
    })
    .await;
    assert_eq!(after["provision_state"], "wait call-back", "{after}");
    let new_url = fleet.inserted(&system).expect("an ISO is inserted");
    assert!(
        new_url.starts_with(&servers[alive].images_url),
        "the CD holds the survivor's URL: {new_url}"
    );
    let resp = http.get(&new_url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{new_url}");
    assert!(resp.bytes().await.unwrap() == iso, "the ISO as it is");
    assert_eq!(
        fleet.boots(&system),
        1,
        "the installing node was not booted again"
    );
    let (old, new) = (
        &before["driver_internal_info"],
        &after["driver_internal_info"],
    );
    assert_ne!(
        old["iso_install_publications"],
        new["iso_install_publications"]
    );
    assert_ne!(old["iso_install_lease"], new["iso_install_lease"]);
    assert!(new["iso_install_lease"].is_string(), "{new}");
    drop(servers);
    fleet.shutdown().await;
    crate::store::drop_postgres(store, db).await;
}
