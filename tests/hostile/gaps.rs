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
