//! Raw TCP clients with a chosen source address, and the smallest HTTP/1.1 exchange.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The attacker's address.
pub const ATTACKER: &str = "127.0.0.1";
/// The legitimate client's address.
pub const LEGIT: &str = "127.0.0.2";

/// `host:port` of a URL like `http://127.0.0.1:1234`.
pub fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Connects to `to` from `from` (an IP address).
pub async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from.parse().unwrap(), 0))?;
    sock.connect(to).await
}

/// Opens `n` connections from the attacker that send nothing; keeps those that connected.
/// Stops early once connecting times out three times in a row (the backlog is full).
pub async fn silent_flood(to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    let mut timeouts = 0;
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_millis(500), connect_from(ATTACKER, to)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(_)) => {}
            Err(_) if timeouts == 2 => break,
            Err(_) => timeouts += 1,
        }
    }
    held
}

/// GET `path` from `from` with `Connection: close`: the status code, or why there was none
/// within `limit`.
pub async fn get_status(
    from: &str,
    to: SocketAddr,
    path: &str,
    limit: Duration,
) -> Result<u16, String> {
    get(from, to, path, "", limit)
        .await
        .map(|(status, _)| status)
}

/// GET `path` from `from` with `extra` header lines: the status and the whole response.
pub async fn get(
    from: &str,
    to: SocketAddr,
    path: &str,
    extra: &str,
    limit: Duration,
) -> Result<(u16, String), String> {
    let exchange = async {
        let mut s = connect_from(from, to).await.map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {to}\r\n{extra}Connection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))?;
        Ok((status, text))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| format!("no answer within {limit:?}"))?
}

/// Waits until the server closes `s` (EOF or reset), reading and dropping what it sends;
/// the time it took, or None when it stayed open for `limit`.
pub async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    let drain = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, drain)
        .await
        .ok()
        .map(|()| start.elapsed())
}
