//! The GET/HEAD handler and the body pump: base-file bytes read with pread in bounded chunks
//! on a blocking thread, patch-set bytes spliced in, handed to hyper through a small channel.
//!
//! Memory per connection is bounded by [`CHUNK`] × ([`QUEUE`] + 2): the chunk being read, the
//! queued ones and the one hyper is writing.

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::publish::Live;
use super::range::{self, ByteRange, Piece, RangeRequest};
use super::{FetchGuard, ImageServer};

/// Bytes read per pread. Measured with scripts/bench-imageserver on a quiet machine (1 GiB,
/// 16 clients, ratio to nginx and our peak RSS): 64 KiB 0.73× / 12.8 MB, 128 KiB 0.93× /
/// 18 MB, 256 KiB 1.01–1.08× / 26–27 MB. Throughput wins; memory stays bounded per connection
/// (about 4 chunks alive), not per image.
pub const CHUNK: usize = 256 << 10;
/// Chunks queued between the reading thread and hyper (QUEUE = 1 measured 0.93× / 22.7 MB).
pub const QUEUE: usize = 2;

const CONTENT_TYPE: &str = "application/x-iso9660-image";

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// GET and HEAD of `/{token}/{name}`.
pub async fn handle(
    State(server): State<Arc<ImageServer>>,
    Path((token, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into());
    let method = req.method().clone();
    let headers = req.headers();
    if !server.authorized(headers) {
        let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ironcast images\""),
        );
        return r;
    }
    let Some(live) = server.lookup(&token, &name) else {
        tracing::info!(%remote, "image fetch with unknown, expired or revoked token");
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let base = live.record.base.clone();
    let file = match tokio::task::spawn_blocking(move || File::open(base)).await {
        Ok(Ok(f)) => f,
        _ => {
            tracing::warn!(publication = %live.record.id, base = %live.record.base.display(), "published base file is gone");
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
    };
    respond(server, live, file, method, headers, remote)
}

fn respond(
    server: Arc<ImageServer>,
    live: Arc<Live>,
    file: File,
    method: Method,
    headers: &HeaderMap,
    remote: String,
) -> Response {
    let rec = &live.record;
    let len = rec.len;
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, hv(&rec.etag))
        .header(header::LAST_MODIFIED, hv(&rec.last_modified))
        .header(header::CACHE_CONTROL, "no-store");
    let range_header = get(header::RANGE).unwrap_or("").to_string();
    let mut guard = FetchGuard::new(&server, rec, remote, range_header.clone(), method.clone());
    if get(header::IF_NONE_MATCH).is_some_and(|h| range::none_match(h, &rec.etag)) {
        guard.status = 304;
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let use_range = !range_header.is_empty()
        && get(header::IF_RANGE)
            .is_none_or(|h| range::if_range_matches(h, &rec.etag, &rec.last_modified));
    let request = if use_range {
        range::parse_range(&range_header, len)
    } else {
        RangeRequest::Full
    };
    let (status, pieces, body_len) = match request {
        RangeRequest::Unsatisfiable => {
            guard.status = 416;
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, hv(&format!("bytes */{len}")))
                .header(header::CONTENT_LENGTH, 0)
                .body(Body::empty())
                .unwrap_or_default();
        }
        RangeRequest::Full => {
            builder = builder.header(header::CONTENT_TYPE, CONTENT_TYPE);
            let all = ByteRange { start: 0, end: len };
            (StatusCode::OK, vec![Piece::Data(all)], len)
        }
        RangeRequest::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            builder = builder
                .header(header::CONTENT_TYPE, CONTENT_TYPE)
                .header(header::CONTENT_RANGE, hv(&r.content_range(len)));
            (StatusCode::PARTIAL_CONTENT, vec![Piece::Data(r)], r.len())
        }
        RangeRequest::Partial(ranges) => {
            let boundary = super::publish::new_token();
            let (pieces, n) = range::multipart(&ranges, len, CONTENT_TYPE, &boundary);
            builder = builder.header(
                header::CONTENT_TYPE,
                hv(&format!("multipart/byteranges; boundary={boundary}")),
            );
            (StatusCode::PARTIAL_CONTENT, pieces, n)
        }
    };
    guard.status = status.as_u16();
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, body_len);
    if method == Method::HEAD {
        return builder.body(Body::empty()).unwrap_or_default();
    }
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(QUEUE);
    tokio::task::spawn_blocking(move || pump(&live, &file, pieces, &tx, &mut guard));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    builder.body(Body::from_stream(stream)).unwrap_or_default()
}

/// Reads the pieces in order and sends them; stops when the client goes away (the receiver
/// is dropped) or a read fails (the error aborts the response).
fn pump(
    live: &Live,
    file: &File,
    pieces: Vec<Piece>,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
    guard: &mut FetchGuard,
) {
    for piece in pieces {
        match piece {
            Piece::Literal(b) => {
                if tx.blocking_send(Ok(b)).is_err() {
                    return;
                }
            }
            Piece::Data(r) => {
                let mut pos = r.start;
                while pos < r.end {
                    let n = ((r.end - pos) as usize).min(CHUNK);
                    let mut buf = vec![0u8; n];
                    let item = match live.plan.read_at(file, pos, &mut buf) {
                        Ok(got) if got == n => Ok(Bytes::from(buf)),
                        Ok(got) => Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!(
                                "{} ended at offset {}",
                                live.record.base.display(),
                                pos + got as u64
                            ),
                        )),
                        Err(e) => Err(e),
                    };
                    let failed = item.is_err();
                    if let Err(e) = &item {
                        tracing::warn!(publication = %live.record.id, offset = pos, error = %e, "reading published image");
                        guard.error = Some(e.to_string());
                    }
                    if tx.blocking_send(item).is_err() || failed {
                        return;
                    }
                    guard.bytes += n as u64;
                    pos += n as u64;
                }
            }
        }
    }
    guard.complete = true;
}
