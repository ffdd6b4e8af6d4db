//! Reusable buffers of one size, shared without copying: a chunk read from the source is one
//! [`Bytes`] that the hash thread and the sink both hold; when the last holder drops it, its
//! buffer comes back here, so steady state allocates and page-faults nothing.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use bytes::Bytes;

/// Idle buffers kept for reuse; a buffer returned to a full pool is freed.
pub(crate) const IDLE: usize = 2;

pub(crate) struct Pool {
    size: usize,
    idle: Receiver<Vec<u8>>,
    home: SyncSender<Vec<u8>>,
}

impl Pool {
    /// A pool of buffers of capacity `size`.
    pub fn new(size: usize) -> Self {
        let (home, idle) = sync_channel(IDLE);
        Self { size, idle, home }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// An idle buffer (of any length, capacity [`Pool::size`]), or a new empty one.
    pub fn take(&self) -> Vec<u8> {
        self.idle
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.size))
    }

    /// Shares `buf[..len]`; the buffer returns to the pool when the last clone is dropped.
    pub fn share(&self, buf: Vec<u8>, len: usize) -> Bytes {
        let mut b = Bytes::from_owner(Pooled {
            buf,
            home: self.home.clone(),
        });
        b.truncate(len);
        b
    }
}

/// Owns a pooled buffer while [`Bytes`] views of it are alive.
struct Pooled {
    buf: Vec<u8>,
    home: SyncSender<Vec<u8>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let _ = self.home.try_send(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_last_clone_drops() {
        let pool = Pool::new(1000);
        let mut buf = pool.take();
        buf.resize(1000, 7);
        let ptr = buf.as_ptr();
        let shared = pool.share(buf, 10);
        let clone = shared.clone();
        assert_eq!(&clone[..], &[7u8; 10]);
        drop(shared);
        assert!(
            pool.take().is_empty(),
            "a new buffer: the clone still holds it"
        );
        drop(clone);
        let back = pool.take();
        assert_eq!((back.as_ptr(), back.len()), (ptr, 1000));
    }
}
