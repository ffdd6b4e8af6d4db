//! Smaller gaps: the iPXE routes behind the image server's auth, links never built from the
//! Host header, absurd config values refused.

use std::time::Duration;

use base64::Engine as _;

use crate::common::serve::spawn_serve;
use crate::net::{self, addr_of, LEGIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipxe_scripts_need_the_image_servers_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ironcast::imageserver::ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        dir: dir.path().join("pubs"),
        basic_auth_user: Some("bmc".into()),
        basic_auth_password: Some("s3cret".into()),
        ..Default::default()
    };
    let images = ironcast::imageserver::start(cfg, Some(ironcast::netboot::router(dir.path())))
        .await
        .unwrap();
    let path = "/ipxe/52-54-00-12-34-56.ipxe";
    let (status, _) = net::get(LEGIT, images.local_addr, path, "", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, 401);
    let token = base64::engine::general_purpose::STANDARD.encode("bmc:s3cret");
    let creds = format!("Authorization: Basic {token}\r\n");
    let (status, _) = net::get(
        LEGIT,
        images.local_addr,
        path,
        &creds,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_ne!(status, 401);
    images.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_location_never_come_from_the_host_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_serve(dir.path(), &[]);
    let (status, resp) = net::get(
        LEGIT,
        addr_of(&server.url),
        "/v1",
        "Host: evil.example\r\n",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(!resp.contains("evil.example"), "{resp}");
    assert!(
        resp.contains(&server.url),
        "links use the bound address: {resp}"
    );
}

#[test]
fn absurd_config_values_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, named) in [
        (
            "IRONCAST_IMAGESERVER__TOKEN_TTL",
            "99999999999d",
            "token_ttl",
        ),
        ("IRONCAST_IMAGESERVER__TOKEN_TTL", "1", "token_ttl"),
        ("IRONCAST_API__MAX_CONNECTIONS", "0", "max_connections"),
        ("IRONCAST_API__HEAD_TIMEOUT_S", "999999", "head_timeout_s"),
    ] {
        let out = std::process::Command::new(crate::common::ironcast_bin())
            .arg("serve")
            .env("IRONCAST_CONDUCTOR__STATE_DIR", dir.path())
            .env("IRONCAST_API__BIND", "127.0.0.1:0")
            .env("IRONCAST_IMAGESERVER__BIND", "127.0.0.1:0")
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{var}={value}: {err}");
    }
}

/// A slow real client (curl at 4 MiB/s on a 256 MiB image, about a minute) is cut off when
/// the publication is revoked: the server stops sending at once (its fetch record is written
/// with the bytes sent so far), resets the connection, and curl fails once it has read what
/// its own socket buffer already held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_cuts_a_transfer_in_flight() {
    use deploy_drivers::ports::{Artifact, Publisher};
    let curl = crate::common::tool("curl").expect("curl");
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("big.iso");
    let len: u64 = 256 << 20;
    std::fs::File::create(&base).unwrap().set_len(len).unwrap();
    let cfg = ironcast::imageserver::ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        dir: dir.path().join("pubs"),
        ..Default::default()
    };
    let images = ironcast::imageserver::start(cfg, None).await.unwrap();
    let art = Artifact {
        base: base.clone(),
        patch_set: None,
        len,
    };
    let publication = images.server.publish(&art, "node-r", "big").await.unwrap();
    let out = dir.path().join("got");
    let client = tokio::process::Command::new(curl)
        .args(["-s", "--limit-rate", "4M", "-o"])
        .arg(&out)
        .arg(&publication.url)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Let the transfer get under way.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        images.server.fetch_log().is_empty(),
        "transfer still running"
    );
    images.server.revoke(&publication.id).await.unwrap();
    // The server side ends within moments: the fetch is logged as incomplete.
    let mut record = None;
    for _ in 0..40 {
        record = images.server.fetch_log().into_iter().next();
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let record = record.expect("the transfer was still running 2 s after the revocation");
    assert!(!record.complete, "{record:?}");
    assert!(
        record.bytes < len / 2,
        "sent {} of {len} bytes",
        record.bytes
    );
    let status = tokio::time::timeout(Duration::from_secs(60), client.wait_with_output())
        .await
        .expect("curl still downloading 60 s after the revocation")
        .unwrap()
        .status;
    let got = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert!(!status.success(), "curl exit after revocation: {status}");
    assert!(got <= record.bytes, "received {got}, sent {}", record.bytes);
    images.shutdown().await;
}
