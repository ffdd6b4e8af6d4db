//! The raw "decoder": guest bytes are the stream bytes. Each chunk goes on as one data extent
//! (shared, not copied), except that all-zero chunks are gathered into one zero extent per
//! run: they need no buffer in the sink's queue, so reading and hashing run ahead through a
//! long zero run while the sink is still busy with earlier data.

use super::chunks::Chunks;
use super::error::{io_err, WriteError};
use super::extent::{is_zero, Emit, Extent};

/// Emits the image's extents in order; returns the virtual size.
pub(crate) fn decode(chunks: Chunks, emit: &mut Emit<'_>) -> Result<u64, WriteError> {
    let mut offset = 0u64;
    // Length of the zero run that ends at `offset`, not yet emitted.
    let mut zeros = 0u64;
    for chunk in chunks {
        let buf = chunk.map_err(io_err(format!("reading raw image at byte {offset}")))?;
        let n = buf.len() as u64;
        if is_zero(&buf) {
            zeros += n;
        } else {
            if zeros > 0 {
                emit(Extent::Zero {
                    offset: offset - zeros,
                    len: zeros,
                })?;
                zeros = 0;
            }
            emit(Extent::Data { offset, buf })?;
        }
        offset += n;
    }
    if zeros > 0 {
        emit(Extent::Zero {
            offset: offset - zeros,
            len: zeros,
        })?;
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn zero_chunks_become_one_zero_extent_per_run() {
        let data = |n: usize| Ok(Bytes::from(vec![1u8; n]));
        let zero = |n: usize| Ok(Bytes::from(vec![0u8; n]));
        let chunks = vec![
            zero(4),
            zero(4),
            data(4),
            zero(2),
            data(3),
            zero(5),
            zero(1),
        ];
        let mut got = Vec::new();
        let size = decode(Box::new(chunks.into_iter()), &mut |e: Extent| {
            got.push(match e {
                Extent::Data { offset, buf } => ('d', offset, buf.len() as u64),
                Extent::Zero { offset, len } => ('z', offset, len),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(size, 23);
        assert_eq!(
            got,
            [
                ('z', 0, 8),
                ('d', 8, 4),
                ('z', 12, 2),
                ('d', 14, 3),
                ('z', 17, 6)
            ]
        );
    }
}
