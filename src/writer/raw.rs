//! The raw "decoder": guest bytes are the stream bytes, each chunk sent on as one extent.

use super::chunks::Chunks;
use super::error::{io_err, WriteError};
use super::extent::{Emit, Extent};

/// Emits the chunks as consecutive data extents (shared, not copied); returns the virtual
/// size.
pub(crate) fn decode(chunks: Chunks, emit: &mut Emit<'_>) -> Result<u64, WriteError> {
    let mut offset = 0u64;
    for chunk in chunks {
        let buf = chunk.map_err(io_err(format!("reading raw image at byte {offset}")))?;
        let n = buf.len() as u64;
        if n > 0 {
            emit(Extent::Data { offset, buf })?;
            offset += n;
        }
    }
    Ok(offset)
}
