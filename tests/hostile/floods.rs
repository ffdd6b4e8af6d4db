//! Connection floods and slow clients against both listeners of one `serve`.

use std::os::unix::process::CommandExt as _;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::common::serve::{spawn_serve_with, Server};
use crate::net::{self, addr_of, ATTACKER, LEGIT};

/// The open-file limit `serve` runs under: far fewer than one flood's connections.
const NOFILE: u64 = 600;
/// Connections in one flood (the finding: 1,100 at a 1,024 limit).
const FLOOD: usize = 1100;

/// `serve` with RLIMIT_NOFILE lowered to `nofile` (soft and hard) in the child.
fn serve_limited(dir: &std::path::Path, nofile: u64, env: &[(&str, &str)]) -> Server {
    spawn_serve_with(dir, env, |cmd| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}

/// Both listeners answer the legitimate client.
async fn both_answer(server: &Server, during: &str) {
    let api = net::get_status(LEGIT, addr_of(&server.url), "/v1", Duration::from_secs(10)).await;
    assert_eq!(api, Ok(200), "the API during {during}");
    // Not a publication: the image server answers 404 from its own routing.
    let images = net::get_status(
        LEGIT,
        addr_of(&server.images_url),
        "/ipxe/00-00-00-00-00-00.ipxe",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        matches!(images, Ok(404) | Ok(401)),
        "the image server during {during}: {images:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_silent_connections_on_either_listener_leave_both_answering() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_limited(dir.path(), NOFILE, &[]);
    both_answer(&server, "no flood").await;

    let held = net::silent_flood(addr_of(&server.url), FLOOD).await;
    assert!(!held.is_empty(), "the API flood could not connect at all");
    both_answer(&server, "a flood of the API").await;
    drop(held);

    let held = net::silent_flood(addr_of(&server.images_url), FLOOD).await;
    assert!(
        !held.is_empty(),
        "the image server flood could not connect at all"
    );
    both_answer(&server, "a flood of the image server").await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_idle_connections_half_sent_heads_and_slow_bodies_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_limited(
        dir.path(),
        NOFILE,
        &[
            ("IRONCAST_API__HEAD_TIMEOUT_S", "2"),
            ("IRONCAST_API__BODY_TIMEOUT_S", "2"),
        ],
    );
    let api = addr_of(&server.url);
    let limit = Duration::from_secs(8);

    let mut idle = net::connect_from(ATTACKER, api).await.unwrap();
    let mut half = net::connect_from(ATTACKER, api).await.unwrap();
    half.write_all(b"GET /v1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut slow = net::connect_from(ATTACKER, api).await.unwrap();
    slow.write_all(
        b"POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"name\": ",
    )
    .await
    .unwrap();

    assert!(
        net::closed_within(&mut idle, limit).await.is_some(),
        "a connection that sent nothing was still open after {limit:?}"
    );
    assert!(
        net::closed_within(&mut half, limit).await.is_some(),
        "a half-sent request head was still held after {limit:?}"
    );
    assert!(
        net::closed_within(&mut slow, limit).await.is_some(),
        "a body sent too slowly was still awaited after {limit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_responses_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_limited(
        dir.path(),
        NOFILE,
        &[
            ("IRONCAST_API__WRITE_TIMEOUT_S", "2"),
            ("IRONCAST_API__HEAD_TIMEOUT_S", "5"),
        ],
    );
    let api = addr_of(&server.url);
    let mut s = net::connect_from(ATTACKER, api).await.unwrap();
    // Pipelined requests whose answers are far more than the socket buffers hold.
    let one = "GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let sent = 40_000;
    let requests = one.repeat(sent);
    let _ = tokio::time::timeout(Duration::from_secs(10), s.write_all(requests.as_bytes())).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let answered = count_responses(&mut s).await;
    assert!(
        answered < sent,
        "all {sent} responses were written to a client that read none for 6 s"
    );
    assert_eq!(
        net::get_status(LEGIT, api, "/v1", Duration::from_secs(10)).await,
        Ok(200)
    );
}

/// Reads what the server sends until it closes (or 20 s pass) and counts status lines.
async fn count_responses(s: &mut tokio::net::TcpStream) -> usize {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    let read = async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), read).await;
    all.windows(9).filter(|w| w == b"HTTP/1.1 ").count()
}
