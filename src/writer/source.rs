//! Where image bytes come from: an http(s) URL (streamed with reqwest on a private thread,
//! bridged by a bounded channel), a file (a cache entry is just a file path), or stdin. Each
//! is opened as a stream of chunks of one size (the last may be shorter).

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};

use bytes::Bytes;

use super::chunks::{Chunks, ReadChunks};
use super::error::{io_err, WriteError};
use super::extent::EXTENT_MAX;
use super::pool::Pool;

/// Chunk size and count for files and stdin: a chunk is one read, one hand-off to each of the
/// hash thread and the sink, and for a raw image one write. On the bench image the hash
/// thread waited least with 4 MiB chunks (30-40 ms per 2 GiB, against 90-115 ms with 1 MiB
/// and more time hashing with 16 MiB). Six cover one being read, the hash thread's queue and
/// the sink's.
const FILE_CHUNK: usize = EXTENT_MAX;
const FILE_BUFFERS: usize = 6;

/// The HTTP thread gathers the body into 1 MiB chunks: one being filled, `HTTP_SLOTS` queued
/// for the decoder, and the rest with the hash thread and the sink.
const HTTP_CHUNK: usize = 1 << 20;
const HTTP_BUFFERS: usize = 12;
const HTTP_SLOTS: usize = 4;

/// An image source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An `http://` or `https://` URL.
    Url(String),
    /// A local file (a cache entry is one).
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Source {
    /// `-` is stdin, `http(s)://…` a URL, anything else a file path.
    pub fn parse(s: &str) -> Source {
        if s == "-" {
            Source::Stdin
        } else if s.starts_with("http://") || s.starts_with("https://") {
            Source::Url(s.to_string())
        } else {
            Source::File(PathBuf::from(s))
        }
    }

    /// A name for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Url(u) => u.clone(),
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "stdin".to_string(),
        }
    }
}

/// An opened source: its chunks and its length when known (file size, Content-Length).
pub(crate) struct Opened {
    pub chunks: Chunks,
    pub len: Option<u64>,
}

pub(crate) fn open(source: &Source) -> Result<Opened, WriteError> {
    match source {
        Source::File(path) => {
            let file = std::fs::File::open(path)
                .map_err(io_err(format!("opening image {}", path.display())))?;
            let meta = file
                .metadata()
                .map_err(io_err(format!("reading metadata of {}", path.display())))?;
            let chunks: Chunks = if meta.is_file() {
                Box::new(FileChunks::new(file, meta.len()))
            } else {
                Box::new(ReadChunks::new(file, FILE_CHUNK, FILE_BUFFERS))
            };
            Ok(Opened {
                chunks,
                len: meta.is_file().then_some(meta.len()),
            })
        }
        Source::Stdin => Ok(Opened {
            chunks: Box::new(ReadChunks::new(std::io::stdin(), FILE_CHUNK, FILE_BUFFERS)),
            len: None,
        }),
        Source::Url(url) => open_http(url),
    }
}

/// What a hole in a sparse file reads as; holes are served from here instead of being read.
static ZEROS: [u8; FILE_CHUNK] = [0; FILE_CHUNK];

/// Reads a regular file in [`FILE_CHUNK`] pieces, except that a piece lying wholly in a hole
/// (found with `SEEK_DATA`, as `cp` and `qemu-img` do) is not read: it is a view of [`ZEROS`].
/// The bytes are the same, so the checksum still covers every one of them, but the kernel
/// copies nothing and the hash thread reads one cache-hot page.
struct FileChunks {
    file: std::fs::File,
    len: u64,
    pos: u64,
    /// The first data offset at or after `pos` when last asked (`len` when none).
    next_data: u64,
    pool: Pool,
}

impl FileChunks {
    fn new(file: std::fs::File, len: u64) -> Self {
        Self {
            file,
            len,
            pos: 0,
            next_data: 0,
            pool: Pool::new(FILE_CHUNK, FILE_BUFFERS),
        }
    }

    fn seek_data(&self, from: u64) -> u64 {
        seek_data(&self.file, from, self.len)
    }
}

/// The first offset at or after `from` holding data in `file` (`len` when none); `from`
/// itself when the filesystem cannot tell, as for a block device (everything is then read).
/// The file's offset moves: read it with pread only.
pub(crate) fn seek_data(file: &std::fs::File, from: u64, len: u64) -> u64 {
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: lseek on a borrowed, open fd.
    let at = unsafe { libc::lseek(fd, from as libc::off_t, libc::SEEK_DATA) };
    match u64::try_from(at) {
        Ok(at) => at,
        Err(_) if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) => len,
        Err(_) => from,
    }
}

impl Iterator for FileChunks {
    type Item = std::io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.len {
            return None;
        }
        let n = (self.len - self.pos).min(FILE_CHUNK as u64) as usize;
        let end = self.pos + n as u64;
        if self.next_data < self.pos {
            self.next_data = self.seek_data(self.pos);
        }
        let chunk = if self.next_data >= end {
            Bytes::from_static(&ZEROS[..n])
        } else {
            let mut buf = self.pool.take();
            let into = &mut buf.as_mut_slice()[..n];
            if let Err(e) = std::os::unix::fs::FileExt::read_exact_at(&self.file, into, self.pos) {
                // Never read past a failure.
                self.pos = self.len;
                return Some(Err(e));
            }
            self.pool.share(buf, n)
        };
        self.pos = end;
        Some(Ok(chunk))
    }
}

enum Msg {
    Data(Bytes),
    Failed(String),
    Done,
}

fn open_http(url: &str) -> Result<Opened, WriteError> {
    let (head_tx, head_rx) = sync_channel::<Result<Option<u64>, String>>(1);
    let (tx, rx) = sync_channel::<Msg>(HTTP_SLOTS);
    let owned = url.to_string();
    // A fresh thread with its own runtime: callers may be inside a tokio runtime or not.
    std::thread::Builder::new()
        .name("writer-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = head_tx.send(Err(format!("cannot start a runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let client = reqwest::Client::new();
                let mut resp = match client.get(&owned).send().await {
                    Ok(r) if r.status().is_success() => r,
                    Ok(r) => {
                        let _ = head_tx.send(Err(format!("server answered {}", r.status())));
                        return;
                    }
                    Err(e) => {
                        let _ = head_tx.send(Err(format!("{e}")));
                        return;
                    }
                };
                if head_tx.send(Ok(resp.content_length())).is_err() {
                    return;
                }
                // Gathered into full pooled chunks: raw extents stay aligned and each channel
                // hop carries a whole chunk, whatever sizes the network hands over.
                let mut pool = Pool::new(HTTP_CHUNK, HTTP_BUFFERS);
                let mut batch = pool.take();
                let mut filled = 0;
                loop {
                    match resp.chunk().await {
                        Ok(Some(mut chunk)) => {
                            while !chunk.is_empty() {
                                let n = (HTTP_CHUNK - filled).min(chunk.len());
                                batch.as_mut_slice()[filled..filled + n]
                                    .copy_from_slice(&chunk.split_to(n));
                                filled += n;
                                if filled == HTTP_CHUNK {
                                    let full = std::mem::replace(&mut batch, pool.take());
                                    filled = 0;
                                    if tx.send(Msg::Data(pool.share(full, HTTP_CHUNK))).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        Ok(None) => {
                            if filled > 0 {
                                let _ = tx.send(Msg::Data(pool.share(batch, filled)));
                            }
                            let _ = tx.send(Msg::Done);
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Msg::Failed(format!("{e}")));
                            return;
                        }
                    }
                }
            });
        })
        .map_err(io_err("starting the download thread"))?;
    let len = match head_rx.recv() {
        Ok(Ok(len)) => len,
        Ok(Err(message)) => {
            return Err(WriteError::Fetch {
                url: url.to_string(),
                message,
            })
        }
        Err(_) => {
            return Err(WriteError::Fetch {
                url: url.to_string(),
                message: "the download thread ended without an answer".into(),
            })
        }
    };
    Ok(Opened {
        chunks: Box::new(ChannelChunks {
            rx,
            done: false,
            url: url.to_string(),
        }),
        len,
    })
}

/// Yields what the HTTP thread sends; a vanished sender without `Done` is an error, never
/// the end.
struct ChannelChunks {
    rx: Receiver<Msg>,
    done: bool,
    url: String,
}

impl Iterator for ChannelChunks {
    type Item = std::io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rx.recv() {
            Ok(Msg::Data(b)) => Some(Ok(b)),
            Ok(Msg::Done) => {
                self.done = true;
                None
            }
            Ok(Msg::Failed(e)) => Some(Err(std::io::Error::other(format!(
                "download of {} failed: {e}",
                self.url
            )))),
            Err(_) => Some(Err(std::io::Error::other(format!(
                "download of {} stopped unexpectedly",
                self.url
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn sparse_file_holes_are_not_read_but_yield_the_same_bytes() {
        let c = FILE_CHUNK as u64;
        let f = tempfile::tempfile().unwrap();
        let len = 5 * c + 100;
        f.set_len(len).unwrap();
        // Data in chunk 1 (a few bytes) and in the short last chunk, 5; 0, 2, 3, 4 are holes.
        f.write_all_at(b"data", c + 7).unwrap();
        f.write_all_at(b"tail", len - 4).unwrap();
        let mut want = vec![0u8; len as usize];
        f.read_exact_at(&mut want, 0).unwrap();
        let chunks: Vec<Bytes> = FileChunks::new(f, len).map(Result::unwrap).collect();
        assert_eq!(chunks.concat(), want);
        let from_zeros: Vec<bool> = chunks
            .iter()
            .map(|b| ZEROS.as_ptr_range().contains(&b.as_ptr()))
            .collect();
        // Chunk 0 is always read.
        assert_eq!(from_zeros, [false, false, true, true, true, false]);
    }
}
