//! A disk opened for in-place edits (the agent's config drive partition and erasing): the same
//! refusals as a write (allow list, block devices only unless `allow_file`, mounted or held
//! devices), reads and writes at byte offsets, and zeroing that is cheap where the target
//! allows it (BLKZEROOUT on a device, a punched hole in a file), through the writer's sink.

use std::path::Path;

use super::error::WriteError;
use super::extent::Extent;
use super::sink::{Sink, SinkOptions};
use super::{safety, WriteOptions};

/// An opened disk; [`Disk::finish`] makes the edits durable.
pub struct Disk {
    sink: Sink,
}

impl Disk {
    /// Opens an existing disk (never creates one), refusing what a write would refuse.
    pub fn open(path: &Path, options: &WriteOptions) -> Result<Disk, WriteError> {
        safety::check_allowed(path, &options.allow)?;
        safety::check_target_kind(path, options.allow_file)?;
        std::fs::metadata(path).map_err(super::error::io_err(format!(
            "opening disk {}",
            path.display()
        )))?;
        let sink = Sink::open(
            path,
            &SinkOptions {
                direct: false,
                assume_zeroed: false,
                verify: false,
            },
        )?;
        Ok(Disk { sink })
    }

    /// The disk's size in bytes (0 for an empty file).
    pub fn size(&self) -> u64 {
        self.sink.capacity.unwrap_or(0)
    }

    pub fn sector_size(&self) -> u64 {
        self.sink.sector_size
    }

    pub fn path(&self) -> &Path {
        &self.sink.path
    }

    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), WriteError> {
        self.sink.read_at(buf, offset)
    }

    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), WriteError> {
        self.sink.write_at(buf, offset)
    }

    /// Makes `len` bytes at `offset` read as zeros, now.
    pub fn zero(&mut self, offset: u64, len: u64) -> Result<(), WriteError> {
        if len == 0 {
            return Ok(());
        }
        self.sink.put(Extent::Zero { offset, len })?;
        self.sink.flush_zero()
    }

    /// Syncs the edits to the disk and asks the kernel to re-read its partition table.
    pub fn finish(mut self) -> Result<(), WriteError> {
        let size = self.size();
        self.sink.finish(size)?;
        self.sink.reread_partitions();
        Ok(())
    }
}
