//! Ramdisk driver tests over the recording fakes of every port (`crate::fakes`): the call
//! sequence, failures and hangs injected at each step, and what is left held afterwards.

use std::sync::{Arc, Mutex};

use serde_json::{json, Map};

use super::*;
use crate::fakes::{fake_ports, CallLog};

/// The fakes' ports with the node powered `initial`, and their shared log.
fn ports(initial: PowerState) -> (Ports, CallLog) {
    let log = CallLog::new();
    (fake_ports(&log, initial, Duration::ZERO), log)
}

/// The names of the calls made, without their arguments.
fn names(log: &CallLog) -> Vec<String> {
    log.calls()
        .iter()
        .map(|c| c.split('(').next().unwrap_or_default().to_string())
        .collect()
}

/// Records history steps and persisted internal info, as the conductor would.
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

impl Events {
    /// An id the driver recorded in driver_internal_info.
    fn recorded(&self, key: &str) -> String {
        self.internal.lock().unwrap()[key]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    /// What the fakes should hold: the recorded lease and publication, plus `others`, sorted
    /// as [`CallLog::live`] lists them.
    fn held(&self, others: &[&str]) -> Vec<String> {
        let mut held = vec![self.recorded(LEASE_KEY), self.recorded(PUBLICATION_KEY)];
        held.extend(others.iter().map(|o| o.to_string()));
        held.sort();
        held
    }
}

fn node(instance_info: Value) -> NodeView {
    NodeView {
        uuid: "n1".into(),
        instance_info: instance_info.as_object().unwrap().clone(),
        boot_mode: Some(BootMode::Bios),
        ..NodeView::default()
    }
}

fn sum() -> String {
    format!("sha256:{}", "ab".repeat(32))
}

fn driver() -> RamdiskDeploy {
    RamdiskDeploy::new(RamdiskPolicy {
        bmc_timeout: Duration::from_millis(200),
        ..RamdiskPolicy::default()
    })
}

#[tokio::test]
async fn deploy_then_undeploy_runs_the_steps_in_order_and_leaves_nothing() {
    let (ports, log) = ports(PowerState::Off);
    let events = Events::default();
    let mut n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                           "kernel_append_params": "console=ttyS0 marker=1"}));
    let outcome = driver().deploy(&n, &ports, &events).await.unwrap();
    assert_eq!(outcome, DeployOutcome::Active);
    assert_eq!(
        names(&log),
        [
            // A previous deploy's remaster (after a crash or for a rebuild) is dropped first.
            "remaster.discard",
            "power.power_state",
            "images.acquire",
            "remaster.remaster",
            "publisher.publish",
            "vmedia.eject_all",
            "vmedia.insert_cd",
            "boot.set_boot_device",
            "power.power_state",
            "power.set_power",
        ]
    );
    let calls = log.calls();
    let lease = events.recorded(LEASE_KEY);
    assert!(calls.contains(&format!(
        "remaster.remaster({lease}, \"console=ttyS0 marker=1\", n1)"
    )));
    assert!(calls.contains(&"boot.set_boot_device(Cd, persistent=false, Bios)".into()));
    assert!(calls.contains(&"power.set_power(On)".into()));
    assert_eq!(log.live(), events.held(&["remaster:n1"]));

    n.driver_internal_info = events.internal.lock().unwrap().clone();
    assert!(n.driver_internal_info.contains_key(PUBLICATION_KEY));
    driver().undeploy(&n, &ports, &events).await.unwrap();
    assert!(log.live().is_empty(), "{:?}", log.live());
    assert!(log.calls().ends_with(&[format!("images.release({lease})")]));
    assert!(events.internal.lock().unwrap().is_empty());
    // Idempotent: a second undeploy is fine.
    driver().undeploy(&n, &ports, &events).await.unwrap();
}

/// Metal3's live-iso path sends no checksum: a permissive policy deploys it and history says
/// the image was unverified, next to the digest that was fetched.
#[tokio::test]
async fn an_unverified_iso_is_deployed_and_its_fetched_digest_recorded() {
    let (ports, _) = ports(PowerState::Off);
    let events = Events::default();
    let permissive = RamdiskDeploy::new(RamdiskPolicy {
        allow_unverified: true,
        bmc_timeout: Duration::from_millis(200),
        ..RamdiskPolicy::default()
    });
    let n = node(json!({"boot_iso": "http://iso"}));
    let outcome = permissive.deploy(&n, &ports, &events).await.unwrap();
    assert_eq!(outcome, DeployOutcome::Active);
    let steps = events.steps.lock().unwrap().join("\n");
    let cached = steps
        .lines()
        .find(|l| l.starts_with("cache image:"))
        .unwrap_or_else(|| panic!("no cache image step in {steps}"));
    assert!(cached.contains("unverified"), "{cached}");
    assert!(cached.contains("sha256:"), "{cached}");
}

/// Every lease and publication id is in driver_internal_info before the port makes it, in a
/// deploy and in a take-over: a crash right after the port call leaves nothing unknown.
#[tokio::test]
async fn ids_are_recorded_before_the_lease_and_the_publication_exist() {
    let (fakes, log) = ports(PowerState::Off);
    let events = Arc::new(Events::default());
    let seen = events.clone();
    let (ports, unrecorded) = crate::fakes::check_intent_first(
        &fakes,
        Arc::new(move || Value::Object(seen.internal.lock().unwrap().clone()).to_string()),
    );
    let mut n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                           "kernel_append_params": "x"}));
    driver().deploy(&n, &ports, events.as_ref()).await.unwrap();
    n.driver_internal_info = events.internal.lock().unwrap().clone();
    driver()
        .take_over(&n, &ports, events.as_ref())
        .await
        .unwrap();
    let calls = names(&log);
    assert_eq!(calls.iter().filter(|c| *c == "images.acquire").count(), 2);
    assert_eq!(
        calls.iter().filter(|c| *c == "publisher.publish").count(),
        2
    );
    assert!(unrecorded.lock().unwrap().is_empty(), "{unrecorded:?}");
    // Taken over on the same cache and image server (a restart under a fresh name): the
    // replaced lease and publication are given back, only the new ones are held.
    assert_eq!(log.live(), events.held(&["remaster:n1"]));
}

#[tokio::test]
async fn an_intent_that_cannot_be_saved_fails_its_step_and_makes_nothing() {
    let n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                       "kernel_append_params": "x"}));
    let steps =
        crate::fakes::refuse_each_intent::<Events>(&driver(), &n, || ports(PowerState::Off)).await;
    assert_eq!(steps, ["cache image", "publish"]);
}

#[tokio::test]
async fn no_kernel_args_serves_the_iso_unchanged_and_resets_a_running_node() {
    let (ports, log) = ports(PowerState::On);
    let n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum()}));
    let events = Events::default();
    driver().deploy(&n, &ports, &events).await.unwrap();
    assert!(!names(&log).contains(&"remaster.remaster".to_string()));
    assert!(log.calls().contains(&"power.set_power(Reboot)".to_string()));
    assert_eq!(log.live(), events.held(&[]));
}

#[tokio::test]
async fn a_failure_at_any_step_names_it_and_leaks_nothing() {
    let steps = [
        ("power.power_state", "check BMC"),
        ("images.acquire", "cache image"),
        ("remaster.remaster", "remaster"),
        ("publisher.publish", "publish"),
        ("vmedia.eject_all", "eject"),
        ("vmedia.insert_cd", "insert"),
        ("boot.set_boot_device", "set boot device"),
        ("power.set_power", "power"),
    ];
    for (call, step) in steps {
        for hang in [false, true] {
            let (ports, log) = ports(PowerState::Off);
            if hang {
                log.hang_on(call);
            } else {
                log.fail_on(
                    call,
                    PortError::new(PortErrorKind::Rejected, "refused by fake"),
                );
            }
            let n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                               "kernel_append_params": "a=b"}));
            let limit = Duration::from_millis(100);
            let policy = RamdiskPolicy {
                bmc_timeout: limit,
                image_timeout: limit,
                local_timeout: limit,
                ..Default::default()
            };
            let err = RamdiskDeploy::new(policy)
                .deploy(&n, &ports, &Events::default())
                .await
                .unwrap_err();
            assert_eq!(err.step, step, "failure injected at {call} (hang: {hang})");
            let kind = if hang {
                PortErrorKind::Timeout
            } else {
                PortErrorKind::Rejected
            };
            assert_eq!(err.source.kind, kind, "{call}");
            assert!(
                log.live().is_empty(),
                "leak after failure at {call} (hang: {hang}): {:?}",
                log.live()
            );
        }
    }
}

#[tokio::test]
async fn redeploy_releases_what_the_previous_deploy_left() {
    let (ports, log) = ports(PowerState::Off);
    let events = Events::default();
    let mut n = node(
        json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(), "kernel_append_params": "x"}),
    );
    driver().deploy(&n, &ports, &events).await.unwrap();
    n.driver_internal_info = events.internal.lock().unwrap().clone();
    let (first_lease, first_pub) = (events.recorded(LEASE_KEY), events.recorded(PUBLICATION_KEY));
    driver().deploy(&n, &ports, &events).await.unwrap();
    assert_eq!(
        log.live(),
        events.held(&["remaster:n1"]),
        "the first deploy's lease is released and its publication revoked"
    );
    assert_ne!(events.recorded(LEASE_KEY), first_lease);
    assert!(log
        .calls()
        .contains(&format!("images.release({first_lease})")));
    assert!(log
        .calls()
        .contains(&format!("publisher.revoke({first_pub})")));
}

#[test]
fn plan_refuses_bad_fields_with_a_clear_reason() {
    let d = driver();
    let cases = [
        (json!({}), "boot_iso is not set"),
        (json!({"boot_iso": "ftp://x"}), "not an http(s)://"),
        (
            json!({"boot_iso": "http://x"}),
            "boot_iso_checksum is not set",
        ),
        (
            json!({"boot_iso": "http://x", "boot_iso_checksum": "md4:00"}),
            "not supported",
        ),
        (
            json!({"boot_iso": "http://x", "boot_iso_checksum": "sha256:abc"}),
            "64 hex digits",
        ),
        (
            json!({"boot_iso": "http://x", "boot_iso_checksum": sum(), "kernel_append_params": "a\nb"}),
            "control character",
        ),
    ];
    for (info, want) in cases {
        let err = d.plan(&node(info.clone())).unwrap_err();
        assert!(err.to_string().contains(want), "{info}: {err}");
        assert_eq!(err.step, "validate");
    }
    let mut unknown_mode = node(json!({"boot_iso": "http://x", "boot_iso_checksum": sum()}));
    unknown_mode.boot_mode = None;
    let strict = RamdiskDeploy::new(RamdiskPolicy {
        default_boot_mode: None,
        ..Default::default()
    });
    assert!(strict
        .plan(&unknown_mode)
        .unwrap_err()
        .to_string()
        .contains("boot mode is unknown"));
}

#[test]
fn plan_takes_args_from_instance_info_then_driver_info_then_policy() {
    let policy = RamdiskPolicy {
        default_kernel_args: Some("from=policy".into()),
        allow_unverified: true,
        ..Default::default()
    };
    let d = RamdiskDeploy::new(policy);
    let mut n = node(json!({"boot_iso": "http://x"}));
    assert_eq!(d.plan(&n).unwrap().kernel_args, "from=policy");
    n.driver_info
        .insert("kernel_append_params".into(), json!("from=driver"));
    assert_eq!(d.plan(&n).unwrap().kernel_args, "from=driver");
    n.instance_info
        .insert("kernel_append_params".into(), json!("from=instance"));
    assert_eq!(d.plan(&n).unwrap().kernel_args, "from=instance");
    assert_eq!(d.plan(&n).unwrap().image.checksum, None);
}

#[test]
fn validate_names_a_missing_port() {
    let (mut ports, _) = ports(PowerState::Off);
    ports.vmedia = None;
    ports.netboot = None;
    let n = node(json!({"boot_iso": "http://x", "boot_iso_checksum": sum()}));
    let err = driver().validate(&n, &ports).unwrap_err();
    assert!(
        err.to_string().contains("virtual media or network boot"),
        "{err}"
    );
}

#[test]
fn checksum_forms() {
    assert_eq!(
        parse_checksum(&"AB".repeat(32)),
        Ok(ChecksumSpec::Value {
            algorithm: "sha256".into(),
            hex: "ab".repeat(32)
        })
    );
    assert_eq!(
        parse_checksum("https://x/SHA256SUMS"),
        Ok(ChecksumSpec::FileUrl("https://x/SHA256SUMS".into()))
    );
    assert!(parse_checksum("sha512:zz").is_err());
}

#[tokio::test]
async fn one_shot_waits_for_the_call_back_then_revokes_the_publication() {
    let (ports, log) = ports(PowerState::Off);
    let events = Events::default();
    let mut n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                           "boot_iso_one_shot": "true"}));
    let outcome = driver().deploy(&n, &ports, &events).await.unwrap();
    assert_eq!(outcome, DeployOutcome::WaitCallback);
    assert_eq!(log.live(), events.held(&["remaster:n1"]));
    let lease = events.recorded(LEASE_KEY);
    // The ISO gets a token minted for this boot, which history never shows.
    let calls = log.calls();
    let remastered = calls
        .iter()
        .find(|c| c.starts_with("remaster.remaster"))
        .unwrap();
    assert!(calls.contains(&"agent.begin(n1)".to_string()), "{calls:?}");
    assert!(remastered.contains("ironcast.token=fake"), "{remastered}");
    let steps = events.steps.lock().unwrap().join("\n");
    assert!(!steps.contains("token=fake"), "{steps}");
    assert!(steps.contains("ironcast.token=******"), "{steps}");
    n.driver_internal_info = events.internal.lock().unwrap().clone();
    driver().booted(&n, &ports, &events).await.unwrap();
    assert_eq!(
        log.live(),
        [lease, "remaster:n1".to_string()],
        "the publication is gone, the lease and remaster stay until undeploy"
    );
    assert!(
        log.calls().contains(&"agent.end(n1)".to_string()),
        "the token is forgotten once the node called back"
    );
    let mut no_agent = ports.clone();
    no_agent.agent = None;
    assert!(driver()
        .validate(&n, &no_agent)
        .unwrap_err()
        .to_string()
        .contains("agent token"));
    assert!(!events
        .internal
        .lock()
        .unwrap()
        .contains_key(PUBLICATION_KEY));
    assert_eq!(
        mask_token("console=ttyS0 ironcast.node=n1 ironcast.token=s3cret x=1"),
        "console=ttyS0 ironcast.node=n1 ironcast.token=****** x=1"
    );
    let bad = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                         "boot_iso_one_shot": 3}));
    assert!(driver()
        .plan(&bad)
        .unwrap_err()
        .to_string()
        .contains("use true or false"));
}

/// Taking over a deployed node re-publishes its ISO from this conductor's own resources and
/// re-inserts it, without touching power or the boot device; a node serving nothing (one-shot,
/// already revoked) needs nothing; a failure undoes what the take-over made.
#[tokio::test]
async fn take_over_republishes_and_reinserts_without_rebooting() {
    let mut n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                           "kernel_append_params": "console=ttyS0"}));
    n.driver_internal_info =
        json!({PUBLICATION_KEY: "pub-of-the-dead", LEASE_KEY: "lease-of-the-dead"})
            .as_object()
            .unwrap()
            .clone();
    let (ports, log) = self::ports(PowerState::On);
    let events = Events::default();
    driver().take_over(&n, &ports, &events).await.unwrap();
    assert_eq!(
        names(&log),
        [
            "images.acquire",
            "remaster.remaster",
            "publisher.publish",
            "vmedia.eject_all",
            "vmedia.insert_cd",
            "publisher.revoke",
            "images.release",
        ]
    );
    // What the records named is given back here too (a no-op for the dead conductor's).
    let calls = log.calls();
    assert!(calls.contains(&"publisher.revoke(pub-of-the-dead)".to_string()));
    assert!(calls.contains(&"images.release(lease-of-the-dead)".to_string()));
    assert_eq!(log.live(), events.held(&["remaster:n1"]));
    assert_ne!(events.recorded(LEASE_KEY), "lease-of-the-dead");
    assert_ne!(events.recorded(PUBLICATION_KEY), "pub-of-the-dead");

    let (ports, log) = self::ports(PowerState::On);
    log.fail_on(
        "vmedia.insert_cd",
        PortError::new(PortErrorKind::Rejected, "refused by fake"),
    );
    let events = Events::default();
    let err = driver().take_over(&n, &ports, &events).await.unwrap_err();
    assert_eq!(err.step, "insert");
    assert!(log.live().is_empty(), "{:?}", log.live());
    // A failed takeover leaves the records as they were.
    assert_eq!(events.recorded(LEASE_KEY), "lease-of-the-dead");
    assert_eq!(events.recorded(PUBLICATION_KEY), "pub-of-the-dead");

    let (ports, log) = self::ports(PowerState::On);
    let mut revoked = n.clone();
    revoked.driver_internal_info.clear();
    driver()
        .take_over(&revoked, &ports, &Events::default())
        .await
        .unwrap();
    assert!(log.calls().is_empty());
}

/// Adopting a live-ISO node this conductor never served publishes its ISO here and inserts it,
/// without touching power or the boot device; a failure undoes what the adoption made.
#[tokio::test]
async fn adopt_serves_the_iso_of_a_node_never_deployed_here() {
    let n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                        "kernel_append_params": "console=ttyS0"}));
    let (ports, log) = self::ports(PowerState::On);
    let events = Events::default();
    driver().adopt(&n, &ports, &events).await.unwrap();
    assert_eq!(
        names(&log),
        [
            "images.acquire",
            "remaster.remaster",
            "publisher.publish",
            "vmedia.eject_all",
            "vmedia.insert_cd",
        ]
    );
    assert_eq!(log.live(), events.held(&["remaster:n1"]));
    assert!(!events.recorded(PUBLICATION_KEY).is_empty());

    let (ports, log) = self::ports(PowerState::On);
    log.fail_on(
        "publisher.publish",
        PortError::new(PortErrorKind::Rejected, "refused by fake"),
    );
    let events = Events::default();
    assert!(driver().adopt(&n, &ports, &events).await.is_err());
    assert!(log.live().is_empty(), "{:?}", log.live());
}

/// The conductor's outer timeout firing in each step (the deploy future dropped mid-call, its
/// own undo never run): `abandon` with what the deploy recorded leaves nothing held.
#[tokio::test]
async fn outer_timeout_in_any_step_is_undone_by_abandon() {
    for call in [
        "power.power_state",
        "images.acquire",
        "remaster.remaster",
        "publisher.publish",
        "vmedia.eject_all",
        "vmedia.insert_cd",
        "boot.set_boot_device",
        "power.set_power",
    ] {
        let (ports, log) = self::ports(PowerState::Off);
        log.hang_on(call);
        let mut n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                               "kernel_append_params": "a=b"}));
        let events = Events::default();
        let policy = RamdiskPolicy {
            bmc_timeout: Duration::from_secs(60),
            ..RamdiskPolicy::default()
        };
        let outer = tokio::time::timeout(
            Duration::from_millis(50),
            RamdiskDeploy::new(policy.clone()).deploy(&n, &ports, &events),
        )
        .await;
        assert!(outer.is_err(), "{call}: the deploy should hang");
        n.driver_internal_info = events.internal.lock().unwrap().clone();
        RamdiskDeploy::new(policy)
            .abandon(&n, &ports, &events)
            .await
            .unwrap();
        assert!(log.live().is_empty(), "{call}: left {:?}", log.live());
        assert!(events.internal.lock().unwrap().is_empty(), "{call}");
    }
}

/// With no virtual media (boot_interface ipxe/pxe), the ISO is booted over the network: the
/// per-MAC iPXE config, a one-time PXE boot; undeploy removes the configs.
#[tokio::test]
async fn network_boot_writes_per_mac_configs_and_pxe_once() {
    let (mut ports, log) = ports(PowerState::Off);
    ports.vmedia = None;
    let events = Events::default();
    let mut n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum()}));
    n.macs = vec!["52:54:00:00:00:01".into()];
    driver().deploy(&n, &ports, &events).await.unwrap();
    let calls = log.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("netboot.write_iso_boot(n1, [\"52:54:00:00:00:01\"], Bios")),
        "{calls:?}"
    );
    assert!(calls.contains(&"boot.set_boot_device(Pxe, persistent=false, Bios)".into()));
    assert!(!calls.iter().any(|c| c.starts_with("vmedia.")));
    n.driver_internal_info = events.internal.lock().unwrap().clone();
    driver().undeploy(&n, &ports, &events).await.unwrap();
    assert!(log.calls().contains(&"netboot.remove(n1)".into()));

    // A node without ports has no MAC to boot by: refused before anything is published.
    let (mut ports, _) = self::ports(PowerState::Off);
    ports.vmedia = None;
    let bare = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum()}));
    let err = driver()
        .deploy(&bare, &ports, &Events::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("enrol a port"), "{err}");
}
