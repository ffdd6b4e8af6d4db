//! `ironcast serve` as a process: real clients (python-ironicclient, openstacksdk), kill -9
//! recovery, the auth rules, and the operator CLI.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::clients::{baremetal, ok, run};
use crate::support::spawn_serve;

#[test]
fn serve_python_ironicclient_drives_the_lifecycle() {
    let Some(bm) = crate::common::tool("baremetal") else {
        return;
    };
    // The Python that has the clients installed is the one beside `baremetal` (the venv's).
    let python = bm.with_file_name("python3");
    assert!(python.is_file(), "no python3 beside {}", bm.display());
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_serve(
        dir.path(),
        &[("IRONCAST_CONDUCTOR__FAKE_DEPLOY_DELAY_MS", "300")],
    );
    let url = server.url.clone();
    let bmc = |args: &[&str]| ok(baremetal(&bm, &url, args), &args.join(" "));

    let created: Value = serde_json::from_str(&bmc(&[
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--name",
        "n1",
        "--driver-info",
        "redfish_address=http://127.0.0.1:8000",
        "--driver-info",
        "redfish_password=s3cret",
        "--property",
        "cpus=2",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(created["provision_state"], "enroll");
    assert_eq!(created["driver_info"]["redfish_password"], "******");
    let uuid = created["uuid"].as_str().unwrap().to_string();

    bmc(&[
        "node",
        "set",
        "n1",
        "--instance-info",
        "boot_iso=http://127.0.0.1:8080/live.iso",
    ]);
    bmc(&["node", "manage", "n1", "--wait", "60"]);
    bmc(&["node", "provide", "n1", "--wait", "60"]);
    bmc(&["node", "deploy", "n1", "--wait", "60"]);
    let shown: Value = serde_json::from_str(&bmc(&["node", "show", "n1", "-f", "json"])).unwrap();
    assert_eq!(shown["provision_state"], "active");
    assert_eq!(shown["power_state"], "power on");
    assert_eq!(
        shown["instance_info"]["boot_iso"],
        "http://127.0.0.1:8080/live.iso"
    );
    bmc(&["node", "undeploy", "n1", "--wait", "60"]);

    let shown: Value = serde_json::from_str(&bmc(&["node", "show", "n1", "-f", "json"])).unwrap();
    assert_eq!(shown["uuid"], uuid.as_str());
    assert_eq!(shown["name"], "n1");
    assert_eq!(shown["driver"], "fake-hardware");
    assert_eq!(shown["provision_state"], "available");
    assert_eq!(shown["driver_info"]["redfish_password"], "******");
    assert_eq!(
        shown["driver_info"]["redfish_address"],
        "http://127.0.0.1:8000"
    );
    assert_eq!(shown["properties"]["cpus"], 2);
    assert_eq!(
        shown["instance_info"]["boot_iso"],
        "http://127.0.0.1:8080/live.iso"
    );
    assert!(shown["last_error"].is_null());

    let listed: Value = serde_json::from_str(&bmc(&["node", "list", "-f", "json"])).unwrap();
    assert_eq!(listed[0]["uuid"], uuid.as_str());
    assert_eq!(listed[0]["provision_state"], "available");

    // openstacksdk lists the same nodes.
    let script = format!(
        "import openstack\nconn = openstack.connect(auth_type='none', baremetal_endpoint_override='{url}')\nprint(','.join(sorted(n.name for n in conn.baremetal.nodes())))\n"
    );
    let names = ok(
        run(Command::new(&python).arg("-c").arg(&script)),
        "openstacksdk",
    );
    assert_eq!(names.trim(), "n1");

    // Errors come back as the client's message with a non-zero exit.
    let out = baremetal(&bm, &url, &["node", "deploy", "no-such-node"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Node no-such-node could not be found."));

    bmc(&["node", "delete", "n1"]);
    let out = baremetal(&bm, &url, &["node", "show", "n1"]);
    assert!(!out.status.success());
}

async fn get(url: &str) -> Value {
    reqwest::Client::new()
        .get(url)
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn put(url: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .put(url)
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn wait_for(url: &str, node: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = get(&format!("{url}/v1/nodes/{node}")).await;
        if n["provision_state"] == state && n["reservation"].is_null() {
            return n;
        }
        assert!(Instant::now() < deadline, "never reached {state}: {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// kill -9 during a deploy that waits; on restart the node is in deploy failed with a
/// last_error that explains, and its lock is free (a new action is accepted).
#[tokio::test]
async fn serve_kill_9_during_deploy_recovers_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let long = [("IRONCAST_CONDUCTOR__FAKE_DEPLOY_DELAY_MS", "600000")];
    let mut server = spawn_serve(dir.path(), &long);
    let url = server.url.clone();
    let created: Value = reqwest::Client::new()
        .post(format!("{url}/v1/nodes"))
        .json(&json!({"driver": "fake-hardware", "name": "victim"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uuid = created["uuid"].as_str().unwrap().to_string();
    let states = format!("{url}/v1/nodes/victim/states/provision");
    assert_eq!(put(&states, json!({"target": "manage"})).await, 202);
    wait_for(&url, "victim", "manageable").await;
    assert_eq!(put(&states, json!({"target": "provide"})).await, 202);
    wait_for(&url, "victim", "available").await;
    assert_eq!(put(&states, json!({"target": "active"})).await, 202);
    // Wait until the fake deploy is in its long wait (the write_image step is recorded).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = get(&format!("{url}/v1/nodes/victim/history")).await;
        let waiting = h["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"].as_str().unwrap().starts_with("write_image"));
        if waiting {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deploy never reached its wait: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = get(&format!("{url}/v1/nodes/victim")).await;
    assert_eq!(n["provision_state"], "deploying");
    assert_eq!(n["reservation"], "test-conductor");

    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(server);

    let server = spawn_serve(dir.path(), &long);
    let url = server.url.clone();
    let n = get(&format!("{url}/v1/nodes/{uuid}")).await;
    assert_eq!(n["provision_state"], "deploy failed", "{n}");
    assert!(n["reservation"].is_null(), "{n}");
    assert!(n["target_provision_state"].is_null(), "{n}");
    let err = n["last_error"].as_str().unwrap();
    assert!(
        err.contains("restarted while the node was in \"deploying\"") && err.contains("retry"),
        "{err}"
    );
    let h = get(&format!("{url}/v1/nodes/{uuid}/history")).await;
    assert!(h["history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event_type"] == "startup" && e["severity"] == "ERROR"));
    // The lock is free: undeploying the failed node is accepted and completes.
    assert_eq!(
        put(
            &format!("{url}/v1/nodes/{uuid}/states/provision"),
            json!({"target": "deleted"})
        )
        .await,
        202
    );
    wait_for(&url, &uuid, "available").await;
}

#[tokio::test]
async fn serve_refuses_open_bind_without_htpasswd_and_enforces_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(crate::common::ironcast_bin())
        .arg("serve")
        .env("IRONCAST_CONDUCTOR__STATE_DIR", dir.path())
        .env("IRONCAST_API__BIND", "0.0.0.0:0"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve the API on 0.0.0.0:0 without authentication"),
        "{err}"
    );
    assert!(err.contains("htpasswd -B"), "{err}");

    let out = run(Command::new(crate::common::ironcast_bin())
        .arg("serve")
        .env("IRONCAST_CONDUCTOR__STATE_DIR", dir.path())
        .env("IRONCAST_CONDUCTOR__HEARTBEAT_INTERVAL_S", "soon"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("heartbeat_interval_s"));

    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("op:{}\n", bcrypt::hash("pw", 4).unwrap()),
    )
    .unwrap();
    let server = spawn_serve(
        dir.path(),
        &[("IRONCAST_API__HTPASSWD", htpasswd.to_str().unwrap())],
    );
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(format!("{}/", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = c
        .get(format!("{}/v1/nodes", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let r = c
        .get(format!("{}/v1/nodes", server.url))
        .basic_auth("op", Some("bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{}/v1/nodes", server.url))
        .basic_auth("op", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn cli(url: &str, args: &[&str]) -> Output {
    run(Command::new(crate::common::ironcast_bin())
        .args(args)
        .env("IRONCAST_URL", url))
}

/// The operator CLI drives the lifecycle: tables by default, JSON/YAML on request, `--wait`
/// shows progress, failures exit non-zero with the API's message.
#[tokio::test]
async fn serve_cli_drives_nodes_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_serve(dir.path(), &[]);
    let url = server.url.clone();
    let c = |args: &[&str]| ok(cli(&url, args), &args.join(" "));

    let created: Value = serde_json::from_str(&c(&[
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--name",
        "c1",
        "--driver-info",
        "redfish_password=pw",
        "--property",
        "cpus=4",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(created["driver_info"]["redfish_password"], "******");
    assert_eq!(created["properties"]["cpus"], 4);
    c(&[
        "node",
        "set",
        "c1",
        "--instance-info",
        "boot_iso=http://127.0.0.1:1/x.iso",
        "--extra",
        "rack=r4",
    ]);
    c(&["node", "unset", "c1", "--extra", "rack"]);
    let out = cli(&url, &["node", "manage", "c1", "--wait", "30"]);
    let progress = String::from_utf8_lossy(&out.stderr).to_string();
    ok(out, "manage --wait");
    assert!(progress.contains("c1: manageable"), "{progress}");
    c(&["node", "provide", "c1", "--wait", "30"]);
    c(&["node", "deploy", "c1", "--wait", "30"]);

    let table = c(&["node", "list"]);
    assert!(table.lines().next().unwrap().starts_with("+--"), "{table}");
    assert!(
        table.contains("| c1 ") && table.contains("active"),
        "{table}"
    );
    let yaml = c(&["node", "show", "c1", "-f", "yaml"]);
    assert!(yaml.contains("provision_state: active"), "{yaml}");
    assert!(
        yaml.contains("boot_iso: http://127.0.0.1:1/x.iso"),
        "{yaml}"
    );
    assert!(!yaml.contains("rack"), "{yaml}");

    let port: Value = serde_json::from_str(&c(&[
        "port",
        "create",
        "52:54:00:C1:00:01",
        "--node",
        "c1",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(port["address"], "52:54:00:c1:00:01");
    let ports = c(&["port", "list", "--node", "c1"]);
    assert!(ports.contains("52:54:00:c1:00:01"), "{ports}");
    let out = cli(
        &url,
        &["port", "create", "52:54:00:c1:00:01", "--node", "c1"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists. (HTTP 409)"));
    c(&["port", "delete", "52:54:00:c1:00:01"]);

    c(&["node", "power", "c1", "off", "--wait", "30"]);
    let states: Value = serde_json::from_str(&c(&[
        "node",
        "show",
        "c1",
        "--fields",
        "power_state",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(states["power_state"], "power off");
    let history = c(&["node", "history", "c1"]);
    assert!(
        history.contains("active : available -> deploying"),
        "{history}"
    );
    let validate = c(&["node", "validate", "c1", "-f", "json"]);
    assert!(validate.contains("\"deploy\""), "{validate}");

    // Refusals exit non-zero with the API's own words.
    let out = cli(&url, &["node", "provide", "c1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("can not be performed on node") && err.contains("(HTTP 400)"),
        "{err}"
    );
    let out = cli(&url, &["node", "delete", "c1"]);
    assert!(!out.status.success());

    c(&["node", "undeploy", "c1", "--wait", "30"]);
    c(&["node", "delete", "c1"]);
    let out = cli(&url, &["node", "show", "c1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Node c1 could not be found. (HTTP 404)"));
    let out = cli("http://127.0.0.1:9", &["node", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the API"));
}

/// The issue's report, replayed on a `serve` process: three `available` nodes each get
/// `PUT …/states/provision {"target":"manage"}` from a client that hangs up at once. Shortly
/// after, no node is locked, each is `available` or `manageable` (unchanged or finished), and
/// the next request on each is served instead of answered 409.
#[tokio::test]
async fn serve_client_hanging_up_leaves_no_lock() {
    use tokio::io::AsyncWriteExt;

    let dir = tempfile::tempdir().unwrap();
    let server = spawn_serve(
        dir.path(),
        &[("IRONCAST_CONDUCTOR__FAKE_POWER_DELAY_MS", "200")],
    );
    let url = server.url.clone();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let created: Value = reqwest::Client::new()
            .post(format!("{url}/v1/nodes"))
            .json(&json!({"driver": "fake-hardware", "name": format!("hangup{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let uuid = created["uuid"].as_str().unwrap().to_string();
        let states = format!("{url}/v1/nodes/{uuid}/states/provision");
        assert_eq!(put(&states, json!({"target": "manage"})).await, 202);
        wait_for(&url, &uuid, "manageable").await;
        assert_eq!(put(&states, json!({"target": "provide"})).await, 202);
        wait_for(&url, &uuid, "available").await;
        nodes.push(uuid);
    }
    let addr = url.strip_prefix("http://").unwrap().to_string();
    for uuid in &nodes {
        let body = r#"{"target":"manage"}"#;
        let request = format!(
            "PUT /v1/nodes/{uuid}/states/provision HTTP/1.1\r\nHost: {addr}\r\n\
             X-OpenStack-Ironic-API-Version: latest\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        drop(conn); // hang up without reading the answer
    }
    for uuid in &nodes {
        // The request was sent whole, so it normally finishes (it runs detached from the
        // connection); a node still `available` and free after 5 s was left unchanged.
        let deadline = Instant::now() + Duration::from_secs(5);
        let n = loop {
            let n = get(&format!("{url}/v1/nodes/{uuid}")).await;
            let free = n["reservation"].is_null();
            if free && n["provision_state"] == "manageable" {
                break n;
            }
            if Instant::now() > deadline {
                assert!(
                    free && n["provision_state"] == "available",
                    "node left locked or half-moved: {n}"
                );
                break n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let target = if n["provision_state"] == "available" {
            "manage"
        } else {
            "provide"
        };
        let status = put(
            &format!("{url}/v1/nodes/{uuid}/states/provision"),
            json!({ "target": target }),
        )
        .await;
        assert_eq!(status, 202, "{target} after the hang-up: {n}");
    }
}

/// `GET /metrics` serves deploy counters, a gauge of nodes per provision state, and the
/// cache's and image server's metrics, in the Prometheus text format.
#[tokio::test]
async fn serve_metrics_count_deploys_and_nodes_per_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_serve(dir.path(), &[]);
    let url = server.url.clone();
    let created: Value = reqwest::Client::new()
        .post(format!("{url}/v1/nodes"))
        .json(&json!({"driver": "fake-hardware", "name": "counted",
                      "instance_info": {"boot_iso": "http://x/live.iso"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uuid = created["uuid"].as_str().unwrap().to_string();
    let states = format!("{url}/v1/nodes/{uuid}/states/provision");
    for (target, want) in [
        ("manage", "manageable"),
        ("provide", "available"),
        ("active", "active"),
    ] {
        assert_eq!(put(&states, json!({ "target": target })).await, 202);
        wait_for(&url, &uuid, want).await;
    }
    let resp = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for line in [
        "ironcast_deploys_started_total 1\n",
        "ironcast_deploys_succeeded_total 1\n",
        "ironcast_deploys_failed_total 0\n",
        "ironcast_nodes{provision_state=\"active\"} 1\n",
        "# TYPE ironcast_cache_hits_total counter\n",
        "# TYPE ironcast_imageserver_fetches_total counter\n",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
}
