//! Ironic's microversions after 1.95 in-process: each new field or filter is served from its
//! version on, hidden (or 406 when set) before it, as Ironic 39.0.0 does. A version above the
//! advertised maximum cannot be asked for at all, so its checks run once it is advertised; until
//! then the test checks that it is refused.

use ironcast::api::version::{Version, MAX};
use serde_json::{json, Value};

use crate::support::{api, fault, Api};

/// `method path` at microversion `1.minor`.
async fn at(api: &Api, minor: u32, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = api
        .http
        .request(m, format!("{}{path}", api.url))
        .header("X-OpenStack-Ironic-API-Version", format!("1.{minor}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The newest version before `1.minor` that is served.
fn below(minor: u32) -> u32 {
    (minor - 1).min(MAX.0)
}

/// Whether `1.minor` is served; when it is not, checks that asking for it is refused.
async fn served(api: &Api, minor: u32) -> bool {
    if MAX >= Version(minor) {
        return true;
    }
    let (s, _) = at(api, minor, "GET", "/v1/ports", None).await;
    assert_eq!(s, 406, "1.{minor} is above the maximum {MAX}");
    false
}

async fn node(api: &Api, name: &str, extra: Value) -> String {
    let mut body = json!({"driver": "fake-hardware", "name": name});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (s, n) = api.call("POST", "/v1/nodes", Some(body)).await;
    assert_eq!(s, 201, "{n}");
    n["uuid"].as_str().unwrap().to_string()
}

async fn port(api: &Api, node: &str, mac: &str, extra: Value) -> Value {
    let mut body = json!({"node_uuid": node, "address": mac});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (s, p) = api.call("POST", "/v1/ports", Some(body)).await;
    assert_eq!(s, 201, "{p}");
    p
}

fn uuids(list: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|p| p["uuid"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn port_text_fields_follow_1_97_1_100_1_101() {
    let api = api().await;
    let n = node(&api, "texts", json!({})).await;
    let p = port(&api, &n, "52:54:00:00:97:01", json!({})).await;
    let uuid = p["uuid"].as_str().unwrap().to_string();
    for (field, minor, limit) in [
        ("description", 97, 255),
        ("vendor", 100, 32),
        ("category", 101, 80),
    ] {
        let (s, shown) = at(
            &api,
            below(minor),
            "GET",
            &format!("/v1/ports/{uuid}"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert!(
            shown.get(field).is_none(),
            "{field} before 1.{minor}: {shown}"
        );
        let patch = json!([{"op": "add", "path": format!("/{field}"), "value": "x"}]);
        let (s, _) = at(
            &api,
            below(minor),
            "PATCH",
            &format!("/v1/ports/{uuid}"),
            Some(patch),
        )
        .await;
        assert_eq!(s, 406, "setting {field} before 1.{minor}");
        if !served(&api, minor).await {
            continue;
        }
        let value = format!("{field} of eth0");
        let patch = json!([{"op": "add", "path": format!("/{field}"), "value": value}]);
        let (s, p) = at(
            &api,
            minor,
            "PATCH",
            &format!("/v1/ports/{uuid}"),
            Some(patch),
        )
        .await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(p[field], value.as_str());
        let long =
            json!([{"op": "replace", "path": format!("/{field}"), "value": "y".repeat(limit + 1)}]);
        let (s, body) = at(
            &api,
            minor,
            "PATCH",
            &format!("/v1/ports/{uuid}"),
            Some(long),
        )
        .await;
        assert_eq!(s, 400, "{field} over {limit}: {body}");
        assert!(fault(&body).contains(&limit.to_string()), "{body}");
    }
    // description_contains is no versioned filter in Ironic.
    let other = port(&api, &n, "52:54:00:00:97:02", json!({})).await;
    if MAX >= Version(97) {
        let (s, _) = at(
            &api,
            97,
            "PATCH",
            &format!("/v1/ports/{}", other["uuid"].as_str().unwrap()),
            Some(json!([{"op": "add", "path": "/description", "value": "uplink"}])),
        )
        .await;
        assert_eq!(s, 200);
        let (s, list) = api
            .call("GET", "/v1/ports?description_contains=ETH0", None)
            .await;
        assert_eq!(s, 200, "{list}");
        assert_eq!(uuids(&list, "ports"), vec![uuid.clone()]);
    }
    let (s, list) = api
        .call(
            "GET",
            "/v1/ports?description_contains=nothing-like-it",
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    assert!(uuids(&list, "ports").is_empty());
}

#[tokio::test]
async fn ports_and_portgroups_filter_by_their_nodes_conductor_groups_and_shards() {
    let api = api().await;
    let a = node(
        &api,
        "in-a",
        json!({"conductor_group": "Rack-A", "shard": "s1"}),
    )
    .await;
    let b = node(
        &api,
        "in-b",
        json!({"conductor_group": "rack-b", "shard": "s2"}),
    )
    .await;
    let pa = port(&api, &a, "52:54:00:00:99:01", json!({})).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let pb = port(&api, &b, "52:54:00:00:99:02", json!({})).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, list) = api
        .call("GET", "/v1/ports?conductor_groups=rack-a", None)
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(uuids(&list, "ports"), vec![pa.clone()]);
    let (s, list) = api
        .call(
            "GET",
            "/v1/ports/detail?conductor_groups=rack-a,RACK-B",
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let mut both = vec![pa.clone(), pb.clone()];
    both.sort();
    assert_eq!(uuids(&list, "ports"), both);
    let (s, body) = api
        .call(
            "GET",
            &format!("/v1/ports?conductor_groups=rack-a&node={a}"),
            None,
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(fault(&body).contains("conductor_groups cannot be combined"));
    let (s, list) = api.call("GET", "/v1/ports?shard=s2", None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(uuids(&list, "ports"), vec![pb.clone()]);
    let (s, _) = at(&api, 81, "GET", "/v1/ports?shard=s2", None).await;
    assert_eq!(s, 406, "shard is a 1.82 filter");

    for (n, name) in [(&a, "bond-a"), (&b, "bond-b")] {
        let (s, pg) = api
            .call(
                "POST",
                "/v1/portgroups",
                Some(json!({"node_uuid": n, "name": name})),
            )
            .await;
        assert_eq!(s, 201, "{pg}");
    }
    let (s, list) = api
        .call(
            "GET",
            "/v1/portgroups?conductor_groups=rack-b&fields=name",
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["portgroups"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["portgroups"][0]["name"], "bond-b");
    let (s, body) = api
        .call(
            "GET",
            &format!("/v1/portgroups?conductor_groups=rack-b&node={b}"),
            None,
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, _) = at(&api, below(106), "GET", "/v1/portgroups?shard=s1", None).await;
    assert_eq!(s, 406, "a portgroup shard filter before 1.106");
    if served(&api, 106).await {
        let (s, list) = at(
            &api,
            106,
            "GET",
            "/v1/portgroups?shard=s1&fields=name",
            None,
        )
        .await;
        assert_eq!(s, 200, "{list}");
        assert_eq!(list["portgroups"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list["portgroups"][0]["name"], "bond-a");
    }
}

#[tokio::test]
async fn portgroup_physical_network_is_its_members_and_category_is_shown() {
    let api = api().await;
    let n = node(&api, "bonded", json!({})).await;
    let (s, pg) = api
        .call(
            "POST",
            "/v1/portgroups",
            Some(json!({"node_uuid": n, "name": "bond0"})),
        )
        .await;
    assert_eq!(s, 201, "{pg}");
    let pg = pg["uuid"].as_str().unwrap().to_string();
    // The first member with a physical network gives the empty portgroup its own.
    let first = port(
        &api,
        &n,
        "52:54:00:01:02:01",
        json!({"portgroup_uuid": pg, "physical_network": "physnet1", "pxe_enabled": false}),
    )
    .await;
    let (s, body) = api
        .call(
            "POST",
            "/v1/ports",
            Some(
                json!({"node_uuid": n, "address": "52:54:00:01:02:02", "portgroup_uuid": pg,
                        "physical_network": "physnet2", "pxe_enabled": false}),
            ),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(fault(&body).contains("physical network physnet1"), "{body}");
    let (s, shown) = at(
        &api,
        below(102),
        "GET",
        &format!("/v1/portgroups/{pg}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(shown.get("physical_network").is_none(), "{shown}");
    let (s, _) = at(
        &api,
        102,
        "PATCH",
        &format!("/v1/portgroups/{pg}"),
        Some(json!([{"op": "replace", "path": "/physical_network", "value": "physnet9"}])),
    )
    .await;
    if !served(&api, 102).await {
        assert_eq!(s, 406);
        return;
    }
    assert_eq!(s, 200);
    let (_, member) = at(
        &api,
        102,
        "GET",
        &format!("/v1/ports/{}", first["uuid"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(
        member["physical_network"], "physnet9",
        "members follow: {member}"
    );
    let (s, body) = at(
        &api,
        102,
        "PATCH",
        &format!("/v1/ports/{}", first["uuid"].as_str().unwrap()),
        Some(json!([{"op": "replace", "path": "/physical_network", "value": "physnet3"}])),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(fault(&body).contains("belongs to a portgroup"), "{body}");
    let (s, body) = at(
        &api,
        102,
        "PATCH",
        &format!("/v1/portgroups/{pg}"),
        Some(json!([{"op": "add", "path": "/category", "value": "storage"}])),
    )
    .await;
    assert_eq!(s, 406, "category is 1.103: {body}");
    if served(&api, 103).await {
        let (s, g) = at(
            &api,
            103,
            "PATCH",
            &format!("/v1/portgroups/{pg}"),
            Some(json!([{"op": "add", "path": "/category", "value": "storage"}])),
        )
        .await;
        assert_eq!(s, 200, "{g}");
        assert_eq!(g["category"], "storage");
        assert_eq!(g["physical_network"], "physnet9");
    }
}

#[tokio::test]
async fn local_link_connection_follows_ironics_schema_and_the_vtep_window() {
    let api = api().await;
    let n = node(&api, "cabled", json!({})).await;
    let (s, body) = api
        .call(
            "POST",
            "/v1/ports",
            Some(json!({"node_uuid": n, "address": "52:54:00:05:00:01",
                        "local_link_connection": {"port_id": "Ethernet1", "colour": "red"}})),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(fault(&body).contains("'colour'"), "{body}");
    let p = port(
        &api,
        &n,
        "52:54:00:05:00:02",
        json!({"local_link_connection": {"port_id": "Ethernet1", "switch_id": "AA:BB:CC:DD:EE:FF"}}),
    )
    .await;
    assert_eq!(p["local_link_connection"]["switch_id"], "aa:bb:cc:dd:ee:ff");
    let (s, body) = api
        .call(
            "POST",
            "/v1/ports",
            Some(json!({"node_uuid": n, "address": "52:54:00:05:00:03", "is_smartnic": true,
                        "local_link_connection": {"port_id": "p", "switch_id": "aa:bb:cc:dd:ee:01"}})),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(fault(&body).contains("Smart NIC"), "{body}");
    let vtep = json!({"node_uuid": n, "address": "52:54:00:05:00:04",
                      "local_link_connection": {"port_id": "p", "vtep-logical-switch": "ls",
                                                "vtep-physical-switch": "ps"}});
    let (s, _) = at(&api, 89, "POST", "/v1/ports", Some(vtep.clone())).await;
    assert_eq!(s, 406, "VTEP keys before 1.90");
    let (s, created) = at(&api, 90, "POST", "/v1/ports", Some(vtep.clone())).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(
        created["local_link_connection"]["vtep-logical-switch"],
        "ls"
    );
    let id = created["uuid"].as_str().unwrap().to_string();
    let (_, old) = at(&api, 89, "GET", &format!("/v1/ports/{id}"), None).await;
    assert_eq!(
        old["local_link_connection"],
        json!({}),
        "hidden before 1.90"
    );
    if served(&api, 105).await {
        let (_, new) = at(&api, 105, "GET", &format!("/v1/ports/{id}"), None).await;
        assert_eq!(
            new["local_link_connection"],
            json!({}),
            "hidden again from 1.105"
        );
        let mut again = vtep;
        again["address"] = json!("52:54:00:05:00:05");
        let (s, _) = at(&api, 105, "POST", "/v1/ports", Some(again)).await;
        assert_eq!(s, 406, "VTEP keys refused from 1.105");
    }
}

#[tokio::test]
async fn node_instance_name_from_1_104() {
    let api = api().await;
    let id = node(&api, "named", json!({})).await;
    let set = json!([{"op": "add", "path": "/instance_name", "value": "web-1"}]);
    let (s, _) = at(
        &api,
        below(104),
        "PATCH",
        &format!("/v1/nodes/{id}"),
        Some(set.clone()),
    )
    .await;
    assert_eq!(s, 406);
    let (_, shown) = at(&api, below(104), "GET", &format!("/v1/nodes/{id}"), None).await;
    assert!(shown.get("instance_name").is_none(), "{shown}");
    if !served(&api, 104).await {
        return;
    }
    let (s, n) = at(&api, 104, "PATCH", &format!("/v1/nodes/{id}"), Some(set)).await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(n["instance_name"], "web-1");
    let (s, list) = at(&api, 104, "GET", "/v1/nodes?instance_name=web-1", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["nodes"][0]["uuid"], id.as_str());
    let other = node(&api, "nova", json!({})).await;
    let info = json!([{"op": "add", "path": "/instance_info/display_name", "value": "vm-7"}]);
    let (s, n) = at(
        &api,
        104,
        "PATCH",
        &format!("/v1/nodes/{other}"),
        Some(info),
    )
    .await;
    assert_eq!(s, 200, "{n}");
    assert_eq!(n["instance_name"], "vm-7", "taken from display_name");
    let (s, body) = at(
        &api,
        104,
        "PATCH",
        &format!("/v1/nodes/{other}"),
        Some(json!([{"op": "replace", "path": "/instance_name", "value": ""}])),
    )
    .await;
    assert_eq!(s, 400, "{body}");
}

#[tokio::test]
async fn an_inbound_request_id_never_replaces_ours() {
    let api = api().await;
    let theirs = format!("req-{}", uuid::Uuid::new_v4());
    let r = api
        .http
        .get(format!("{}/v1/nodes", api.url))
        .header("X-OpenStack-Request-Id", &theirs)
        .send()
        .await
        .unwrap();
    let ours = r.headers()["x-openstack-request-id"].to_str().unwrap();
    assert!(ours.starts_with("req-") && ours != theirs, "{ours}");
    assert_eq!(r.headers()["openstack-request-id"].to_str().unwrap(), ours);
}

async fn put_in_state(api: &Api, id: &str, state: &str) {
    let store = api.conductor.store();
    let mut n = store.node(id).await.unwrap();
    n.provision_state = state.into();
    let lock = store.lock_node(id, "fixture").await.unwrap().unwrap();
    store.save_node(&lock, &n).await.unwrap();
    assert!(lock.release().await.unwrap());
}

#[tokio::test]
async fn disable_ramdisk_is_for_clean_from_1_70_and_service_from_1_108() {
    let api = api().await;
    let id = node(&api, "ramdiskless", json!({})).await;
    put_in_state(&api, &id, "manageable").await;
    let path = format!("/v1/nodes/{id}/states/provision");
    let erase = json!({"target": "clean", "disable_ramdisk": true,
                       "clean_steps": [{"interface": "deploy", "step": "erase_devices_metadata"}]});
    let (s, _) = at(&api, 69, "PUT", &path, Some(erase.clone())).await;
    assert_eq!(s, 406, "disable_ramdisk with clean before 1.70");
    let (s, body) = at(&api, 70, "PUT", &path, Some(erase)).await;
    assert_eq!(
        s, 400,
        "an agent step cannot run without the ramdisk: {body}"
    );
    assert!(
        fault(&body).contains("deploy.erase_devices_metadata"),
        "{body}"
    );
    let (s, body) = api
        .call(
            "PUT",
            &path,
            Some(json!({"target": "provide", "disable_ramdisk": true})),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(
        fault(&body).contains("only with manual cleaning or servicing"),
        "{body}"
    );
    let service = json!({"target": "service", "disable_ramdisk": true,
                         "service_steps": [{"interface": "bios", "step": "factory_reset"}]});
    let (s, _) = at(&api, below(108), "PUT", &path, Some(service.clone())).await;
    assert_eq!(s, 406, "disable_ramdisk with service before 1.108");
    if served(&api, 108).await {
        // Past the version gate, the state machine answers: the node is not active.
        let (s, body) = at(&api, 108, "PUT", &path, Some(service)).await;
        assert_eq!(s, 400, "{body}");
        assert!(fault(&body).contains("can not be performed"), "{body}");
    }
}

#[tokio::test]
async fn abort_in_wait_call_back_needs_1_110_once_it_is_advertised() {
    let api = api().await;
    let id = node(&api, "waiting", json!({})).await;
    put_in_state(&api, &id, "wait call-back").await;
    let path = format!("/v1/nodes/{id}/states/provision");
    let abort = json!({"target": "abort"});
    if served(&api, 110).await {
        let (s, _) = at(&api, 109, "PUT", &path, Some(abort.clone())).await;
        assert_eq!(s, 406, "abort in wait call-back before 1.110");
    }
    let (s, body) = at(&api, MAX.0, "PUT", &path, Some(abort)).await;
    assert_eq!(s, 202, "{body}");
    api.wait_state(&id, "deploy failed", 10).await;
    // Inspection abort is 1.41's.
    let other = node(&api, "inspecting", json!({})).await;
    put_in_state(&api, &other, "inspect wait").await;
    let (s, _) = at(
        &api,
        40,
        "PUT",
        &format!("/v1/nodes/{other}/states/provision"),
        Some(json!({"target": "abort"})),
    )
    .await;
    assert_eq!(s, 406);
}

#[tokio::test]
async fn health_follows_the_bmc_and_each_change_is_in_history() {
    use ironcast::redfish::sim::{system_id, Fleet, FleetOptions};
    let fleet = Fleet::start(FleetOptions::new(1)).await.unwrap();
    let api = api().await;
    let id = node(
        &api,
        "monitored",
        json!({"driver": "redfish", "driver_info": {"redfish_address": fleet.address(0),
               "redfish_username": "admin", "redfish_password": "password"}}),
    )
    .await;
    let fake = node(&api, "no-bmc", json!({})).await;
    let store = api.conductor.store();
    // Enrolled nodes are left alone, as Ironic's power sync leaves them.
    assert_eq!(api.conductor.sync_health().await.unwrap(), 0);
    put_in_state(&api, &id, "manageable").await;
    put_in_state(&api, &fake, "manageable").await;
    assert_eq!(api.conductor.sync_health().await.unwrap(), 1);
    assert_eq!(store.node(&id).await.unwrap().health.as_deref(), Some("OK"));
    assert_eq!(
        store.node(&fake).await.unwrap().health,
        None,
        "fake-hardware cannot tell"
    );
    assert_eq!(api.conductor.sync_health().await.unwrap(), 0, "unchanged");
    fleet.set_health(&system_id(0), "Critical");
    assert_eq!(api.conductor.sync_health().await.unwrap(), 1);
    assert_eq!(
        store.node(&id).await.unwrap().health.as_deref(),
        Some("Critical")
    );
    let (s, history) = api
        .call("GET", &format!("/v1/nodes/{id}/history"), None)
        .await;
    assert_eq!(s, 200, "{history}");
    let events: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.contains(&"Node health status changed: health='Critical' (previously 'OK')"),
        "{events:?}"
    );
    // Maintenance stops monitoring.
    let (s, _) = api
        .call(
            "PUT",
            &format!("/v1/nodes/{id}/maintenance"),
            Some(json!({"reason": "fans"})),
        )
        .await;
    assert_eq!(s, 202);
    fleet.set_health(&system_id(0), "Warning");
    assert_eq!(api.conductor.sync_health().await.unwrap(), 0);
    let (_, shown) = at(&api, below(109), "GET", &format!("/v1/nodes/{id}"), None).await;
    assert!(shown.get("health").is_none(), "{shown}");
    if served(&api, 109).await {
        let (_, shown) = at(&api, 109, "GET", &format!("/v1/nodes/{id}"), None).await;
        assert_eq!(shown["health"], "Critical");
        let (_, list) = at(&api, 109, "GET", "/v1/nodes?fields=name,health", None).await;
        assert!(
            list["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["health"] == "Critical"),
            "{list}"
        );
        let (s, _) = at(
            &api,
            109,
            "PATCH",
            &format!("/v1/nodes/{id}"),
            Some(json!([{"op": "replace", "path": "/health", "value": "OK"}])),
        )
        .await;
        assert_eq!(s, 400, "health is read-only");
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn dynamic_portgroup_fields_from_1_111() {
    let api = api().await;
    let n = node(&api, "dynamic", json!({})).await;
    let p = port(&api, &n, "52:54:00:11:01:01", json!({})).await;
    let path = format!("/v1/ports/{}", p["uuid"].as_str().unwrap());
    let (s, pg) = api
        .call(
            "POST",
            "/v1/portgroups",
            Some(json!({"node_uuid": n, "name": "dyn0"})),
        )
        .await;
    assert_eq!(s, 201, "{pg}");
    let (_, shown) = at(&api, below(111), "GET", &path, None).await;
    assert!(
        shown.get("available_for_dynamic_portgroup").is_none(),
        "{shown}"
    );
    let set = json!([{"op": "replace", "path": "/available_for_dynamic_portgroup", "value": true}]);
    let (s, _) = at(&api, below(111), "PATCH", &path, Some(set.clone())).await;
    assert_eq!(s, 406);
    if !served(&api, 111).await {
        return;
    }
    let (_, shown) = at(&api, 111, "GET", &path, None).await;
    assert_eq!(shown["available_for_dynamic_portgroup"], false);
    let (s, patched) = at(&api, 111, "PATCH", &path, Some(set)).await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["available_for_dynamic_portgroup"], true);
    let (_, group) = at(&api, 111, "GET", "/v1/portgroups/dyn0", None).await;
    assert_eq!(group["dynamic_portgroup"], false, "{group}");
    let (s, _) = at(
        &api,
        111,
        "PATCH",
        "/v1/portgroups/dyn0",
        Some(json!([{"op": "replace", "path": "/dynamic_portgroup", "value": true}])),
    )
    .await;
    assert_eq!(s, 400, "read-only, as Ironic's PATCH_ALLOWED_FIELDS");
}
