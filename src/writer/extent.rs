//! What decoders hand to the sink: guest bytes at an offset, or a run known to be zero.

use bytes::Bytes;

/// Largest data extent a decoder sends at once (and the read size of file sources): big
/// writes, few hand-offs between threads.
pub(crate) const EXTENT_MAX: usize = 4 << 20;

/// Extent buffers a decompressed stream or the qcow2 decoder may have alive: one being
/// filled, the sink's queue, and one being written.
pub(crate) const EXTENT_BUFFERS: usize = 5;

/// A piece of the virtual disk.
#[derive(Debug)]
pub(crate) enum Extent {
    /// Shared with the hash thread when the image is raw and uncompressed.
    Data {
        offset: u64,
        buf: Bytes,
    },
    Zero {
        offset: u64,
        len: u64,
    },
}

impl Extent {
    pub fn end(&self) -> u64 {
        match self {
            Extent::Data { offset, buf } => offset + buf.len() as u64,
            Extent::Zero { offset, len } => offset + len,
        }
    }
}

/// Where decoders send extents; returns an error when the sink side has gone away.
pub(crate) type Emit<'a> = dyn FnMut(Extent) -> Result<(), super::WriteError> + 'a;

/// True when every byte of `buf` is zero (written so the compiler vectorises the inner fold).
pub(crate) fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(64);
    let body = chunks
        .by_ref()
        .all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0);
    body && chunks.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_zero_finds_any_nonzero_byte() {
        let mut buf = vec![0u8; 4096 + 7];
        assert!(is_zero(&buf));
        for i in [0, 63, 64, 4095, 4096 + 6] {
            buf[i] = 1;
            assert!(!is_zero(&buf), "byte {i}");
            buf[i] = 0;
        }
        assert!(is_zero(&[]));
    }
}
