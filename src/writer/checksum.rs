//! Checksum of the image *as downloaded* (Ironic's `image_checksum` / `os_hash_value`):
//! parsing `ALGO:HEX` and a chunk-stream adapter that hashes the bytes passing through it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use bytes::Bytes;
use sha2::Digest;

use super::chunks::Chunks;
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

/// A running digest of one [`Algorithm`].
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
    pub fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    /// The lowercase hex digest.
    pub fn hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Chunks that may wait for the hash thread: it runs on its own core, beside reading and
/// writing, and must never starve (the buffer pools, not this, bound the memory).
const HASH_SLOTS: usize = 4;

/// A hash running on its own thread, fed the source's chunks (shared, not copied).
struct HashWorker {
    tx: SyncSender<Bytes>,
    handle: std::thread::JoinHandle<String>,
}

impl HashWorker {
    fn start(algorithm: Algorithm) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Bytes>(HASH_SLOTS);
        let mut h = Hasher::new(algorithm);
        let handle = std::thread::Builder::new()
            .name("writer-hash".into())
            .spawn(move || {
                for chunk in rx {
                    h.update(&chunk);
                }
                h.hex()
            })?;
        Ok(Self { tx, handle })
    }

    fn update(&self, chunk: Bytes) -> std::io::Result<()> {
        self.tx
            .send(chunk)
            .map_err(|_| std::io::Error::other("the hash thread stopped"))
    }

    fn finish(self) -> std::io::Result<String> {
        drop(self.tx);
        self.handle
            .join()
            .map_err(|_| std::io::Error::other("the hash thread panicked"))
    }
}

/// Hashes (optionally, on a separate thread) and counts every chunk passing through it.
pub(crate) struct HashingChunks {
    inner: Chunks,
    hasher: Option<HashWorker>,
    counter: Arc<AtomicU64>,
    /// The source's first error: the digest of a stream cut short must not be reported.
    failed: Option<String>,
}

impl HashingChunks {
    pub fn new(
        inner: Chunks,
        algorithm: Option<Algorithm>,
        counter: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let hasher = algorithm.map(HashWorker::start).transpose()?;
        Ok(Self {
            inner,
            hasher,
            counter,
            failed: None,
        })
    }

    /// Reads the rest of the stream (so the digest covers the whole source) and returns the
    /// hex digest, if hashing.
    pub fn finish(&mut self) -> std::io::Result<Option<String>> {
        for chunk in self.by_ref() {
            chunk?;
        }
        if let Some(e) = &self.failed {
            return Err(std::io::Error::other(e.clone()));
        }
        self.hasher.take().map(HashWorker::finish).transpose()
    }
}

impl Iterator for HashingChunks {
    type Item = std::io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed.is_some() {
            return None;
        }
        let result = self.inner.next()?.and_then(|chunk| {
            if let Some(h) = &self.hasher {
                h.update(chunk.clone())?;
            }
            self.counter
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok(chunk)
        });
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::chunks::ReadChunks;

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
        let data: Vec<u8> = (0..3 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let counter = Arc::new(AtomicU64::new(0));
        let chunks = Box::new(ReadChunks::new(
            std::io::Cursor::new(data.clone()),
            1 << 20,
            8,
        ));
        let mut h = HashingChunks::new(chunks, Some(Algorithm::Sha256), counter.clone()).unwrap();
        h.next().unwrap().unwrap();
        let digest = h.finish().unwrap().unwrap();
        assert_eq!(digest, hex::encode(sha2::Sha256::digest(&data)));
        assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64);
    }

    #[test]
    fn a_failed_source_has_no_digest() {
        let chunks = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("cut")),
            Ok(Bytes::from_static(b"def")),
        ];
        let counter = Arc::new(AtomicU64::new(0));
        let mut h = HashingChunks::new(
            Box::new(chunks.into_iter()),
            Some(Algorithm::Sha256),
            counter,
        )
        .unwrap();
        assert!(h.next().unwrap().is_ok());
        assert!(h.next().unwrap().is_err());
        assert!(h.next().is_none(), "nothing after a failure");
        assert!(h.finish().is_err());
    }
}
