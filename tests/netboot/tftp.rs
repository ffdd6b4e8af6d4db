//! The TFTP server against independent clients: tftp-hpa (plain RFC 1350, 512-byte blocks) and
//! curl (blksize and tsize negotiation), including the refusals.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use ironcast::netboot::tftp::{self, TftpSettings};

use crate::common::{self, pseudo_random};

fn root_with_files(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
    // Not a multiple of any block size used below, and more than 65535 blocks of 8 bytes:
    // a transfer at blksize 8 rolls the block number over.
    std::fs::write(
        root.join("undionly.kpxe"),
        pseudo_random(600 * 1024 + 7, 13),
    )
    .unwrap();
    std::fs::write(root.join("exact"), pseudo_random(1024, 5)).unwrap();
    std::fs::write(
        root.join("pxelinux.cfg/01-52-54-00-12-34-56"),
        "DEFAULT local\n",
    )
    .unwrap();
    std::fs::write(dir.join("secret"), "not for clients").unwrap();
    std::os::unix::fs::symlink(dir.join("secret"), root.join("escape")).unwrap();
    root
}

async fn server(root: &Path) -> tftp::Tftp {
    tftp::start("127.0.0.1:0".parse().unwrap(), TftpSettings::new(root))
        .await
        .unwrap()
}

fn tftp_hpa(port: u16, cmd: &str) -> std::process::Output {
    let bin = common::tool("tftp").unwrap();
    Command::new(bin)
        .args(["-m", "binary", "127.0.0.1", &port.to_string(), "-c"])
        .args(cmd.split(' '))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tftp_hpa_reads_files_and_is_refused_writes_and_escapes() {
    if common::tool("tftp").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = root_with_files(dir.path());
    let srv = server(&root).await;
    let port = srv.local_addr.port();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();

    for name in [
        "undionly.kpxe",
        "exact",
        "pxelinux.cfg/01-52-54-00-12-34-56",
    ] {
        let local = out_dir.join(name.replace('/', "_"));
        let cmd = format!("get {name} {}", local.display());
        let port2 = port;
        let out = tokio::task::spawn_blocking(move || tftp_hpa(port2, &cmd))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(&local).unwrap_or_default(),
            std::fs::read(root.join(name)).unwrap(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A write, a name outside the root (.. and a symlink out) and a missing file: TFTP errors.
    let upload = dir.path().join("upload");
    std::fs::write(&upload, "x").unwrap();
    for (cmd, want) in [
        (format!("put {} new", upload.display()), "Error code 2"),
        (
            format!("get ../secret {}/a", out_dir.display()),
            "Error code 2",
        ),
        (
            format!("get escape {}/b", out_dir.display()),
            "Error code 2",
        ),
        (
            format!("get missing {}/c", out_dir.display()),
            "Error code 1",
        ),
    ] {
        let c = cmd.clone();
        let out = tokio::task::spawn_blocking(move || tftp_hpa(port, &c))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(want), "{cmd}: {text}");
    }
    assert!(!root.join("new").exists(), "a write must not create a file");
    assert!(srv.metrics.refused.load(Ordering::Relaxed) >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_negotiates_blksize_and_tsize() {
    let Some(curl) = common::tool("curl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = root_with_files(dir.path());
    let srv = server(&root).await;
    let want = std::fs::read(root.join("undionly.kpxe")).unwrap();
    for blksize in ["512", "1432", "8"] {
        let url = format!("tftp://127.0.0.1:{}/undionly.kpxe", srv.local_addr.port());
        let c = curl.clone();
        let b = blksize.to_string();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(c)
                .args(["-sS", "--max-time", "60", "--tftp-blksize", &b, &url])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "blksize {blksize}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), want.len(), "blksize {blksize}");
        assert!(out.stdout == want, "blksize {blksize}: bytes differ");
    }
    // Blocks of 8 bytes for 600 KiB pass block number 65535: the rollover to 0 worked.
    assert!(want.len() / 8 > 65535);
    // The server counts a transfer when the last ACK arrives, which may be after curl exits.
    common::wait_until("three completed transfers", || {
        srv.metrics.completed.load(Ordering::Relaxed) == 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_packets_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with_files(dir.path());
    let srv = server(&root).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [
        &b"\x00"[..],
        b"\x00\x09abc",
        b"\x00\x01name-without-nul",
        b"\x00\x04\x00",
    ] {
        sock.send_to(junk, srv.local_addr).await.unwrap();
    }
    // Then a good request is still served: the server kept going.
    sock.send_to(b"\x00\x01exact\x00octet\x00", srv.local_addr)
        .await
        .unwrap();
    let mut buf = [0u8; 600];
    let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("no DATA after the junk")
        .unwrap();
    assert_eq!(&buf[..4], &[0, 3, 0, 1], "DATA block 1");
    assert_eq!(n, 516);
    assert_eq!(srv.metrics.malformed.load(Ordering::Relaxed), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_beyond_the_bound_are_told_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with_files(dir.path());
    let mut settings = TftpSettings::new(&root);
    settings.max_transfers = 2;
    let srv = tftp::start("127.0.0.1:0".parse().unwrap(), settings)
        .await
        .unwrap();
    // Three clients that never ACK: two hold the slots, the third is refused.
    let mut answers = Vec::new();
    for _ in 0..3 {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(b"\x00\x01undionly.kpxe\x00octet\x00", srv.local_addr)
            .await
            .unwrap();
        let mut buf = [0u8; 600];
        let (n, _) =
            tokio::time::timeout(std::time::Duration::from_secs(5), sock.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
        answers.push(buf[..n].to_vec());
    }
    assert_eq!(&answers[0][..2], &[0, 3]);
    assert_eq!(&answers[1][..2], &[0, 3]);
    assert_eq!(&answers[2][..4], &[0, 5, 0, 0], "third: ERROR busy");
    assert_eq!(srv.metrics.busy.load(Ordering::Relaxed), 1);
}
