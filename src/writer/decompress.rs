//! Decompression picked by magic number: gzip (flate2), zstd, xz (liblzma); anything else
//! passes through unchanged.

use std::io::Read;

use super::chunks::ChunkReader;
use super::error::{io_err, WriteError};

/// Compression found at the start of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
        }
    }
}

/// Tells the compression from the first bytes of a stream (pure).
pub fn sniff(head: &[u8]) -> Result<Compression, WriteError> {
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(b"BZh") {
        return Err(WriteError::Unsupported(
            "bzip2 compression is not supported: recompress with gzip, zstd or xz".into(),
        ));
    } else {
        Compression::None
    })
}

/// A lower bound of the decompressed size, when the first bytes `head` give one: a zstd
/// frame's content size (the whole stream's unless several frames were concatenated).
pub(crate) fn size_hint(kind: Compression, head: &[u8]) -> Option<u64> {
    match kind {
        Compression::Zstd => zstd::zstd_safe::get_frame_content_size(head).ok().flatten(),
        _ => None,
    }
}

/// Wraps `input`, read from the stream's first byte, in the decompressor for `kind`.
pub(crate) fn wrap(
    kind: Compression,
    input: ChunkReader,
) -> Result<Box<dyn Read + Send>, WriteError> {
    Ok(match kind {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .map_err(io_err("starting the zstd decoder"))?,
        ),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
    })
}

/// Reads up to `n` bytes from the start of `reader` (fewer only at end of stream) and returns
/// them with a reader that yields the whole stream again, peeked bytes first.
pub(crate) fn peek(
    mut reader: Box<dyn Read + Send>,
    n: usize,
) -> Result<(Vec<u8>, Box<dyn Read + Send>), WriteError> {
    let mut head = Vec::with_capacity(n);
    (&mut reader)
        .take(n as u64)
        .read_to_end(&mut head)
        .map_err(io_err("reading the start of the image"))?;
    let again = std::io::Cursor::new(head.clone()).chain(reader);
    Ok((head, Box::new(again)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_table() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]).unwrap(), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]).unwrap(), Compression::Zstd);
        assert_eq!(sniff(b"\xfd7zXZ\x00").unwrap(), Compression::Xz);
        assert_eq!(sniff(b"QFI\xfb").unwrap(), Compression::None);
        assert_eq!(sniff(b"").unwrap(), Compression::None);
        assert!(matches!(sniff(b"BZh9"), Err(WriteError::Unsupported(_))));
    }
}
