//! The target: a block device or a regular file. Writes data with `pwrite`, skips zero runs
//! where the target is known to be zero (a fresh or empty file, or the caller says so) and
//! otherwise zeroes them cheaply (BLKZEROOUT on a device, a punched hole in a file), never
//! leaving stale bytes. Optional O_DIRECT, straight from the (aligned) pooled buffers.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::{io_err, WriteError};
use super::extent::{is_zero, Extent};
use super::flusher::Flusher;
use super::pool::{Buf, ALIGN};
use super::safety;

/// `_IOR(0x12, 114, u64)` and `_IO(0x12, 127)` from linux/fs.h.
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
const BLKZEROOUT: libc::c_ulong = 0x127f;
const BLKSSZGET: libc::c_ulong = 0x1268;
const BLKRRPART: libc::c_ulong = 0x125f;
/// Zero detection granularity: a page, the smallest unit a hole or BLKZEROOUT helps with.
const ZERO_BLOCK: usize = 4096;
/// Zero runs shorter than this inside data are written as data: fewer, larger syscalls and no
/// fragmentation for little gain.
const MIN_ZERO_RUN: usize = 64 * 1024;

/// What the sink did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkStats {
    /// Bytes written with data.
    pub data_bytes: u64,
    /// Zero bytes made zero on the target (BLKZEROOUT, hole punch or written zeros).
    pub zeroed_bytes: u64,
    /// Zero bytes skipped because the target was already zero there.
    pub skipped_bytes: u64,
}

/// One verified span: data with its CRC32, or zeros.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start: u64,
    pub len: u64,
    pub crc: Option<u32>,
}

pub(crate) struct Sink {
    pub path: PathBuf,
    file: File,
    direct: Option<File>,
    /// Aligned copy of data that did not arrive in an aligned buffer, for `direct`.
    bounce: Option<Buf>,
    pub block: bool,
    /// Bytes the target holds; `None` for a file that grows (fresh or empty).
    pub capacity: Option<u64>,
    pub sector_size: u64,
    known_zero: bool,
    pending_zero: Option<(u64, u64)>,
    pub high: u64,
    pub stats: SinkStats,
    spans: Option<Vec<Span>>,
    flusher: Option<Flusher>,
}

pub(crate) struct SinkOptions {
    pub direct: bool,
    pub assume_zeroed: bool,
    pub verify: bool,
}

impl Sink {
    /// Opens (or creates) `path`, refusing a device in use.
    pub fn open(path: &Path, o: &SinkOptions) -> Result<Sink, WriteError> {
        let ctx = |what: &str| format!("{what} {}", path.display());
        let meta = match std::fs::metadata(path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(ctx("inspecting destination"))(e)),
        };
        let block = meta
            .as_ref()
            .is_some_and(|m| m.file_type().is_block_device());
        if let Some(m) = &meta {
            if !block && !m.is_file() {
                return Err(WriteError::Unsupported(format!(
                    "destination {} is neither a block device nor a regular file",
                    path.display()
                )));
            }
            if block {
                safety::check_block_not_in_use(path, m.rdev())?;
            }
        }
        let mut oo = OpenOptions::new();
        oo.read(true).write(true);
        if meta.is_none() {
            oo.create_new(true);
        }
        if block {
            // Exclusive open: the kernel refuses it while anything (a mount) claims the device.
            oo.custom_flags(libc::O_EXCL);
        } else {
            // A regular file is written only when named directly (see `check_target_kind`).
            oo.custom_flags(libc::O_NOFOLLOW);
        }
        let file = oo.open(path).map_err(io_err(ctx("opening destination")))?;
        let (capacity, sector_size, fresh) = if block {
            let mut size: u64 = 0;
            // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which is valid.
            let rc = unsafe {
                libc::ioctl(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    BLKGETSIZE64 as _,
                    &mut size,
                )
            };
            if rc != 0 {
                return Err(io_err(ctx("reading the size of"))(
                    std::io::Error::last_os_error(),
                ));
            }
            let mut ss: libc::c_int = 512;
            // SAFETY: BLKSSZGET writes one int through the pointer, which is valid.
            unsafe {
                libc::ioctl(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    BLKSSZGET as _,
                    &mut ss,
                )
            };
            (Some(size), ss.max(512) as u64, false)
        } else {
            let len = meta.as_ref().map_or(0, |m| m.len());
            if len == 0 {
                (None, 512, true)
            } else {
                (Some(len), 512, false)
            }
        };
        let direct = if o.direct && block {
            Some(
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)
                    .map_err(io_err(ctx("opening with O_DIRECT")))?,
            )
        } else {
            None
        };
        Ok(Sink {
            path: path.to_path_buf(),
            file,
            direct,
            bounce: None,
            block,
            capacity,
            sector_size,
            known_zero: fresh || o.assume_zeroed,
            pending_zero: None,
            high: 0,
            stats: SinkStats::default(),
            spans: o.verify.then(Vec::new),
            flusher: Flusher::start(path),
        })
    }

    /// Refuses an image larger than the target.
    pub fn check_fits(&self, image_size: u64) -> Result<(), WriteError> {
        match self.capacity {
            Some(cap) if cap < image_size => Err(WriteError::TargetTooSmall {
                path: self.path.clone(),
                target_size: cap,
                image_size,
            }),
            _ => Ok(()),
        }
    }

    /// Writes one extent.
    pub fn put(&mut self, extent: Extent) -> Result<(), WriteError> {
        self.check_fits(extent.end())?;
        self.high = self.high.max(extent.end());
        match extent {
            Extent::Zero { offset, len } => {
                self.record(offset, len, None);
                self.zero(offset, len)
            }
            Extent::Data { offset, buf } => self.data(offset, &buf),
        }
    }

    fn record(&mut self, start: u64, len: u64, crc: Option<u32>) {
        let Some(spans) = &mut self.spans else { return };
        if let Some(last) = spans.last_mut() {
            if last.start + last.len == start {
                match (&mut last.crc, crc) {
                    (None, None) => {
                        last.len += len;
                        return;
                    }
                    (Some(a), Some(b)) => {
                        let mut h = crc32fast::Hasher::new_with_initial_len(*a, last.len);
                        h.combine(&crc32fast::Hasher::new_with_initial_len(b, len));
                        *a = h.finalize();
                        last.len += len;
                        return;
                    }
                    _ => {}
                }
            }
        }
        spans.push(Span { start, len, crc });
    }

    fn data(&mut self, offset: u64, buf: &[u8]) -> Result<(), WriteError> {
        // Split into data runs and zero runs of at least MIN_ZERO_RUN.
        let mut i = 0;
        let mut run_start = 0;
        while i < buf.len() {
            let end = (i + ZERO_BLOCK).min(buf.len());
            if is_zero(&buf[i..end]) {
                let mut j = end;
                while j < buf.len() {
                    let e = (j + ZERO_BLOCK).min(buf.len());
                    if !is_zero(&buf[j..e]) {
                        break;
                    }
                    j = e;
                }
                if j - i >= MIN_ZERO_RUN || (i == 0 && j == buf.len()) {
                    if run_start < i {
                        self.write(offset + run_start as u64, &buf[run_start..i])?;
                    }
                    self.record(offset + i as u64, (j - i) as u64, None);
                    self.zero(offset + i as u64, (j - i) as u64)?;
                    run_start = j;
                }
                i = j;
            } else {
                i = end;
            }
        }
        if run_start < buf.len() {
            self.write(offset + run_start as u64, &buf[run_start..])?;
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), WriteError> {
        self.flush_zero()?;
        if self.spans.is_some() {
            self.record(offset, buf.len() as u64, Some(crc32fast::hash(buf)));
        }
        let ctx = || {
            format!(
                "writing {} bytes at offset {offset} of {}",
                buf.len(),
                self.path.display()
            )
        };
        match &self.direct {
            Some(d) if offset % ALIGN as u64 == 0 && buf.len() % ALIGN == 0 => {
                if buf.as_ptr() as usize % ALIGN == 0 {
                    // Pooled buffers are aligned: no copy.
                    d.write_all_at(buf, offset).map_err(io_err(ctx()))?;
                } else {
                    let bounce = match &mut self.bounce {
                        Some(b) if b.as_ref().len() >= buf.len() => b,
                        b => b.insert(Buf::new(buf.len())),
                    };
                    let aligned = &mut bounce.as_mut_slice()[..buf.len()];
                    aligned.copy_from_slice(buf);
                    d.write_all_at(aligned, offset).map_err(io_err(ctx()))?;
                }
            }
            _ => {
                self.file.write_all_at(buf, offset).map_err(io_err(ctx()))?;
                // Start writeback now (without waiting) so the final fsync finds little left
                // to flush and the disk works while the rest of the image streams in.
                // SAFETY: advisory call on an owned fd.
                unsafe {
                    libc::sync_file_range(
                        std::os::fd::AsRawFd::as_raw_fd(&self.file),
                        offset as libc::off64_t,
                        buf.len() as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WRITE,
                    )
                };
            }
        }
        self.stats.data_bytes += buf.len() as u64;
        if let Some(f) = &mut self.flusher {
            f.wrote(buf.len() as u64);
        }
        Ok(())
    }

    fn zero(&mut self, offset: u64, len: u64) -> Result<(), WriteError> {
        if self.known_zero {
            self.stats.skipped_bytes += len;
            return Ok(());
        }
        match &mut self.pending_zero {
            Some((s, l)) if *s + *l == offset => *l += len,
            _ => {
                self.flush_zero()?;
                self.pending_zero = Some((offset, len));
            }
        }
        Ok(())
    }

    pub(crate) fn flush_zero(&mut self) -> Result<(), WriteError> {
        let Some((offset, len)) = self.pending_zero.take() else {
            return Ok(());
        };
        self.stats.zeroed_bytes += len;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.file);
        if self.block {
            // BLKZEROOUT needs 512-aligned bounds; write the unaligned edges.
            let a = offset.next_multiple_of(512);
            let b = (offset + len) / 512 * 512;
            if b > a {
                let range: [u64; 2] = [a, b - a];
                // SAFETY: BLKZEROOUT reads two u64 (start, length) through the pointer.
                let rc = unsafe { libc::ioctl(fd, BLKZEROOUT as _, &range) };
                if rc != 0 {
                    return Err(io_err(format!(
                        "zeroing bytes {a}..{b} of {} (BLKZEROOUT)",
                        self.path.display()
                    ))(std::io::Error::last_os_error()));
                }
                self.write_zeros(offset, a - offset)?;
                self.write_zeros(b, offset + len - b)?;
            } else {
                self.write_zeros(offset, len)?;
            }
        } else {
            // SAFETY: plain fallocate on an owned fd.
            let rc = unsafe {
                libc::fallocate(
                    fd,
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    offset as libc::off_t,
                    len as libc::off_t,
                )
            };
            if rc != 0 {
                self.write_zeros(offset, len)?;
            }
        }
        Ok(())
    }

    fn write_zeros(&mut self, mut offset: u64, len: u64) -> Result<(), WriteError> {
        let zeros = vec![0u8; len.min(1 << 20) as usize];
        let end = offset + len;
        while offset < end {
            let n = (end - offset).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], offset)
                .map_err(io_err(format!(
                    "writing zeros at offset {offset} of {}",
                    self.path.display()
                )))?;
            offset += n as u64;
        }
        Ok(())
    }

    /// Flushes pending zeroing, sizes a growing file to `virtual_size`, and fsyncs.
    pub fn finish(&mut self, virtual_size: u64) -> Result<(), WriteError> {
        self.flush_zero()?;
        if let Some(f) = &mut self.flusher {
            f.stop();
        }
        if self.capacity.is_none() {
            self.file
                .set_len(virtual_size.max(self.high))
                .map_err(io_err(format!("sizing {}", self.path.display())))?;
        }
        self.sync()
    }

    fn sync(&self) -> Result<(), WriteError> {
        if let Some(d) = &self.direct {
            d.sync_all()
                .map_err(io_err(format!("fsync of {}", self.path.display())))?;
        }
        self.file
            .sync_all()
            .map_err(io_err(format!("fsync of {}", self.path.display())))
    }

    /// Asks the kernel to re-read a device's partition table (best effort).
    pub fn reread_partitions(&self) {
        if self.block {
            // SAFETY: BLKRRPART takes no argument.
            unsafe {
                libc::ioctl(
                    std::os::fd::AsRawFd::as_raw_fd(&self.file),
                    BLKRRPART as _,
                    0,
                )
            };
        }
    }

    /// Zeroes the first MiB so a half-written disk cannot boot; returns what was done.
    pub fn wipe_start(&mut self) -> String {
        let len = self.capacity.unwrap_or(1 << 20).min(1 << 20);
        self.pending_zero = None;
        match self.write_zeros(0, len).and_then(|_| self.sync()) {
            Ok(()) => format!(
                "the first {len} bytes of {} were zeroed so the half-written disk cannot boot",
                self.path.display()
            ),
            Err(e) => format!(
                "zeroing the start of {} failed too ({e}): do not boot this disk",
                self.path.display()
            ),
        }
    }

    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), WriteError> {
        self.file.read_exact_at(buf, offset).map_err(io_err(format!(
            "reading {} bytes at offset {offset} of {}",
            buf.len(),
            self.path.display()
        )))
    }

    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), WriteError> {
        self.file.write_all_at(buf, offset).map_err(io_err(format!(
            "writing {} bytes at offset {offset} of {}",
            buf.len(),
            self.path.display()
        )))
    }

    /// Re-reads every span written (after dropping the cached pages) and compares.
    pub fn verify(&self) -> Result<(), WriteError> {
        let Some(spans) = &self.spans else {
            return Ok(());
        };
        self.sync()?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.file);
        // SAFETY: advisory call on an owned fd.
        unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
        let mut buf = vec![0u8; 4 << 20];
        for s in spans {
            let mut h = crc32fast::Hasher::new();
            let mut at = s.start;
            let end = s.start + s.len;
            while at < end {
                let n = (end - at).min(buf.len() as u64) as usize;
                self.read_at(&mut buf[..n], at)?;
                match s.crc {
                    Some(_) => h.update(&buf[..n]),
                    None if !is_zero(&buf[..n]) => {
                        return Err(WriteError::VerifyFailed {
                            path: self.path.clone(),
                            offset: at,
                            end: at + n as u64,
                        })
                    }
                    None => {}
                }
                at += n as u64;
            }
            if let Some(want) = s.crc {
                if h.finalize() != want {
                    return Err(WriteError::VerifyFailed {
                        path: self.path.clone(),
                        offset: s.start,
                        end,
                    });
                }
            }
        }
        Ok(())
    }
}
