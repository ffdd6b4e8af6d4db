//! Checksum of the image *as downloaded* (Ironic's `image_checksum` / `os_hash_value`):
//! parsing `ALGO:HEX` and a reader adapter that hashes the bytes passing through it.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Hashes (optionally) and counts every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    counter: Arc<AtomicU64>,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, algorithm: Option<Algorithm>, counter: Arc<AtomicU64>) -> Self {
        let hasher = algorithm.map(|a| match a {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        });
        Self {
            inner,
            hasher,
            counter,
        }
    }

    /// Reads the rest of the stream (so the digest covers the whole file) and returns the hex
    /// digest, if hashing.
    pub fn finish(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = vec![0u8; 256 * 1024];
        while self.read(&mut buf)? != 0 {}
        Ok(self.hasher.take().map(|h| match h {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match &mut self.hasher {
            Some(Hasher::Sha256(h)) => h.update(&buf[..n]),
            Some(Hasher::Sha512(h)) => h.update(&buf[..n]),
            None => {}
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
        let data = b"hello world".to_vec();
        let counter = Arc::new(AtomicU64::new(0));
        let mut r = HashingReader::new(&data[..], Some(Algorithm::Sha256), counter.clone());
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        let digest = r.finish().unwrap().unwrap();
        assert_eq!(digest, hex::encode(sha2::Sha256::digest(&data)));
        assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64);
    }
}
