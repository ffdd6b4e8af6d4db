//! qcow2 decoded from a non-seekable stream.
//!
//! Spec: QEMU's `docs/interop/qcow2.txt` (versions 2 and 3). The stream is read once, in
//! order. Every structure is an *item* at a host offset (the L1 table, L2 tables, data
//! clusters, compressed clusters); an item is handled once all its bytes have arrived. Bytes
//! no item has claimed yet go to the [`LookBehind`] buffer, because a table read later may
//! point back at them (that is the only case that spools to disk). `qemu-img convert -O
//! qcow2` writes each L2 table before the data it maps, so such images stream with a small
//! buffer. Once every L2 table is known, unclaimed bytes are dropped as they arrive.
//!
//! Not supported (refused with a clear error): backing files, encryption, external data
//! files, extended L2 entries, images marked corrupt. Internal snapshots are ignored (only the
//! active L1 table is read).

use std::collections::BTreeMap;
use std::io::Read;

use super::chunks::read_full;
use super::error::{io_err, WriteError};
use super::extent::{Emit, Extent, EXTENT_BUFFERS, EXTENT_MAX};
use super::lookbehind::LookBehind;
use super::pool::{Buf, Pool};

pub const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Host offsets in L1/L2 entries: bits 9–55 (qcow2.txt, "Cluster mapping").
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_COMPRESSED: u64 = 1 << 62;
const L2_ZERO: u64 = 1;
/// Incompatible feature bits (qcow2.txt, header bytes 72–79).
const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_EXTERNAL_DATA: u64 = 1 << 2;
const INCOMPAT_COMPRESSION_TYPE: u64 = 1 << 3;
const INCOMPAT_EXTENDED_L2: u64 = 1 << 4;
/// QEMU's QCOW_MAX_L1_SIZE: bounds what a hostile header can make us buffer.
const MAX_L1_BYTES: u64 = 32 << 20;
/// Look-behind kept in memory before spooling to a temp file.
pub(crate) const LOOKBEHIND_MEM: u64 = 8 << 20;

/// How compressed clusters are compressed (header byte 104).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterCompression {
    Deflate,
    Zstd,
}

/// The parts of a qcow2 header the decoder uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub compression: ClusterCompression,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Header {
    /// Bytes to read before [`Header::parse`] can decide.
    pub const MIN_LEN: usize = 112;

    /// Parses and vets a header (pure).
    pub fn parse(b: &[u8]) -> Result<Header, WriteError> {
        let corrupt = |m: String| WriteError::Corrupt(format!("qcow2 header: {m}"));
        if b.len() < 72 || &b[..4] != MAGIC {
            return Err(corrupt("too short or wrong magic".into()));
        }
        let version = be32(b, 4);
        if version != 2 && version != 3 {
            return Err(WriteError::Unsupported(format!(
                "qcow2 version {version}: only versions 2 and 3 exist"
            )));
        }
        if be64(b, 8) != 0 {
            return Err(WriteError::Unsupported(
                "qcow2 image has a backing file: flatten it first (qemu-img convert -O qcow2 in.qcow2 out.qcow2)".into(),
            ));
        }
        let cluster_bits = be32(b, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(corrupt(format!(
                "cluster_bits {cluster_bits} outside 9..=21"
            )));
        }
        let size = be64(b, 24);
        if be32(b, 32) != 0 {
            return Err(WriteError::Unsupported(
                "qcow2 image is encrypted: decrypt it first (qemu-img convert with --object secret)".into(),
            ));
        }
        let l1_size = be32(b, 36);
        let l1_table_offset = be64(b, 40);
        let mut compression = ClusterCompression::Deflate;
        if version == 3 {
            if b.len() < 104 {
                return Err(corrupt("version 3 header shorter than 104 bytes".into()));
            }
            let incompat = be64(b, 72);
            if incompat & INCOMPAT_EXTERNAL_DATA != 0 {
                return Err(WriteError::Unsupported(
                    "qcow2 image keeps its data in an external data file: convert it to a self-contained image first".into(),
                ));
            }
            if incompat & INCOMPAT_EXTENDED_L2 != 0 {
                return Err(WriteError::Unsupported(
                    "qcow2 image uses extended L2 entries (subclusters): convert it without extended_l2 first".into(),
                ));
            }
            if incompat & INCOMPAT_CORRUPT != 0 {
                return Err(corrupt(
                    "the image is marked corrupt: run qemu-img check -r all".into(),
                ));
            }
            let known = INCOMPAT_DIRTY
                | INCOMPAT_CORRUPT
                | INCOMPAT_EXTERNAL_DATA
                | INCOMPAT_COMPRESSION_TYPE
                | INCOMPAT_EXTENDED_L2;
            if incompat & !known != 0 {
                return Err(WriteError::Unsupported(format!(
                    "qcow2 incompatible feature bits {:#x} are unknown",
                    incompat & !known
                )));
            }
            let header_length = be32(b, 100) as usize;
            if incompat & INCOMPAT_COMPRESSION_TYPE != 0 {
                if header_length <= 104 || b.len() <= 104 {
                    return Err(corrupt("compression type bit set without the field".into()));
                }
                compression = match b[104] {
                    0 => ClusterCompression::Deflate,
                    1 => ClusterCompression::Zstd,
                    t => {
                        return Err(WriteError::Unsupported(format!(
                            "qcow2 compression type {t} is unknown"
                        )))
                    }
                };
            }
        }
        let h = Header {
            version,
            cluster_bits,
            size,
            l1_size,
            l1_table_offset,
            compression,
        };
        // QEMU requires a cluster-aligned L1 table; below 2^56, like every host offset, so
        // offset + length never wraps.
        if h.l1_table_offset & !OFFSET_MASK != 0 || h.l1_table_offset % h.cluster_size() != 0 {
            return Err(corrupt(format!(
                "L1 table offset {:#x} is not a cluster-aligned offset below 2^56",
                h.l1_table_offset
            )));
        }
        if h.l1_size as u64 * 8 > MAX_L1_BYTES {
            return Err(WriteError::Unsupported(format!(
                "qcow2 L1 table of {} entries is larger than QEMU's own limit of 32 MiB",
                h.l1_size
            )));
        }
        if (h.l1_size as u64) < h.size.div_ceil(h.l2_coverage()) {
            return Err(corrupt(format!(
                "l1_size {} cannot map the virtual size {}",
                h.l1_size, h.size
            )));
        }
        Ok(h)
    }

    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }
    fn l2_entries(&self) -> u64 {
        self.cluster_size() / 8
    }
    /// Guest bytes mapped by one L2 table.
    fn l2_coverage(&self) -> u64 {
        self.cluster_size() * self.l2_entries()
    }
    fn csize_shift(&self) -> u32 {
        62 - (self.cluster_bits - 8)
    }
}

/// A structure waiting for its bytes.
#[derive(Debug, Clone, Copy)]
enum Item {
    L1,
    L2 { guest: u64 },
    Data { guest: u64 },
    Compressed { guest: u64, csize: u64 },
}

/// Statistics a test or a report can use.
#[derive(Debug, Default, Clone, Copy)]
pub struct Qcow2Stats {
    pub spooled_bytes: u64,
    pub max_lookbehind: u64,
}

struct Decoder<'e, 'a> {
    h: Header,
    pending: BTreeMap<u64, Item>,
    /// Longest item, to bound overlap searches.
    max_item: u64,
    l1_done: bool,
    l2_outstanding: usize,
    store: LookBehind,
    received: u64,
    emit: &'e mut Emit<'a>,
    /// Contiguous data being gathered into one extent: guest offset, a buffer from `pool`,
    /// and how much of it is filled.
    batch: Option<(u64, Buf, usize)>,
    pool: Pool,
    /// Contiguous zero clusters gathered into one extent: one channel hop per run, not per
    /// cluster (a sparse 2 GiB image has ~30,000 of them).
    zeros: Option<(u64, u64)>,
    stats: Qcow2Stats,
}

/// Decodes a qcow2 stream whose first bytes `head` were already read (at least the header);
/// reads `r` to its end. Returns statistics.
pub(crate) fn decode(
    h: Header,
    head: Vec<u8>,
    r: &mut dyn Read,
    emit: &mut Emit<'_>,
) -> Result<Qcow2Stats, WriteError> {
    let cluster = h.cluster_size();
    let l1_bytes = h.l1_size as u64 * 8;
    let mut d = Decoder {
        pending: BTreeMap::new(),
        max_item: l1_bytes.max(cluster + 512),
        l1_done: false,
        l2_outstanding: 0,
        store: LookBehind::new(LOOKBEHIND_MEM),
        received: 0,
        emit,
        batch: None,
        pool: Pool::new(EXTENT_MAX, EXTENT_BUFFERS),
        zeros: None,
        stats: Qcow2Stats::default(),
        h,
    };
    if d.h.size == 0 {
        d.l1_done = true;
    } else {
        d.add(d.h.l1_table_offset, Item::L1)?;
    }
    // First window: cluster 0, completed from the stream.
    let mut first = head;
    if (first.len() as u64) < cluster {
        let have = first.len();
        first.resize(cluster as usize, 0);
        let n = read_full(r, &mut first[have..]).map_err(io_err("reading qcow2 cluster 0"))?;
        first.truncate(have + n);
    }
    d.feed(first)?;
    let window = cluster.max(64 * 1024) as usize;
    loop {
        let mut buf = vec![0u8; window];
        let at = d.received;
        let n = read_full(r, &mut buf)
            .map_err(io_err(format!("reading qcow2 image at host offset {at}")))?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        d.feed(buf)?;
    }
    d.finish()?;
    d.stats.spooled_bytes = d.store.spooled_total;
    Ok(d.stats)
}

/// Decodes a whole qcow2 stream without writing it, reporting each guest extent as
/// `(offset, len, is_data)` in order: a check of an untrusted image (and the fuzz harness's
/// entry point) that runs exactly the decoder `image write` uses.
pub fn scan(
    r: &mut dyn Read,
    mut on_extent: impl FnMut(u64, u64, bool),
) -> Result<Qcow2Stats, WriteError> {
    let mut head = vec![0u8; Header::MIN_LEN];
    let n = read_full(r, &mut head).map_err(io_err("reading the qcow2 header"))?;
    head.truncate(n);
    let h = Header::parse(&head)?;
    let mut emit = |e: Extent| {
        match e {
            Extent::Data { offset, buf } => on_extent(offset, buf.len() as u64, true),
            Extent::Zero { offset, len } => on_extent(offset, len, false),
        }
        Ok(())
    };
    decode(h, head, r, &mut emit)
}

impl Decoder<'_, '_> {
    fn all_known(&self) -> bool {
        self.l1_done && self.l2_outstanding == 0
    }

    fn item_len(&self, item: &Item) -> u64 {
        match item {
            Item::L1 => self.h.l1_size as u64 * 8,
            Item::L2 { .. } | Item::Data { .. } => self.h.cluster_size(),
            Item::Compressed { csize, .. } => *csize,
        }
    }

    fn add(&mut self, host: u64, item: Item) -> Result<(), WriteError> {
        if host == 0 {
            return Err(WriteError::Corrupt(format!(
                "qcow2 {item:?} points at host offset 0 (the header)"
            )));
        }
        if let Some(prev) = self.pending.insert(host, item) {
            return Err(WriteError::Unsupported(format!(
                "qcow2 host offset {host} is used twice ({prev:?} and {item:?}), e.g. clusters shared with a snapshot: \
                 convert the image with `qemu-img convert -O qcow2` first"
            )));
        }
        if matches!(item, Item::L2 { .. }) {
            self.l2_outstanding += 1;
        }
        Ok(())
    }

    fn overlaps_pending(&self, a: u64, b: u64) -> bool {
        self.pending
            .range(a.saturating_sub(self.max_item)..b)
            .any(|(&s, it)| s + self.item_len(it) > a)
    }

    fn feed(&mut self, buf: Vec<u8>) -> Result<(), WriteError> {
        let start = self.received;
        let end = start + buf.len() as u64;
        self.received = end;
        if !self.all_known() || self.overlaps_pending(start, end) {
            self.store.insert(start, buf)?;
            self.stats.max_lookbehind = self.stats.max_lookbehind.max(self.store.mem_bytes());
        }
        self.process(false)?;
        if self.all_known() && self.store.mem_bytes() > 0 {
            // Fragments nothing can claim any more (padding, refcount blocks).
            let pending = std::mem::take(&mut self.pending);
            let max_item = self.max_item;
            let h = self.h.clone();
            self.store.retain(|a, b| {
                pending
                    .range(a.saturating_sub(max_item)..b)
                    .any(|(&s, it)| s + item_len_of(&h, it) > a)
            });
            self.pending = pending;
        }
        Ok(())
    }

    fn process(&mut self, eof: bool) -> Result<(), WriteError> {
        loop {
            let received = self.received;
            let ready = self
                .pending
                .range(..received)
                .find(|(&s, it)| {
                    let end = s + self.item_len(it);
                    end <= received || (eof && matches!(it, Item::Compressed { .. }))
                })
                .map(|(&s, &it)| (s, it));
            let Some((host, item)) = ready else {
                return Ok(());
            };
            self.pending.remove(&host);
            self.handle(host, item)?;
        }
    }

    fn missing(&self, host: u64, item: Item) -> WriteError {
        WriteError::Unsupported(format!(
            "qcow2 {item:?} at host offset {host} refers to bytes the streaming decoder no longer holds: \
             convert the image with `qemu-img convert -O qcow2` first"
        ))
    }

    fn handle(&mut self, host: u64, item: Item) -> Result<(), WriteError> {
        let len = self.item_len(&item);
        match item {
            Item::L1 => {
                let table = self
                    .store
                    .take(host, len)?
                    .ok_or(self.missing(host, item))?;
                self.l1_done = true;
                let cov = self.h.l2_coverage();
                for i in 0..self.h.size.div_ceil(cov) {
                    let e = be64(&table, (i * 8) as usize);
                    let guest = i * cov;
                    let off = e & OFFSET_MASK;
                    if off == 0 {
                        self.zero(guest, cov)?;
                    } else {
                        self.add(off, Item::L2 { guest })?;
                    }
                }
            }
            Item::L2 { guest: base } => {
                let table = self
                    .store
                    .take(host, len)?
                    .ok_or(self.missing(host, item))?;
                self.l2_outstanding -= 1;
                let cluster = self.h.cluster_size();
                let shift = self.h.csize_shift();
                for j in 0..self.h.l2_entries() {
                    let guest = base + j * cluster;
                    if guest >= self.h.size {
                        break;
                    }
                    let e = be64(&table, (j * 8) as usize);
                    if e & L2_COMPRESSED != 0 {
                        let coffset = e & ((1u64 << shift) - 1);
                        let mask = (1u64 << (self.h.cluster_bits - 8)) - 1;
                        let nsect = ((e >> shift) & mask) + 1;
                        let csize = nsect * 512 - (coffset & 511);
                        self.add(coffset, Item::Compressed { guest, csize })?;
                    } else {
                        let off = e & OFFSET_MASK;
                        if off == 0 || (self.h.version == 3 && e & L2_ZERO != 0) {
                            self.zero(guest, cluster)?;
                        } else {
                            self.add(off, Item::Data { guest })?;
                        }
                    }
                }
            }
            Item::Data { guest } => {
                let buf = self
                    .store
                    .take(host, len)?
                    .ok_or(self.missing(host, item))?;
                self.data(guest, buf)?;
            }
            Item::Compressed { guest, csize } => {
                let avail = self.store.contiguous(host, csize)?;
                if avail.is_empty() {
                    return Err(self.missing(host, item));
                }
                let (out, used) = self.inflate(&avail, host)?;
                self.store.remove(host, used);
                self.data(guest, out)?;
            }
        }
        Ok(())
    }

    fn inflate(&self, input: &[u8], host: u64) -> Result<(Vec<u8>, u64), WriteError> {
        let cluster = self.h.cluster_size() as usize;
        let bad = |m: String| {
            WriteError::Corrupt(format!(
                "qcow2 compressed cluster at host offset {host}: {m}"
            ))
        };
        match self.h.compression {
            ClusterCompression::Deflate => {
                let mut out = vec![0u8; cluster];
                let mut z = flate2::Decompress::new(false);
                z.decompress(input, &mut out, flate2::FlushDecompress::Finish)
                    .map_err(|e| bad(format!("{e}")))?;
                if z.total_out() as usize != cluster {
                    return Err(bad(format!(
                        "inflated to {} bytes, expected {cluster}",
                        z.total_out()
                    )));
                }
                Ok((out, z.total_in()))
            }
            ClusterCompression::Zstd => {
                let used = zstd::zstd_safe::find_frame_compressed_size(input)
                    .map_err(|e| bad(format!("zstd frame: error {e}")))?;
                let out = zstd::bulk::decompress(&input[..used], cluster)
                    .map_err(|e| bad(format!("{e}")))?;
                if out.len() != cluster {
                    return Err(bad(format!(
                        "decompressed to {} bytes, expected {cluster}",
                        out.len()
                    )));
                }
                Ok((out, used as u64))
            }
        }
    }

    fn zero(&mut self, guest: u64, len: u64) -> Result<(), WriteError> {
        let len = len.min(self.h.size - guest);
        if let Some((start, run)) = &mut self.zeros {
            if *start + *run == guest {
                *run += len;
                return Ok(());
            }
        }
        self.flush_zeros()?;
        self.zeros = Some((guest, len));
        Ok(())
    }

    fn flush_zeros(&mut self) -> Result<(), WriteError> {
        if let Some((offset, len)) = self.zeros.take() {
            (self.emit)(Extent::Zero { offset, len })?;
        }
        Ok(())
    }

    fn data(&mut self, guest: u64, mut buf: Vec<u8>) -> Result<(), WriteError> {
        buf.truncate(buf.len().min((self.h.size - guest) as usize));
        if let Some((start, b, filled)) = &mut self.batch {
            if *start + *filled as u64 == guest && *filled + buf.len() <= EXTENT_MAX {
                b.as_mut_slice()[*filled..*filled + buf.len()].copy_from_slice(&buf);
                *filled += buf.len();
                return Ok(());
            }
        }
        self.flush()?;
        // A cluster (at most 2 MiB) always fits an empty extent buffer.
        let mut b = self.pool.take();
        b.as_mut_slice()[..buf.len()].copy_from_slice(&buf);
        self.batch = Some((guest, b, buf.len()));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if let Some((offset, buf, filled)) = self.batch.take() {
            let buf = self.pool.share(buf, filled);
            (self.emit)(Extent::Data { offset, buf })?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WriteError> {
        self.process(true)?;
        self.flush()?;
        self.flush_zeros()?;
        if let Some((&host, item)) = self.pending.iter().next() {
            return Err(WriteError::Corrupt(format!(
                "qcow2 image ends at byte {} but {} structure(s) lie beyond, the first a {item:?} at host offset {host}: the file is truncated",
                self.received,
                self.pending.len()
            )));
        }
        Ok(())
    }
}

fn item_len_of(h: &Header, item: &Item) -> u64 {
    match item {
        Item::L1 => h.l1_size as u64 * 8,
        Item::L2 { .. } | Item::Data { .. } => h.cluster_size(),
        Item::Compressed { csize, .. } => *csize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, incompat: u64, backing: u64, crypt: u32) -> Vec<u8> {
        let mut b = vec![0u8; 112];
        b[..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&version.to_be_bytes());
        b[8..16].copy_from_slice(&backing.to_be_bytes());
        b[20..24].copy_from_slice(&16u32.to_be_bytes());
        b[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        b[32..36].copy_from_slice(&crypt.to_be_bytes());
        b[36..40].copy_from_slice(&2u32.to_be_bytes());
        b[40..48].copy_from_slice(&65536u64.to_be_bytes());
        b[72..80].copy_from_slice(&incompat.to_be_bytes());
        b[100..104].copy_from_slice(&112u32.to_be_bytes());
        b
    }

    #[test]
    fn header_refusals_say_what_to_do() {
        let ok = Header::parse(&header(3, 0, 0, 0)).unwrap();
        assert_eq!(ok.size, 1 << 30);
        assert_eq!(ok.cluster_size(), 65536);
        let cases = [
            (header(3, 0, 4096, 0), "backing file"),
            (header(3, 0, 0, 1), "encrypted"),
            (
                header(3, INCOMPAT_EXTERNAL_DATA, 0, 0),
                "external data file",
            ),
            (header(3, INCOMPAT_EXTENDED_L2, 0, 0), "extended L2"),
            (header(3, 1 << 9, 0, 0), "unknown"),
            (header(4, 0, 0, 0), "version 4"),
        ];
        for (bytes, want) in cases {
            let err = Header::parse(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        for offset in [u64::MAX, u64::MAX - 65535, 65536 + 512, 1 << 56] {
            let mut bad = header(3, 0, 0, 0);
            bad[40..48].copy_from_slice(&offset.to_be_bytes());
            let err = Header::parse(&bad).unwrap_err().to_string();
            assert!(err.contains("L1 table offset"), "{offset:#x}: {err}");
        }
        let mut small_l1 = header(3, 0, 0, 0);
        small_l1[36..40].copy_from_slice(&1u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&small_l1),
            Err(WriteError::Corrupt(_))
        ));
    }

    #[test]
    fn hostile_streams_give_errors_not_panics() {
        use rand::{Rng, RngCore, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..300 {
            let mut img = header(3, 0, 0, 0);
            // Small image: 4 KiB clusters, 1 MiB virtual, L1 at 4096.
            img[20..24].copy_from_slice(&12u32.to_be_bytes());
            img[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes());
            img[36..40].copy_from_slice(&1u32.to_be_bytes());
            img[40..48].copy_from_slice(&4096u64.to_be_bytes());
            img.resize(4096 * rng.random_range(1..12), 0);
            let n = img.len();
            rng.fill_bytes(&mut img[112..n]);
            if round % 3 == 0 {
                // A plausible L1 entry pointing at cluster 2.
                img.resize(img.len().max(8192), 0);
                img[4096..4104].copy_from_slice(&8192u64.to_be_bytes());
            }
            let h = Header::parse(&img).unwrap();
            let mut sink = |_e: Extent| Ok(());
            let _ = decode(h, Vec::new(), &mut &img[..], &mut sink);
        }
    }
}
