//! TFTP packets (RFC 1350) with option negotiation (RFC 2347) for blksize (RFC 2348),
//! timeout and tsize (RFC 2349): pure parse and encode, table-tested.

/// Smallest and largest block size RFC 2348 allows.
pub const MIN_BLKSIZE: u16 = 8;
pub const MAX_BLKSIZE: u16 = 65464;
/// The block size without negotiation.
pub const DEFAULT_BLKSIZE: u16 = 512;

/// TFTP error codes (RFC 1350 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    NotDefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    IllegalOperation = 4,
}

/// A packet a client sends to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Read request: file name, transfer mode, options in the order given.
    Read(Request),
    /// Write request: always refused by this read-only server.
    Write(Request),
    Ack(u16),
    Error(u16, String),
    /// DATA or OACK from a client: not something a server takes.
    Unexpected(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: String,
    /// Option names lowercased, values as sent.
    pub options: Vec<(String, String)>,
}

/// Why a datagram is not a TFTP packet (dropped and counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("datagram shorter than a TFTP opcode")]
    Short,
    #[error("unknown TFTP opcode {0}")]
    Opcode(u16),
    #[error("request field is not NUL-terminated text")]
    Field,
    #[error("ACK or ERROR of the wrong length")]
    Length,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Splits NUL-terminated printable strings; the last one must be terminated too.
fn strings(b: &[u8]) -> Result<Vec<String>, PacketError> {
    if b.last() != Some(&0) {
        return Err(PacketError::Field);
    }
    b[..b.len() - 1]
        .split(|c| *c == 0)
        .map(|s| {
            let text = std::str::from_utf8(s).map_err(|_| PacketError::Field)?;
            if text.chars().any(char::is_control) {
                return Err(PacketError::Field);
            }
            Ok(text.to_string())
        })
        .collect()
}

fn request(b: &[u8]) -> Result<Request, PacketError> {
    let mut fields = strings(b)?.into_iter();
    let filename = fields.next().filter(|f| !f.is_empty());
    let mode = fields.next();
    let (Some(filename), Some(mode)) = (filename, mode) else {
        return Err(PacketError::Field);
    };
    let rest: Vec<String> = fields.collect();
    if rest.len() % 2 != 0 {
        return Err(PacketError::Field);
    }
    let options = rest
        .chunks(2)
        .map(|kv| (kv[0].to_ascii_lowercase(), kv[1].clone()))
        .collect();
    Ok(Request {
        filename,
        mode: mode.to_ascii_lowercase(),
        options,
    })
}

/// Parses one datagram from a client.
pub fn parse(b: &[u8]) -> Result<Packet, PacketError> {
    let op = u16_at(b, 0).ok_or(PacketError::Short)?;
    let body = &b[2..];
    match op {
        1 => Ok(Packet::Read(request(body)?)),
        2 => Ok(Packet::Write(request(body)?)),
        3 | 6 => Ok(Packet::Unexpected(op)),
        4 if body.len() == 2 => Ok(Packet::Ack(u16_at(body, 0).ok_or(PacketError::Length)?)),
        5 if body.len() >= 3 => {
            let code = u16_at(body, 0).ok_or(PacketError::Length)?;
            let text = strings(&body[2..]).map(|s| s.join(" ")).unwrap_or_default();
            Ok(Packet::Error(code, text))
        }
        4 | 5 => Err(PacketError::Length),
        other => Err(PacketError::Opcode(other)),
    }
}

pub fn data(block: u16, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&3u16.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.extend_from_slice(&5u16.to_be_bytes());
    out.extend_from_slice(&(code as u16).to_be_bytes());
    out.extend_from_slice(message.as_bytes());
    out.push(0);
    out
}

pub fn oack(options: &[(String, String)]) -> Vec<u8> {
    let mut out = 6u16.to_be_bytes().to_vec();
    for (k, v) in options {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// What a read request negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    /// Retransmission timeout in seconds, when the client set one.
    pub timeout_s: Option<u8>,
    /// Options accepted, to answer in an OACK (empty: no OACK, plain RFC 1350).
    pub accepted: Vec<(String, String)>,
}

/// Accepts the options this server knows (blksize capped at `max_blksize`, timeout 1–255 s,
/// tsize answered with `size`) and ignores the rest, as RFC 2347 asks.
pub fn negotiate(options: &[(String, String)], size: u64, max_blksize: u16) -> Negotiated {
    let mut n = Negotiated {
        blksize: DEFAULT_BLKSIZE,
        timeout_s: None,
        accepted: Vec::new(),
    };
    for (name, value) in options {
        match name.as_str() {
            "blksize" => {
                if let Ok(v) = value.parse::<u32>() {
                    if v >= MIN_BLKSIZE as u32 {
                        let v = v.min(max_blksize.clamp(MIN_BLKSIZE, MAX_BLKSIZE) as u32) as u16;
                        n.blksize = v;
                        n.accepted.push((name.clone(), v.to_string()));
                    }
                }
            }
            "timeout" => {
                if let Ok(v @ 1..=255) = value.parse::<u16>() {
                    n.timeout_s = Some(v as u8);
                    n.accepted.push((name.clone(), v.to_string()));
                }
            }
            "tsize" => n.accepted.push((name.clone(), size.to_string())),
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(fields: &[&str]) -> Vec<u8> {
        let mut b = vec![0, 1];
        for f in fields {
            b.extend_from_slice(f.as_bytes());
            b.push(0);
        }
        b
    }

    #[test]
    fn parse_table() {
        let r = parse(&rrq(&[
            "undionly.kpxe",
            "octet",
            "BLKSIZE",
            "1432",
            "tsize",
            "0",
        ]))
        .unwrap();
        assert_eq!(
            r,
            Packet::Read(Request {
                filename: "undionly.kpxe".into(),
                mode: "octet".into(),
                options: vec![
                    ("blksize".into(), "1432".into()),
                    ("tsize".into(), "0".into())
                ],
            })
        );
        let mut w = rrq(&["x", "octet"]);
        w[1] = 2;
        assert!(matches!(parse(&w), Ok(Packet::Write(_))));
        assert_eq!(parse(&[0, 4, 0, 7]), Ok(Packet::Ack(7)));
        assert_eq!(parse(&[0, 4, 0]), Err(PacketError::Length));
        assert_eq!(parse(&[0]), Err(PacketError::Short));
        assert_eq!(parse(&[0, 9, 1, 2]), Err(PacketError::Opcode(9)));
        assert_eq!(parse(&[0, 1, b'a', 0, b'o']), Err(PacketError::Field));
        assert_eq!(parse(&rrq(&["", "octet"])), Err(PacketError::Field));
        assert_eq!(parse(&rrq(&["a"])), Err(PacketError::Field));
        assert_eq!(
            parse(&rrq(&["a", "octet", "blksize"])),
            Err(PacketError::Field)
        );
        assert_eq!(parse(&rrq(&["a\x01b", "octet"])), Err(PacketError::Field));
        assert_eq!(parse(&[0, 3, 0, 1]), Ok(Packet::Unexpected(3)));
    }

    #[test]
    fn encode_table() {
        assert_eq!(data(1, b"ab"), vec![0, 3, 0, 1, b'a', b'b']);
        assert_eq!(
            error(ErrorCode::AccessViolation, "no"),
            vec![0, 5, 0, 2, b'n', b'o', 0]
        );
        assert_eq!(
            oack(&[("tsize".into(), "12".into())]),
            b"\x00\x06tsize\x0012\x00".to_vec()
        );
    }

    #[test]
    fn negotiate_table() {
        let opts = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let n = negotiate(&opts(&[("blksize", "1432"), ("tsize", "0")]), 99, 1468);
        assert_eq!(n.blksize, 1432);
        assert_eq!(n.accepted, opts(&[("blksize", "1432"), ("tsize", "99")]));
        // Capped at the server's maximum; too small or garbage ignored.
        assert_eq!(
            negotiate(&opts(&[("blksize", "65464")]), 0, 1468).blksize,
            1468
        );
        assert!(negotiate(&opts(&[("blksize", "7")]), 0, 1468)
            .accepted
            .is_empty());
        assert!(negotiate(&opts(&[("blksize", "x")]), 0, 1468)
            .accepted
            .is_empty());
        let t = negotiate(&opts(&[("timeout", "3"), ("windowsize", "4")]), 0, 1468);
        assert_eq!(t.timeout_s, Some(3));
        assert_eq!(t.accepted, opts(&[("timeout", "3")]));
        assert!(negotiate(&opts(&[("timeout", "0")]), 0, 1468)
            .accepted
            .is_empty());
        assert_eq!(negotiate(&[], 0, 1468).blksize, DEFAULT_BLKSIZE);
    }
}
