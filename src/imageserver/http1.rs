//! The HTTP/1.1 framing the image server speaks (RFC 9112), pure: request heads in, response
//! heads out. No I/O here; [`super::conn`] drives it.
//!
//! Why not hyper: hyper owns the socket and takes bodies as buffers, so every byte of an ISO
//! would be copied through user space. Our own framing lets plain-file bytes go out with
//! `sendfile(2)`, as nginx does, with memory per connection independent of the image size.
//! The subset is small on purpose: GET and HEAD, no request bodies, keep-alive, pipelining.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// A request head larger than this is refused (431): no BMC sends that much.
pub const MAX_HEAD: usize = 16 << 10;
/// Header fields per request, at most.
const MAX_HEADERS: usize = 64;

/// One parsed request head.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    /// The path and query as sent (origin form; an absolute-form target is cut to it).
    pub target: String,
    /// HTTP/1.x minor version.
    pub minor: u8,
    pub headers: HeaderMap,
}

impl Head {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Whether the connection may carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        let connection = self
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect::<Vec<_>>();
        if self.minor == 0 {
            connection.iter().any(|t| t == "keep-alive")
        } else {
            !connection.iter().any(|t| t == "close")
        }
    }
}

/// Why a request head cannot be served; each maps to a status and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    Malformed(String),
    /// The request carries a body (Content-Length > 0 or Transfer-Encoding): nothing here takes
    /// one, and skipping it safely would mean parsing it.
    HasBody,
}

impl HeadError {
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HeadError::Malformed(_) => StatusCode::BAD_REQUEST,
            HeadError::HasBody => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            HeadError::TooLarge => format!(
                "request head too large: at most {MAX_HEAD} bytes and {MAX_HEADERS} header fields\n"
            ),
            HeadError::Malformed(why) => format!("malformed HTTP request: {why}\n"),
            HeadError::HasBody => {
                "this server takes no request bodies: send GET or HEAD without one\n".into()
            }
        }
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the head and how many bytes it used.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if used > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let bad = |why: &str| HeadError::Malformed(why.to_string());
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| bad("invalid method"))?;
    let target = origin_form(req.path.unwrap_or_default()).ok_or_else(|| bad("invalid target"))?;
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for f in req.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| bad("header name"))?;
        let value = HeaderValue::from_bytes(f.value).map_err(|_| bad("header value"))?;
        headers.append(name, value);
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0");
    if has_body {
        return Err(HeadError::HasBody);
    }
    let head = Head {
        method,
        target,
        minor: req.version.unwrap_or(1),
        headers,
    };
    Ok(Some((head, used)))
}

/// `/path?query` from an origin-form or absolute-form request target.
fn origin_form(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return Some(target.to_string());
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    Some(match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => rest[i..].to_string(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_string(),
    })
}

/// Statuses that never carry a body, so get no Content-Length of their own (RFC 9110 §8.6).
pub fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// The response head: status line, `headers`, Date, and `Connection: close` when `close`.
pub fn encode_head(status: StatusCode, headers: &HeaderMap, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + headers.len() * 48);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(Head, usize)>, HeadError> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn parses_a_complete_head_and_leaves_the_next_request() {
        let two = "GET /tok/a.iso?x=1 HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n";
        let (head, used) = parse(two).unwrap().unwrap();
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.target, "/tok/a.iso?x=1");
        assert_eq!(head.path(), "/tok/a.iso");
        assert_eq!(head.headers[header::RANGE], "bytes=0-1");
        assert!(head.keep_alive());
        let (next, _) = parse(&two[used..]).unwrap().unwrap();
        assert_eq!(next.method, Method::HEAD);
    }

    #[test]
    fn partial_heads_wait_for_more_bytes() {
        assert!(parse("GET /a HTTP/1.1\r\nHost:").unwrap().is_none());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn refuses_oversized_bodied_and_malformed_requests() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X{i}: y\r\n"))
            .collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(&many).unwrap_err(), HeadError::TooLarge);
        let post = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse(post).unwrap_err(), HeadError::HasBody);
        let chunked = "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(chunked).unwrap_err(), HeadError::HasBody);
        assert!(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .is_some());
        assert!(matches!(
            parse("GET\0 / HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            parse("GET * HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn connection_persistence_follows_the_version_and_header() {
        let ka = |s: &str| parse(s).unwrap().unwrap().0.keep_alive();
        assert!(ka("GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn absolute_form_targets_become_origin_form() {
        assert_eq!(origin_form("http://h:1/a/b?c").unwrap(), "/a/b?c");
        assert_eq!(origin_form("https://[::1]:8/").unwrap(), "/");
        assert_eq!(origin_form("http://h").unwrap(), "/");
        assert_eq!(origin_form("http://h?q").unwrap(), "/?q");
        assert_eq!(origin_form("ftp://h/x"), None);
    }

    #[test]
    fn encodes_a_response_head() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let text = String::from_utf8(encode_head(StatusCode::PARTIAL_CONTENT, &h, true)).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{text}"
        );
        assert!(text.contains("content-length: 3\r\n"));
        assert!(text.contains("\r\ndate: "));
        assert!(text.ends_with("connection: close\r\n\r\n"));
        assert!(!text.contains("keep-alive"));
        assert!(bodiless(StatusCode::NOT_MODIFIED) && !bodiless(StatusCode::OK));
    }
}
