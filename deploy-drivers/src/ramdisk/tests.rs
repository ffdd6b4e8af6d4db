//! Ramdisk driver tests over one in-memory fake that implements every port, records each call,
//! tracks what is live (leases, publications, remasters) and fails or hangs on request.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;

#[derive(Default)]
struct World {
    calls: Vec<String>,
    fail_at: Option<&'static str>,
    hang_at: Option<&'static str>,
    power: Option<PowerState>,
    leases: BTreeSet<String>,
    publications: BTreeSet<String>,
    remasters: BTreeSet<String>,
    counter: u32,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<World>>);

impl Fake {
    /// Records `call` and fails or hangs if the test asked for it at this call.
    async fn enter(&self, call: &'static str) -> PortResult<()> {
        let (fail, hang) = {
            let mut w = self.0.lock().unwrap();
            w.calls.push(call.to_string());
            (w.fail_at == Some(call), w.hang_at == Some(call))
        };
        if hang {
            std::future::pending::<()>().await;
        }
        if fail {
            return Err(PortError::new(
                PortErrorKind::Rejected,
                format!("{call} refused by fake"),
            ));
        }
        Ok(())
    }
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
    fn ports(&self) -> Ports {
        let me = Arc::new(self.clone());
        Ports {
            power: me.clone(),
            boot: me.clone(),
            vmedia: Some(me.clone()),
            images: Some(me.clone()),
            remaster: Some(me.clone()),
            publisher: Some(me.clone()),
            netboot: None,
            agent: None,
        }
    }
    fn live(&self) -> (usize, usize, usize) {
        self.with(|w| (w.leases.len(), w.publications.len(), w.remasters.len()))
    }
}

#[async_trait]
impl Power for Fake {
    async fn power_state(&self) -> PortResult<PowerState> {
        self.enter("power_state").await?;
        Ok(self.with(|w| w.power.unwrap_or(PowerState::Off)))
    }
    async fn set_power(&self, action: PowerAction) -> PortResult<()> {
        self.enter("set_power").await?;
        self.with(|w| {
            w.calls.push(format!("power:{action:?}"));
            w.power = Some(match action {
                PowerAction::Off | PowerAction::SoftOff => PowerState::Off,
                _ => PowerState::On,
            });
        });
        Ok(())
    }
}

#[async_trait]
impl BootDevice for Fake {
    async fn set_boot_device(
        &self,
        t: BootTarget,
        persistent: bool,
        mode: BootMode,
    ) -> PortResult<()> {
        self.enter("set_boot_device").await?;
        self.with(|w| w.calls.push(format!("boot:{t:?}:{persistent}:{mode:?}")));
        Ok(())
    }
}

#[async_trait]
impl VirtualMedia for Fake {
    async fn eject_all(&self) -> PortResult<()> {
        self.enter("eject_all").await
    }
    async fn insert_cd(&self, url: &str) -> PortResult<()> {
        self.enter("insert_cd").await?;
        self.with(|w| w.calls.push(format!("insert:{url}")));
        Ok(())
    }
}

#[async_trait]
impl Images for Fake {
    async fn acquire(&self, request: &ImageRequest, holder: &str) -> PortResult<LeasedImage> {
        self.enter("acquire").await?;
        let lease = self.with(|w| {
            w.counter += 1;
            let lease = format!("lease-{}-{holder}", w.counter);
            w.leases.insert(lease.clone());
            lease
        });
        Ok(LeasedImage {
            lease,
            digest: "sha256:00".into(),
            path: PathBuf::from(request.url.trim_start_matches("http://")),
            size: 1000,
        })
    }
    async fn release(&self, lease: &str) -> PortResult<()> {
        self.enter("release").await?;
        self.with(|w| w.leases.remove(lease));
        Ok(())
    }
}

#[async_trait]
impl Remaster for Fake {
    async fn remaster(&self, base: &LeasedImage, args: &str, owner: &str) -> PortResult<Artifact> {
        self.enter("remaster").await?;
        self.with(|w| {
            w.remasters.insert(owner.to_string());
            w.calls.push(format!("args:{args}"));
        });
        Ok(Artifact {
            base: base.path.clone(),
            patch_set: Some(PathBuf::from("p.json")),
            len: 2048,
        })
    }
    async fn discard(&self, owner: &str) -> PortResult<()> {
        self.enter("discard").await?;
        self.with(|w| w.remasters.remove(owner));
        Ok(())
    }
}

#[async_trait]
impl Publisher for Fake {
    async fn publish(
        &self,
        artifact: &Artifact,
        node: &str,
        name: &str,
    ) -> PortResult<Publication> {
        self.enter("publish").await?;
        let id = self.with(|w| {
            w.counter += 1;
            let id = format!("pub-{}", w.counter);
            w.publications.insert(id.clone());
            w.calls
                .push(format!("artifact:{}", artifact.patch_set.is_some()));
            id
        });
        Ok(Publication {
            url: format!("http://127.0.0.1/{id}/{node}-{name}.iso"),
            id,
        })
    }
    async fn revoke(&self, id: &str) -> PortResult<()> {
        self.enter("revoke").await?;
        self.with(|w| w.publications.remove(id));
        Ok(())
    }
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
    let fake = Fake::default();
    let events = Events::default();
    let mut n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                           "kernel_append_params": "console=ttyS0 marker=1"}));
    let outcome = driver().deploy(&n, &fake.ports(), &events).await.unwrap();
    assert_eq!(outcome, DeployOutcome::Active);
    let calls = fake.with(|w| w.calls.clone());
    let main: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|c| !c.contains(':'))
        .collect();
    assert_eq!(
        main,
        [
            // A previous deploy's remaster (after a crash or for a rebuild) is dropped first.
            "discard",
            "power_state",
            "acquire",
            "remaster",
            "publish",
            "eject_all",
            "insert_cd",
            "set_boot_device",
            "power_state",
            "set_power"
        ]
    );
    assert!(calls.contains(&"args:console=ttyS0 marker=1".to_string()));
    assert!(calls.contains(&"boot:Cd:false:Bios".to_string()));
    assert!(calls.contains(&"power:On".to_string()));
    assert_eq!(fake.live(), (1, 1, 1));

    n.driver_internal_info = events.internal.lock().unwrap().clone();
    assert!(n.driver_internal_info.contains_key(PUBLICATION_KEY));
    driver().undeploy(&n, &fake.ports(), &events).await.unwrap();
    assert_eq!(fake.live(), (0, 0, 0));
    assert_eq!(fake.with(|w| w.power), Some(PowerState::Off));
    assert!(events.internal.lock().unwrap().is_empty());
    // Idempotent: a second undeploy is fine.
    driver().undeploy(&n, &fake.ports(), &events).await.unwrap();
}

#[tokio::test]
async fn no_kernel_args_serves_the_iso_unchanged_and_resets_a_running_node() {
    let fake = Fake::default();
    fake.with(|w| w.power = Some(PowerState::On));
    let n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum()}));
    driver()
        .deploy(&n, &fake.ports(), &Events::default())
        .await
        .unwrap();
    let calls = fake.with(|w| w.calls.clone());
    assert!(!calls.iter().any(|c| c == "remaster"));
    assert!(calls.contains(&"artifact:false".to_string()));
    assert!(calls.contains(&"power:Reboot".to_string()));
}

#[tokio::test]
async fn a_failure_at_any_step_names_it_and_leaks_nothing() {
    let steps = [
        ("power_state", "check BMC"),
        ("acquire", "cache image"),
        ("remaster", "remaster"),
        ("publish", "publish"),
        ("eject_all", "eject"),
        ("insert_cd", "insert"),
        ("set_boot_device", "set boot device"),
        ("set_power", "power"),
    ];
    for (call, step) in steps {
        for hang in [false, true] {
            let fake = Fake::default();
            fake.with(|w| {
                if hang {
                    w.hang_at = Some(call)
                } else {
                    w.fail_at = Some(call)
                }
            });
            let n = node(json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(),
                               "kernel_append_params": "a=b"}));
            let mut policy = RamdiskPolicy {
                bmc_timeout: Duration::from_millis(100),
                ..Default::default()
            };
            policy.image_timeout = policy.bmc_timeout;
            policy.local_timeout = policy.bmc_timeout;
            let err = RamdiskDeploy::new(policy)
                .deploy(&n, &fake.ports(), &Events::default())
                .await
                .unwrap_err();
            assert_eq!(err.step, step, "failure injected at {call} (hang: {hang})");
            let kind = if hang {
                PortErrorKind::Timeout
            } else {
                PortErrorKind::Rejected
            };
            assert_eq!(err.source.kind, kind, "{call}");
            assert_eq!(
                fake.live(),
                (0, 0, 0),
                "leak after failure at {call} (hang: {hang})"
            );
        }
    }
}

#[tokio::test]
async fn redeploy_releases_what_the_previous_deploy_left() {
    let fake = Fake::default();
    let events = Events::default();
    let mut n = node(
        json!({"boot_iso": "http://iso", "boot_iso_checksum": sum(), "kernel_append_params": "x"}),
    );
    driver().deploy(&n, &fake.ports(), &events).await.unwrap();
    n.driver_internal_info = events.internal.lock().unwrap().clone();
    driver().deploy(&n, &fake.ports(), &events).await.unwrap();
    assert_eq!(
        fake.live(),
        (1, 1, 1),
        "the first deploy's lease and publication are gone"
    );
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
    let fake = Fake::default();
    let mut ports = fake.ports();
    ports.vmedia = None;
    let n = node(json!({"boot_iso": "http://x", "boot_iso_checksum": sum()}));
    let err = driver().validate(&n, &ports).unwrap_err();
    assert!(err.to_string().contains("virtual media"), "{err}");
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
