//! iso-install over the recording fakes (`crate::fakes`): the call sequence of an unattended
//! and an interactive install, both completion signals (call-back → `booted`, power-off →
//! `poll_wait`), the watchdog, bad input, and that nothing is left held.

use std::sync::{Arc, Mutex};

use serde_json::{json, Map};

use super::*;
use crate::direct::DirectPolicy;
use crate::fakes::{fake_ports, CallLog, FakeInstallMedia, FakePower};

#[derive(Default)]
struct Events {
    steps: Mutex<Vec<String>>,
    internal: Mutex<Map<String, Value>>,
}

#[async_trait]
impl DeployEvents for Events {
    async fn step(&self, step: &str, detail: &str) {
        self.steps.lock().unwrap().push(format!("{step}: {detail}"));
    }
    async fn save_internal(&self, key: &str, value: Value) {
        let mut internal = self.internal.lock().unwrap();
        if value.is_null() {
            internal.remove(key);
        } else {
            internal.insert(key.to_string(), value);
        }
    }
}

struct Rig {
    ports: Ports,
    log: CallLog,
    media: Arc<FakeInstallMedia>,
    power: Arc<FakePower>,
}

fn rig() -> Rig {
    let log = CallLog::new();
    let mut ports = fake_ports(&log, PowerState::Off, Duration::ZERO);
    let media = Arc::new(FakeInstallMedia::new(log.clone()));
    let power = Arc::new(FakePower::new(log.clone(), PowerState::Off, Duration::ZERO));
    ports.install_media = Some(media.clone());
    ports.power = power.clone();
    Rig {
        ports,
        log,
        media,
        power,
    }
}

fn node(instance_info: Value) -> NodeView {
    NodeView {
        uuid: "n1".into(),
        name: Some("web-1".into()),
        instance_info: instance_info.as_object().unwrap().clone(),
        boot_mode: Some(BootMode::Bios),
        ..NodeView::default()
    }
}

fn iso_fields() -> Value {
    json!({
        "install_iso": "http://origin.invalid/debian.iso",
        "install_iso_checksum": format!("sha256:{}", "ab".repeat(32)),
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn driver() -> IsoInstallDeploy {
    IsoInstallDeploy::new(
        IsoInstallPolicy {
            install_timeout: Duration::from_secs(600),
            ..IsoInstallPolicy::default()
        },
        DirectDeploy::new(DirectPolicy::default()),
    )
}

fn names(log: &CallLog) -> Vec<String> {
    log.calls()
        .iter()
        .map(|c| c.split('(').next().unwrap_or_default().to_string())
        .collect()
}

/// The node as the conductor would show it after the deploy: its internal info saved.
fn after(n: &NodeView, events: &Events) -> NodeView {
    let mut n = n.clone();
    n.driver_internal_info = events.internal.lock().unwrap().clone();
    n
}

#[tokio::test]
async fn unattended_install_publishes_the_rendered_file_and_boots_the_remastered_iso() {
    let r = rig();
    let n = node(with(
        iso_fields(),
        json!({"configdrive": {"meta_data": {"hostname": "db-7"}}}),
    ));
    let ev = Events::default();
    let out = driver().deploy(&n, &r.ports, &ev).await.unwrap();
    assert_eq!(out, DeployOutcome::WaitCallback);
    assert_eq!(
        names(&r.log),
        [
            "agent.end",
            "media.discard",
            "remaster.discard",
            "power.power_state",
            "images.acquire",
            "media.identify",
            "agent.begin",
            "media.store",
            "publisher.publish",
            "media.remaster",
            "publisher.publish",
            "vmedia.eject_removable",
            "vmedia.eject_all",
            "vmedia.insert_cd",
            "boot.set_boot_device",
            "power.power_state",
            "power.set_power",
        ]
    );
    let calls = r.log.calls().join("\n");
    // The preseed's URL as the installer reaches it, in Debian's kernel args.
    assert!(
        calls.contains(
            "media.remaster(\"auto=true priority=critical url=http://10.0.2.2:8081/n1/preseed.cfg.iso\", n1)"
        ),
        "{calls}"
    );
    assert!(
        calls.contains("boot.set_boot_device(Cd, persistent=false"),
        "{calls}"
    );
    let stored = r.media.stored.lock().unwrap()["preseed.cfg"].clone();
    assert!(stored.contains("get_hostname string db-7"), "{stored}");
    assert!(
        stored.contains("X-Ironcast-Agent-Token: fake")
            && stored.contains("http://conductor.invalid/v1/heartbeat/n1"),
        "{stored}"
    );
    let internal = ev.internal.lock().unwrap().clone();
    assert!(internal[DEADLINE_KEY].as_u64().unwrap() >= unix_now() + 590);
    assert_eq!(internal[PUBLICATIONS_KEY].as_array().unwrap().len(), 2);
    assert!(internal[WAITING_KEY]
        .as_str()
        .unwrap()
        .contains("call-back"));
}

/// The lease and both publications (automation file, ISO) are recorded before they exist, at
/// deploy and at takeover.
#[tokio::test]
async fn ids_are_recorded_before_the_lease_and_the_publication_exist() {
    let r = rig();
    let events = Arc::new(Events::default());
    let seen = events.clone();
    let (ports, unrecorded) = crate::fakes::check_intent_first(
        &r.ports,
        Arc::new(move || Value::Object(seen.internal.lock().unwrap().clone()).to_string()),
    );
    let n = node(iso_fields());
    driver().deploy(&n, &ports, events.as_ref()).await.unwrap();
    driver()
        .take_over(&after(&n, &events), &ports, events.as_ref())
        .await
        .unwrap();
    let calls = names(&r.log);
    assert_eq!(calls.iter().filter(|c| *c == "images.acquire").count(), 2);
    assert_eq!(
        calls.iter().filter(|c| *c == "publisher.publish").count(),
        3
    );
    assert!(unrecorded.lock().unwrap().is_empty(), "{unrecorded:?}");
}

#[tokio::test]
async fn an_intent_that_cannot_be_saved_fails_its_step_and_makes_nothing() {
    let n = node(iso_fields());
    let fresh = || {
        let r = rig();
        (r.ports, r.log)
    };
    let steps = crate::fakes::refuse_each_intent::<Events>(&driver(), &n, fresh).await;
    assert_eq!(steps, ["cache image", "publish", "publish"]);
}

/// A survivor serves a node still installing: the ISO remastered with the recorded args (the
/// bytes the node booted) is published from its own cache and inserted in place of the dead
/// URL; nothing is powered, the call-back token stays, the automation file is not re-made.
/// An installed node, and an install that finished, have nothing to take over.
#[tokio::test]
async fn take_over_serves_the_installer_iso_again_without_touching_the_install() {
    let r = rig();
    let n = node(iso_fields());
    let ev = Events::default();
    let d = driver();
    d.deploy(&n, &r.ports, &ev).await.unwrap();
    let waiting = after(&n, &ev);
    let old_pubs = waiting.driver_internal_info[PUBLICATIONS_KEY].clone();
    let survivor = rig();
    d.take_over(&waiting, &survivor.ports, &ev).await.unwrap();
    assert_eq!(
        names(&survivor.log),
        [
            "images.acquire",
            "media.remaster",
            "publisher.publish",
            "vmedia.eject_all",
            "vmedia.insert_cd",
            "publisher.revoke",
            "images.release",
        ]
    );
    let calls = survivor.log.calls().join("\n");
    assert!(
        calls.contains(
            "media.remaster(\"auto=true priority=critical url=http://10.0.2.2:8081/n1/preseed.cfg.iso\", n1)"
        ),
        "the same args as at deploy: {calls}"
    );
    let internal = ev.internal.lock().unwrap().clone();
    let pubs = internal[PUBLICATIONS_KEY].as_array().unwrap();
    let old_pubs = old_pubs.as_array().unwrap();
    // The automation file's publication stays recorded; the ISO's is replaced.
    assert_eq!(pubs.len(), 2, "{pubs:?}");
    assert_eq!(pubs[0], old_pubs[0]);
    assert!(!old_pubs.contains(&pubs[1]));
    assert!(calls.contains(&format!(
        "publisher.revoke({})",
        old_pubs[1].as_str().unwrap()
    )));
    assert!(internal.contains_key(WAITING_KEY) && internal.contains_key(DEADLINE_KEY));
    let mut held = survivor.log.live();
    held.sort();
    let mut want = vec![
        internal[LEASE_KEY].as_str().unwrap().to_string(),
        pubs[1].as_str().unwrap().to_string(),
        "media:n1".to_string(),
    ];
    want.sort();
    assert_eq!(held, want, "the new lease, publication and remaster");
    // A failed takeover gives back what it made and keeps the install's watchdog.
    let failing = rig();
    failing.log.fail_on(
        "vmedia.insert_cd",
        PortError::new(PortErrorKind::Rejected, "refused by fake"),
    );
    let err = d
        .take_over(&after(&n, &ev), &failing.ports, &ev)
        .await
        .unwrap_err();
    assert_eq!(err.step, "insert");
    // The lease and publication it made are given back; the remaster stays with the node's
    // other install files (they may serve its automation file) until the install ends.
    assert_eq!(failing.log.live(), ["media:n1"]);
    let after_failure = ev.internal.lock().unwrap().clone();
    assert!(after_failure.contains_key(WAITING_KEY) && after_failure.contains_key(DEADLINE_KEY));
    assert_eq!(
        (&after_failure[PUBLICATIONS_KEY], &after_failure[LEASE_KEY]),
        (&internal[PUBLICATIONS_KEY], &internal[LEASE_KEY]),
        "a failed takeover leaves the records as they were"
    );
    // Taken over on the same cache and image server (a restart under a fresh name): the
    // replaced ISO publication and lease are given back, the automation file's stays.
    d.take_over(&after(&n, &ev), &survivor.ports, &ev)
        .await
        .unwrap();
    let internal = ev.internal.lock().unwrap().clone();
    let mut held = survivor.log.live();
    held.sort();
    let pubs = internal[PUBLICATIONS_KEY].as_array().unwrap();
    let mut want = vec![
        internal[LEASE_KEY].as_str().unwrap().to_string(),
        pubs[1].as_str().unwrap().to_string(),
        "media:n1".to_string(),
    ];
    want.sort();
    assert_eq!(held, want);
    // Once installed (the call-back came), nothing is served: nothing to take over.
    d.booted(&after(&n, &ev), &r.ports, &ev).await.unwrap();
    let idle = rig();
    d.take_over(&after(&n, &ev), &idle.ports, &ev)
        .await
        .unwrap();
    assert!(idle.log.calls().is_empty(), "{:?}", idle.log.calls());
}

#[tokio::test]
async fn a_call_back_ejects_revokes_and_boots_the_disk() {
    let r = rig();
    let n = node(iso_fields());
    let ev = Events::default();
    let d = driver();
    d.deploy(&n, &r.ports, &ev).await.unwrap();
    let waiting = after(&n, &ev);
    let start = r.log.calls().len();
    d.booted(&waiting, &r.ports, &ev).await.unwrap();
    let calls = r.log.calls()[start..].to_vec();
    let named: Vec<&str> = calls.iter().map(|c| c.split('(').next().unwrap()).collect();
    assert_eq!(
        named,
        [
            "vmedia.eject_all",
            "vmedia.eject_removable",
            "agent.end",
            "publisher.revoke",
            "publisher.revoke",
            "media.discard",
            "remaster.discard",
            "images.release",
            "boot.set_boot_device",
            "power.power_state",
            "power.set_power",
        ]
    );
    assert!(
        calls
            .iter()
            .any(|c| c == "boot.set_boot_device(Disk, persistent=true, Bios)"),
        "{calls:?}"
    );
    assert!(calls.last().unwrap().contains("Reboot"), "{calls:?}");
    assert!(r.log.live().is_empty(), "left held: {:?}", r.log.live());
    assert!(ev.internal.lock().unwrap().is_empty());
}

/// Ubuntu's autoinstall reads a NoCloud seed directory: its `meta-data` is published beside
/// `user-data` (same URL directory), rendered with the node's values, and revoked with it.
#[tokio::test]
async fn autoinstall_publishes_meta_data_beside_user_data() {
    let r = rig();
    let companions = [(
        "meta-data".to_string(),
        "instance-id: {{ node_uuid }}\nlocal-hostname: {{ hostname }}\n".to_string(),
    )];
    *r.media.identity.lock().unwrap() = Identified::Known(OsIdentity {
        id: "ubuntu-server".into(),
        family: "ubuntu".into(),
        distro: "ubuntu".into(),
        version: Some("22.04.3".into()),
        arch: Some("x86_64".into()),
        installer: "subiquity".into(),
        automation: vec![AutomationWay {
            name: "autoinstall".into(),
            kernel_args: "autoinstall ds=nocloud-net;s={dir_url}".into(),
            file_name: "user-data".into(),
            medium: false,
            companions: companions.into_iter().collect(),
        }],
    });
    let n = node(with(
        iso_fields(),
        json!({"automation_file": "#cloud-config\nautoinstall: {version: 1}\n"}),
    ));
    let ev = Events::default();
    let d = driver();
    d.deploy(&n, &r.ports, &ev).await.unwrap();
    let calls = r.log.calls().join("\n");
    let first = calls
        .find("publisher.publish(")
        .expect("user-data published");
    let beside = calls
        .find("publisher.publish_beside(")
        .expect("meta-data published");
    assert!(first < beside, "{calls}");
    let user_data_id = ev.internal.lock().unwrap()[PUBLICATIONS_KEY][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        calls.contains(&format!("n1, meta-data, beside {user_data_id}")),
        "{calls}"
    );
    assert!(
        calls.contains("ds=nocloud-net;s=http://10.0.2.2:8081/n1/\""),
        "{calls}"
    );
    let stored = r.media.stored.lock().unwrap()["meta-data"].clone();
    assert_eq!(stored, "instance-id: n1\nlocal-hostname: web-1\n");
    assert_eq!(
        ev.internal.lock().unwrap()[PUBLICATIONS_KEY]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    d.booted(&after(&n, &ev), &r.ports, &ev).await.unwrap();
    assert!(r.log.live().is_empty(), "left held: {:?}", r.log.live());
}

#[tokio::test]
async fn power_off_finishes_the_install_and_the_watchdog_fails_it() {
    let r = rig();
    let n = node(iso_fields());
    let ev = Events::default();
    let d = driver();
    d.deploy(&n, &r.ports, &ev).await.unwrap();
    let waiting = after(&n, &ev);
    let deadline = waiting.driver_internal_info[DEADLINE_KEY].as_u64().unwrap();
    // Running, before the deadline: still waiting.
    assert_eq!(
        d.poll_wait(&waiting, &r.ports, &ev, deadline - 1)
            .await
            .unwrap(),
        WaitCheck::Waiting
    );
    // The installer powered the node off.
    r.power.set_power(PowerAction::Off).await.unwrap();
    match d
        .poll_wait(&waiting, &r.ports, &ev, deadline - 1)
        .await
        .unwrap()
    {
        WaitCheck::Finished(why) => assert!(why.contains("powered itself off"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Still on at the deadline: the watchdog names what it waited for and undoes the deploy.
    r.power.set_power(PowerAction::On).await.unwrap();
    match d
        .poll_wait(&waiting, &r.ports, &ev, deadline)
        .await
        .unwrap()
    {
        WaitCheck::Failed(why) => {
            assert!(why.contains("watchdog"), "{why}");
            assert!(why.contains("call-back or the node powering off"), "{why}");
            assert!(why.contains("/v1/heartbeat/n1"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.power.current(), PowerState::Off);
    assert!(r.log.live().is_empty(), "left held: {:?}", r.log.live());
    // A node not installing is left alone.
    assert_eq!(
        d.poll_wait(&n, &r.ports, &ev, u64::MAX).await.unwrap(),
        WaitCheck::Waiting
    );
}

#[tokio::test]
async fn interactive_serves_the_iso_unchanged_with_no_watchdog() {
    let r = rig();
    let n = node(with(iso_fields(), json!({"interactive": true})));
    let ev = Events::default();
    let d = driver();
    d.deploy(&n, &r.ports, &ev).await.unwrap();
    let calls = names(&r.log);
    for absent in [
        "agent.begin",
        "media.store",
        "media.remaster",
        "remaster.remaster",
    ] {
        assert!(!calls.iter().any(|c| c == absent), "{absent} in {calls:?}");
    }
    let waiting = after(&n, &ev);
    assert!(!waiting.driver_internal_info.contains_key(DEADLINE_KEY));
    assert_eq!(
        d.poll_wait(&waiting, &r.ports, &ev, u64::MAX)
            .await
            .unwrap(),
        WaitCheck::Waiting
    );
    r.power.set_power(PowerAction::Off).await.unwrap();
    assert!(matches!(
        d.poll_wait(&waiting, &r.ports, &ev, u64::MAX)
            .await
            .unwrap(),
        WaitCheck::Finished(_)
    ));
}

#[tokio::test]
async fn windows_answer_file_goes_on_a_removable_medium() {
    let r = rig();
    *r.media.identity.lock().unwrap() = Identified::Known(OsIdentity {
        id: "windows-client".into(),
        family: "windows".into(),
        distro: "windows".into(),
        version: None,
        arch: Some("x86_64".into()),
        installer: "windows-setup".into(),
        automation: vec![AutomationWay {
            name: "unattend".into(),
            kernel_args: String::new(),
            file_name: "autounattend.xml".into(),
            medium: true,
            companions: Default::default(),
        }],
    });
    let n = node(with(
        iso_fields(),
        json!({"automation_file": "<unattend>{{ hostname }}</unattend>"}),
    ));
    let ev = Events::default();
    driver().deploy(&n, &r.ports, &ev).await.unwrap();
    let calls = r.log.calls().join("\n");
    assert!(
        calls.contains("media.medium(n1, autounattend.xml)"),
        "{calls}"
    );
    assert!(
        calls.contains("publisher.publish(/fake/install/n1/automation.img, n1, automation.img)"),
        "{calls}"
    );
    assert!(
        calls.contains("vmedia.insert_removable(http://fake.invalid/n1/automation.img.iso)"),
        "{calls}"
    );
    assert_eq!(
        r.media.stored.lock().unwrap()["autounattend.xml"],
        "<unattend>web-1</unattend>"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_what_to_do_and_nothing_held() {
    let d = driver();
    // An unknown ISO and no automation file: what was looked for.
    let r = rig();
    *r.media.identity.lock().unwrap() = Identified::Unknown {
        looked_for: "debian: /.disk/info saying \"Debian GNU/Linux\"".into(),
    };
    let e = d
        .deploy(&node(iso_fields()), &r.ports, &Events::default())
        .await
        .unwrap_err();
    assert_eq!(e.step, "identify");
    assert!(
        e.source.message.contains("looked for: debian: /.disk/info"),
        "{e}"
    );
    assert!(r.log.live().is_empty(), "{:?}", r.log.live());
    // The same ISO with the user's file and its kernel args works.
    let n = node(with(
        iso_fields(),
        json!({"automation_file": "x", "automation_kernel_args": "inst.ks={url}"}),
    ));
    d.deploy(&n, &r.ports, &Events::default()).await.unwrap();
    assert!(r
        .log
        .calls()
        .join("\n")
        .contains("media.remaster(\"inst.ks=http://10.0.2.2:8081/n1/automation.cfg.iso\", n1)"));

    // Over 1 MiB inline: refused before anything is touched.
    let big = "#".repeat(MAX_AUTOMATION_BYTES + 1);
    let r = rig();
    let n = node(with(iso_fields(), json!({"automation_file": big})));
    let e = d.validate(&n, &r.ports).unwrap_err();
    assert!(e.source.message.contains("1 MiB"), "{e}");
    // Over 1 MiB at a URL: the fetch refuses it.
    *r.media.fetched.lock().unwrap() = vec![b'#'; MAX_AUTOMATION_BYTES + 1];
    let n = node(with(
        iso_fields(),
        json!({"automation_file": "http://origin.invalid/ks.cfg"}),
    ));
    let e = d
        .deploy(&n, &r.ports, &Events::default())
        .await
        .unwrap_err();
    assert_eq!(e.step, "fetch automation file");
    assert!(r.log.live().is_empty(), "{:?}", r.log.live());
    // A template variable the node has no value for: named, with what to give.
    let n = node(with(
        iso_fields(),
        json!({"automation_file": "disk {{ root_device }}"}),
    ));
    let e = d
        .deploy(&n, &r.ports, &Events::default())
        .await
        .unwrap_err();
    assert_eq!(e.step, "render automation file");
    assert!(
        e.source.message.contains("root_device")
            && e.source.message.contains("instance_info/root_device"),
        "{e}"
    );
    assert!(r.log.live().is_empty(), "{:?}", r.log.live());
    // An installer with no automation mechanism needs interactive=true.
    *r.media.identity.lock().unwrap() = Identified::Known(OsIdentity {
        id: "alpine".into(),
        family: "alpine".into(),
        distro: "alpine".into(),
        version: None,
        arch: None,
        installer: "setup-alpine".into(),
        automation: vec![],
    });
    let e = d
        .deploy(&node(iso_fields()), &r.ports, &Events::default())
        .await
        .unwrap_err();
    assert!(e.source.message.contains("interactive=true"), "{e}");
    // Interactive with a file, and a bad timeout.
    for bad in [
        json!({"interactive": true, "automation_file": "x"}),
        json!({"install_timeout": "soon"}),
        json!({"install_iso": "ftp://x/y.iso"}),
    ] {
        assert!(
            d.validate(&node(with(iso_fields(), bad.clone())), &r.ports)
                .is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn undeploy_powers_off_ejects_and_releases_idempotently() {
    let r = rig();
    let n = node(iso_fields());
    let ev = Events::default();
    let d = driver();
    d.deploy(&n, &r.ports, &ev).await.unwrap();
    let waiting = after(&n, &ev);
    d.undeploy(&waiting, &r.ports, &ev).await.unwrap();
    assert!(r.log.live().is_empty(), "{:?}", r.log.live());
    assert_eq!(r.power.current(), PowerState::Off);
    d.undeploy(&after(&n, &ev), &r.ports, &ev).await.unwrap();
}

#[test]
fn validate_names_a_missing_port() {
    for (strip, want) in [
        ("vmedia", "the iso-install deploy needs virtual media,"),
        (
            "agent",
            "the iso-install deploy needs the agent token service,",
        ),
    ] {
        let mut r = rig();
        match strip {
            "vmedia" => r.ports.vmedia = None,
            _ => r.ports.agent = None,
        }
        let err = driver()
            .validate(&node(iso_fields()), &r.ports)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want) && err.contains("use boot_interface redfish-virtual-media"),
            "{strip}: {err}"
        );
    }
    // An interactive install needs no call-back, so no token service.
    let mut r = rig();
    r.ports.agent = None;
    let interactive = node(with(iso_fields(), json!({"interactive": true})));
    assert_eq!(driver().validate(&interactive, &r.ports), Ok(()));
}

/// The conductor's outer timeout firing in each step (the deploy future dropped mid-call, its
/// own undo never run): `abandon` with what the deploy recorded leaves nothing held.
#[tokio::test]
async fn outer_timeout_in_any_step_is_undone_by_abandon() {
    for call in [
        "power.power_state",
        "images.acquire",
        "media.identify",
        "agent.begin",
        "media.store",
        "publisher.publish",
        "media.remaster",
        "vmedia.eject_removable",
        "vmedia.eject_all",
        "vmedia.insert_cd",
        "boot.set_boot_device",
        "power.set_power",
    ] {
        let r = rig();
        r.log.hang_on(call);
        let n = node(iso_fields());
        let events = Events::default();
        let outer = tokio::time::timeout(
            Duration::from_millis(50),
            driver().deploy(&n, &r.ports, &events),
        )
        .await;
        assert!(outer.is_err(), "{call}: the deploy should hang");
        driver()
            .abandon(&after(&n, &events), &r.ports, &events)
            .await
            .unwrap();
        assert!(r.log.live().is_empty(), "{call}: left {:?}", r.log.live());
        assert!(events.internal.lock().unwrap().is_empty(), "{call}");
    }
}
