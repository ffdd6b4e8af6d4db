//! python-ironicclient + `serve` + sushy-emulator --fake: the ramdisk deploy reaches active,
//! sushy shows the media inserted and the one-time CD boot, our image server logged sushy's
//! download; rebuild republishes under a new URL; undeploy ejects, powers off and revokes.

use std::path::{Path, PathBuf};

use crate::common::serve::Server;
use crate::common::sushy::Sushy;
use crate::support::{get_json, serve, serve_log, Client};

/// sushy --fake, `serve`, python-ironicclient, the demo ISO in `dir`, and sushy's system path.
struct Setup {
    sushy: Sushy,
    server: Server,
    bm: Client,
    iso: PathBuf,
    system: String,
}

async fn setup(dir: &Path) -> Option<Setup> {
    let sushy = Sushy::start(&dir.join("sushy"))?;
    let server = serve(dir);
    let bm = Client::new(&server)?;
    let iso = dir.join("live.iso");
    std::fs::write(&iso, ironcast::demo::demo_iso()).unwrap();
    let systems = get_json(&format!("{}/redfish/v1/Systems", sushy.base)).await;
    let system = systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    Some(Setup {
        sushy,
        server,
        bm,
        iso,
        system,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_ramdisk_through_sushy_fake_with_python_ironicclient() {
    let dir = tempfile::tempdir().unwrap();
    let Some(Setup {
        sushy,
        server,
        bm,
        iso,
        system,
    }) = setup(dir.path()).await
    else {
        return;
    };

    let credentials = [
        "--driver-info",
        "redfish_username=admin",
        "--driver-info",
        "redfish_password=s3cret",
    ];
    bm.enrol_redfish("live1", &sushy.base, &system, &credentials);
    bm.set_boot_iso(
        "live1",
        &iso,
        &["kernel_append_params=ironcast.marker=fake42 console=ttyS0"],
    );
    for verb in ["manage", "provide", "deploy"] {
        bm.ok(&["node", verb, "live1", "--wait", "180"]);
    }
    let node = bm.show("live1");
    assert_eq!(node["provision_state"], "active", "{node}");
    assert_eq!(node["driver_info"]["redfish_password"], "******");
    let url = node["driver_internal_info"]["ramdisk_publication_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no publication URL in {node}"))
        .to_string();
    assert!(
        url.starts_with(&server.images_url) && url.ends_with(".iso"),
        "{url}"
    );

    // sushy: the media is inserted from our URL, the next boot is the CD, once; powered on.
    let cd = get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Inserted"], true, "{cd}");
    assert_eq!(cd["Image"], url.as_str(), "{cd}");
    let sys = get_json(&format!("{}{system}", sushy.base)).await;
    assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Cd", "{sys}");
    // sushy's template always reports "Continuous"; that we asked for once is in the history.
    assert_eq!(sys["PowerState"], "On", "{sys}");

    // Our image server logged sushy's download of that publication.
    let publication = node["driver_internal_info"]["ramdisk_publication"]
        .as_str()
        .unwrap();
    let log = serve_log(dir.path());
    assert!(
        log.lines().any(|l| l.contains("image fetch")
            && l.contains(&format!("publication={publication}"))
            && l.contains("status=200")),
        "no logged fetch of publication {publication} in:\n{log}"
    );
    let served = reqwest::get(&url).await.unwrap();
    assert_eq!(served.status(), 200);
    let body = served.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("ironcast.marker=fake42 console=ttyS0"),
        "the published ISO carries the kernel args"
    );

    // Rebuild: a fresh publication replaces the old one, which is revoked.
    bm.ok(&["node", "rebuild", "live1", "--wait", "180"]);
    let node = bm.show("live1");
    assert_eq!(node["provision_state"], "active", "{node}");
    let rebuilt = node["driver_internal_info"]["ramdisk_publication_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rebuilt, url, "rebuild publishes under a new URL");
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        404,
        "old URL revoked"
    );
    let cd = get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Image"], rebuilt.as_str(), "{cd}");
    let url = rebuilt;

    bm.ok(&["node", "undeploy", "live1", "--wait", "180"]);
    let node = bm.show("live1");
    assert_eq!(node["provision_state"], "available", "{node}");
    assert!(
        node["driver_internal_info"]
            .get("ramdisk_publication_url")
            .is_none(),
        "{node}"
    );
    let cd = get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Inserted"], false, "{cd}");
    let sys = get_json(&format!("{}{system}", sushy.base)).await;
    assert_eq!(sys["PowerState"], "Off", "{sys}");
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        404,
        "revoked URL"
    );
    let history = bm.ok(&["node", "history", "list", "live1", "-f", "json"]);
    for step in [
        "cache image",
        "remaster",
        "publish",
        "insert",
        "cd once",
        "revoke",
    ] {
        assert!(
            history.contains(step),
            "no {step:?} event in history:\n{history}"
        );
    }
}

/// Polls `baremetal node show` until the node rests in `want` (panics after 120 s).
fn wait_state(bm: &Client, node: &str, want: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = bm.show(node);
        if n["provision_state"] == want && n["reservation"].is_null() {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{node} never reached {want}: {n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shot_publication_is_revoked_when_the_booted_node_calls_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(Setup {
        sushy,
        server,
        bm,
        iso,
        system,
    }) = setup(dir.path()).await
    else {
        return;
    };
    bm.enrol_redfish("once1", &sushy.base, &system, &[]);
    bm.set_boot_iso("once1", &iso, &["boot_iso_one_shot=true"]);
    bm.ok(&["node", "manage", "once1", "--wait", "120"]);
    bm.ok(&["node", "provide", "once1", "--wait", "120"]);
    bm.ok(&["node", "deploy", "once1"]);
    let node = wait_state(&bm, "once1", "wait call-back");
    let url = node["driver_internal_info"]["ramdisk_publication_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        200,
        "served until the node boots"
    );

    // The booted ISO learns its call-back token from its kernel args, as a machine would.
    let served = dir.path().join("served.iso");
    std::fs::write(
        &served,
        reqwest::get(&url).await.unwrap().bytes().await.unwrap(),
    )
    .unwrap();
    let entry = ironcast::iso::boot_cmdline(&served, ironcast::iso::BootPath::BiosCd)
        .unwrap()
        .unwrap();
    let assignment = ironcast::agent::cmdline::parse(&entry.args).unwrap();
    let uuid = node["uuid"].as_str().unwrap();
    assert_eq!(assignment.node, uuid);
    let history = bm.ok(&["node", "history", "list", "once1", "-f", "json"]);
    assert!(
        !history.contains(&assignment.token),
        "the token stays out of history"
    );
    let call_back = |token: Option<&str>, in_body: bool| {
        let mut body =
            serde_json::json!({"callback_url": "http://127.0.0.1:9999", "agent_version": "9.0"});
        let mut req = reqwest::Client::new()
            .post(format!("{}/v1/heartbeat/{uuid}", server.url))
            .header("X-OpenStack-Ironic-API-Version", "latest");
        match (token, in_body) {
            (Some(t), true) => body["agent_token"] = t.into(),
            (Some(t), false) => req = req.header("X-Ironcast-Agent-Token", t),
            (None, _) => {}
        }
        req.json(&body).send()
    };
    // Anyone who can reach the API cannot finish the deploy: only the booted ISO can.
    for (token, in_body) in [(None, false), (Some("wrong"), false), (Some("wrong"), true)] {
        let answer = call_back(token, in_body).await.unwrap();
        assert_eq!(answer.status(), 403, "{token:?}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert!(
            body["error_message"]
                .as_str()
                .unwrap()
                .contains("faultstring"),
            "{body}"
        );
    }
    assert_eq!(
        wait_state(&bm, "once1", "wait call-back")["provision_state"],
        "wait call-back"
    );
    // Ironic's agent sends the token in the body.
    let answer = call_back(Some(&assignment.token), true).await.unwrap();
    assert_eq!(answer.status(), 202);
    let node = wait_state(&bm, "once1", "active");
    let again = call_back(Some(&assignment.token), false).await.unwrap();
    assert_eq!(
        again.status(),
        403,
        "the token is forgotten once the node called back"
    );
    assert!(serve_log(dir.path()).contains("agent token refused"));
    assert!(
        node["driver_internal_info"]
            .get("ramdisk_publication_url")
            .is_none(),
        "{node}"
    );
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        404,
        "revoked after the boot"
    );
    let history = bm.ok(&["node", "history", "list", "once1", "-f", "json"]);
    assert!(
        history.contains("one-shot publication revoked"),
        "{history}"
    );
    bm.ok(&["node", "undeploy", "once1", "--wait", "120"]);
}

/// Ironic's `abort` of a deploy waiting in wait call-back: the node goes to deploy failed at
/// once, and the driver's tear down undoes what the deploy did at the BMC and the image server.
#[tokio::test(flavor = "multi_thread")]
async fn abort_in_wait_call_back_undoes_the_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let Some(Setup {
        sushy,
        server: _server,
        bm,
        iso,
        system,
    }) = setup(dir.path()).await
    else {
        return;
    };
    bm.enrol_redfish("abort1", &sushy.base, &system, &[]);
    bm.set_boot_iso("abort1", &iso, &["boot_iso_one_shot=true"]);
    bm.ok(&["node", "manage", "abort1", "--wait", "120"]);
    bm.ok(&["node", "provide", "abort1", "--wait", "120"]);
    bm.ok(&["node", "deploy", "abort1"]);
    let node = wait_state(&bm, "abort1", "wait call-back");
    let url = node["driver_internal_info"]["ramdisk_publication_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    let cd = get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Inserted"], true, "{cd}");

    bm.ok(&["node", "abort", "abort1"]);
    let node = wait_state(&bm, "abort1", "deploy failed");
    assert!(
        node["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("aborted by request while in \"wait call-back\"")),
        "{node}"
    );
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        404,
        "the publication is revoked"
    );
    let cd = get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Inserted"], false, "{cd}");
    let sys = get_json(&format!("{}{system}", sushy.base)).await;
    assert_eq!(sys["PowerState"], "Off", "{sys}");
    let history = bm.ok(&["node", "history", "list", "abort1", "-f", "json"]);
    assert!(
        history.contains("abort: the deploy was undone"),
        "{history}"
    );
    // Nothing left half-held: the node is torn down and cleaned as any failed deploy.
    bm.ok(&["node", "undeploy", "abort1", "--wait", "120"]);
}
