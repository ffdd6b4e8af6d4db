//! The direct deploy of a `redfish` node with real peers up to the disk: python-ironicclient,
//! `serve` with its agent hub, sushy-emulator --fake as the BMC, and a real `ironcast agent`
//! process that learns its conductor URL, node and token the way a booted machine does, from
//! the kernel command line of the agent ISO the conductor published and sushy inserted.
//!
//! The agent runs on this host, so nothing may be written: the node's root_device hints match
//! no disk, and the deploy must stop at the root device step, after the agent called in, with
//! everything undone (media ejected, powered off, publications revoked, the agent's token
//! refused). Writing a disk with the real agent is the real-VM test's job.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::sushy::Sushy;
use crate::support::{get_json, serve_with_env, Client};

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn qcow2(path: &Path) -> Option<()> {
    let qemu_img = crate::common::tool("qemu-img")?;
    let out = Command::new(qemu_img)
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg("64M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Some(())
}

/// Waits until sushy's virtual CD holds a medium, and returns its URL.
async fn inserted_image(sushy: &Sushy, system: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let cd = get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
        if cd["Inserted"] == true {
            if let Some(url) = cd["Image"].as_str().filter(|u| !u.is_empty()) {
                return url.to_string();
            }
        }
        assert!(Instant::now() < deadline, "nothing inserted: {cd}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_deploy_boots_a_real_agent_through_sushy_and_undoes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.qcow2");
    if qcow2(&image).is_none() {
        return;
    }
    let Some(sushy) = Sushy::start(&dir.path().join("sushy")) else {
        return;
    };
    let agent_iso = dir.path().join("agent.iso");
    std::fs::write(&agent_iso, ironcast::demo::demo_iso()).unwrap();
    let server = serve_with_env(
        dir.path(),
        &[dir.path()],
        &[
            ("IRONCAST_AGENT__ISO", agent_iso.to_str().unwrap()),
            ("IRONCAST_CONDUCTOR__AUTOMATED_CLEAN", "false"),
            ("IRONCAST_DIRECT__AGENT_TIMEOUT_S", "90"),
        ],
    );
    let Some(bm) = Client::new(&server) else {
        return;
    };
    let systems = get_json(&format!("{}/redfish/v1/Systems", sushy.base)).await;
    let system = systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    bm.ok(&[
        "node",
        "create",
        "--driver",
        "redfish",
        "--name",
        "w1",
        "--boot-interface",
        "redfish-virtual-media",
        "--deploy-interface",
        "direct",
        "--driver-info",
        &format!("redfish_address={}", sushy.base),
        "--driver-info",
        &format!("redfish_system_id={system}"),
        "--property",
        "capabilities=boot_mode:bios",
        "--property",
        r#"root_device={"serial": "no-such-disk-7f3a"}"#,
    ]);
    bm.ok(&["node", "manage", "w1", "--wait", "120"]);
    bm.ok(&["node", "provide", "w1", "--wait", "120"]);
    let checksum = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&image).unwrap()))
    };
    bm.ok(&[
        "node",
        "set",
        "w1",
        "--instance-info",
        &format!("image_source=file://{}", image.display()),
        "--instance-info",
        &format!("image_checksum={checksum}"),
    ]);
    bm.ok(&[
        "node",
        "deploy",
        "w1",
        "--config-drive",
        r#"{"meta_data": {"uuid": "cd-1"}}"#,
    ]);

    // What a booting machine would do: read the kernel args of the inserted agent ISO.
    let url = inserted_image(&sushy, &system).await;
    let published = dir.path().join("inserted-agent.iso");
    let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    std::fs::write(&published, &bytes).unwrap();
    let entry = ironcast::iso::boot_cmdline(&published, ironcast::iso::BootPath::BiosCd)
        .unwrap()
        .expect("a kernel entry in the agent ISO");
    let assignment = ironcast::agent::cmdline::parse(&entry.args)
        .unwrap_or_else(|e| panic!("{e}: {}", entry.args));
    let uuid = bm.show("w1")["uuid"].as_str().unwrap().to_string();
    assert_eq!(assignment.node, uuid);
    assert_eq!(assignment.conductor_url, server.url);
    let sys = get_json(&format!("{}{system}", sushy.base)).await;
    assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Cd", "{sys}");

    let sandbox = dir.path().join("agent-sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    let agent_log = dir.path().join("agent.log");
    let agent = Killed(
        Command::new(crate::common::ironcast_bin())
            .args(["agent", "--no-act", "--max-backoff-s", "2"])
            .arg("--allow")
            .arg(&sandbox)
            .args(["--conductor-url", &assignment.conductor_url])
            .args(["--node", &assignment.node])
            .args(["--token", &assignment.token])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&agent_log).unwrap())
            .spawn()
            .unwrap(),
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    let node: Value = loop {
        let n = bm.show("w1");
        if n["provision_state"] == "deploy failed" && n["reservation"].is_null() {
            break n;
        }
        assert!(
            n["provision_state"] != "active",
            "the deploy cannot succeed without a disk: {n}"
        );
        assert!(Instant::now() < deadline, "never failed: {n}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let last = node["last_error"].as_str().unwrap();
    assert!(
        last.contains("root device") && last.contains("no disk matches the root_device hints"),
        "{last}"
    );
    let history = bm.ok(&["node", "history", "list", "w1", "-f", "json"]);
    for want in [
        "cache image",
        "publish image",
        "build config drive",
        "remaster agent",
        "insert agent",
        "wait for agent: the agent called in",
        "end agent",
        "power off: powered off",
        "revoke: publication revoked",
    ] {
        assert!(
            history.contains(want),
            "{want:?} not in history:\n{history}"
        );
    }
    assert!(
        node["driver_internal_info"].get("direct_held").is_none(),
        "{node}"
    );

    // Undone: media ejected, powered off, the agent ISO's URL revoked, the token refused.
    let cd = get_json(&format!("{}{system}/VirtualMedia/Cd", sushy.base)).await;
    assert_eq!(cd["Inserted"], false, "{cd}");
    let sys = get_json(&format!("{}{system}", sushy.base)).await;
    assert_eq!(sys["PowerState"], "Off", "{sys}");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/agent/{uuid}/heartbeat", server.url))
        .header("X-Ironcast-Agent-Token", &assignment.token)
        .json(&serde_json::json!({"agent_version": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        403,
        "the ended session's token is refused"
    );
    drop(agent);
    let log = std::fs::read_to_string(&agent_log).unwrap_or_default();
    assert!(log.contains("agent starting"), "{log}");
}
