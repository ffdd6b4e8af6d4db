//! The raw "decoder": guest bytes are the stream bytes, sent in [`EXTENT_MAX`] pieces.

use std::io::Read;
use std::sync::mpsc::Receiver;

use super::error::{io_err, WriteError};
use super::extent::{Emit, Extent, EXTENT_MAX};

/// Reads `r` to its end, emitting consecutive data extents; returns the virtual size.
/// Buffers come from `recycled` (returned by the sink) when there are any, so steady state
/// allocates and page-faults nothing.
pub(crate) fn decode(
    r: &mut dyn Read,
    emit: &mut Emit<'_>,
    recycled: &Receiver<Vec<u8>>,
) -> Result<u64, WriteError> {
    let mut offset = 0u64;
    loop {
        let mut buf = recycled.try_recv().unwrap_or_default();
        buf.resize(EXTENT_MAX, 0);
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
