//! HTTP range and conditional-request logic (RFC 9110 §13, §14), pure: header values in,
//! decisions out; and the layout of a multipart/byteranges body.

use bytes::Bytes;

/// At most this many ranges are honoured in one request; more and the Range header is
/// ignored (RFC 9110 §14.2 lets a server ignore it), as nginx's `max_ranges`. Overlapping
/// ranges are merged ([`coalesce`]), so together they never cost more than the file.
pub const MAX_RANGES: usize = 64;

/// Bytes `[start, end)` of the representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// The Content-Range value, e.g. "bytes 0-99/1000".
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end - 1, total)
    }
}

/// What a Range header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) Range header: send everything with 200.
    Full,
    /// 206 with these ranges, in the order asked.
    Partial(Vec<ByteRange>),
    /// 416: syntactically fine but no range overlaps the representation.
    Unsatisfiable,
}

/// Parses a Range header against a representation of `len` bytes. Invalid syntax or an
/// unknown unit means "ignore the header" (RFC 9110 §14.2).
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some((unit, specs)) = header.trim().split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Full;
    }
    let mut out = Vec::new();
    let mut count = 0;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return RangeRequest::Full;
        }
        let Some((a, b)) = spec.split_once('-') else {
            return RangeRequest::Full;
        };
        let (a, b) = (a.trim(), b.trim());
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                None
            } else {
                s.parse().ok()
            }
        };
        if a.is_empty() {
            // Suffix: the last `n` bytes.
            let Some(n) = num(b) else {
                return RangeRequest::Full;
            };
            if n > 0 && len > 0 {
                out.push(ByteRange {
                    start: len - n.min(len),
                    end: len,
                });
            }
            continue;
        }
        let Some(first) = num(a) else {
            return RangeRequest::Full;
        };
        let last = if b.is_empty() {
            None
        } else {
            match num(b) {
                Some(l) if l >= first => Some(l),
                _ => return RangeRequest::Full,
            }
        };
        if first < len {
            let end = last.map_or(len, |l| l.saturating_add(1).min(len));
            out.push(ByteRange { start: first, end });
        }
    }
    if count == 0 {
        RangeRequest::Full
    } else if out.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial(coalesce(out))
    }
}

/// Ranges as asked when none overlap; else sorted and merged, so no byte is sent twice
/// (RFC 9110 §14.2 allows it; Apache does the same since CVE-2011-3192). 64 overlapping
/// whole-file ranges then cost one file, not 64.
pub fn coalesce(ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| (r.start, r.end));
    if sorted.windows(2).all(|w| w[0].end <= w[1].start) {
        return ranges;
    }
    let mut merged: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Weak comparison of an If-None-Match list against our ETag (`*` matches anything).
pub fn none_match(header: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

/// Whether an If-Range value still designates our representation: a strong ETag match, or the
/// exact Last-Modified date (RFC 9110 §13.1.5).
pub fn if_range_matches(header: &str, etag: &str, last_modified: &str) -> bool {
    let h = header.trim();
    if h.starts_with('"') || h.starts_with("W/") {
        !h.starts_with("W/") && !etag.starts_with("W/") && h == etag
    } else {
        h == last_modified
    }
}

/// One piece of a response body: literal bytes (multipart headers) or representation bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(Bytes),
    Data(ByteRange),
}

/// The pieces and exact length of a multipart/byteranges body (RFC 9110 §14.6).
pub fn multipart(
    ranges: &[ByteRange],
    total: u64,
    content_type: &str,
    boundary: &str,
) -> (Vec<Piece>, u64) {
    let mut pieces = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut len = 0u64;
    for (i, r) in ranges.iter().enumerate() {
        let head = format!(
            "{}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            if i == 0 { "" } else { "\r\n" },
            r.content_range(total)
        );
        len += head.len() as u64 + r.len();
        pieces.push(Piece::Literal(Bytes::from(head)));
        pieces.push(Piece::Data(*r));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    len += tail.len() as u64;
    pieces.push(Piece::Literal(Bytes::from(tail)));
    (pieces, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn range_table() {
        use RangeRequest::*;
        let cases: &[(&str, u64, RangeRequest)] = &[
            ("bytes=0-0", 10, Partial(vec![r(0, 1)])),
            ("bytes=0-", 10, Partial(vec![r(0, 10)])),
            ("bytes=5-100", 10, Partial(vec![r(5, 10)])),
            ("bytes=-3", 10, Partial(vec![r(7, 10)])),
            ("bytes=-30", 10, Partial(vec![r(0, 10)])),
            ("BYTES = 1-2, 4-4", 10, Partial(vec![r(1, 3), r(4, 5)])),
            ("bytes=0-5,3-8", 10, Partial(vec![r(0, 9)])),
            ("bytes=6-7,0-1,1-3", 10, Partial(vec![r(0, 4), r(6, 8)])),
            ("bytes=6-7,0-1", 10, Partial(vec![r(6, 8), r(0, 2)])),
            ("bytes=0-,0-,0-,2-3", 10, Partial(vec![r(0, 10)])),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20, 30-", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=12-20,2-3", 10, Partial(vec![r(2, 4)])),
            ("bytes=5-2", 10, Full),
            ("bytes=a-b", 10, Full),
            ("items=0-1", 10, Full),
            ("bytes=", 10, Full),
            ("bytes=1", 10, Full),
            ("bytes=+1-2", 10, Full),
        ];
        for (h, len, want) in cases {
            assert_eq!(&parse_range(h, *len), want, "{h} over {len}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse_range(&many, 10), Full);
    }

    #[test]
    fn conditionals() {
        let etag = "\"abc\"";
        assert!(none_match("\"x\", \"abc\"", etag));
        assert!(none_match("W/\"abc\"", etag));
        assert!(none_match("*", etag));
        assert!(!none_match("\"abd\"", etag));
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert!(if_range_matches("\"abc\"", etag, lm));
        assert!(!if_range_matches("W/\"abc\"", etag, lm));
        assert!(!if_range_matches("\"abd\"", etag, lm));
        assert!(if_range_matches(lm, etag, lm));
        assert!(!if_range_matches("Mon, 07 Nov 1994 08:49:37 GMT", etag, lm));
    }

    #[test]
    fn multipart_length_is_exact() {
        let ranges = [r(0, 2), r(5, 10)];
        let (pieces, len) = multipart(&ranges, 10, "application/octet-stream", "B");
        let mut body = Vec::new();
        let data = b"0123456789";
        for p in pieces {
            match p {
                Piece::Literal(b) => body.extend_from_slice(&b),
                Piece::Data(r) => body.extend_from_slice(&data[r.start as usize..r.end as usize]),
            }
        }
        assert_eq!(body.len() as u64, len);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("--B\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n--B\r\n"));
        assert!(text.ends_with("Content-Range: bytes 5-9/10\r\n\r\n56789\r\n--B--\r\n"));
    }
}
