//! The hub over its own methods, as the API handlers and a driver call them: tokens, the long
//! poll, progress, results, lost commands, and what `end` and a new `begin` forget.

use std::sync::Mutex as StdMutex;

use deploy_drivers::{InventoryDisk, WriteCommand};
use serde_json::json;

use super::*;
use crate::agent::cmdline;

fn hub() -> Arc<AgentHub> {
    Arc::new(AgentHub::new(HubSettings {
        conductor_url: "http://10.0.2.2:6385".into(),
        iso: PathBuf::new(),
        poll_wait: Duration::from_millis(300),
        image_rebase: None,
    }))
}

async fn begin(hub: &AgentHub, node: &str) -> String {
    let args = hub.begin(node).await.unwrap();
    let a = cmdline::parse(&args).unwrap();
    assert_eq!(a.conductor_url, "http://10.0.2.2:6385");
    assert_eq!(a.node, node);
    a.token
}

fn inventory() -> Inventory {
    Inventory {
        disks: vec![InventoryDisk {
            name: "/dev/vda".into(),
            size: 8 << 30,
            ..InventoryDisk::default()
        }],
        cpu_count: 1,
        ..Inventory::default()
    }
}

#[derive(Default)]
struct Seen(StdMutex<Vec<AgentProgress>>);

impl ProgressSink for Seen {
    fn progress(&self, p: AgentProgress) {
        self.0.lock().unwrap().push(p);
    }
}

#[tokio::test]
async fn tokens_are_per_boot_and_forgotten_at_end() {
    let hub = hub();
    assert!(matches!(
        hub.check_token("n1", Some("anything")),
        Err(HubError::Forbidden { .. })
    ));
    let first = begin(&hub, "n1").await;
    hub.check_token("n1", Some(&first)).unwrap();
    assert!(hub.check_token("n1", None).is_err());
    assert!(hub.check_token("n1", Some("wrong")).is_err());
    assert!(
        hub.check_token("n2", Some(&first)).is_err(),
        "tokens are per node"
    );
    let second = begin(&hub, "n1").await;
    assert_ne!(first, second);
    assert!(
        hub.check_token("n1", Some(&first)).is_err(),
        "a new boot forgets the old token"
    );
    hub.end("n1").await;
    assert!(hub.check_token("n1", Some(&second)).is_err());
    let beat = hub
        .heartbeat("n1", Some(&second), Heartbeat::default())
        .await;
    assert!(matches!(beat, Err(HubError::Forbidden { .. })));
}

#[tokio::test]
async fn wait_ready_returns_the_first_inventory_and_times_out_naming_the_url() {
    let hub = hub();
    let token = begin(&hub, "n1").await;
    let err = hub
        .wait_ready("n1", Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Timeout);
    assert!(err.message.contains("http://10.0.2.2:6385"), "{err}");
    assert!(err.message.contains("console"), "{err}");
    let reply = hub
        .heartbeat(
            "n1",
            Some(&token),
            Heartbeat {
                agent_version: "t".into(),
                inventory: Some(inventory()),
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.command, None, "nothing queued: the poll ends empty");
    assert!(!reply.send_inventory);
    let inv = hub.wait_ready("n1", Duration::from_secs(1)).await.unwrap();
    assert_eq!(inv, inventory());
}

#[tokio::test]
async fn a_command_is_delivered_to_a_waiting_heartbeat_and_its_progress_and_result_come_back() {
    let hub = hub();
    let token = begin(&hub, "n1").await;
    let command = AgentCommand::WriteImage(WriteCommand {
        image_url: "http://images/disk.raw".into(),
        checksum: None,
        root_device: None,
    });
    // The agent is already parked in its long poll when the driver queues the command.
    let agent = {
        let (hub, token) = (hub.clone(), token.clone());
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let reply = hub
                .heartbeat("n1", Some(&token), Heartbeat::default())
                .await
                .unwrap();
            assert!(reply.send_inventory, "no inventory yet");
            let env: CommandEnvelope = serde_json::from_value(reply.command.unwrap()).unwrap();
            assert!(
                started.elapsed() < Duration::from_millis(250),
                "woken, not polled"
            );
            hub.progress(
                "n1",
                Some(&token),
                &env.id,
                AgentProgress {
                    done_bytes: 5,
                    total_bytes: Some(10),
                },
            )
            .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(matches!(
                hub.progress("n1", Some("bad"), &env.id, AgentProgress::default()),
                Err(HubError::Forbidden { .. })
            ));
            hub.result(
                "n1",
                Some(&token),
                &env.id,
                CommandOutcome::Succeeded {
                    result: json!({"device": "/dev/vda"}),
                },
            )
            .unwrap();
            assert!(matches!(
                hub.result(
                    "n1",
                    Some(&token),
                    &env.id,
                    CommandOutcome::Succeeded { result: json!(1) }
                ),
                Err(HubError::UnknownCommand { .. })
            ));
            env.command
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = Seen::default();
    let result = hub
        .run("n1", &command, Duration::from_secs(5), &seen)
        .await
        .unwrap();
    assert_eq!(result, json!({"device": "/dev/vda"}));
    assert_eq!(agent.await.unwrap(), command);
    assert_eq!(
        *seen.0.lock().unwrap(),
        [AgentProgress {
            done_bytes: 5,
            total_bytes: Some(10)
        }]
    );
}

#[tokio::test]
async fn an_agent_error_keeps_its_kind_and_names_the_node_and_command() {
    let hub = hub();
    let token = begin(&hub, "n1").await;
    let driver = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.run(
                "n1",
                &AgentCommand::EraseMetadata { device: None },
                Duration::from_secs(5),
                &Seen::default(),
            )
            .await
        })
    };
    let reply = hub
        .heartbeat("n1", Some(&token), Heartbeat::default())
        .await
        .unwrap();
    let env: CommandEnvelope = serde_json::from_value(reply.command.unwrap()).unwrap();
    hub.result(
        "n1",
        Some(&token),
        &env.id,
        CommandOutcome::Failed {
            kind: PortErrorKind::Rejected,
            message: "/dev/vda is in use".into(),
        },
    )
    .unwrap();
    let err = driver.await.unwrap().unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Rejected);
    assert!(err.message.contains("n1"), "{err}");
    assert!(err.message.contains("erase_metadata"), "{err}");
    assert!(err.message.contains("/dev/vda is in use"), "{err}");
}

#[tokio::test]
async fn a_lost_command_is_handed_out_again_then_fails() {
    let hub = hub();
    let token = begin(&hub, "n1").await;
    let driver = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.run(
                "n1",
                &AgentCommand::Inventory,
                Duration::from_secs(5),
                &Seen::default(),
            )
            .await
        })
    };
    let mut ids = Vec::new();
    for _ in 0..MAX_DELIVERIES {
        let reply = hub
            .heartbeat("n1", Some(&token), Heartbeat::default())
            .await
            .unwrap();
        let env: CommandEnvelope = serde_json::from_value(reply.command.unwrap()).unwrap();
        ids.push(env.id);
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "the same command: {ids:?}"
    );
    // An idle agent asks again: the command was lost once too often.
    let reply = hub
        .heartbeat("n1", Some(&token), Heartbeat::default())
        .await
        .unwrap();
    assert_eq!(reply.command, None);
    let err = driver.await.unwrap().unwrap_err();
    assert!(err.message.contains("lost command inventory"), "{err}");
}

#[tokio::test]
async fn run_times_out_and_end_fails_what_waits() {
    let hub = hub();
    let token = begin(&hub, "n1").await;
    let err = hub
        .run(
            "n1",
            &AgentCommand::Inventory,
            Duration::from_millis(50),
            &Seen::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Timeout);
    assert!(err.message.contains("did not finish inventory"), "{err}");
    // The timed-out command is no longer handed out.
    let reply = hub
        .heartbeat("n1", Some(&token), Heartbeat::default())
        .await
        .unwrap();
    assert_eq!(reply.command, None);

    let waiting = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.run(
                "n1",
                &AgentCommand::PowerOff,
                Duration::from_secs(5),
                &Seen::default(),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    hub.end("n1").await;
    let err = waiting.await.unwrap().unwrap_err();
    assert!(err.message.contains("session of node n1 ended"), "{err}");
    let err = hub
        .run(
            "n1",
            &AgentCommand::Inventory,
            Duration::from_secs(1),
            &Seen::default(),
        )
        .await
        .unwrap_err();
    assert!(
        err.message.contains("no agent boot is in progress"),
        "{err}"
    );
}

#[tokio::test]
async fn ramdisk_names_both_options_or_hashes_the_iso() {
    let hub = hub();
    let err = hub.ramdisk().await.unwrap_err();
    assert!(err.message.contains("[agent] iso"), "{err}");
    assert!(err.message.contains("[agent] kernel"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("agent.iso");
    std::fs::write(&iso, b"abc").unwrap();
    hub.set_built_iso(iso.clone());
    let image = hub.ramdisk().await.unwrap();
    assert_eq!(image.path, iso);
    assert_eq!(image.size, 3);
    assert_eq!(
        image.digest,
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let unset = AgentHub::new(HubSettings::default());
    let err = unset.begin("n1").await.unwrap_err();
    assert!(err.message.contains("[agent] conductor_url"), "{err}");
}

#[test]
fn image_urls_are_rebased_for_agents_keeping_path_and_credentials() {
    let write = |url: &str| {
        AgentCommand::WriteImage(WriteCommand {
            image_url: url.into(),
            checksum: None,
            root_device: None,
        })
    };
    let (from, to) = ("http://127.0.0.1:8081", "http://10.0.2.2:8081/");
    let moved = rebase_urls(
        &write("http://bmc:pw@127.0.0.1:8081/tok/disk.raw"),
        from,
        to,
    );
    assert_eq!(moved, write("http://bmc:pw@10.0.2.2:8081/tok/disk.raw"));
    // Another origin (another port, or an outside URL) is left alone.
    for other in [
        "http://127.0.0.1:9999/x/disk.raw",
        "https://images.example/disk.qcow2",
    ] {
        assert_eq!(rebase_urls(&write(other), from, to), write(other));
    }
    let drive = AgentCommand::WriteConfigDrive {
        device: "/dev/sda".into(),
        url: "http://127.0.0.1:8081/t/configdrive.iso".into(),
    };
    assert_eq!(
        rebase_urls(&drive, from, "https://[fd00::1]:8443"),
        AgentCommand::WriteConfigDrive {
            device: "/dev/sda".into(),
            url: "https://[fd00::1]:8443/t/configdrive.iso".into(),
        }
    );
    assert_eq!(
        rebase_urls(&AgentCommand::Reboot, from, to),
        AgentCommand::Reboot
    );
}

/// The agent's last progress and its result arriving together: the driver sees that progress
/// before the result, every time (the two are ready at once, and `select!` picks either).
#[tokio::test]
async fn the_last_progress_is_passed_on_before_a_result_that_came_with_it() {
    let hub = hub();
    let token = begin(&hub, "n1").await;
    let command = AgentCommand::WriteImage(WriteCommand {
        image_url: "http://images/disk.raw".into(),
        checksum: None,
        root_device: None,
    });
    let last = AgentProgress {
        done_bytes: 10,
        total_bytes: Some(10),
    };
    for round in 0..40 {
        let agent = {
            let (hub, token) = (hub.clone(), token.clone());
            tokio::spawn(async move {
                let reply = hub
                    .heartbeat("n1", Some(&token), Heartbeat::default())
                    .await
                    .unwrap();
                let env: CommandEnvelope = serde_json::from_value(reply.command.unwrap()).unwrap();
                hub.progress("n1", Some(&token), &env.id, last).unwrap();
                let done = CommandOutcome::Succeeded { result: json!({}) };
                hub.result("n1", Some(&token), &env.id, done).unwrap();
            })
        };
        let seen = Seen::default();
        hub.run("n1", &command, Duration::from_secs(5), &seen)
            .await
            .unwrap();
        agent.await.unwrap();
        assert_eq!(seen.0.lock().unwrap().last(), Some(&last), "round {round}");
    }
}
