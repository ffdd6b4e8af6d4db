//! The raw "decoder": guest bytes are the stream bytes, sent in [`EXTENT_MAX`] pieces.

use std::io::Read;

use super::error::{io_err, WriteError};
use super::extent::{Emit, Extent, EXTENT_MAX};

/// Reads `r` to its end, emitting consecutive data extents; returns the virtual size.
pub(crate) fn decode(r: &mut dyn Read, emit: &mut Emit<'_>) -> Result<u64, WriteError> {
    let mut offset = 0u64;
    loop {
        let mut buf = vec![0u8; EXTENT_MAX];
        let n = read_full(r, &mut buf)
            .map_err(io_err(format!("reading raw image at byte {offset}")))?;
        if n == 0 {
            return Ok(offset);
        }
        buf.truncate(n);
        emit(Extent::Data { offset, buf })?;
        offset += n as u64;
        if n < EXTENT_MAX {
            return Ok(offset);
        }
    }
}

/// Fills `buf` unless the stream ends first; returns how many bytes were read.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
