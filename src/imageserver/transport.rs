//! One client connection, plain TCP or TLS, and the two ways file bytes leave through it:
//! `sendfile(2)` on plain TCP (no user-space copy, no buffer), or pread into one bounded
//! buffer and a write through rustls.
//!
//! sendfile reads the page cache from the calling thread, so a cold file could stall a
//! runtime worker (and with it the API on the same runtime): a window whose last page is not
//! cached (a `preadv2(RWF_NOWAIT)` probe) is first read in with `readahead(2)` on the blocking
//! pool. A cached window costs one small syscall and no thread hop.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Bytes made resident with readahead before they are sent.
const WINDOW: u64 = 4 << 20;
/// The TLS path's read size: one buffer per connection while a body is sent.
const TLS_CHUNK: usize = 256 << 10;
/// A write (or sendfile) that makes no progress for this long ends the connection.
pub const WRITE_STALL: Duration = Duration::from_secs(60);

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the client read nothing for {}s", WRITE_STALL.as_secs()),
    )
}

async fn in_time<T>(f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(WRITE_STALL, f)
        .await
        .unwrap_or_else(|_| Err(stalled()))
}

impl Conn {
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => in_time(s.write_all(bytes)).await,
            Conn::Tls(s) => in_time(s.write_all(bytes)).await,
        }
    }

    /// Pushes out anything buffered (TLS records) and, on plain TCP, ends a cork.
    pub async fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => {
                set_cork(s, false);
                Ok(())
            }
            Conn::Tls(s) => in_time(s.flush()).await,
        }
    }

    /// Ends our sending side (a TLS close_notify first), keeping the reading side open.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => in_time(s.shutdown()).await,
            Conn::Tls(s) => in_time(s.shutdown()).await,
        }
    }

    /// Makes the coming close a reset: bytes still queued for the client are thrown away
    /// instead of delivered (a revoked image must stop flowing now, not after the socket
    /// buffers drain). SO_LINGER 0 never blocks on close.
    pub fn reset_on_close(&self) {
        let sock = match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        };
        let _ = sock.set_zero_linger();
    }

    /// Holds back partial frames until [`Conn::flush`], so a response head and its first
    /// bytes leave in one segment (nginx's `tcp_nopush`). A no-op on TLS, which frames itself.
    pub fn cork(&self) {
        if let Conn::Plain(s) = self {
            set_cork(s, true);
        }
    }

    /// Sends `len` bytes of `file` from `offset`; `sent` counts what left, even on error.
    pub async fn send_file(
        &mut self,
        file: &Arc<File>,
        offset: u64,
        len: u64,
        sent: &mut u64,
    ) -> io::Result<()> {
        let end = offset + len;
        let mut pos = offset;
        match self {
            Conn::Plain(sock) => {
                while pos < end {
                    let window_end = end.min(pos + WINDOW);
                    prefetch(file, pos, window_end - pos).await;
                    while pos < window_end {
                        let want = (window_end - pos) as usize;
                        let n = in_time(
                            sock.async_io(Interest::WRITABLE, || sendfile(sock, file, pos, want)),
                        )
                        .await?;
                        if n == 0 {
                            return Err(short_file(pos));
                        }
                        pos += n as u64;
                        *sent += n as u64;
                    }
                }
            }
            Conn::Tls(tls) => {
                let mut buf = Vec::new();
                while pos < end {
                    let want = ((end - pos) as usize).min(TLS_CHUNK);
                    let f = file.clone();
                    let (b, got) = tokio::task::spawn_blocking(move || {
                        let mut b = buf;
                        b.resize(want, 0);
                        let got = std::os::unix::fs::FileExt::read_exact_at(&*f, &mut b, pos);
                        (b, got)
                    })
                    .await
                    .map_err(io::Error::other)?;
                    buf = b;
                    got.map_err(|e| match e.kind() {
                        io::ErrorKind::UnexpectedEof => short_file(pos),
                        _ => e,
                    })?;
                    in_time(tls.write_all(&buf)).await?;
                    pos += want as u64;
                    *sent += want as u64;
                }
            }
        }
        Ok(())
    }
}

fn short_file(at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the published file ended at byte {at}, before its published length"),
    )
}

/// One non-blocking sendfile call; WouldBlock makes `async_io` wait for writability.
fn sendfile(sock: &TcpStream, file: &File, pos: u64, want: usize) -> io::Result<usize> {
    let mut off = pos as libc::off_t;
    // SAFETY: both descriptors are open for the duration of the call; `off` is a valid
    // pointer to a local.
    let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, want) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Brings `[pos, pos + len)` of `file` into the page cache on the blocking pool unless it is
/// already there. Best effort: a failure only means sendfile may read from disk itself.
async fn prefetch(file: &Arc<File>, pos: u64, len: u64) {
    if len == 0 || cached(file, pos + len - 1) {
        return;
    }
    let f = file.clone();
    let _ = tokio::task::spawn_blocking(move || {
        // SAFETY: plain syscall on an open descriptor.
        unsafe { libc::readahead(f.as_raw_fd(), pos as libc::off64_t, len as usize) }
    })
    .await;
}

/// Whether the byte at `at` is in the page cache: a one-byte read that refuses to wait.
fn cached(file: &File, at: u64) -> bool {
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    // SAFETY: one iovec pointing at a local byte, on an open descriptor.
    let n = unsafe {
        libc::preadv2(
            file.as_raw_fd(),
            &iov,
            1,
            at as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    n == 1
}

fn set_cork(sock: &TcpStream, on: bool) {
    let v: libc::c_int = on.into();
    // SAFETY: setsockopt with a pointer to a local int of the size given.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
