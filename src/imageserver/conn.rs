//! The life of one connection: read a request head, ask the dispatcher for a [`Reply`],
//! write it, and go round again while the client keeps the connection alive.
//!
//! Memory per connection: the head buffer (at most [`http1::MAX_HEAD`] plus one read) and,
//! on TLS only, one read buffer while a body is sent. Image bytes on plain TCP never enter
//! user space.

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::http1::{self, Head};
use super::publish::Live;
use super::range::Piece;
use super::transport::Conn;
use super::FetchGuard;
use crate::overlay::Segment;

/// A new connection must send its first request head within this time.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle kept-alive connection is closed after this time.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes asked of the socket per read while a head is incomplete.
const READ_SIZE: usize = 4096;

/// A response ready to be written.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

pub enum Body {
    Empty,
    Bytes(Bytes),
    /// Pieces of a publication, streamed from its base file with the patch set applied.
    Image(Box<ImageBody>),
}

pub struct ImageBody {
    pub live: Arc<Live>,
    pub file: Arc<File>,
    pub pieces: Vec<Piece>,
    /// Counts the bytes sent and logs the fetch when the body is done or abandoned.
    pub(crate) guard: FetchGuard,
}

impl Reply {
    pub fn new(status: StatusCode, headers: HeaderMap, body: Body) -> Self {
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Self::new(status, headers, Body::Bytes(Bytes::from(text.into())))
    }
}

/// Turns a request into a reply: the image server's routing.
pub trait Dispatch: Send + Sync + 'static {
    fn dispatch(&self, head: Head, remote: SocketAddr) -> impl Future<Output = Reply> + Send;
}

/// Serves requests on `conn` until the client closes it, a timeout passes, an error ends it,
/// or `stop` fires while it is idle.
pub async fn serve<D: Dispatch>(
    mut conn: Conn,
    remote: SocketAddr,
    app: Arc<D>,
    stop: CancellationToken,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let head = match read_head(&mut conn, &mut buf, first, &stop).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                let reply = Reply::text(e.status(), e.message());
                if write_reply(&mut conn, reply, false, true).await.is_ok() {
                    linger(&mut conn).await;
                }
                return;
            }
        };
        first = false;
        let close = !head.keep_alive() || stop.is_cancelled();
        let head_only = head.method == axum::http::Method::HEAD;
        let reply = app.dispatch(head, remote).await;
        match write_reply(&mut conn, reply, head_only, close).await {
            Ok(()) if !close => {}
            Ok(()) => return linger(&mut conn).await,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::ConnectionAborted {
                    conn.reset_on_close();
                }
                tracing::debug!(%remote, error = %e, "image server connection ended");
                return;
            }
        }
    }
}

/// Closes our side, then reads and drops what the client still sends for a moment: closing
/// with unread bytes makes the kernel send a reset, which can destroy the response before the
/// client reads it (nginx's lingering close).
async fn linger(conn: &mut Conn) {
    const LINGER: Duration = Duration::from_secs(2);
    const LINGER_BYTES: usize = 1 << 20;
    if conn.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; READ_SIZE];
    let mut drained = 0;
    let drain = async {
        while drained < LINGER_BYTES {
            match conn.read(&mut sink).await {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Reads until `buf` starts with a complete request head, which it removes; `None` when the
/// client closed (or idled out, or shutdown began) between requests. The whole head must
/// arrive within [`HEAD_TIMEOUT`] of its first byte, so a trickle cannot hold a connection.
async fn read_head(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    first: bool,
    stop: &CancellationToken,
) -> Result<Option<Head>, http1::HeadError> {
    let now = tokio::time::Instant::now();
    let mut deadline = now + if first { HEAD_TIMEOUT } else { IDLE_TIMEOUT };
    if !buf.is_empty() {
        deadline = now + HEAD_TIMEOUT;
    }
    loop {
        if let Some((head, used)) = http1::parse_head(buf)? {
            buf.drain(..used);
            return Ok(Some(head));
        }
        let idle = buf.is_empty();
        let start = buf.len();
        buf.resize(start + READ_SIZE, 0);
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, conn.read(&mut buf[start..])) => r,
            _ = stop.cancelled(), if idle => return Ok(None),
        };
        match read {
            Ok(Ok(n)) if n > 0 => buf.truncate(start + n),
            // EOF, a reset or a timeout: nothing to answer.
            _ => return Ok(None),
        }
        if idle {
            deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
        }
    }
}

/// Writes the head and body of `reply`; for a HEAD request only the head.
async fn write_reply(
    conn: &mut Conn,
    reply: Reply,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let Reply {
        status,
        mut headers,
        body,
    } = reply;
    if !headers.contains_key(header::CONTENT_LENGTH) && !http1::bodiless(status) {
        let len = match &body {
            Body::Bytes(b) => b.len(),
            _ => 0,
        };
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    conn.cork();
    conn.write_all(&http1::encode_head(status, &headers, close))
        .await?;
    if !head_only {
        match body {
            Body::Empty => {}
            Body::Bytes(b) => conn.write_all(&b).await?,
            Body::Image(mut image) => send_image(conn, &mut image).await?,
        }
    }
    conn.flush().await
}

/// Sends the pieces of an image body: literals as they are, data ranges as segments of the
/// patch plan (base-file bytes by [`Conn::send_file`]).
async fn send_image(conn: &mut Conn, body: &mut ImageBody) -> std::io::Result<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let ImageBody {
        live,
        file,
        pieces,
        guard,
    } = body;
    let send = async {
        for piece in pieces.iter() {
            let range = match piece {
                Piece::Literal(b) => {
                    conn.write_all(b).await?;
                    continue;
                }
                Piece::Data(r) => *r,
            };
            for seg in live.plan.segments(range.start, range.end) {
                match seg {
                    Segment::Base { offset, len } => {
                        conn.send_file(file, offset, len, &mut guard.bytes).await?
                    }
                    Segment::Bytes(b) => {
                        conn.write_all(b).await?;
                        guard.bytes += b.len() as u64;
                    }
                    Segment::Zeros(mut n) => {
                        while n > 0 {
                            let k = n.min(ZEROS.len() as u64);
                            conn.write_all(&ZEROS[..k as usize]).await?;
                            guard.bytes += k;
                            n -= k;
                        }
                    }
                }
            }
        }
        Ok(())
    };
    // Revocation (or expiry) ends a transfer already under way, not only new requests: the
    // send is dropped mid-write and the connection reset (ConnectionAborted tells `serve`).
    let result: std::io::Result<()> = tokio::select! {
        r = send => r,
        _ = live.ended.cancelled() => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            format!("publication {} was revoked during the transfer", live.record.id),
        )),
    };
    match &result {
        Ok(()) => guard.complete = true,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::warn!(publication = %live.record.id, error = %e, "reading published image");
            guard.error = Some(e.to_string());
        }
        Err(_) => {} // the client went away: logged as an incomplete fetch
    }
    result
}
