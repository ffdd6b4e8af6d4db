//! Where image bytes come from: an http(s) URL (streamed with reqwest on a private thread,
//! bridged by a bounded channel), a file (a cache entry is just a file path), or stdin. Each
//! is opened as a stream of [`SOURCE_CHUNK`]-sized chunks (the last may be shorter).

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};

use bytes::Bytes;

use super::chunks::{Chunks, ReadChunks};
use super::error::{io_err, WriteError};
use super::pool::Pool;

/// Size of the chunks a source is read in: each is one syscall or channel hop, and for a raw
/// image one data extent, so it must amortise those; it is also the unit of memory held by
/// the hash and sink queues.
pub(crate) const SOURCE_CHUNK: usize = 1 << 20;

/// Chunks the HTTP thread may queue ahead of the decoder, beside the one it is filling.
pub(crate) const HTTP_SLOTS: usize = 4;

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
            let len = meta.is_file().then_some(meta.len());
            Ok(Opened {
                chunks: Box::new(ReadChunks::new(file, SOURCE_CHUNK)),
                len,
            })
        }
        Source::Stdin => Ok(Opened {
            chunks: Box::new(ReadChunks::new(std::io::stdin(), SOURCE_CHUNK)),
            len: None,
        }),
        Source::Url(url) => open_http(url),
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
                let pool = Pool::new(SOURCE_CHUNK);
                let mut batch = pool.take();
                batch.clear();
                loop {
                    match resp.chunk().await {
                        Ok(Some(mut chunk)) => {
                            while !chunk.is_empty() {
                                let n = (SOURCE_CHUNK - batch.len()).min(chunk.len());
                                batch.extend_from_slice(&chunk.split_to(n));
                                if batch.len() == SOURCE_CHUNK {
                                    let mut next = pool.take();
                                    next.clear();
                                    let full = std::mem::replace(&mut batch, next);
                                    if tx.send(Msg::Data(pool.share(full, SOURCE_CHUNK))).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        Ok(None) => {
                            if !batch.is_empty() {
                                let len = batch.len();
                                let _ = tx.send(Msg::Data(pool.share(batch, len)));
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
