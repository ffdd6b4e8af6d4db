//! A fixed number of reusable, page-aligned buffers of one size, shared without copying: a
//! chunk read from the source is one [`Bytes`] that the hash thread and the sink both hold;
//! when the last holder drops it, its buffer comes back here. Steady state allocates and
//! page-faults nothing, and a pool never holds more than its `max` buffers: when all are in
//! flight, taking one waits until the hash thread or the sink lets one go. That cap, not the
//! queue lengths, is what bounds the pipeline's memory. Page alignment lets the sink hand a
//! buffer straight to an `O_DIRECT` write.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use bytes::Bytes;

/// Alignment of every buffer: what `O_DIRECT` needs for 512- and 4096-byte sectors alike.
pub(crate) const ALIGN: usize = 4096;

/// A zero-initialised, [`ALIGN`]-aligned heap buffer of fixed length.
pub(crate) struct Buf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: Buf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for Buf {}
// SAFETY: shared access only hands out `&[u8]`.
unsafe impl Sync for Buf {}

impl Buf {
    pub fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), ALIGN).expect("valid buffer layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        Buf { ptr, layout }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid, initialised and exclusively ours for layout.size() bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr is valid and initialised for layout.size() bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `new`.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

pub(crate) struct Pool {
    size: usize,
    max: usize,
    /// Buffers allocated so far (never more than `max`).
    live: usize,
    idle: Receiver<Buf>,
    home: SyncSender<Buf>,
}

impl Pool {
    /// A pool of at most `max` buffers of `size` bytes each.
    pub fn new(size: usize, max: usize) -> Self {
        // Room for every buffer, so giving one back never blocks or fails.
        let (home, idle) = sync_channel(max);
        Self {
            size,
            max: max.max(1),
            live: 0,
            idle,
            home,
        }
    }

    /// A free buffer (its contents unspecified), allocating one while under the cap, else
    /// waiting for one to come back.
    pub fn take(&mut self) -> Buf {
        if let Ok(buf) = self.idle.try_recv() {
            return buf;
        }
        if self.live < self.max {
            self.live += 1;
            return Buf::new(self.size);
        }
        // The pool keeps a sender itself, so this waits rather than fails.
        self.idle.recv().expect("the pool holds a sender")
    }

    /// Shares `buf[..len]`; the buffer returns to the pool when the last clone is dropped.
    pub fn share(&self, buf: Buf, len: usize) -> Bytes {
        let mut b = Bytes::from_owner(Pooled {
            buf: Some(buf),
            home: self.home.clone(),
        });
        b.truncate(len);
        b
    }
}

/// Owns a pooled buffer while [`Bytes`] views of it are alive.
struct Pooled {
    buf: Option<Buf>,
    home: SyncSender<Buf>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], Buf::as_ref)
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            let _ = self.home.try_send(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_reused_and_capped() {
        let mut pool = Pool::new(10_000, 2);
        let mut buf = pool.take();
        buf.as_mut_slice().fill(7);
        let ptr = buf.as_ref().as_ptr();
        assert_eq!(ptr as usize % ALIGN, 0);
        let shared = pool.share(buf, 10);
        let clone = shared.clone();
        assert_eq!((&clone[..], clone.as_ptr()), (&[7u8; 10][..], ptr));
        drop(shared);
        let other = pool.take();
        assert_ne!(other.as_ref().as_ptr(), ptr, "the clone still holds it");
        // Both buffers are out: the next take waits until the clone lets go.
        let late = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(clone);
        });
        let back = pool.take();
        assert_eq!((back.as_ref().as_ptr(), back.as_ref().len()), (ptr, 10_000));
        late.join().unwrap();
        drop(other);
    }
}
