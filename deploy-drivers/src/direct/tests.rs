//! Direct driver tests over the recording fakes of every port (`crate::fakes`): the call
//! sequence of deploy, undeploy and clean, a failure and a hang injected at each step, what is
//! left held afterwards, and validation that touches nothing.

use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use super::agent_boot::HELD_KEY;
use super::*;
use crate::fakes::{fake_ports, CallLog, FakeImages};

const GIB: u64 = 1 << 30;

fn ports() -> (Ports, CallLog) {
    let log = CallLog::new();
    (fake_ports(&log, PowerState::Off, Duration::ZERO), log)
}

/// The names of the calls made, without their arguments.
fn names(log: &CallLog) -> Vec<String> {
    log.calls()
        .iter()
        .map(|c| c.split('(').next().unwrap_or_default().to_string())
        .collect()
}

/// Records history steps, progress and persisted internal info, as the conductor would.
#[derive(Default)]
struct Events {
    steps: Mutex<Vec<String>>,
    progress: Mutex<Vec<(String, AgentProgress)>>,
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
    async fn progress(&self, step: &str, progress: AgentProgress) {
        self.progress
            .lock()
            .unwrap()
            .push((step.to_string(), progress));
    }
}

fn sum() -> String {
    "ab".repeat(32)
}

fn node(instance_info: Value) -> NodeView {
    NodeView {
        uuid: "n1".into(),
        instance_info: instance_info.as_object().unwrap().clone(),
        boot_mode: Some(BootMode::Uefi),
        macs: vec!["52:54:00:00:00:01".into()],
        ..NodeView::default()
    }
}

fn good() -> NodeView {
    node(json!({
        "image_source": "http://images/disk.qcow2",
        "image_checksum": sum(),
        "image_disk_format": "qcow2",
        "configdrive": {"meta_data": {"uuid": "u-1"}, "user_data": "#!/bin/sh\n"},
    }))
}

fn driver() -> DirectDeploy {
    let limit = Duration::from_millis(200);
    DirectDeploy::new(DirectPolicy {
        image_timeout: limit,
        bmc_timeout: limit,
        local_timeout: limit,
        agent_timeout: limit,
        write_timeout: limit,
        command_timeout: limit,
        progress_interval: Duration::from_millis(10),
        ..DirectPolicy::default()
    })
}

/// The calls of a whole deploy, in order.
const DEPLOY_CALLS: &[&str] = &[
    "power.power_state",
    "images.acquire",
    "publisher.publish",
    "configdrive.build",
    "publisher.publish",
    "agent.ramdisk",
    "agent.begin",
    "remaster.remaster",
    "publisher.publish",
    "vmedia.eject_all",
    "vmedia.insert_cd",
    "boot.set_boot_device",
    "power.power_state",
    "power.set_power",
    "agent.wait_ready",
    "agent.write_image",
    "agent.write_config_drive",
    "boot.set_boot_device",
    "vmedia.eject_all",
    "agent.end",
    "power.set_power",
    "publisher.revoke",
    "publisher.revoke",
    "publisher.revoke",
    "remaster.discard",
    "configdrive.discard",
    "images.release",
];

/// Every lease and publication id (image, config drive, agent ISO) is in driver_internal_info
/// before the port makes it: a crash right after the port call leaves nothing unknown.
#[tokio::test]
async fn ids_are_recorded_before_the_lease_and_the_publications_exist() {
    let (fakes, log) = ports();
    let events = Arc::new(Events::default());
    let seen = events.clone();
    let (ports, unrecorded) = crate::fakes::check_intent_first(
        &fakes,
        Arc::new(move || Value::Object(seen.internal.lock().unwrap().clone()).to_string()),
    );
    driver()
        .deploy(&good(), &ports, events.as_ref())
        .await
        .unwrap();
    assert_eq!(names(&log), DEPLOY_CALLS);
    assert!(unrecorded.lock().unwrap().is_empty(), "{unrecorded:?}");
}

#[tokio::test]
async fn an_intent_that_cannot_be_saved_fails_its_step_and_makes_nothing() {
    let steps = crate::fakes::refuse_each_intent::<Events>(&driver(), &good(), ports).await;
    assert_eq!(
        steps,
        [
            "cache image",
            "publish image",
            "publish config drive",
            "publish agent"
        ]
    );
}

#[tokio::test]
async fn deploy_runs_every_step_in_order_and_holds_nothing_after() {
    let (ports, log) = ports();
    let events = Events::default();
    let outcome = driver().deploy(&good(), &ports, &events).await.unwrap();
    assert_eq!(outcome, DeployOutcome::Active);
    assert_eq!(names(&log), DEPLOY_CALLS);
    let calls = log.calls();
    for want in [
        "images.acquire(http://images/disk.qcow2, n1)",
        "publisher.publish(/fake/cache/1, n1, disk.qcow2)",
        "configdrive.build(n1, contents)",
        "remaster.remaster(, \"ironcast.url=http://conductor.invalid ironcast.node=n1 ironcast.token=fake\", n1)",
        "boot.set_boot_device(Cd, persistent=false, Uefi)",
        "power.set_power(On)",
        "boot.set_boot_device(Disk, persistent=true, Uefi)",
        "power.set_power(Reboot)",
    ] {
        assert!(
            calls.contains(&want.to_string()),
            "{want} not in {calls:#?}"
        );
    }
    let write = calls
        .iter()
        .find(|c| c.starts_with("agent.write_image"))
        .unwrap();
    assert!(
        write.contains("\"root_device\":\"/dev/sda\"")
            && write.contains("http://fake.invalid/n1/disk.qcow2")
            && write.contains(&sum()),
        "{write}"
    );
    let drive = calls
        .iter()
        .find(|c| c.starts_with("agent.write_config_drive"))
        .unwrap();
    assert!(
        drive.contains("\"device\":\"/dev/sda\"")
            && drive.contains("http://fake.invalid/n1/configdrive"),
        "{drive}"
    );
    assert!(log.live().is_empty(), "held after deploy: {:?}", log.live());
    assert_eq!(
        events.internal.lock().unwrap().keys().collect::<Vec<_>>(),
        ["root_disk"],
        "{:?}",
        events.internal
    );

    let steps = events.steps.lock().unwrap().clone();
    for want in [
        "validate: whole-disk image http://images/disk.qcow2",
        "root device: /dev/sda (107374182400 bytes), the smallest disk of at least 4 GiB",
        "write image: 100% (0 of 1 MiB)",
        "write image: done, checksum verified",
        "reboot: into the written disk",
    ] {
        assert!(
            steps.contains(&want.to_string()),
            "{want} not in {steps:#?}"
        );
    }
    let progress = events.progress.lock().unwrap().clone();
    assert_eq!(
        progress,
        [(
            "write image".to_string(),
            AgentProgress {
                done_bytes: 1,
                total_bytes: Some(1)
            }
        )]
    );
}

#[tokio::test]
async fn a_failure_or_hang_at_any_step_names_it_and_leaks_nothing() {
    let steps = [
        ("power.power_state", "check BMC"),
        ("images.acquire", "cache image"),
        ("configdrive.build", "build config drive"),
        ("agent.ramdisk", "agent ramdisk"),
        ("agent.begin", "agent token"),
        ("remaster.remaster", "remaster agent"),
        ("vmedia.eject_all", "eject"),
        ("vmedia.insert_cd", "insert agent"),
        ("boot.set_boot_device", "set boot device"),
        ("power.set_power", "power on"),
        ("agent.wait_ready", "wait for agent"),
        ("agent.write_image", "write image"),
        ("agent.write_config_drive", "write config drive"),
    ];
    for (call, step) in steps {
        for hang in [false, true] {
            let (ports, log) = ports();
            if hang {
                log.hang_on(call);
            } else {
                log.fail_on(
                    call,
                    PortError::new(PortErrorKind::Rejected, "refused by fake"),
                );
            }
            let events = Events::default();
            let err = driver().deploy(&good(), &ports, &events).await.unwrap_err();
            let what = format!("failure injected at {call} (hang: {hang})");
            assert_eq!(err.step, step, "{what}");
            if !hang {
                assert_eq!(err.source.kind, PortErrorKind::Rejected, "{what}");
            }
            if !matches!(call, "power.set_power" | "vmedia.eject_all") {
                assert!(log.live().is_empty(), "leak after {what}: {:?}", log.live());
                assert!(
                    events.internal.lock().unwrap().is_empty(),
                    "record left after {what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_failure_after_power_on_powers_off_and_ejects() {
    let (ports, log) = ports();
    log.fail_on(
        "agent.write_image",
        PortError::new(PortErrorKind::InvalidInput, "checksum mismatch"),
    );
    let err = driver()
        .deploy(&good(), &ports, &Events::default())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "write image failed: checksum mismatch");
    let calls = names(&log);
    let tail = &calls[calls.iter().position(|c| c == "agent.write_image").unwrap() + 1..];
    assert_eq!(
        tail,
        [
            "agent.end",
            "power.set_power",
            "vmedia.eject_all",
            "publisher.revoke",
            "publisher.revoke",
            "publisher.revoke",
            "remaster.discard",
            "configdrive.discard",
            "images.release"
        ]
    );
    assert!(log.calls().contains(&"power.set_power(Off)".to_string()));
    assert_eq!(ports.power.power_state().await.unwrap(), PowerState::Off);
}

#[tokio::test]
async fn validation_errors_touch_nothing() {
    let cases = [
        (
            json!({"image_source": "http://i/d.raw"}),
            "image_checksum is not set",
        ),
        (
            json!({"image_source": "http://i/d.raw", "image_checksum": sum(), "kernel": "k", "ramdisk": "r"}),
            "partition image",
        ),
        (
            json!({"image_source": "http://i/d.raw", "image_checksum": sum(), "kernel": "k"}),
            "only one of kernel and ramdisk",
        ),
        (json!({"image_checksum": sum()}), "image_source is not set"),
        (
            json!({"image_source": "glance://3f2a", "image_checksum": sum()}),
            "neither an http(s):// or file:// URL nor the name of a captured image",
        ),
        (
            json!({"image_source": "http://i/d", "image_checksum": sum(), "image_disk_format": "vmdk"}),
            "\"vmdk\" is not supported",
        ),
        (
            json!({"image_source": "http://i/d", "image_os_hash_algo": "sha256"}),
            "only one of image_os_hash_algo",
        ),
        (
            json!({"image_source": "http://i/d", "image_os_hash_algo": "sha1", "image_os_hash_value": "ab"}),
            "not supported",
        ),
        (
            json!({"image_source": "http://i/d", "image_checksum": "xyz"}),
            "image_checksum",
        ),
        (
            json!({"image_source": "http://i/d", "image_checksum": sum(), "root_device": {"colour": "red"}}),
            "hint \"colour\" is unknown",
        ),
        (
            json!({"image_source": "http://i/d", "image_checksum": sum(), "configdrive": {"meta": 1}}),
            "configdrive key \"meta\" is unknown",
        ),
        (
            json!({"image_source": "http://i/d", "image_checksum": sum(), "configdrive": 5}),
            "not a number",
        ),
    ];
    for (info, want) in cases {
        let (ports, log) = ports();
        let err = driver()
            .deploy(&node(info.clone()), &ports, &Events::default())
            .await
            .unwrap_err();
        assert_eq!(err.step, "validate", "{info}");
        assert!(err.to_string().contains(want), "{info}: {err}");
        assert!(log.calls().is_empty(), "{info}: {:?}", log.calls());
    }
}

#[tokio::test]
async fn an_image_bigger_than_the_known_root_disk_fails_before_any_power_action() {
    let (mut ports, log) = ports();
    ports.images = Some(Arc::new(FakeImages::with_virtual_size(
        log.clone(),
        3 * GIB,
    )));
    let mut n = good();
    n.properties.insert("local_gb".into(), json!(2));
    let err = driver()
        .deploy(&n, &ports, &Events::default())
        .await
        .unwrap_err();
    assert_eq!(err.step, "check size");
    assert_eq!(err.source.kind, PortErrorKind::NoSpace);
    let msg = err.to_string();
    assert!(
        msg.contains("3221225472 bytes") && msg.contains("2147483648 bytes"),
        "{msg}"
    );
    assert_eq!(
        names(&log),
        ["power.power_state", "images.acquire", "images.release"]
    );
    assert!(log.live().is_empty());
}

#[tokio::test]
async fn an_image_bigger_than_the_chosen_disk_fails_at_the_root_device() {
    let (mut ports, log) = ports();
    // The fake agent reports one 100 GiB disk.
    ports.images = Some(Arc::new(FakeImages::with_virtual_size(
        log.clone(),
        200 * GIB,
    )));
    let err = driver()
        .deploy(&good(), &ports, &Events::default())
        .await
        .unwrap_err();
    assert_eq!(err.step, "root device");
    assert!(err.to_string().contains("214748364800 bytes"), "{err}");
    assert!(!names(&log).contains(&"agent.write_image".to_string()));
    assert!(log.live().is_empty(), "{:?}", log.live());
    assert_eq!(ports.power.power_state().await.unwrap(), PowerState::Off);
}

#[tokio::test]
async fn hints_that_match_no_disk_fail_naming_what_the_agent_found() {
    let (ports, log) = ports();
    let mut n = good();
    n.properties
        .insert("root_device".into(), json!({"serial": "S-missing"}));
    let err = driver()
        .deploy(&n, &ports, &Events::default())
        .await
        .unwrap_err();
    assert_eq!(err.step, "root device");
    assert!(
        err.to_string()
            .contains("no disk matches the root_device hints {\"serial\":\"S-missing\"}"),
        "{err}"
    );
    assert!(log.live().is_empty());
}

#[tokio::test]
async fn config_drive_url_goes_to_the_agent_unbuilt_and_no_drive_skips_the_step() {
    let (ports, log) = ports();
    let mut n = good();
    n.instance_info
        .insert("configdrive".into(), json!("https://cd/drive.iso.gz"));
    driver()
        .deploy(&n, &ports, &Events::default())
        .await
        .unwrap();
    let calls = log.calls();
    assert!(!names(&log).contains(&"configdrive.build".to_string()));
    assert!(calls.iter().any(
        |c| c.starts_with("agent.write_config_drive") && c.contains("https://cd/drive.iso.gz")
    ));

    let (ports, log) = self::ports();
    let mut n = good();
    n.instance_info.remove("configdrive");
    driver()
        .deploy(&n, &ports, &Events::default())
        .await
        .unwrap();
    assert!(!names(&log).contains(&"agent.write_config_drive".to_string()));
}

#[tokio::test]
async fn undeploy_powers_off_ejects_and_releases_what_a_crash_left() {
    let (ports, log) = ports();
    let mut n = good();
    let held = Held {
        publications: vec!["pub-old".into()],
        image_lease: Some("lease-old".into()),
        remastered: true,
        ..Held::default()
    };
    n.driver_internal_info
        .insert(HELD_KEY.into(), serde_json::to_value(&held).unwrap());
    let events = Events::default();
    driver().undeploy(&n, &ports, &events).await.unwrap();
    assert_eq!(
        log.calls(),
        [
            "power.set_power(Off)",
            "vmedia.eject_all()",
            "publisher.revoke(pub-old)",
            "remaster.discard(n1)",
            "images.release(lease-old)",
        ]
    );
    assert!(events.internal.lock().unwrap().is_empty());
}

#[tokio::test]
async fn redeploy_releases_the_previous_record_first() {
    let (ports, log) = ports();
    let mut n = good();
    let held = Held {
        agent_lease: Some("lease-agent".into()),
        ..Held::default()
    };
    n.driver_internal_info
        .insert(HELD_KEY.into(), serde_json::to_value(&held).unwrap());
    driver()
        .deploy(&n, &ports, &Events::default())
        .await
        .unwrap();
    assert_eq!(log.calls()[0], "images.release(lease-agent)");
}

#[tokio::test]
async fn clean_boots_the_agent_erases_and_powers_off() {
    let (ports, log) = ports();
    let events = Events::default();
    driver()
        .clean(
            &good(),
            &ports,
            &[CleanStep::EraseDevicesMetadata, CleanStep::EraseDevices],
            &events,
        )
        .await
        .unwrap();
    assert_eq!(
        names(&log),
        [
            "agent.ramdisk",
            "agent.begin",
            "remaster.remaster",
            "publisher.publish",
            "vmedia.eject_all",
            "vmedia.insert_cd",
            "boot.set_boot_device",
            "power.power_state",
            "power.set_power",
            "agent.wait_ready",
            "agent.erase_metadata",
            "agent.erase_disk",
            "agent.end",
            "power.set_power",
            "vmedia.eject_all",
            "publisher.revoke",
            "remaster.discard",
        ]
    );
    assert!(log.calls().contains(&"power.set_power(Off)".to_string()));
    assert!(log.live().is_empty());
    assert!(events.internal.lock().unwrap().is_empty());
    let steps = events.steps.lock().unwrap().clone();
    assert!(steps.contains(&"clean: erase_devices_metadata, erase_devices".to_string()));

    // Nothing to run: nothing booted.
    let (ports, log) = self::ports();
    driver()
        .clean(&good(), &ports, &[], &Events::default())
        .await
        .unwrap();
    assert!(log.calls().is_empty());
}

#[tokio::test]
async fn a_failed_clean_step_is_named_and_undone() {
    for (call, step) in [
        ("agent.erase_metadata", "erase_devices_metadata"),
        ("agent.wait_ready", "wait for agent"),
        ("vmedia.insert_cd", "insert agent"),
    ] {
        let (ports, log) = ports();
        log.fail_on(call, PortError::new(PortErrorKind::Other, "disk busy"));
        let err = driver()
            .clean(
                &good(),
                &ports,
                &[CleanStep::EraseDevicesMetadata],
                &Events::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.step, step, "{call}");
        assert!(log.live().is_empty(), "{call}: {:?}", log.live());
        assert_eq!(ports.power.power_state().await.unwrap(), PowerState::Off);
    }
}

#[test]
fn validate_names_a_missing_port() {
    for strip in ["agent", "vmedia", "config drives"] {
        let (mut ports, _) = ports();
        match strip {
            "agent" => ports.agent = None,
            "vmedia" => {
                ports.vmedia = None;
                ports.netboot = None;
            }
            _ => ports.config_drives = None,
        }
        let err = driver().validate(&good(), &ports).unwrap_err().to_string();
        let want = match strip {
            "agent" => "needs agent",
            "vmedia" => "needs virtual media or network boot",
            _ => "config drive builder",
        };
        assert!(err.contains(want), "{strip}: {err}");
    }
}

#[test]
fn plan_reads_the_checksum_forms_hints_and_known_sizes() {
    let d = driver();
    let mut n = node(json!({
        "image_source": "https://i/d.img",
        "image_checksum": "https://i/SHA256SUMS",
        "image_os_hash_algo": "SHA512",
        "image_os_hash_value": "cd".repeat(64),
        "root_device": {"size": 40},
        "root_gb": 10,
    }));
    let plan = d.plan(&n).unwrap();
    assert_eq!(
        plan.image.checksum,
        Some(ChecksumSpec::Value {
            algorithm: "sha512".into(),
            hex: "cd".repeat(64)
        }),
        "os_hash wins over image_checksum, as in Ironic"
    );
    assert_eq!(plan.root_bytes, Some(40 * GIB), "an exact size hint wins");
    assert_eq!(plan.published_name(), "disk.img");
    n.instance_info.remove("image_os_hash_algo");
    n.instance_info.remove("image_os_hash_value");
    n.instance_info.remove("root_device");
    let plan = d.plan(&n).unwrap();
    assert_eq!(
        plan.image.checksum,
        Some(ChecksumSpec::FileUrl("https://i/SHA256SUMS".into()))
    );
    assert_eq!(plan.root_bytes, Some(10 * GIB));
    n.instance_info.remove("root_gb");
    n.properties.insert("local_gb".into(), json!("7"));
    assert_eq!(d.plan(&n).unwrap().root_bytes, Some(7 * GIB));

    n.name = Some("node-one".into());
    n.instance_info.insert(
        "configdrive".into(),
        json!({"meta_data": {"uuid": "given"}, "user_data": "x"}),
    );
    let Some(ConfigDrive::Build(ConfigDriveSource::Contents(cd))) =
        d.plan(&n).unwrap().config_drive
    else {
        panic!("the JSON form is built");
    };
    assert_eq!(
        cd["meta_data"],
        json!({"uuid": "given", "name": "node-one"})
    );
    n.instance_info
        .insert("configdrive".into(), json!({"user_data": "x"}));
    let Some(ConfigDrive::Build(ConfigDriveSource::Contents(cd))) =
        d.plan(&n).unwrap().config_drive
    else {
        panic!("the JSON form is built");
    };
    assert_eq!(cd["meta_data"], json!({"uuid": "n1", "name": "node-one"}));

    n.instance_info.remove("image_checksum");
    let lax = DirectDeploy::new(DirectPolicy {
        allow_unverified: true,
        ..DirectPolicy::default()
    });
    assert_eq!(lax.plan(&n).unwrap().image.checksum, None);
}

#[test]
fn credentials_go_into_the_agents_url_encoded() {
    let auth = MediaAuth {
        username: "bmc".into(),
        password: "p@ss:w/rd".into(),
    };
    assert_eq!(
        with_auth("http://10.0.2.2:8081/tok/disk.raw", Some(&auth)),
        "http://bmc:p%40ss%3Aw%2Frd@10.0.2.2:8081/tok/disk.raw"
    );
    assert_eq!(with_auth("http://h/x", None), "http://h/x");
    assert_eq!(
        digest_checksum("sha256:ABcd"),
        Some(ChecksumSpec::Value {
            algorithm: "sha256".into(),
            hex: "abcd".into()
        })
    );
    assert_eq!(digest_checksum("sha256:fake1"), None);
}

/// boot_interface ipxe/pxe (no virtual media): the agent ISO is booted by a per-MAC iPXE
/// config and a one-time PXE boot; after the write the configs boot the local disk and the
/// node boots from the network every time; undeploy removes the configs.
#[tokio::test]
async fn network_boot_agent_then_local_boot_config() {
    let (mut ports, log) = ports();
    ports.vmedia = None;
    let events = Events::default();
    driver().deploy(&good(), &ports, &events).await.unwrap();
    let calls = log.calls();
    let at = |want: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(want))
            .unwrap_or_else(|| panic!("{want} not in {calls:#?}"))
    };
    let iso = at("netboot.write_iso_boot(n1, [\"52:54:00:00:00:01\"], Uefi");
    let once = at("boot.set_boot_device(Pxe, persistent=false, Uefi)");
    let write = at("agent.write_image");
    let local = at("netboot.write_local_boot(n1, [\"52:54:00:00:00:01\"], Uefi");
    let always = at("boot.set_boot_device(Pxe, persistent=true, Uefi)");
    let reboot = at("power.set_power(Reboot)");
    assert!(iso < once && once < write && write < local && local < always && always < reboot);
    assert!(!calls.iter().any(|c| c.starts_with("vmedia.")));
    assert!(
        !calls.iter().any(|c| c.starts_with("netboot.remove")),
        "the local-boot configs stay after the deploy: {calls:#?}"
    );
    driver().undeploy(&good(), &ports, &events).await.unwrap();
    assert!(log.calls().contains(&"netboot.remove(n1)".to_string()));
}

fn captured_node(internal: Value) -> NodeView {
    NodeView {
        driver_internal_info: internal.as_object().unwrap().clone(),
        ..good()
    }
}

fn golden() -> CaptureRequest {
    CaptureRequest {
        name: "golden".into(),
        format: CaptureFormat::Qcow2,
    }
}

/// The calls of a capture of an active node whose deploy recorded its root disk.
const CAPTURE_ACTIVE_CALLS: &[&str] = &[
    "captures.reserve",
    "power.power_state",
    "agent.ramdisk",
    "agent.begin",
    "remaster.remaster",
    "publisher.publish",
    "vmedia.eject_all",
    "vmedia.insert_cd",
    "boot.set_boot_device",
    "power.power_state",
    "power.set_power",
    "agent.wait_ready",
    "agent.capture_disk",
    "captures.finish",
    "boot.set_boot_device",
    "vmedia.eject_all",
    "agent.end",
    "power.set_power",
    "publisher.revoke",
    "remaster.discard",
];

#[tokio::test]
async fn capture_reserves_before_boot_and_an_active_node_boots_its_disk_again() {
    let (ports, log) = ports();
    let node = captured_node(json!({"root_disk": {"name": "/dev/sda", "size": 100 * GIB}}));
    let d = driver();
    d.prepare_capture(&node, &ports, &golden()).await.unwrap();
    let events = Events::default();
    let image = d
        .capture(&node, &ports, &golden(), true, &events)
        .await
        .unwrap();
    assert_eq!(image.name, "golden");
    assert_eq!(image.virtual_size, 100 * GIB);
    assert_eq!(names(&log), CAPTURE_ACTIVE_CALLS);
    let calls = log.calls();
    assert!(
        calls.iter().any(|c| c.starts_with("agent.capture_disk")
            && c.contains("\"device\":\"/dev/sda\"")
            && c.contains("\"format\":\"qcow2\"")),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"boot.set_boot_device(Disk, persistent=true, Uefi)".to_string()),
        "{calls:?}"
    );
    assert_eq!(calls.last().unwrap(), "remaster.discard(n1)", "{calls:?}");
    assert!(
        log.live().is_empty(),
        "held after capture: {:?}",
        log.live()
    );
}

#[tokio::test]
async fn capture_of_a_node_with_no_known_disk_size_reserves_once_the_agent_reports_it() {
    let (ports, log) = ports();
    let node = captured_node(json!({}));
    let d = driver();
    d.prepare_capture(&node, &ports, &golden()).await.unwrap();
    assert!(log.calls().is_empty(), "{:?}", log.calls());
    let events = Events::default();
    d.capture(&node, &ports, &golden(), false, &events)
        .await
        .unwrap();
    let calls = names(&log);
    let at = |name: &str| calls.iter().position(|c| c == name).unwrap();
    assert!(at("agent.wait_ready") < at("captures.reserve"), "{calls:?}");
    assert!(
        at("captures.reserve") < at("agent.capture_disk"),
        "{calls:?}"
    );
    // Not active: powered off at the end, never booted from disk.
    assert_eq!(
        log.calls()
            .iter()
            .filter(|c| c.starts_with("boot.set_boot_device(Disk"))
            .count(),
        0
    );
    assert!(
        log.calls().contains(&"power.set_power(Off)".to_string()),
        "{:?}",
        log.calls()
    );
    assert!(log.live().is_empty(), "{:?}", log.live());
}

#[tokio::test]
async fn a_capture_the_cache_cannot_hold_is_refused_before_anything_is_touched() {
    let (ports, log) = ports();
    log.fail_on(
        "captures.reserve",
        PortError::new(PortErrorKind::NoSpace, "needed 107374182400 bytes, free 10"),
    );
    let node = captured_node(json!({"root_disk": {"name": "/dev/sda", "size": 100 * GIB}}));
    let err = driver()
        .prepare_capture(&node, &ports, &golden())
        .await
        .unwrap_err();
    assert_eq!(err.source.kind, PortErrorKind::NoSpace);
    assert!(
        err.to_string().contains("needed 107374182400 bytes"),
        "{err}"
    );
    assert_eq!(names(&log), ["captures.reserve"]);
}

#[tokio::test]
async fn a_failed_capture_discards_the_upload_and_still_boots_an_active_node_back() {
    for call in ["agent.wait_ready", "agent.capture_disk", "captures.finish"] {
        let (ports, log) = ports();
        log.fail_on(
            call,
            PortError::new(PortErrorKind::Rejected, "refused by fake"),
        );
        let node = captured_node(json!({"root_disk": {"name": "/dev/sda", "size": 100 * GIB}}));
        let d = driver();
        d.prepare_capture(&node, &ports, &golden()).await.unwrap();
        let err = d
            .capture(&node, &ports, &golden(), true, &Events::default())
            .await
            .unwrap_err();
        assert_eq!(err.source.kind, PortErrorKind::Rejected, "{call}");
        let calls = log.calls();
        assert!(
            calls.contains(&"captures.discard(n1)".to_string()),
            "{call}: {calls:?}"
        );
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("boot.set_boot_device(Disk")),
            "{call}: {calls:?}"
        );
        assert!(log.live().is_empty(), "{call}: {:?}", log.live());
    }
}

/// The outer timeout's undo gives back every recorded lease and publication, and leaves the
/// media and power it cannot touch recorded for the undeploy.
#[tokio::test]
async fn abandon_releases_what_was_recorded_and_touches_no_hardware() {
    let (ports, log) = ports();
    let mut n = good();
    let held = Held {
        agent: true,
        publications: vec!["p-1".into(), "p-2".into()],
        remastered: true,
        image_lease: Some("l-1".into()),
        inserted: true,
        powered: true,
        ..Held::default()
    };
    n.driver_internal_info
        .insert(HELD_KEY.into(), serde_json::to_value(&held).unwrap());
    let events = Events::default();
    driver().abandon(&n, &ports, &events).await.unwrap();
    let calls = log.calls();
    for want in [
        "publisher.revoke(p-1)",
        "publisher.revoke(p-2)",
        "images.release(l-1)",
    ] {
        assert!(calls.contains(&want.to_string()), "{want} in {calls:?}");
    }
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("power.") || c.starts_with("vmedia.")),
        "{calls:?}"
    );
    let left: Held =
        serde_json::from_value(events.internal.lock().unwrap()[HELD_KEY].clone()).unwrap();
    assert_eq!(
        left,
        Held {
            inserted: true,
            powered: true,
            ..Held::default()
        }
    );
}
