//! The GET/HEAD handler of publications: checks auth and token, then answers with the
//! status, headers and pieces the request asks for (RFC 9110 ranges and conditionals, decided
//! in [`range`]). The bytes are sent by [`super::conn`].

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use super::conn::{Body, ImageBody, Reply};
use super::http1::Head;
use super::publish::Live;
use super::range::{self, ByteRange, Piece, RangeRequest};
use super::{FetchGuard, ImageServer};

/// The media type of a publication, by its name's ending (ISOs, else disk images as bytes).
fn content_type(name: &str) -> &'static str {
    if name.ends_with(".iso") {
        "application/x-iso9660-image"
    } else {
        "application/octet-stream"
    }
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// GET and HEAD of `/{token}/{name}`.
pub async fn handle(
    server: &Arc<ImageServer>,
    token: &str,
    name: &str,
    head: &Head,
    remote: SocketAddr,
) -> Reply {
    let remote = remote.to_string();
    if !server.authorized(&head.headers) {
        return unauthorized();
    }
    let Some(live) = server.lookup(token, name) else {
        tracing::info!(%remote, "image fetch with unknown, expired or revoked token");
        return Reply::text(StatusCode::NOT_FOUND, "not found\n");
    };
    let base = live.record.base.clone();
    let file = match tokio::task::spawn_blocking(move || File::open(base)).await {
        Ok(Ok(f)) => f,
        _ => {
            tracing::warn!(publication = %live.record.id, base = %live.record.base.display(), "published base file is gone");
            return Reply::text(StatusCode::NOT_FOUND, "not found\n");
        }
    };
    respond(
        server.clone(),
        live,
        file,
        &head.method,
        &head.headers,
        remote,
    )
}

fn respond(
    server: Arc<ImageServer>,
    live: Arc<Live>,
    file: File,
    method: &Method,
    req: &HeaderMap,
    remote: String,
) -> Reply {
    let rec = &live.record;
    let len = rec.len;
    let get = |h: header::HeaderName| req.get(h).and_then(|v| v.to_str().ok());
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, hv(&rec.etag));
    headers.insert(header::LAST_MODIFIED, hv(&rec.last_modified));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let range_header = get(header::RANGE).unwrap_or("").to_string();
    let mut guard = FetchGuard::new(&server, rec, remote, range_header.clone(), method.clone());
    if get(header::IF_NONE_MATCH).is_some_and(|h| range::none_match(h, &rec.etag)) {
        guard.status = 304;
        return Reply::new(StatusCode::NOT_MODIFIED, headers, Body::Empty);
    }
    let use_range = !range_header.is_empty()
        && get(header::IF_RANGE)
            .is_none_or(|h| range::if_range_matches(h, &rec.etag, &rec.last_modified));
    let request = if use_range {
        range::parse_range(&range_header, len)
    } else {
        RangeRequest::Full
    };
    let media_type = content_type(&rec.name);
    let content_type = HeaderValue::from_static(media_type);
    let (status, pieces, body_len) = match request {
        RangeRequest::Unsatisfiable => {
            guard.status = 416;
            headers.insert(header::CONTENT_RANGE, hv(&format!("bytes */{len}")));
            return Reply::new(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::Empty);
        }
        RangeRequest::Full => {
            headers.insert(header::CONTENT_TYPE, content_type);
            let all = ByteRange { start: 0, end: len };
            (StatusCode::OK, vec![Piece::Data(all)], len)
        }
        RangeRequest::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            headers.insert(header::CONTENT_TYPE, content_type);
            headers.insert(header::CONTENT_RANGE, hv(&r.content_range(len)));
            (StatusCode::PARTIAL_CONTENT, vec![Piece::Data(r)], r.len())
        }
        RangeRequest::Partial(ranges) => {
            let boundary = super::publish::new_token();
            let (pieces, n) = range::multipart(&ranges, len, media_type, &boundary);
            headers.insert(
                header::CONTENT_TYPE,
                hv(&format!("multipart/byteranges; boundary={boundary}")),
            );
            (StatusCode::PARTIAL_CONTENT, pieces, n)
        }
    };
    guard.status = status.as_u16();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    if method == Method::HEAD {
        return Reply::new(status, headers, Body::Empty);
    }
    let body = ImageBody {
        live,
        file: Arc::new(file),
        pieces,
        guard,
    };
    Reply::new(status, headers, Body::Image(Box::new(body)))
}

/// 401 asking for the image server's basic-auth credentials.
pub(crate) fn unauthorized() -> Reply {
    let mut r = Reply::text(StatusCode::UNAUTHORIZED, "authentication required\n");
    r.headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"ironcast images\""),
    );
    r
}
