//! Where image bytes come from: an http(s) URL (streamed with reqwest on a private thread,
//! bridged by a bounded channel), a file (a cache entry is just a file path), or stdin.

use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};

use bytes::Bytes;

use super::error::{io_err, WriteError};

/// Bytes handed from the HTTP thread to the decoder at a time, and how many may wait: the
/// network side holds at most `HTTP_BATCH * HTTP_SLOTS` (8 MiB) of the pipeline budget.
const HTTP_BATCH: usize = 1 << 20;
const HTTP_SLOTS: usize = 8;

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

/// An opened source: a reader and its length when known (file size, Content-Length).
pub(crate) struct Opened {
    pub reader: Box<dyn Read + Send>,
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
                reader: Box::new(file),
                len,
            })
        }
        Source::Stdin => Ok(Opened {
            reader: Box::new(std::io::stdin()),
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
                let mut batch = Vec::with_capacity(HTTP_BATCH);
                loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            if batch.is_empty() && chunk.len() >= HTTP_BATCH {
                                if tx.send(Msg::Data(chunk)).is_err() {
                                    return;
                                }
                                continue;
                            }
                            batch.extend_from_slice(&chunk);
                            if batch.len() >= HTTP_BATCH {
                                let full =
                                    std::mem::replace(&mut batch, Vec::with_capacity(HTTP_BATCH));
                                if tx.send(Msg::Data(Bytes::from(full))).is_err() {
                                    return;
                                }
                            }
                        }
                        Ok(None) => {
                            if !batch.is_empty() {
                                let _ = tx.send(Msg::Data(Bytes::from(batch)));
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
        reader: Box::new(ChannelReader {
            rx,
            cur: Bytes::new(),
            done: false,
            url: url.to_string(),
        }),
        len,
    })
}

/// Reads what the HTTP thread sends; a vanished sender without `Done` is an error, never EOF.
struct ChannelReader {
    rx: Receiver<Msg>,
    cur: Bytes,
    done: bool,
    url: String,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(b)) => self.cur = b,
                Ok(Msg::Done) => self.done = true,
                Ok(Msg::Failed(e)) => {
                    return Err(std::io::Error::other(format!(
                        "download of {} failed: {e}",
                        self.url
                    )))
                }
                Err(_) => {
                    return Err(std::io::Error::other(format!(
                        "download of {} stopped unexpectedly",
                        self.url
                    )))
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}
