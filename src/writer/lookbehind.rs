//! The qcow2 decoder's look-behind buffer: stream bytes that no metadata has claimed yet,
//! kept by host offset until an L1/L2 table read later refers to them. Held in memory up to
//! a limit, then spooled to an unlinked temp file (only images whose metadata comes after
//! their data ever get there).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::error::{io_err, WriteError};

enum Chunk {
    Mem(Vec<u8>),
    /// Stored in the spool file at the same offset as in the image.
    Spooled(u64),
}

impl Chunk {
    fn len(&self) -> u64 {
        match self {
            Chunk::Mem(v) => v.len() as u64,
            Chunk::Spooled(n) => *n,
        }
    }
}

pub(crate) struct LookBehind {
    chunks: BTreeMap<u64, Chunk>,
    mem_bytes: u64,
    mem_limit: u64,
    spool: Option<File>,
    /// Bytes ever written to the spool (reported, so a test can tell whether it spooled).
    pub spooled_total: u64,
}

impl LookBehind {
    pub fn new(mem_limit: u64) -> Self {
        Self {
            chunks: BTreeMap::new(),
            mem_bytes: 0,
            mem_limit,
            spool: None,
            spooled_total: 0,
        }
    }

    pub fn mem_bytes(&self) -> u64 {
        self.mem_bytes
    }

    /// Adds stream bytes at `start` (past everything stored so far).
    pub fn insert(&mut self, start: u64, buf: Vec<u8>) -> Result<(), WriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.mem_bytes += buf.len() as u64;
        self.chunks.insert(start, Chunk::Mem(buf));
        if self.mem_bytes > self.mem_limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), WriteError> {
        if self.spool.is_none() {
            self.spool = Some(tempfile::tempfile().map_err(io_err(
                "creating the qcow2 spool file in the temp directory (metadata after data)",
            ))?);
        }
        let spool = self.spool.as_ref().expect("spool was just created");
        for (start, chunk) in self.chunks.iter_mut() {
            if let Chunk::Mem(v) = chunk {
                spool
                    .write_all_at(v, *start)
                    .map_err(io_err(format!("spooling image bytes at offset {start}")))?;
                self.spooled_total += v.len() as u64;
                *chunk = Chunk::Spooled(v.len() as u64);
            }
        }
        self.mem_bytes = 0;
        Ok(())
    }

    /// Copies the bytes stored contiguously from `start`, at most `max` of them (empty when
    /// `start` is not stored).
    pub fn contiguous(&self, start: u64, max: u64) -> Result<Vec<u8>, WriteError> {
        let mut out = Vec::new();
        let mut at = start;
        let end = start + max;
        let Some((&first, _)) = self.chunks.range(..=start).next_back() else {
            return Ok(out);
        };
        for (&cstart, chunk) in self.chunks.range(first..) {
            let cend = cstart + chunk.len();
            if cstart > at || at >= end {
                break;
            }
            if cend <= at {
                continue;
            }
            let from = at - cstart;
            let to = cend.min(end) - cstart;
            match chunk {
                Chunk::Mem(v) => out.extend_from_slice(&v[from as usize..to as usize]),
                Chunk::Spooled(_) => {
                    let mut tmp = vec![0u8; (to - from) as usize];
                    self.spool
                        .as_ref()
                        .expect("spooled chunks imply a spool file")
                        .read_exact_at(&mut tmp, cstart + from)
                        .map_err(io_err(format!("reading spooled bytes at offset {at}")))?;
                    out.extend_from_slice(&tmp);
                }
            }
            at = cstart + to;
        }
        Ok(out)
    }

    /// Removes `[start, start+len)` and returns its bytes; `None` unless all are stored.
    pub fn take(&mut self, start: u64, len: u64) -> Result<Option<Vec<u8>>, WriteError> {
        if let Some(Chunk::Mem(v)) = self.chunks.get(&start) {
            if v.len() as u64 == len {
                self.mem_bytes -= len;
                let Some(Chunk::Mem(v)) = self.chunks.remove(&start) else {
                    unreachable!("checked above")
                };
                return Ok(Some(v));
            }
        }
        let bytes = self.contiguous(start, len)?;
        if (bytes.len() as u64) < len {
            return Ok(None);
        }
        self.remove(start, len);
        Ok(Some(bytes))
    }

    /// Forgets `[start, start+len)`, splitting chunks at the edges.
    pub fn remove(&mut self, start: u64, len: u64) {
        let end = start + len;
        let first = self
            .chunks
            .range(..=start)
            .next_back()
            .map(|(&s, _)| s)
            .unwrap_or(start);
        let hit: Vec<u64> = self.chunks.range(first..end).map(|(&s, _)| s).collect();
        for cstart in hit {
            let chunk = self.chunks.remove(&cstart).expect("key listed just above");
            let cend = cstart + chunk.len();
            if cend <= start {
                self.chunks.insert(cstart, chunk);
                continue;
            }
            if let Chunk::Mem(v) = &chunk {
                self.mem_bytes -= v.len() as u64;
            }
            let keep_left = start.saturating_sub(cstart).min(chunk.len());
            let keep_right_from = end.max(cstart).min(cend);
            match chunk {
                Chunk::Mem(v) => {
                    if keep_left > 0 {
                        self.mem_bytes += keep_left;
                        self.chunks
                            .insert(cstart, Chunk::Mem(v[..keep_left as usize].to_vec()));
                    }
                    if keep_right_from < cend {
                        let right = v[(keep_right_from - cstart) as usize..].to_vec();
                        self.mem_bytes += right.len() as u64;
                        self.chunks.insert(keep_right_from, Chunk::Mem(right));
                    }
                }
                Chunk::Spooled(_) => {
                    if keep_left > 0 {
                        self.chunks.insert(cstart, Chunk::Spooled(keep_left));
                    }
                    if keep_right_from < cend {
                        self.chunks
                            .insert(keep_right_from, Chunk::Spooled(cend - keep_right_from));
                    }
                }
            }
        }
    }

    /// Drops every chunk for which `keep(start, end)` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, u64) -> bool) {
        let mut freed = 0;
        self.chunks.retain(|&s, c| {
            let k = keep(s, s + c.len());
            if !k {
                if let Chunk::Mem(v) = c {
                    freed += v.len() as u64;
                }
            }
            k
        });
        self.mem_bytes -= freed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(start: u8, n: usize) -> Vec<u8> {
        (0..n).map(|i| start.wrapping_add(i as u8)).collect()
    }

    fn check(limit: u64) {
        let mut lb = LookBehind::new(limit);
        lb.insert(0, bytes(0, 10)).unwrap();
        lb.insert(10, bytes(10, 10)).unwrap();
        lb.insert(30, bytes(30, 5)).unwrap();
        // Spans two chunks.
        assert_eq!(lb.take(5, 10).unwrap().unwrap(), bytes(5, 10));
        // Hole now at 5..15: contiguous stops there.
        assert_eq!(lb.contiguous(0, 100).unwrap(), bytes(0, 5));
        assert_eq!(lb.contiguous(15, 100).unwrap(), bytes(15, 5));
        assert!(lb.take(15, 6).unwrap().is_none(), "20..30 was never stored");
        assert_eq!(lb.take(30, 5).unwrap().unwrap(), bytes(30, 5));
        lb.retain(|s, _| s != 0);
        assert!(lb.contiguous(0, 1).unwrap().is_empty());
        assert_eq!(lb.take(15, 5).unwrap().unwrap(), bytes(15, 5));
        assert_eq!(lb.mem_bytes(), 0);
    }

    #[test]
    fn take_split_and_retain_in_memory_and_spooled() {
        check(1 << 20);
        check(4);
    }
}
