//! Against a real sushy-tools `sushy-emulator --fake`.

use deploy_drivers::ports::{
    BootDevice, BootMode, BootTarget, Power, PowerAction, PowerState, VirtualMedia,
};
use ironcast::redfish::{parse_address, RedfishNode};
use serde_json::Value;

use crate::support::{fast_config, file_server, Sushy};

fn node(sushy: &Sushy) -> RedfishNode {
    let target = parse_address(&sushy.base.replace("http://", "redfish+http://")).unwrap();
    RedfishNode::new(target, &fast_config()).unwrap()
}

#[tokio::test]
async fn sushy_discovery_and_power_on_off_with_delayed_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(dir.path()) else {
        return;
    };
    let n = node(&sushy);
    let found = n.discover().await.unwrap();
    assert!(
        found.system.starts_with("/redfish/v1/Systems/"),
        "{}",
        found.system
    );
    assert_eq!(Power::power_state(&n).await.unwrap(), PowerState::Off);

    Power::set_power(&n, PowerAction::On).await.unwrap();
    // sushy's fake driver applies a power change up to 11 s after the request: set_power
    // returns only once the BMC reports it, so the state is On right away.
    assert_eq!(Power::power_state(&n).await.unwrap(), PowerState::On);

    Power::set_power(&n, PowerAction::Off).await.unwrap();
    assert_eq!(Power::power_state(&n).await.unwrap(), PowerState::Off);
}

#[tokio::test]
async fn sushy_boot_override_cd_then_pxe() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(dir.path()) else {
        return;
    };
    let n = node(&sushy);
    for (target, want) in [(BootTarget::Cd, "Cd"), (BootTarget::Pxe, "Pxe")] {
        BootDevice::set_boot_device(&n, target, false, BootMode::Uefi)
            .await
            .unwrap();
        let sys: Value = n
            .client()
            .get(&n.discover().await.unwrap().system)
            .await
            .unwrap()
            .body;
        assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], want, "{sys}");
        assert_eq!(sys["Boot"]["BootSourceOverrideMode"], "UEFI", "{sys}");
    }
    BootDevice::set_boot_device(&n, BootTarget::Disk, true, BootMode::Bios)
        .await
        .unwrap();
    let sys: Value = n
        .client()
        .get(&n.discover().await.unwrap().system)
        .await
        .unwrap()
        .body;
    assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Hdd", "{sys}");
    assert_eq!(sys["Boot"]["BootSourceOverrideMode"], "Legacy", "{sys}");
}

#[tokio::test]
async fn sushy_insert_downloads_the_image_and_eject_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(dir.path()) else {
        return;
    };
    let (addr, seen) = file_server(b"not really an iso, but bytes".repeat(100)).await;
    let url = format!("http://{addr}/images/boot-7f3a.iso");
    let n = node(&sushy);

    VirtualMedia::insert_cd(&n, &url, None).await.unwrap();
    let got = seen.lock().unwrap().clone();
    assert!(
        got.iter()
            .any(|s| s.method == "GET" && s.path == "/images/boot-7f3a.iso"),
        "sushy did not fetch the image: {got:?}"
    );
    let sys = n.system().await.unwrap();
    let slot = &ironcast::redfish::vmedia::cd_slots(n.client(), &sys)
        .await
        .unwrap()[0];
    assert_eq!(slot.image.as_deref(), Some(url.as_str()));
    assert_eq!(slot.inserted, Some(true));

    // Inserting again ejects first (sushy refuses nothing, but the eject is visible).
    VirtualMedia::eject_all(&n).await.unwrap();
    let slot = &ironcast::redfish::vmedia::cd_slots(n.client(), &sys)
        .await
        .unwrap()[0];
    assert_eq!(slot.inserted, Some(false));
    assert!(
        slot.image.as_deref().unwrap_or("").is_empty(),
        "{:?}",
        slot.image
    );
    // Ejecting with nothing inserted succeeds.
    VirtualMedia::eject_all(&n).await.unwrap();
}

/// The answer-file medium of an iso-install (Windows) goes in sushy's removable slot
/// (`Floppy`/`USBStick`), not the CD, and `eject_removable` takes it out.
#[tokio::test]
async fn sushy_removable_slot_takes_the_answer_file_medium() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(dir.path()) else {
        return;
    };
    let (addr, seen) = file_server(vec![0u8; 64 * 1024]).await;
    let url = format!("http://{addr}/media/automation.img");
    let n = node(&sushy);
    VirtualMedia::insert_removable(&n, &url, None)
        .await
        .unwrap();
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|s| s.path == "/media/automation.img"),
        "sushy did not fetch the medium"
    );
    let sys = n.system().await.unwrap();
    let slots = ironcast::redfish::vmedia::removable_slots(n.client(), &sys)
        .await
        .unwrap();
    assert_eq!(slots[0].image.as_deref(), Some(url.as_str()), "{slots:?}");
    let cd = &ironcast::redfish::vmedia::cd_slots(n.client(), &sys)
        .await
        .unwrap()[0];
    assert_ne!(cd.image.as_deref(), Some(url.as_str()));
    VirtualMedia::eject_removable(&n).await.unwrap();
    let slots = ironcast::redfish::vmedia::removable_slots(n.client(), &sys)
        .await
        .unwrap();
    assert!(slots.iter().all(|s| !s.is_loaded()), "{slots:?}");
}

/// Our image server with basic auth on: the publication carries the credentials, InsertMedia
/// passes them as UserName/Password, and sushy's fetch succeeds; without them the BMC is
/// refused (401 in our fetch log) and the insert fails.
#[tokio::test]
async fn sushy_fetches_from_a_basic_auth_image_server_with_the_publication_credentials() {
    use deploy_drivers::ports::{Artifact, Publisher};
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start(dir.path()) else {
        return;
    };
    let iso = dir.path().join("auth.iso");
    std::fs::write(&iso, b"iso bytes behind basic auth".repeat(64)).unwrap();
    let cfg = ironcast::imageserver::ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        dir: dir.path().join("pubs"),
        basic_auth_user: Some("bmc".into()),
        basic_auth_password: Some("vm-s3cret".into()),
        ..Default::default()
    };
    let images = ironcast::imageserver::start(cfg, None).await.unwrap();
    let artifact = Artifact {
        len: std::fs::metadata(&iso).unwrap().len(),
        base: iso,
        patch_set: None,
    };
    let publication = images
        .server
        .publish(&artifact, "node-auth", "boot")
        .await
        .unwrap();
    let auth = publication
        .auth
        .clone()
        .expect("credentials come with the publication");
    assert_eq!(auth.username, "bmc");
    assert!(
        !format!("{auth:?}").contains("vm-s3cret"),
        "Debug shows the password"
    );
    let n = node(&sushy);

    let refused = VirtualMedia::insert_cd(&n, &publication.url, None).await;
    assert!(
        refused.is_err(),
        "sushy inserted an image it could not fetch"
    );
    let log = images.server.fetch_log();
    assert!(log.iter().all(|f| f.status == 401), "{log:?}");

    VirtualMedia::insert_cd(&n, &publication.url, Some(&auth))
        .await
        .unwrap();
    let fetched = images.server.fetch_log();
    assert!(
        fetched
            .iter()
            .any(|f| f.status == 200 && f.complete && f.bytes == artifact.len),
        "sushy did not fetch the whole image with the credentials: {fetched:?}"
    );
    let sys = n.system().await.unwrap();
    let slot = &ironcast::redfish::vmedia::cd_slots(n.client(), &sys)
        .await
        .unwrap()[0];
    assert_eq!(slot.image.as_deref(), Some(publication.url.as_str()));
    assert_eq!(slot.inserted, Some(true));
    images.shutdown().await;
}

#[tokio::test]
async fn sushy_tls_is_verified_by_default_and_trusts_a_ca_bundle_or_an_explicit_opt_out() {
    use ironcast::redfish::address::TlsVerify;
    let dir = tempfile::tempdir().unwrap();
    let Some((sushy, ca)) = Sushy::start_tls(dir.path()) else {
        return;
    };
    let address = sushy.base.replace("https://", "redfish://");
    let with = |tls: TlsVerify, cfg: ironcast::redfish::RedfishConfig| {
        let mut t = parse_address(&address).unwrap();
        t.tls = tls;
        RedfishNode::new(t, &cfg).unwrap()
    };

    let e = with(TlsVerify::Default, fast_config())
        .power_state()
        .await
        .unwrap_err();
    assert!(
        matches!(e, ironcast::redfish::RedfishError::Unreachable { .. }),
        "{e:?}"
    );
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    let n = with(TlsVerify::CaBundle(ca.clone()), fast_config());
    assert_eq!(n.power_state().await.unwrap(), PowerState::Off);

    let cfg = ironcast::redfish::RedfishConfig {
        ca_bundle: Some(ca),
        ..fast_config()
    };
    assert_eq!(
        with(TlsVerify::Default, cfg).power_state().await.unwrap(),
        PowerState::Off
    );

    assert_eq!(
        with(TlsVerify::Insecure, fast_config())
            .power_state()
            .await
            .unwrap(),
        PowerState::Off
    );
}

#[tokio::test]
async fn sushy_basic_auth_fallback_and_rejected_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sushy) = Sushy::start_with_basic_auth(dir.path(), "admin", "Sushy-Pa55") else {
        return;
    };
    let with = |password: &str| {
        let mut t = parse_address(&sushy.base.replace("http://", "redfish+http://")).unwrap();
        t.credentials = Some(ironcast::redfish::Credentials::new("admin", password));
        RedfishNode::new(t, &fast_config()).unwrap()
    };
    // No SessionService in sushy's root: the client falls back to Basic, which works.
    assert_eq!(
        with("Sushy-Pa55").power_state().await.unwrap(),
        PowerState::Off
    );
    let e = with("Wr0ng-Pa55").power_state().await.unwrap_err();
    assert!(
        matches!(e, ironcast::redfish::RedfishError::Auth { status: 401, .. }),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains("Wr0ng-Pa55"), "{e:?}");
}
