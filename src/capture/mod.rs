//! Disk capture, the conductor's side (an ironcast extension): a node's agent reads its root
//! disk and uploads it ([`wire`]); this module turns the upload into a cache entry in the
//! format asked for ([`qcow2`] or [`zst`]) and names it, so a `direct` deploy can take the
//! name as its `image_source`. Implements the `Captures` port.
//!
//! Room is reserved in the cache before the agent boots (the image can be no larger than
//! [`max_image_bytes`] of the disk), so a capture that cannot fit is refused with the sizes
//! before anything happens; the reservation holds while the agent boots and uploads, and the
//! committed entry takes its place. The upload is checked as it arrives (order, bounds, the
//! stream's sha256 at its end) and nothing is committed unless all of it was right.
//!
//! Non-goals: partition images, resuming a cut upload (the capture fails and is retried).

pub mod qcow2;
pub mod wire;
pub mod zst;

use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use deploy_drivers::{
    CaptureFormat, CaptureRequest, CapturedImage, Captures, PortError, PortErrorKind, PortResult,
};
use futures::{Stream, StreamExt};

use crate::cache::{Cache, CacheError, Ingest};
use wire::{Decoder, Stored, WireError};

/// Why an upload was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("node {node} has no capture waiting for an upload (it was never started, already uploaded, or ended)")]
    NotExpected { node: String },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the upload does not match the capture: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Qcow2(#[from] qcow2::Qcow2Error),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{context}: {message}")]
    Io { context: String, message: String },
}

/// The most bytes an image of a `disk`-byte disk can take in `format`.
pub fn max_image_bytes(format: CaptureFormat, disk: u64) -> u64 {
    match format {
        CaptureFormat::Qcow2 => qcow2::bound(disk, format.chunk_bytes()),
        CaptureFormat::RawZst => zst::bound(disk),
    }
}

/// A capture that waits for its upload, then its committed image.
struct Pending {
    request: CaptureRequest,
    disk_bytes: u64,
    ingest: Option<Ingest>,
    image: Option<CapturedImage>,
}

/// The captures in progress on this conductor, by node.
pub struct CaptureService {
    cache: Cache,
    pending: Mutex<HashMap<String, Pending>>,
}

/// What the assembly of an upload counted.
struct Assembled {
    virtual_size: u64,
    data_bytes: u64,
}

impl CaptureService {
    pub fn new(cache: Cache) -> CaptureService {
        CaptureService {
            cache,
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads node `node`'s upload from `body`, writes it in the capture's format into the
    /// reserved cache room, commits and names it.
    pub async fn receive<S, E>(&self, node: &str, body: S) -> Result<CapturedImage, CaptureError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display,
    {
        let (ingest, request, disk_bytes) = {
            let mut pending = self.lock();
            let p = pending.get_mut(node);
            match p.and_then(|p| Some((p.ingest.take()?, p.request.clone(), p.disk_bytes))) {
                Some(found) => found,
                None => {
                    return Err(CaptureError::NotExpected {
                        node: node.to_string(),
                    })
                }
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
        let feed = async move {
            let mut body = body;
            while let Some(chunk) = body.next().await {
                let item =
                    chunk.map_err(|e| io::Error::other(format!("receiving the upload: {e}")));
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        };
        let part = ingest.part().to_path_buf();
        let reserved = ingest.reserved();
        let format = request.format;
        let assemble = tokio::task::spawn_blocking(move || {
            assemble(
                ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
                &part,
                format,
                disk_bytes,
                reserved,
            )
        });
        let (_, assembled) = tokio::join!(feed, assemble);
        let assembled = assembled.map_err(|e| CaptureError::Io {
            context: "the capture's assembly task".into(),
            message: e.to_string(),
        })??;
        let entry = ingest
            .commit(&format!("capture://{node}/{}", request.name))
            .await?;
        self.cache.name_entry(&entry.sha256, &request.name).await?;
        let image = CapturedImage {
            name: request.name.clone(),
            format,
            digest: format!("sha256:{}", entry.sha256),
            size: entry.size,
            virtual_size: assembled.virtual_size,
            data_bytes: assembled.data_bytes,
        };
        if let Some(p) = self.lock().get_mut(node) {
            p.image = Some(image.clone());
        }
        Ok(image)
    }
}

/// Reads the stream and writes the image into `part` (blocking).
fn assemble(
    input: impl Read,
    part: &std::path::Path,
    format: CaptureFormat,
    disk_bytes: u64,
    reserved: u64,
) -> Result<Assembled, CaptureError> {
    let mut decoder = Decoder::new(io::BufReader::with_capacity(1 << 20, input))?;
    let h = decoder.header;
    if h.format != format {
        return Err(CaptureError::Mismatch(format!(
            "the agent sent {} but {} was asked for",
            h.format.name(),
            format.name()
        )));
    }
    if h.chunk_bytes != format.chunk_bytes() {
        return Err(CaptureError::Mismatch(format!(
            "the agent sent {}-byte chunks, {} takes {}",
            h.chunk_bytes,
            format.name(),
            format.chunk_bytes()
        )));
    }
    if h.virtual_size != disk_bytes || max_image_bytes(format, h.virtual_size) > reserved {
        return Err(CaptureError::Mismatch(format!(
            "the agent sent a {}-byte disk, room was reserved for a {disk_bytes}-byte one",
            h.virtual_size
        )));
    }
    let io_err = |what: &str| {
        let context = format!("{what} {}", part.display());
        move |e: io::Error| CaptureError::Io {
            context,
            message: e.to_string(),
        }
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(part)
        .map_err(io_err("creating"))?;
    let mut data_bytes = 0u64;
    match format {
        CaptureFormat::Qcow2 => {
            let mut out = qcow2::Qcow2Writer::new(file, h.virtual_size, h.chunk_bytes)?;
            while let Some(chunk) = decoder.next_chunk()? {
                data_bytes += u64::from(chunk.raw_len);
                out.add(&chunk)?;
            }
            out.finish()?;
        }
        CaptureFormat::RawZst => {
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let mut at = 0u64;
            while let Some(chunk) = decoder.next_chunk()? {
                data_bytes += u64::from(chunk.raw_len);
                zst::write_zeros(&mut out, chunk.offset - at).map_err(io_err("writing"))?;
                match chunk.stored {
                    Stored::Zstd => out.write_all(&chunk.bytes),
                    Stored::Raw => zst::write_raw(&mut out, &chunk.bytes),
                }
                .map_err(io_err("writing"))?;
                at = chunk.offset + u64::from(chunk.raw_len);
            }
            if at > h.virtual_size {
                return Err(CaptureError::Mismatch(format!(
                    "the last chunk ends at {at}, past the {}-byte disk",
                    h.virtual_size
                )));
            }
            zst::write_zeros(&mut out, h.virtual_size - at).map_err(io_err("writing"))?;
            out.flush().map_err(io_err("writing"))?;
        }
    }
    Ok(Assembled {
        virtual_size: h.virtual_size,
        data_bytes: data_bytes.min(h.virtual_size),
    })
}

/// A blocking `Read` over the upload's chunks.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

#[async_trait]
impl Captures for CaptureService {
    async fn reserve(
        &self,
        node: &str,
        request: &CaptureRequest,
        disk_bytes: u64,
    ) -> PortResult<()> {
        // A reservation made before boot is replaced by one of the size the agent reports.
        self.lock().remove(node);
        let needed = max_image_bytes(request.format, disk_bytes);
        let ingest = self
            .cache
            .begin_ingest(&format!("capture-{node}"), needed)
            .await
            .map_err(|e| {
                let kind = match e {
                    CacheError::QuotaExceeded { .. } => PortErrorKind::NoSpace,
                    _ => PortErrorKind::Other,
                };
                PortError::new(
                    kind,
                    format!(
                        "capturing the {disk_bytes}-byte disk of node {node} as {} needs up to {needed} bytes of the image cache: {e}",
                        request.format.name()
                    ),
                )
            })?;
        self.lock().insert(
            node.to_string(),
            Pending {
                request: request.clone(),
                disk_bytes,
                ingest: Some(ingest),
                image: None,
            },
        );
        Ok(())
    }

    async fn finish(&self, node: &str) -> PortResult<CapturedImage> {
        match self.lock().remove(node) {
            Some(Pending {
                image: Some(image), ..
            }) => Ok(image),
            _ => Err(PortError::other(format!(
                "the agent of node {node} reported its capture done, but no upload of it was committed"
            ))),
        }
    }

    async fn discard(&self, node: &str) {
        self.lock().remove(node);
    }
}
