//! The agent's `capture_disk`: read a disk and write the capture stream
//! (`capture::wire`) that the runtime uploads to the conductor.
//!
//! The disk is read in chunks of the format's size by one thread; holes of a sparse file are
//! found with `SEEK_DATA` and not read, and chunks that read as all zeros are not sent. The
//! others are compressed with zstd by every core at once (a batch of chunks per round, so
//! reading overlaps compressing) and written in disk order; a chunk zstd cannot shrink is
//! sent raw. qcow2 chunks are whole clusters: the last one is padded with zeros.
//!
//! Reads only: the disk is opened read-only, and must be a block device (or a regular file
//! with `--allow-file`) under the agent's `--allow` paths.

use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use deploy_drivers::{AgentProgress, CaptureCommand, PortErrorKind};
use serde_json::{json, Value};

use super::commands::{CommandError, Limits};
use crate::capture::wire::{Chunk, Encoder, Header, Stored};

/// A disk the agent can read: its length, where its data is, its bytes.
pub trait DiskSource: Send + Sync {
    /// The disk's size in bytes.
    fn size(&self) -> u64;
    /// The first offset at or after `from` that may hold data (`len` when none).
    fn next_data(&self, from: u64) -> u64;
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()>;
}

/// A block device or file.
pub struct FileDisk {
    file: std::fs::File,
    len: u64,
}

impl FileDisk {
    /// Opens `path` read-only after the agent's limits allow it.
    pub fn open(path: &Path, limits: &Limits) -> Result<FileDisk, CommandError> {
        let refuse = |m: String| CommandError::new(PortErrorKind::Rejected, m);
        if !limits.allow.is_empty() && !limits.allow.iter().any(|a| path.starts_with(a)) {
            return Err(refuse(format!(
                "{} is not under the agent's --allow paths",
                path.display()
            )));
        }
        let meta = std::fs::metadata(path).map_err(|e| {
            CommandError::new(
                PortErrorKind::InvalidInput,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        use std::os::unix::fs::FileTypeExt;
        let regular = meta.file_type().is_file();
        if !(meta.file_type().is_block_device() || (regular && limits.allow_file)) {
            return Err(refuse(format!(
                "{} is not a block device (a regular file needs --allow-file)",
                path.display()
            )));
        }
        let file = std::fs::File::open(path).map_err(|e| {
            CommandError::new(
                PortErrorKind::Other,
                format!("opening {}: {e}", path.display()),
            )
        })?;
        let len = io::Seek::seek(&mut &file, io::SeekFrom::End(0)).map_err(|e| {
            CommandError::new(
                PortErrorKind::Other,
                format!("sizing {}: {e}", path.display()),
            )
        })?;
        Ok(FileDisk { file, len })
    }
}

impl DiskSource for FileDisk {
    fn size(&self) -> u64 {
        self.len
    }
    fn next_data(&self, from: u64) -> u64 {
        crate::writer::seek_data(&self.file, from, self.len)
    }
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, at)
    }
}

/// Chunks read per batch and thread: enough to keep every core busy between reads.
const CHUNKS_PER_THREAD: usize = 16;

/// Whether every byte is zero.
fn is_zero(b: &[u8]) -> bool {
    // SAFETY: every bit pattern is a valid u128.
    let (head, words, tail) = unsafe { b.align_to::<u128>() };
    head.iter().all(|&x| x == 0) && words.iter().all(|&x| x == 0) && tail.iter().all(|&x| x == 0)
}

/// Reads `disk` and writes the capture stream to `out`; returns what it did, as JSON.
pub fn capture(
    disk: &dyn DiskSource,
    cmd: &CaptureCommand,
    out: impl Write,
    progress: &(dyn Fn(AgentProgress) + Sync),
) -> Result<Value, CommandError> {
    let started = Instant::now();
    let chunk = cmd.format.chunk_bytes() as usize;
    let pad = cmd.format == deploy_drivers::CaptureFormat::Qcow2;
    let len = disk.size();
    let header = Header {
        virtual_size: len,
        chunk_bytes: chunk as u32,
        format: cmd.format,
    };
    let upload = |e: io::Error| {
        CommandError::new(
            PortErrorKind::Unreachable,
            format!(
                "sending the capture of {} to the conductor: {e}",
                cmd.device
            ),
        )
    };
    let mut enc = Encoder::new(out, &header).map_err(upload)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch = threads * CHUNKS_PER_THREAD;
    let (tx, rx) = sync_channel::<io::Result<(u64, Vec<(u64, Vec<u8>)>)>>(1);
    let mut sent = (0u64, 0u64);
    let result = std::thread::scope(|s| {
        // The reader: batches of non-zero chunks, with the offset read up to.
        s.spawn(move || {
            let mut at = 0u64;
            let mut next_data = 0u64;
            while at < len {
                let mut chunks = Vec::with_capacity(batch);
                while at < len && chunks.len() < batch {
                    if next_data < at {
                        next_data = disk.next_data(at);
                    }
                    let n = (len - at).min(chunk as u64) as usize;
                    if next_data >= at + n as u64 {
                        // A hole: skip to the chunk holding the next data.
                        at = (next_data.min(len) / chunk as u64 * chunk as u64).max(at + n as u64);
                        continue;
                    }
                    let mut buf = vec![0u8; if pad { chunk } else { n }];
                    if let Err(e) = disk.read_at(&mut buf[..n], at) {
                        let _ = tx.send(Err(io::Error::new(
                            e.kind(),
                            format!("reading at byte {at}: {e}"),
                        )));
                        return;
                    }
                    if !is_zero(&buf) {
                        chunks.push((at, buf));
                    }
                    at += n as u64;
                }
                if tx.send(Ok((at, chunks))).is_err() {
                    return;
                }
            }
        });
        for batch in rx {
            let (done, chunks) = batch.map_err(|e| {
                CommandError::new(PortErrorKind::Other, format!("reading {}: {e}", cmd.device))
            })?;
            for c in compress_all(chunks, cmd.zstd_level, threads)? {
                sent.0 += 1;
                sent.1 += u64::from(c.raw_len);
                enc.chunk(&c).map_err(upload)?;
            }
            progress(AgentProgress {
                done_bytes: done,
                total_bytes: Some(len),
            });
        }
        Ok::<(), CommandError>(())
    });
    result?;
    let (_, stream_bytes, sha256) = enc.finish().map_err(upload)?;
    Ok(json!({
        "device": cmd.device,
        "format": cmd.format.name(),
        "virtual_size": len,
        "data_chunks": sent.0,
        "data_bytes": sent.1,
        "stream_bytes": stream_bytes,
        "stream_sha256": sha256,
        "elapsed_s": started.elapsed().as_secs_f64(),
    }))
}

/// Compresses a batch across `threads` threads, keeping its order.
fn compress_all(
    chunks: Vec<(u64, Vec<u8>)>,
    level: i32,
    threads: usize,
) -> Result<Vec<Chunk>, CommandError> {
    let per = chunks.len().div_ceil(threads).max(1);
    let mut groups: Vec<Vec<(u64, Vec<u8>)>> = Vec::new();
    let mut it = chunks.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(per).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|g| {
                s.spawn(move || {
                    g.into_iter()
                        .map(|(at, b)| compress(at, b, level))
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            let part: io::Result<Vec<Chunk>> = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a compression thread panicked")));
            out.extend(part.map_err(|e| {
                CommandError::new(PortErrorKind::Other, format!("compressing: {e}"))
            })?);
        }
        Ok(out)
    })
}

fn compress(offset: u64, raw: Vec<u8>, level: i32) -> io::Result<Chunk> {
    let packed = zstd::bulk::compress(&raw, level)?;
    let raw_len = raw.len() as u32;
    Ok(if packed.len() < raw.len() {
        Chunk {
            offset,
            raw_len,
            stored: Stored::Zstd,
            bytes: packed,
        }
    } else {
        Chunk {
            offset,
            raw_len,
            stored: Stored::Raw,
            bytes: raw,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::wire::Decoder;
    use deploy_drivers::CaptureFormat;

    #[test]
    fn zero_detection_covers_unaligned_ends() {
        let mut b = vec![0u8; 4099];
        assert!(is_zero(&b[1..]));
        b[4098] = 1;
        assert!(!is_zero(&b[1..]));
    }

    #[test]
    fn a_sparse_file_sends_only_its_data_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        let f = std::fs::File::create(&path).unwrap();
        let len = (8 << 20) + 4096;
        f.set_len(len).unwrap();
        use std::os::unix::fs::FileExt;
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        f.write_all_at(&noise, 3 << 20).unwrap();
        f.write_all_at(b"tail", len - 4).unwrap();
        let limits = Limits {
            allow: vec![],
            allow_file: true,
        };
        let disk = FileDisk::open(&path, &limits).unwrap();
        for format in CaptureFormat::ALL {
            let cmd = CaptureCommand {
                device: path.display().to_string(),
                format,
                zstd_level: 3,
            };
            let mut out = Vec::new();
            let report = capture(&disk, &cmd, &mut out, &|_| {}).unwrap();
            let mut d = Decoder::new(&out[..]).unwrap();
            assert_eq!(d.header.virtual_size, len);
            let mut got = vec![0u8; len as usize + (64 << 10)];
            while let Some(c) = d.next_chunk().unwrap() {
                let raw = match c.stored {
                    Stored::Zstd => zstd::bulk::decompress(&c.bytes, c.raw_len as usize).unwrap(),
                    Stored::Raw => c.bytes,
                };
                got[c.offset as usize..c.offset as usize + raw.len()].copy_from_slice(&raw);
            }
            got.truncate(len as usize);
            assert!(got == std::fs::read(&path).unwrap(), "{format:?}");
            assert!(report["data_bytes"].as_u64().unwrap() < len / 4, "{report}");
        }
    }

    #[test]
    fn a_directory_or_a_file_without_allow_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = FileDisk::open(dir.path(), &Limits::default())
            .err()
            .unwrap();
        assert_eq!(e.kind, PortErrorKind::Rejected);
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(FileDisk::open(&file, &Limits::default()).is_err());
    }
}
