//! Checksum of the image *as downloaded* (Ironic's `image_checksum` / `os_hash_value`):
//! parsing `ALGO:HEX` and a reader adapter that hashes the bytes passing through it.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use sha2::Digest;

use super::error::WriteError;

/// Hash algorithms the writer verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

/// An expected checksum: algorithm and lowercase hex digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl Checksum {
    /// Parses `sha256:HEX`, `sha512:HEX` or bare hex (64 digits: sha256, 128: sha512).
    pub fn parse(given: &str) -> Result<Self, WriteError> {
        let bad = |why: &str| WriteError::BadChecksum {
            given: given.to_string(),
            why: why.to_string(),
        };
        let (algo, hex) = match given.split_once(':') {
            Some((a, h)) => (Some(a.trim().to_ascii_lowercase()), h.trim()),
            None => (None, given.trim()),
        };
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the digest is not hexadecimal"));
        }
        let algorithm = match (algo.as_deref(), hex.len()) {
            (Some("sha256"), 64) | (None, 64) => Algorithm::Sha256,
            (Some("sha512"), 128) | (None, 128) => Algorithm::Sha512,
            (Some("sha256" | "sha512"), n) => {
                return Err(bad(&format!(
                    "the digest has {n} hex digits, which does not fit the algorithm"
                )))
            }
            (Some(other), _) => return Err(bad(&format!("algorithm {other:?} is not supported"))),
            (None, n) => {
                return Err(bad(&format!(
                    "a bare digest of {n} hex digits matches no supported algorithm"
                )))
            }
        };
        Ok(Checksum {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    fn hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Bytes batched before handing them to the hash thread, and how many batches may wait: the
/// hash runs on its own core, beside decoding and writing, within 8 MiB of the budget.
const HASH_BATCH: usize = 1 << 20;
const HASH_SLOTS: usize = 8;

/// A hash running on its own thread, fed batches over a bounded channel.
struct HashWorker {
    tx: Option<SyncSender<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    handle: Option<std::thread::JoinHandle<String>>,
}

impl HashWorker {
    fn start(algorithm: Algorithm) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(HASH_SLOTS);
        let (back_tx, recycled) = sync_channel::<Vec<u8>>(HASH_SLOTS + 2);
        let mut h = match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        };
        let handle = std::thread::Builder::new()
            .name("writer-hash".into())
            .spawn(move || {
                for mut buf in rx {
                    h.update(&buf);
                    buf.clear();
                    let _ = back_tx.try_send(buf);
                }
                h.hex()
            })?;
        Ok(Self {
            tx: Some(tx),
            recycled,
            pending: Vec::with_capacity(HASH_BATCH),
            handle: Some(handle),
        })
    }

    fn update(&mut self, mut b: &[u8]) -> std::io::Result<()> {
        while !b.is_empty() {
            let n = (HASH_BATCH - self.pending.len()).min(b.len());
            self.pending.extend_from_slice(&b[..n]);
            b = &b[n..];
            if self.pending.len() == HASH_BATCH {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> std::io::Result<()> {
        let next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(HASH_BATCH));
        let full = std::mem::replace(&mut self.pending, next);
        self.tx
            .as_ref()
            .expect("hash worker is running")
            .send(full)
            .map_err(|_| std::io::Error::other("the hash thread stopped"))
    }

    fn finish(mut self) -> std::io::Result<String> {
        if !self.pending.is_empty() {
            self.send()?;
        }
        drop(self.tx.take());
        self.handle
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| std::io::Error::other("the hash thread panicked"))
    }
}

/// Hashes (optionally, on a separate thread) and counts every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Option<HashWorker>,
    counter: Arc<AtomicU64>,
}

impl<R: Read> HashingReader<R> {
    pub fn new(
        inner: R,
        algorithm: Option<Algorithm>,
        counter: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let hasher = algorithm.map(HashWorker::start).transpose()?;
        Ok(Self {
            inner,
            hasher,
            counter,
        })
    }

    /// Reads the rest of the stream (so the digest covers the whole file) and returns the hex
    /// digest, if hashing.
    pub fn finish(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = vec![0u8; 256 * 1024];
        while self.read(&mut buf)? != 0 {}
        self.hasher.take().map(HashWorker::finish).transpose()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n])?;
        }
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let h64 = "ab".repeat(32);
        let h128 = "CD".repeat(64);
        assert_eq!(
            Checksum::parse(&format!("sha256:{h64}")).unwrap().algorithm,
            Algorithm::Sha256
        );
        let c = Checksum::parse(&h128).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha512);
        assert_eq!(c.hex, "cd".repeat(64));
        for bad in [
            "md5:abcd",
            "sha256:xyz",
            &format!("sha512:{h64}"),
            "abc",
            "",
        ] {
            assert!(
                matches!(Checksum::parse(bad), Err(WriteError::BadChecksum { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn hashes_everything_even_unread_tail() {
        let data: Vec<u8> = (0..3 * HASH_BATCH + 123)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let counter = Arc::new(AtomicU64::new(0));
        let mut r =
            HashingReader::new(&data[..], Some(Algorithm::Sha256), counter.clone()).unwrap();
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        let digest = r.finish().unwrap().unwrap();
        assert_eq!(digest, hex::encode(sha2::Sha256::digest(&data)));
        assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64);
    }
}
