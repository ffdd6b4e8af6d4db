//! The capture stream: what the agent uploads (`PUT /v1/agent/{node}/commands/{id}/upload`)
//! and the conductor reads. Ours, little-endian, in order:
//!
//! ```text
//! header   "ICCAPT01" (8) | virtual size u64 | chunk bytes u32 | format u8 | 0 (3)
//! chunk*   kind u8 (1 zstd, 2 raw) | disk offset u64 | raw length u32 | stored length u32 | bytes
//! end      kind u8 = 0xff | sha256 of every byte before this digest (32)
//! ```
//!
//! Chunks come in increasing offset order, each at a multiple of the chunk size; a chunk not
//! sent reads as zeros. A `zstd` chunk is one zstd frame that decodes to `raw length` bytes;
//! a `raw` chunk is sent as it is (compression did not make it smaller). The trailing digest
//! makes a truncated or altered stream fail before anything is committed. Pure: encoding
//! writes to any `Write`, decoding reads any `Read`.

use std::io::{self, Read, Write};

use deploy_drivers::CaptureFormat;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"ICCAPT01";
const KIND_ZSTD: u8 = 1;
const KIND_RAW: u8 = 2;
const KIND_END: u8 = 0xff;
/// Largest chunk a stream may declare (a qcow2 cluster is at most 2 MiB).
pub const MAX_CHUNK: u32 = 4 << 20;

/// What the stream is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub virtual_size: u64,
    pub chunk_bytes: u32,
    pub format: CaptureFormat,
}

/// How a chunk's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// One zstd frame.
    Zstd,
    /// The chunk's bytes as they are.
    Raw,
}

/// One piece of the disk that is not all zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub raw_len: u32,
    pub stored: Stored,
    pub bytes: Vec<u8>,
}

/// Why a stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("reading the capture stream: {0}")]
    Io(#[from] io::Error),
    #[error("the capture stream is malformed: {0}")]
    Malformed(String),
    #[error("the capture stream's checksum does not match (sent {sent}, received {got}): it was altered or cut in transit")]
    Checksum { sent: String, got: String },
}

fn format_code(f: CaptureFormat) -> u8 {
    match f {
        CaptureFormat::Qcow2 => 0,
        CaptureFormat::RawZst => 1,
    }
}

/// Writes a stream, hashing what it writes.
pub struct Encoder<W: Write> {
    out: W,
    hash: Sha256,
    written: u64,
}

impl<W: Write> Encoder<W> {
    pub fn new(mut out: W, header: &Header) -> io::Result<Encoder<W>> {
        let mut b = Vec::with_capacity(24);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&header.virtual_size.to_le_bytes());
        b.extend_from_slice(&header.chunk_bytes.to_le_bytes());
        b.push(format_code(header.format));
        b.extend_from_slice(&[0; 3]);
        out.write_all(&b)?;
        Ok(Encoder {
            out,
            hash: Sha256::new_with_prefix(&b),
            written: b.len() as u64,
        })
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.hash.update(b);
        self.written += b.len() as u64;
        Ok(())
    }

    pub fn chunk(&mut self, chunk: &Chunk) -> io::Result<()> {
        let mut head = [0u8; 17];
        head[0] = match chunk.stored {
            Stored::Zstd => KIND_ZSTD,
            Stored::Raw => KIND_RAW,
        };
        head[1..9].copy_from_slice(&chunk.offset.to_le_bytes());
        head[9..13].copy_from_slice(&chunk.raw_len.to_le_bytes());
        head[13..17].copy_from_slice(&(chunk.bytes.len() as u32).to_le_bytes());
        self.put(&head)?;
        self.put(&chunk.bytes)
    }

    /// Writes the end record; returns the writer, the stream's length and its sha256 (hex).
    pub fn finish(mut self) -> io::Result<(W, u64, String)> {
        self.put(&[KIND_END])?;
        let digest = self.hash.finalize();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok((
            self.out,
            self.written + digest.len() as u64,
            hex::encode(digest),
        ))
    }
}

/// Reads a stream, checking each record against the header as it comes.
pub struct Decoder<R: Read> {
    input: R,
    hash: Sha256,
    pub header: Header,
    /// Where the next chunk may start (one past the last chunk's offset).
    next: u64,
    /// Bytes read so far.
    pub read: u64,
}

impl<R: Read> Decoder<R> {
    pub fn new(mut input: R) -> Result<Decoder<R>, WireError> {
        let mut b = [0u8; 24];
        input.read_exact(&mut b).map_err(truncated)?;
        if &b[..8] != MAGIC {
            return Err(WireError::Malformed(
                "it does not start with ICCAPT01: the agent is not an ironcast agent of this version".into(),
            ));
        }
        let virtual_size = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        let chunk_bytes = u32::from_le_bytes(b[16..20].try_into().expect("4 bytes"));
        let format = match b[20] {
            0 => CaptureFormat::Qcow2,
            1 => CaptureFormat::RawZst,
            f => return Err(WireError::Malformed(format!("unknown format code {f}"))),
        };
        if !(512..=MAX_CHUNK).contains(&chunk_bytes) || !chunk_bytes.is_power_of_two() {
            return Err(WireError::Malformed(format!(
                "chunk size {chunk_bytes} is not a power of two from 512 to {MAX_CHUNK}"
            )));
        }
        Ok(Decoder {
            input,
            hash: Sha256::new_with_prefix(b),
            header: Header {
                virtual_size,
                chunk_bytes,
                format,
            },
            next: 0,
            read: 24,
        })
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<(), WireError> {
        self.input.read_exact(buf).map_err(truncated)?;
        self.hash.update(&*buf);
        self.read += buf.len() as u64;
        Ok(())
    }

    /// The next chunk, or `None` at a verified end.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, WireError> {
        let mut kind = [0u8; 1];
        self.take(&mut kind)?;
        if kind[0] == KIND_END {
            let got = hex::encode(self.hash.clone().finalize());
            let mut sent = [0u8; 32];
            self.input.read_exact(&mut sent).map_err(truncated)?;
            self.read += 32;
            let sent = hex::encode(sent);
            return if sent == got {
                Ok(None)
            } else {
                Err(WireError::Checksum { sent, got })
            };
        }
        let stored = match kind[0] {
            KIND_ZSTD => Stored::Zstd,
            KIND_RAW => Stored::Raw,
            k => return Err(WireError::Malformed(format!("unknown record kind {k}"))),
        };
        let mut head = [0u8; 16];
        self.take(&mut head)?;
        let offset = u64::from_le_bytes(head[0..8].try_into().expect("8 bytes"));
        let raw_len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        let stored_len = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
        let h = self.header;
        let chunk = u64::from(h.chunk_bytes);
        let end = h.virtual_size.div_ceil(chunk) * chunk;
        let bad = |m: String| Err(WireError::Malformed(m));
        if offset % chunk != 0 || offset < self.next {
            return bad(format!(
                "chunk at {offset} is out of order or not at a multiple of {chunk}"
            ));
        }
        if raw_len == 0 || raw_len > h.chunk_bytes || offset + u64::from(raw_len) > end {
            return bad(format!(
                "chunk at {offset} of {raw_len} bytes does not fit a {}-byte disk",
                h.virtual_size
            ));
        }
        if stored == Stored::Raw && stored_len != raw_len {
            return bad(format!(
                "raw chunk at {offset} stores {stored_len} bytes, not {raw_len}"
            ));
        }
        // zstd's worst case is a little over its input.
        if stored_len > h.chunk_bytes + h.chunk_bytes / 64 + 1024 {
            return bad(format!("chunk at {offset} stores {stored_len} bytes"));
        }
        let mut bytes = vec![0u8; stored_len as usize];
        self.take(&mut bytes)?;
        self.next = offset + chunk;
        Ok(Some(Chunk {
            offset,
            raw_len,
            stored,
            bytes,
        }))
    }
}

fn truncated(e: io::Error) -> WireError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        WireError::Malformed("it ended before its end record: the upload was cut short".into())
    } else {
        WireError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            virtual_size: 10 << 20,
            chunk_bytes: 1 << 20,
            format: CaptureFormat::RawZst,
        }
    }

    fn chunk(offset: u64) -> Chunk {
        Chunk {
            offset,
            raw_len: 1 << 20,
            stored: Stored::Zstd,
            bytes: vec![7; 100],
        }
    }

    fn encode(chunks: &[Chunk]) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new(), &header()).unwrap();
        for c in chunks {
            e.chunk(c).unwrap();
        }
        let (out, len, _) = e.finish().unwrap();
        assert_eq!(out.len() as u64, len);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Chunk>, WireError> {
        let mut d = Decoder::new(bytes)?;
        assert_eq!(d.header, header());
        let mut out = Vec::new();
        while let Some(c) = d.next_chunk()? {
            out.push(c);
        }
        Ok(out)
    }

    #[test]
    fn a_stream_reads_back_as_written() {
        let chunks = vec![chunk(0), chunk(3 << 20), chunk(9 << 20)];
        assert_eq!(decode(&encode(&chunks)).unwrap(), chunks);
    }

    #[test]
    fn cut_altered_or_disordered_streams_are_refused() {
        let good = encode(&[chunk(0), chunk(1 << 20)]);
        let cut = &good[..good.len() - 40];
        assert!(matches!(decode(cut), Err(WireError::Malformed(m)) if m.contains("cut short")));
        let mut altered = good.clone();
        altered[50] ^= 1;
        assert!(matches!(decode(&altered), Err(WireError::Checksum { .. })));
        let backwards = encode(&[chunk(1 << 20), chunk(0)]);
        assert!(
            matches!(decode(&backwards), Err(WireError::Malformed(m)) if m.contains("out of order"))
        );
        let past_end = encode(&[chunk(10 << 20)]);
        assert!(
            matches!(decode(&past_end), Err(WireError::Malformed(m)) if m.contains("does not fit"))
        );
        assert!(matches!(
            decode(b"GIF89a not a capture stream at all"),
            Err(WireError::Malformed(_))
        ));
    }
}
