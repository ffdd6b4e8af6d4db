//! Basic auth under attack: unknown users cost what known ones do, verified credentials are
//! remembered, and a client that keeps failing gets 429 with Retry-After.

use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common::serve::spawn_serve;
use crate::net::{self, addr_of};

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

/// Median time of `n` GET /v1/nodes from each (address, credentials) pair, and their statuses.
/// The pairs' requests alternate, so a load change on the machine hits both alike.
async fn timed<const K: usize>(
    to: std::net::SocketAddr,
    clients: [(&str, &str); K],
    n: usize,
) -> [(Duration, Vec<u16>); K] {
    let mut times = [(); K].map(|_| Vec::new());
    let mut statuses = [(); K].map(|_| Vec::new());
    for _ in 0..n {
        for (i, (from, creds)) in clients.iter().enumerate() {
            let t = Instant::now();
            let (status, _) = net::get(from, to, "/v1/nodes", creds, Duration::from_secs(30))
                .await
                .unwrap();
            times[i].push(t.elapsed());
            statuses[i].push(status);
        }
    }
    std::array::from_fn(|i| {
        times[i].sort();
        (times[i][n / 2], std::mem::take(&mut statuses[i]))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_cost_the_same_and_repeated_failures_get_429() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("op:{}\n", bcrypt::hash("pw", 11).unwrap()),
    )
    .unwrap();
    let server = spawn_serve(
        dir.path(),
        &[("IRONCAST_API__HTPASSWD", htpasswd.to_str().unwrap())],
    );
    let api = addr_of(&server.url);

    // Each from its own address, under the failure limit.
    let [(known, s1), (unknown, s2)] = timed(
        api,
        [
            ("127.0.0.3", &basic("op", "wrong")),
            ("127.0.0.4", &basic("nobody", "wrong")),
        ],
        3,
    )
    .await;
    assert!(s1.iter().chain(&s2).all(|s| *s == 401), "{s1:?} {s2:?}");
    assert!(
        unknown * 2 >= known,
        "an unknown user took {unknown:?}, a known one with a wrong password {known:?}"
    );

    // Verified once, then remembered: far cheaper than bcrypt.
    let [(first, s)] = timed(api, [(net::LEGIT, &basic("op", "pw"))], 1).await;
    let [(again, s3)] = timed(api, [(net::LEGIT, &basic("op", "pw"))], 3).await;
    assert_eq!((s, s3), (vec![200], vec![200, 200, 200]));
    assert!(again * 3 < first, "cached {again:?}, first {first:?}");

    // A guesser is refused after a few failures, before bcrypt; the legitimate user is not.
    let mut last = (0, String::new());
    for _ in 0..8 {
        last = net::get(
            net::ATTACKER,
            api,
            "/v1/nodes",
            &basic("op", "guess"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    }
    assert_eq!(last.0, 429, "{}", last.1);
    assert!(
        last.1.to_ascii_lowercase().contains("retry-after:"),
        "{}",
        last.1
    );
    let (status, _) = net::get(
        net::LEGIT,
        api,
        "/v1/nodes",
        &basic("op", "pw"),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
}
