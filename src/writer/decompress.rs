//! Decompression picked by magic number: gzip (flate2), zstd, xz (liblzma); anything else
//! passes through unchanged.

use std::io::{BufRead, BufReader, Read};

use super::error::{io_err, WriteError};

/// Read-buffer size in front of the decompressors and decoders: large enough that a syscall
/// or channel hop is amortised over a megabyte, small next to the 64 MiB pipeline budget.
pub(crate) const READ_BUF: usize = 1 << 20;

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

/// A decompressing reader and what its header told.
pub(crate) struct Decompressed {
    pub kind: Compression,
    pub size_hint: Option<u64>,
    pub reader: Box<dyn BufRead + Send>,
}

/// Peeks at `reader`, and wraps it in the matching decompressor.
/// Also returns a lower bound of the decompressed size when the header gives one (a zstd
/// frame's content size: the whole stream's unless several frames were concatenated).
pub(crate) fn wrap(reader: Box<dyn Read + Send>) -> Result<Decompressed, WriteError> {
    let (head, reader) = peek(reader, 18)?;
    let kind = sniff(&head)?;
    let size_hint = match kind {
        Compression::Zstd => zstd::zstd_safe::get_frame_content_size(&head)
            .ok()
            .flatten(),
        _ => None,
    };
    let buffered = BufReader::with_capacity(READ_BUF, reader);
    let out: Box<dyn BufRead + Send> = match kind {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            READ_BUF,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            READ_BUF,
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(io_err("starting the zstd decoder"))?,
        )),
        Compression::Xz => Box::new(BufReader::with_capacity(
            READ_BUF,
            liblzma::bufread::XzDecoder::new_multi_decoder(buffered),
        )),
    };
    Ok(Decompressed {
        kind,
        size_hint,
        reader: out,
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
