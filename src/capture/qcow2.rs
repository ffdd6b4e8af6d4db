//! qcow2 output from a capture stream: version 3, zstd-compressed clusters (header
//! compression type 1), zero clusters left unallocated. Written to a file that can be
//! seeked, in an order the writer's streaming reader (and any reader) takes in one pass:
//!
//! ```text
//! cluster 0      header (rewritten last)
//! L1 table       sized for the whole disk
//! per 2^(2·bits−3) bytes of disk that hold data (512 MiB with 64 KiB clusters):
//!                its L2 table (filled in when the region is done), then its clusters,
//!                compressed ones packed byte by byte, raw ones cluster-aligned
//! refcount blocks and table, last
//! ```
//!
//! Spec: QEMU `docs/interop/qcow2.txt` (header, cluster mapping, compressed cluster
//! descriptor, refcounts with refcount_order 4). Checked by `qemu-img check` and
//! `qemu-img compare` in the tests.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::wire::{Chunk, Stored};

const MAGIC: &[u8; 4] = b"QFI\xfb";
const HEADER_LENGTH: u32 = 112;
/// Incompatible feature bit 3: the compression type field is valid.
const INCOMPAT_COMPRESSION_TYPE: u64 = 1 << 3;
const COMPRESSION_ZSTD: u8 = 1;
/// 16-bit refcounts (QEMU's default).
const REFCOUNT_ORDER: u32 = 4;
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;

/// Why a chunk cannot be placed.
#[derive(Debug, thiserror::Error)]
pub enum Qcow2Error {
    #[error("writing the qcow2 image at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("{0}")]
    Chunk(String),
}

/// A qcow2 image being written; see the module docs.
pub struct Qcow2Writer {
    file: File,
    bits: u32,
    virtual_size: u64,
    l1: Vec<u64>,
    /// The region being filled: (L1 index, L2 table offset, its entries).
    region: Option<(usize, u64, Vec<u64>)>,
    /// The next free byte of the file.
    end: u64,
    /// Refcount of each host cluster.
    refcounts: Vec<u16>,
}

impl Qcow2Writer {
    /// An image of a `virtual_size`-byte disk with `cluster` bytes per cluster (a power of
    /// two from 512 to 2 MiB), written into `file` (empty).
    pub fn new(file: File, virtual_size: u64, cluster: u32) -> Result<Qcow2Writer, Qcow2Error> {
        if !cluster.is_power_of_two() || !(512..=2 << 20).contains(&cluster) {
            return Err(Qcow2Error::Chunk(format!(
                "cluster size {cluster} is not a power of two from 512 to 2 MiB"
            )));
        }
        let bits = cluster.trailing_zeros();
        let cs = u64::from(cluster);
        let per_l2 = cs / 8;
        let l1_len = virtual_size.div_ceil(cs * per_l2) as usize;
        let l1_clusters = (l1_len as u64 * 8).div_ceil(cs);
        let mut w = Qcow2Writer {
            file,
            bits,
            virtual_size,
            l1: vec![0; l1_len],
            region: None,
            end: 0,
            refcounts: Vec::new(),
        };
        w.allocate(cs * (1 + l1_clusters));
        Ok(w)
    }

    fn cs(&self) -> u64 {
        1 << self.bits
    }

    /// Takes `len` bytes at the end of the file, counting a reference to every cluster they
    /// touch; returns their offset.
    fn allocate(&mut self, len: u64) -> u64 {
        let at = self.end;
        self.end += len;
        let (first, last) = (at >> self.bits, (self.end - 1) >> self.bits);
        if self.refcounts.len() <= last as usize {
            self.refcounts.resize(last as usize + 1, 0);
        }
        for c in first..=last {
            self.refcounts[c as usize] = self.refcounts[c as usize].saturating_add(1);
        }
        at
    }

    fn align(&mut self) {
        self.end = self.end.div_ceil(self.cs()) * self.cs();
    }

    fn write_at(&self, bytes: &[u8], offset: u64) -> Result<(), Qcow2Error> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(|source| Qcow2Error::Io { offset, source })
    }

    fn flush_region(&mut self) -> Result<(), Qcow2Error> {
        if let Some((_, at, entries)) = self.region.take() {
            let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_be_bytes()).collect();
            self.write_at(&bytes, at)?;
        }
        Ok(())
    }

    /// Places one chunk (a cluster of the disk), in increasing offset order.
    pub fn add(&mut self, chunk: &Chunk) -> Result<(), Qcow2Error> {
        let cs = self.cs();
        let bad = |m: String| Err(Qcow2Error::Chunk(m));
        if chunk.offset % cs != 0 || u64::from(chunk.raw_len) != cs {
            return bad(format!(
                "chunk at {} of {} bytes is not one {cs}-byte cluster",
                chunk.offset, chunk.raw_len
            ));
        }
        let cluster = chunk.offset >> self.bits;
        let per_l2 = cs / 8;
        let (l1_index, l2_index) = ((cluster / per_l2) as usize, (cluster % per_l2) as usize);
        if l1_index >= self.l1.len() {
            return bad(format!("chunk at {} is past the disk's end", chunk.offset));
        }
        if self.region.as_ref().map(|r| r.0) != Some(l1_index) {
            self.flush_region()?;
            self.align();
            let at = self.allocate(cs);
            self.l1[l1_index] = at | COPIED;
            self.region = Some((l1_index, at, vec![0; per_l2 as usize]));
        }
        let entry = match chunk.stored {
            Stored::Zstd => {
                let len = chunk.bytes.len() as u64;
                // The descriptor counts 512-byte sectors in cluster_bits − 8 bits.
                let max_sectors = (1u64 << (self.bits - 8)) - 1;
                let at = self.end;
                let sectors = (at + len - 1) / 512 - at / 512;
                if len == 0 || sectors > max_sectors || len >= cs {
                    return bad(format!(
                        "compressed cluster at {} takes {len} bytes: not smaller than a cluster",
                        chunk.offset
                    ));
                }
                let at = self.allocate(len);
                self.write_at(&chunk.bytes, at)?;
                COMPRESSED | (sectors << (62 - (self.bits - 8))) | at
            }
            Stored::Raw => {
                self.align();
                let at = self.allocate(cs);
                self.write_at(&chunk.bytes, at)?;
                COPIED | at
            }
        };
        if let Some((_, _, entries)) = &mut self.region {
            entries[l2_index] = entry;
        }
        Ok(())
    }

    /// Writes the last L2 table, the L1 table, the refcounts and the header; returns the file.
    pub fn finish(mut self) -> Result<File, Qcow2Error> {
        self.flush_region()?;
        let cs = self.cs();
        self.align();
        let l1_bytes: Vec<u8> = self.l1.iter().flat_map(|e| e.to_be_bytes()).collect();
        self.write_at(&l1_bytes, cs)?;
        // The refcount blocks and table count themselves too: grow until they fit.
        let per_block = cs * 8 / (1 << REFCOUNT_ORDER);
        let used = self.end / cs;
        let (mut blocks, mut table) = (0u64, 0u64);
        loop {
            let total = used + blocks + table;
            let (b, t) = (
                total.div_ceil(per_block),
                (total.div_ceil(per_block) * 8).div_ceil(cs),
            );
            if (b, t) == (blocks, table) {
                break;
            }
            (blocks, table) = (b, t);
        }
        let blocks_at = self.allocate(blocks * cs);
        let table_at = self.allocate(table * cs);
        let mut table_bytes = Vec::with_capacity((table * cs) as usize);
        for b in 0..blocks {
            table_bytes.extend_from_slice(&(blocks_at + b * cs).to_be_bytes());
            let first = (b * per_block) as usize;
            let counts = self.refcounts.iter().skip(first).take(per_block as usize);
            let mut block: Vec<u8> = counts.flat_map(|c| c.to_be_bytes()).collect();
            block.resize(cs as usize, 0);
            self.write_at(&block, blocks_at + b * cs)?;
        }
        table_bytes.resize((table * cs) as usize, 0);
        self.write_at(&table_bytes, table_at)?;
        let header = header(
            self.bits,
            self.virtual_size,
            self.l1.len() as u32,
            table_at,
            table as u32,
        );
        self.write_at(&header, 0)?;
        self.file
            .set_len(self.end)
            .map_err(|source| Qcow2Error::Io {
                offset: self.end,
                source,
            })?;
        Ok(self.file)
    }
}

/// The version 3 header, padded to one cluster's start (pure).
fn header(bits: u32, size: u64, l1_len: u32, refcount_table: u64, table_clusters: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LENGTH as usize + 8);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&3u32.to_be_bytes()); // version
    h.extend_from_slice(&0u64.to_be_bytes()); // backing file offset
    h.extend_from_slice(&0u32.to_be_bytes()); // backing file size
    h.extend_from_slice(&bits.to_be_bytes());
    h.extend_from_slice(&size.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // no encryption
    h.extend_from_slice(&l1_len.to_be_bytes());
    h.extend_from_slice(&(1u64 << bits).to_be_bytes()); // L1 table: cluster 1
    h.extend_from_slice(&refcount_table.to_be_bytes());
    h.extend_from_slice(&table_clusters.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // snapshots
    h.extend_from_slice(&0u64.to_be_bytes()); // snapshots offset
    h.extend_from_slice(&INCOMPAT_COMPRESSION_TYPE.to_be_bytes());
    h.extend_from_slice(&0u64.to_be_bytes()); // compatible features
    h.extend_from_slice(&0u64.to_be_bytes()); // autoclear features
    h.extend_from_slice(&REFCOUNT_ORDER.to_be_bytes());
    h.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
    h.push(COMPRESSION_ZSTD);
    h.resize(HEADER_LENGTH as usize, 0);
    // Header extensions: only the end marker (type 0, length 0).
    h.extend_from_slice(&[0; 8]);
    h
}

/// The most bytes a qcow2 of a `disk`-byte disk can take with `cluster`-byte clusters:
/// every cluster stored raw, the tables, and one cluster of alignment per region (pure).
pub fn bound(disk: u64, cluster: u32) -> u64 {
    let cs = u64::from(cluster);
    let clusters = disk.div_ceil(cs);
    let regions = clusters.div_ceil(cs / 8);
    let data = clusters * cs;
    let tables = (1 + (regions * 8).div_ceil(cs) + 2 * regions) * cs;
    let refcounts = ((data + tables) / cs / (cs / 2) + 2) * cs * 2;
    data + tables + refcounts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_says_version_3_zstd_and_where_the_tables_are() {
        let h = header(16, 5 << 30, 10, 7 << 16, 1);
        assert_eq!(&h[..4], MAGIC);
        assert_eq!(
            crate::writer::qcow2::Header::parse(&h).unwrap(),
            crate::writer::qcow2::Header {
                version: 3,
                cluster_bits: 16,
                size: 5 << 30,
                l1_size: 10,
                l1_table_offset: 1 << 16,
                compression: crate::writer::qcow2::ClusterCompression::Zstd,
            }
        );
    }

    #[test]
    fn the_bound_covers_a_disk_stored_raw() {
        let disk = 3u64 << 30;
        assert!(bound(disk, 64 << 10) > disk);
        assert!(bound(disk, 64 << 10) < disk + (disk >> 8));
    }
}
