//! One test per BMC behaviour sushy-tools cannot produce, against the simulated fleet with a
//! fault switched on (see `redfish::sim::Faults` for whom each imitates), plus a BMC that
//! never answers.

use std::time::{Duration, Instant};

use deploy_drivers::ports::{
    BootDevice, BootMode, BootTarget, PortErrorKind, Power, PowerAction, PowerState,
};
use ironcast::redfish::sim::{Faults, Fleet, FleetHandle};
use ironcast::redfish::{parse_address, vmedia, RedfishConfig, RedfishError, RedfishNode};

use crate::sim::{fake_iso, node_for, options};
use crate::support::file_server;

async fn fleet_with(faults: Faults) -> FleetHandle {
    let mut o = options(2);
    o.faults = faults;
    Fleet::start(o).await.unwrap()
}

async fn image_url() -> String {
    let (addr, _) = file_server(fake_iso("quirk")).await;
    format!("http://{addr}/q.iso")
}

async fn cd_slot(n: &RedfishNode) -> vmedia_slot::Slot {
    let sys = n.system().await.unwrap();
    vmedia::cd_slots(n.client(), &sys).await.unwrap().remove(0)
}

mod vmedia_slot {
    pub type Slot = ironcast::redfish::model::VirtualMediaSlot;
}

#[tokio::test]
async fn quirk_session_only_auth() {
    let fleet = fleet_with(Faults {
        session_only: true,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    Power::set_power(&n, PowerAction::On).await.unwrap();
    assert_eq!(Power::power_state(&n).await.unwrap(), PowerState::On);
    assert_eq!(fleet.stats().sessions_created, 1);
    assert_eq!(fleet.stats().basic_refused, 0);
    // The fault is real: Basic is refused by this BMC.
    let r = reqwest::Client::new()
        .get(format!("{}/redfish/v1/Systems", fleet.base_url))
        .basic_auth("admin", Some("password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(fleet.stats().basic_refused, 1);
}

#[tokio::test]
async fn quirk_412_on_stale_etag_is_reread_and_retried() {
    let fleet = fleet_with(Faults {
        stale_etag_once: true,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    BootDevice::set_boot_device(&n, BootTarget::Pxe, true, BootMode::Bios)
        .await
        .unwrap();
    assert_eq!(fleet.stats().precondition_failed, 1);
    let boot = n.system().await.unwrap().boot.unwrap();
    assert_eq!(boot.target.as_deref(), Some("Pxe"));
    assert_eq!(boot.enabled.as_deref(), Some("Continuous"));
    assert_eq!(boot.mode.as_deref(), Some("Legacy"));
}

#[tokio::test]
async fn quirk_202_task_monitor_is_followed_to_the_end() {
    let fleet = fleet_with(Faults {
        reset_as_task: true,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    let t = Instant::now();
    Power::set_power(&n, PowerAction::On).await.unwrap();
    // The reset only takes effect when the task completes: On means we followed it.
    assert_eq!(Power::power_state(&n).await.unwrap(), PowerState::On);
    assert_eq!(fleet.stats().task_polls, 2);
    // Retry-After: 1 on the 202 and on the running monitor.
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());

    let fleet = fleet_with(Faults {
        reset_as_task: true,
        task_fails: true,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    let e = n.set_power(PowerAction::On).await.unwrap_err();
    assert!(matches!(e, RedfishError::TaskFailed { .. }), "{e:?}");
    assert!(e.to_string().contains("power supply fault"), "{e}");
}

#[tokio::test]
async fn quirk_virtual_media_only_under_managers() {
    let fleet = fleet_with(Faults {
        vmedia_under_managers_only: true,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 1, "password");
    let url = image_url().await;
    n.insert_cd(&url, None).await.unwrap();
    let slot = cd_slot(&n).await;
    assert!(
        slot.odata_id.starts_with("/redfish/v1/Managers/"),
        "{}",
        slot.odata_id
    );
    assert_eq!(slot.image.as_deref(), Some(url.as_str()));
    assert_eq!(n.eject_all().await.unwrap(), 1);
}

#[tokio::test]
async fn quirk_patch_only_insert() {
    let fleet = fleet_with(Faults {
        insert_patch_only: true,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    let url = image_url().await;
    n.insert_cd(&url, None).await.unwrap();
    let s = fleet.stats();
    assert_eq!((s.insert_actions, s.insert_patches), (0, 1));
    assert_eq!(cd_slot(&n).await.inserted, Some(true));
}

#[tokio::test]
async fn quirk_inserted_write_protected_rejected() {
    let fleet = fleet_with(Faults {
        reject_insert_flags: true,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    let url = image_url().await;
    n.insert_cd(&url, None).await.unwrap();
    let s = fleet.stats();
    assert_eq!((s.insert_flags_rejected, s.insert_actions), (1, 2));
    assert_eq!(cd_slot(&n).await.image.as_deref(), Some(url.as_str()));

    // Named Supermicro, the quirk table sends the lean body first: no 400 at all, and the
    // Cd override becomes UsbCd.
    let fleet = fleet_with(Faults {
        reject_insert_flags: true,
        vendor: Some("Supermicro".into()),
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    n.insert_cd(&url, None).await.unwrap();
    assert_eq!(fleet.stats().insert_flags_rejected, 0);
    n.set_boot(BootTarget::Cd, false, BootMode::Uefi)
        .await
        .unwrap();
    assert_eq!(
        n.system().await.unwrap().boot.unwrap().target.as_deref(),
        Some("UsbCd")
    );
}

#[tokio::test]
async fn quirk_hpe_boot_on_next_server_reset() {
    let fleet = fleet_with(Faults {
        vendor: Some("HPE".into()),
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    n.insert_cd(&image_url().await, None).await.unwrap();
    let r = n.client().get(&cd_slot(&n).await.odata_id).await.unwrap();
    assert_eq!(
        r.body["Oem"]["Hpe"]["BootOnNextServerReset"], true,
        "{}",
        r.body
    );
}

#[tokio::test]
async fn quirk_503_with_retry_after_is_honoured() {
    let fleet = fleet_with(Faults {
        unavailable_first: 2,
        ..Default::default()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    let t = Instant::now();
    assert_eq!(Power::power_state(&n).await.unwrap(), PowerState::Off);
    assert_eq!(fleet.stats().unavailable_sent, 2);
    // The backoff alone would be 50 + 100 ms; Retry-After: 1 twice makes it 2 s.
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());

    // More 503s than retries: a clear error naming the status.
    let fleet = fleet_with(Faults {
        unavailable_first: 10,
        ..Default::default()
    })
    .await;
    let e = node_for(&fleet, 0, "password")
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
}

#[tokio::test]
async fn quirk_bmc_that_never_answers_times_out_clearly() {
    // Accepts connections (the kernel completes the handshake) but never reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let target = parse_address(&format!("redfish+http://{addr}/redfish/v1/Systems/1")).unwrap();
    let cfg = RedfishConfig {
        request_timeout_secs: 0.4,
        retries: 1,
        retry_backoff_secs: 0.05,
        ..Default::default()
    };
    let n = RedfishNode::new(target, &cfg).unwrap();
    let t = Instant::now();
    let e = Power::power_state(&n).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Timeout, "{e}");
    assert!(e.message.contains("did not answer within 400ms"), "{e}");
    assert!(e.message.contains(&addr.to_string()), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(silent);
}

#[tokio::test]
async fn quirk_idrac_insert_right_after_eject_is_retried() {
    // Four failures: more than the transport's own 5xx retries (2 in tests), so only the quirk
    // table's iDRAC entry (retry after a pause) gets the insert through.
    let faults = Faults {
        insert_fails_after_eject: 4,
        ..Default::default()
    };
    let url = image_url().await;

    let fleet = fleet_with(Faults {
        vendor: Some("Dell Inc.".into()),
        ..faults.clone()
    })
    .await;
    let n = node_for(&fleet, 0, "password");
    n.insert_cd(&url, None).await.unwrap();
    n.insert_cd(&url, None).await.unwrap(); // ejects, then inserts into a busy slot
    assert_eq!(fleet.stats().insert_failures_sent, 4);
    assert_eq!(cd_slot(&n).await.inserted, Some(true));

    // Without the vendor entry the same BMC defeats the client, with a clear 500.
    let fleet = fleet_with(faults).await;
    let n = node_for(&fleet, 0, "password");
    n.insert_cd(&url, None).await.unwrap();
    let e = n.insert_cd(&url, None).await.unwrap_err();
    assert_eq!(e.status(), Some(500), "{e}");
    assert!(e.to_string().contains("still being detached"), "{e}");
}
