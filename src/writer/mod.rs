//! Streaming disk writer: source → decompress → decode → verify → sparse sink.
//!
//! Job: put a whole-disk image on a block device (or a file) without holding it in memory,
//! verifying the checksum of the bytes as downloaded (Ironic's image checksum), and leaving no
//! stale data where the image has zeros. The pipeline has two threads joined by a bounded
//! channel (plus one for HTTP): the decode thread reads the source in [`chunks`], counts
//! them and hands each to the hash thread by reference, decompresses (gzip/zstd/xz by magic)
//! and decodes (raw, or qcow2 streamed — see [`qcow2`]), sending [`extent::Extent`]s; the
//! calling thread writes them to the [`sink`]; the checksum runs on a thread of its own, and
//! a [`flusher`] thread flushes the target every 64 MiB so that the final fsync is short. A raw
//! uncompressed image is not copied in user space at all: the buffer a chunk is read into is
//! hashed and written as it is, then reused ([`pool`]); the holes of a sparse image file are
//! not even read, but hashed from a static zero buffer ([`source`]), and runs of zero chunks
//! reach the sink as one zero extent ([`raw`]).
//!
//! Memory: every data buffer comes from a pool with a fixed number of buffers ([`pool`]), so
//! the pools bound it, whatever the queues hold: file and stdin chunks 6 × 4 MiB, HTTP
//! chunks 12 × 1 MiB, extents a decompressor or the qcow2 decoder fills 5 × 4 MiB; the qcow2
//! look-behind adds 8 MiB before it spools to a temp file, and one cluster window (at most
//! 2 MiB). That is at most 54 MiB (a compressed qcow2 file) within a 64 MiB budget; a raw file
//! needs 24 MiB, a raw download 12 MiB. The decompressor's own window comes on top.
//!
//! Safety: a destination outside `allow`, anything but a block device (unless `allow_file`; a
//! symlink to a regular file always), a mounted (or partition-mounted, or held) device, or
//! one smaller than the image's virtual size is refused before writing. When the target is
//! full or a write fails, the source is not read any further. On a checksum mismatch
//! or any failure after writing began, the first MiB of the target is zeroed and the error says
//! so. After a GPT image is written to a bigger disk, the backup GPT moves to the disk's end.
//!
//! Non-goals: partition images (kernel/ramdisk) and filesystem resizing; qcow2 backing chains,
//! encryption, external data files and extended L2 (refused). Spec for qcow2: QEMU
//! `docs/interop/qcow2.txt`; GPT: UEFI 2.10 §5.3.

mod checksum;
mod chunks;
mod decompress;
mod disk;
mod error;
mod extent;
mod flusher;
pub mod gpt;
mod lookbehind;
pub mod mbr;
mod pool;
pub mod qcow2;
mod raw;
mod safety;
mod sink;
mod source;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use checksum::{Algorithm, Checksum, Hasher};
pub use decompress::Compression;
pub use disk::Disk;
pub use error::WriteError;
pub use gpt::relocate_plan;
pub use safety::parse_mountinfo;
pub use sink::SinkStats;
pub(crate) use source::seek_data;
pub use source::Source;

use bytes::Bytes;
use checksum::HashingChunks;
use chunks::{ChunkReader, Chunks, ReadChunks};
use error::io_err;
use extent::{Extent, EXTENT_BUFFERS, EXTENT_MAX};
use sink::{Sink, SinkOptions};

/// Extents queued between the decode thread and the sink (each at most 4 MiB; the buffer
/// pools bound the memory).
const QUEUE_SLOTS: usize = 3;

/// How to interpret the (decompressed) image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// qcow2 by its magic, raw otherwise.
    #[default]
    Auto,
    Raw,
    Qcow2,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        }
    }
}

/// Knobs with safe defaults.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Destinations must lie under one of these paths (symlinks resolved); empty: any.
    pub allow: Vec<PathBuf>,
    /// Also write regular files (created when missing). Off: only block devices, so a
    /// mistyped device path is refused instead of becoming a file in /dev. Even on, a
    /// symlink to a regular file is refused.
    pub allow_file: bool,
    /// Write block devices with O_DIRECT, bypassing the page cache.
    pub direct: bool,
    /// The caller guarantees the target reads as zeros (e.g. it just ran `blkdiscard -z`):
    /// zero runs are then skipped rather than zeroed.
    pub assume_zeroed: bool,
    /// Read the written bytes back (page cache dropped) and compare CRC32s.
    pub verify: bool,
}

/// One write job.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub source: Source,
    pub dest: PathBuf,
    pub checksum: Option<Checksum>,
    pub format: Format,
    pub options: WriteOptions,
}

/// Progress, reported after each extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read from the source so far (compressed bytes for a compressed image).
    pub source_read: u64,
    /// The source's length, when known (file size or Content-Length).
    pub source_len: Option<u64>,
    /// Highest virtual-disk offset written so far.
    pub written: u64,
    /// The image's virtual size, when known up front (qcow2, uncompressed raw).
    pub virtual_size: Option<u64>,
}

/// What a successful write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub format: Format,
    pub compression: Compression,
    pub virtual_size: u64,
    pub source_bytes: u64,
    /// `algo:hex` of the source bytes, when a checksum was given (and matched).
    pub digest: Option<String>,
    pub sink: SinkStats,
    /// Bytes of qcow2 look-behind spooled to a temp file (metadata after data).
    pub spooled_bytes: u64,
    pub gpt_relocated: bool,
    pub verified: bool,
    pub elapsed: Duration,
}

/// What [`info`] finds out about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: Format,
    pub compression: Compression,
    /// The virtual disk size; `None` for a compressed raw stream that is not a file.
    pub virtual_size: Option<u64>,
    pub source_len: Option<u64>,
}

/// What the decode thread returns: (virtual size, spooled bytes), and the source digest.
type DecodeOutcome = (
    Result<(u64, u64), WriteError>,
    std::io::Result<Option<String>>,
);

/// A decoder chosen for the stream, with its input.
enum Decoder {
    Raw(Chunks),
    Qcow2(qcow2::Header, Box<dyn Read + Send>),
}

struct Prepared {
    compression: Compression,
    format: Format,
    decoder: Decoder,
    virtual_size: Option<u64>,
    source_len: Option<u64>,
    hashing: Arc<Mutex<HashingChunks>>,
    counter: Arc<AtomicU64>,
}

/// Lets the decode chain own the hashed source while the pipeline can still drain it to the
/// end. Only the decode thread ever locks it, so the lock is never contended.
struct Shared(Arc<Mutex<HashingChunks>>);

impl Iterator for Shared {
    type Item = std::io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.lock().expect("hashed source lock").next()
    }
}

/// The image bytes after decompression: still the source's own chunks when uncompressed, so
/// a raw image reaches the sink in the very buffers it was read into.
enum Stream {
    Chunks(Chunks),
    Reader(Box<dyn Read + Send>),
}

impl Stream {
    fn into_chunks(self) -> Chunks {
        match self {
            Stream::Chunks(c) => c,
            Stream::Reader(r) => Box::new(ReadChunks::new(r, EXTENT_MAX, EXTENT_BUFFERS)),
        }
    }

    fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            Stream::Chunks(c) => Box::new(ChunkReader::new(c)),
            Stream::Reader(r) => r,
        }
    }
}

fn prepare(
    source: &Source,
    format: Format,
    algorithm: Option<Algorithm>,
) -> Result<Prepared, WriteError> {
    let opened = source::open(source)?;
    let counter = Arc::new(AtomicU64::new(0));
    let hashing = Arc::new(Mutex::new(
        HashingChunks::new(opened.chunks, algorithm, counter.clone())
            .map_err(io_err("starting the hash thread"))?,
    ));
    let (head, chunks) = chunks::head(Box::new(Shared(hashing.clone())), qcow2::Header::MIN_LEN)
        .map_err(io_err("reading the start of the image"))?;
    let compression = decompress::sniff(&head)?;
    let (head, stream, raw_size) = match compression {
        Compression::None => (head, Stream::Chunks(chunks), opened.len),
        kind => {
            let reader = decompress::wrap(kind, ChunkReader::new(chunks))?;
            let (inner_head, reader) = decompress::peek(reader, qcow2::Header::MIN_LEN)?;
            let hint = decompress::size_hint(kind, &head);
            (inner_head, Stream::Reader(reader), hint)
        }
    };
    let is_qcow2 = head.starts_with(qcow2::MAGIC);
    let (format, decoder, virtual_size) = match (format, is_qcow2) {
        (Format::Qcow2, false) => {
            return Err(WriteError::Corrupt(format!(
                "{} is not a qcow2 image (no QFI\\xfb magic): use --format raw or auto",
                source.describe()
            )))
        }
        (Format::Auto | Format::Qcow2, true) => {
            let h = qcow2::Header::parse(&head)?;
            let size = h.size;
            let reader = stream.into_reader();
            (Format::Qcow2, Decoder::Qcow2(h, reader), Some(size))
        }
        (_, _) => (Format::Raw, Decoder::Raw(stream.into_chunks()), raw_size),
    };
    Ok(Prepared {
        compression,
        format,
        decoder,
        virtual_size,
        source_len: opened.len,
        hashing,
        counter,
    })
}

/// Inspects an image: format, compression and virtual size. A compressed raw *file* is
/// decompressed to count its size; a compressed raw stream reports `None`.
pub fn info(source: &Source) -> Result<ImageInfo, WriteError> {
    let p = prepare(source, Format::Auto, None)?;
    let virtual_size = match p.decoder {
        // A header's size hint may cover only the first of several frames: count instead.
        Decoder::Raw(chunks) if p.compression != Compression::None => match source {
            Source::File(_) => {
                let mut n = 0;
                for chunk in chunks {
                    n += chunk
                        .map_err(io_err(format!("decompressing {}", source.describe())))?
                        .len() as u64;
                }
                Some(n)
            }
            _ => None,
        },
        _ => p.virtual_size,
    };
    Ok(ImageInfo {
        format: p.format,
        compression: p.compression,
        virtual_size,
        source_len: p.source_len,
    })
}

/// The virtual disk size of an image file when its first bytes tell it: a qcow2's header
/// size, an uncompressed raw file's length; `None` for a compressed image (telling would mean
/// decompressing it). Cheap enough to run before a deploy boots anything. Blocking.
pub fn virtual_size_of_file(path: &Path) -> Result<Option<u64>, WriteError> {
    let what = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(io_err(format!("opening {}", what())))?;
    let len = file
        .metadata()
        .map_err(io_err(format!("reading {}", what())))?
        .len();
    let mut head = Vec::with_capacity(qcow2::Header::MIN_LEN);
    file.take(qcow2::Header::MIN_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io_err(format!("reading the start of {}", what())))?;
    if decompress::sniff(&head)? != Compression::None {
        return Ok(None);
    }
    if head.starts_with(qcow2::MAGIC) {
        return Ok(Some(qcow2::Header::parse(&head)?.size));
    }
    Ok(Some(len))
}

/// Writes an image to a block device or file; see the module docs for the guarantees.
/// Blocking: call it from a thread (or `spawn_blocking`), not from async code.
pub fn write_image(
    req: WriteRequest,
    progress: impl Fn(Progress),
) -> Result<WriteReport, WriteError> {
    let started = Instant::now();
    safety::check_allowed(&req.dest, &req.options.allow)?;
    safety::check_target_kind(&req.dest, req.options.allow_file)?;
    let algorithm = req.checksum.as_ref().map(|c| c.algorithm);
    let p = prepare(&req.source, req.format, algorithm)?;
    let mut sink = Sink::open(
        &req.dest,
        &SinkOptions {
            direct: req.options.direct,
            assume_zeroed: req.options.assume_zeroed,
            verify: req.options.verify,
        },
    )?;
    if let Some(size) = p.virtual_size {
        sink.check_fits(size)?;
    }

    let (tx, rx) = std::sync::mpsc::sync_channel::<Extent>(QUEUE_SLOTS);
    let hashing = p.hashing.clone();
    let decoder = p.decoder;
    // Set when the sink fails (target full, write error): the decode thread then stops
    // reading the source instead of hashing it to its end, which may never come.
    let sink_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reading = sink_failed.clone();
    let decode = std::thread::Builder::new()
        .name("writer-decode".into())
        .spawn(move || -> DecodeOutcome {
            let mut emit = move |e: Extent| {
                tx.send(e).map_err(|_| WriteError::Io {
                    context: "handing data to the sink".into(),
                    source: std::io::Error::other("the sink stopped"),
                })
            };
            let decoded = match decoder {
                Decoder::Raw(chunks) => raw::decode(chunks, &mut emit).map(|n| (n, 0)),
                Decoder::Qcow2(h, mut reader) => {
                    let size = h.size;
                    qcow2::decode(h, Vec::new(), &mut reader, &mut emit)
                        .map(|stats| (size, stats.spooled_bytes))
                }
            };
            drop(emit);
            if stop_reading.load(Ordering::SeqCst) {
                return (decoded, Ok(None));
            }
            // Hash to the end of the source even if decoding stopped early.
            let digest = hashing.lock().expect("hashed source lock").finish();
            (decoded, digest)
        })
        .map_err(io_err("starting the decode thread"))?;

    let mut sink_err = None;
    for extent in rx.iter() {
        if let Err(e) = sink.put(extent) {
            sink_err = Some(e);
            break;
        }
        progress(Progress {
            source_read: p.counter.load(Ordering::Relaxed),
            source_len: p.source_len,
            written: sink.high,
            virtual_size: p.virtual_size,
        });
    }
    if let Some(e) = sink_err {
        // Not joined: the decode thread may be blocked reading an endless source; it ends at
        // its next hand-over, which fails now that the receiver is gone.
        sink_failed.store(true, Ordering::SeqCst);
        drop(rx);
        drop(decode);
        return Err(WriteError::Wiped {
            wipe: sink.wipe_start(),
            cause: Box::new(e),
        });
    }
    drop(rx);
    let (decoded, digest) = decode.join().unwrap_or_else(|_| {
        (
            Err(WriteError::Corrupt("the decode thread panicked".into())),
            Ok(None),
        )
    });

    let fail = |sink: &mut Sink, cause: WriteError| WriteError::Wiped {
        cause: Box::new(cause),
        wipe: sink.wipe_start(),
    };
    // The checksum speaks first: corrupted bytes explain a decode error, not the reverse.
    let digest = match (&req.checksum, digest) {
        (Some(want), Ok(Some(got))) if got != want.hex => {
            let also = match &decoded {
                Err(e) => format!(" (which also caused: {e})"),
                _ => String::new(),
            };
            let cause = WriteError::ChecksumMismatch {
                image: req.source.describe(),
                algorithm: want.algorithm.name(),
                expected: want.hex.clone(),
                actual: got,
                also,
            };
            return Err(fail(&mut sink, cause));
        }
        (Some(want), Ok(Some(got))) => Some(format!("{}:{got}", want.algorithm.name())),
        (_, Ok(_)) => None,
        (_, Err(e)) if decoded.is_ok() => {
            return Err(fail(
                &mut sink,
                io_err(format!("reading {}", req.source.describe()))(e),
            ))
        }
        (_, Err(_)) => None,
    };
    let (virtual_size, spooled_bytes) = match decoded {
        Ok(v) => v,
        Err(e) => return Err(fail(&mut sink, e)),
    };
    if let Err(e) = sink.finish(virtual_size) {
        return Err(fail(&mut sink, e));
    }
    let gpt_relocated = match relocate_gpt(&mut sink, virtual_size) {
        Ok(moved) => moved,
        Err(e) => return Err(fail(&mut sink, e)),
    };
    if let Err(e) = sink.verify() {
        return Err(fail(&mut sink, e));
    }
    sink.reread_partitions();
    Ok(WriteReport {
        format: p.format,
        compression: p.compression,
        virtual_size,
        source_bytes: p.counter.load(Ordering::Relaxed),
        digest,
        sink: sink.stats,
        spooled_bytes,
        gpt_relocated,
        verified: req.options.verify,
        elapsed: started.elapsed(),
    })
}

/// Moves the backup GPT to the end of a target bigger than the image; true when it did.
fn relocate_gpt(sink: &mut Sink, virtual_size: u64) -> Result<bool, WriteError> {
    let ss = sink.sector_size;
    let Some(disk) = sink.capacity else {
        return Ok(false);
    };
    if disk <= virtual_size || virtual_size < 3 * ss || virtual_size % ss != 0 {
        return Ok(false);
    }
    let mut lba0 = vec![0u8; ss as usize];
    let mut lba1 = vec![0u8; ss as usize];
    sink.read_at(&mut lba0, 0)?;
    sink.read_at(&mut lba1, ss)?;
    let Some((entries_at, entries_len)) = gpt::entries_location(&lba1, ss) else {
        return Ok(false);
    };
    if entries_len == 0 || entries_len > 1 << 20 || entries_at + entries_len > virtual_size {
        return Ok(false);
    }
    let mut entries = vec![0u8; entries_len as usize];
    sink.read_at(&mut entries, entries_at)?;
    let Some(plan) = gpt::relocate_plan(&lba0, &lba1, &entries, virtual_size / ss, disk / ss, ss)
    else {
        return Ok(false);
    };
    for (offset, bytes) in &plan {
        sink.write_at(bytes, *offset)?;
    }
    sink.finish(virtual_size)?;
    Ok(true)
}
