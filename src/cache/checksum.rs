//! Checksums: algorithms, parsing what the user gave, SHA256SUMS-style files, and hashing.
//!
//! Pure: no I/O here. md5 is accepted only when the caller allows it (legacy images).

use md5::Digest as _;

use super::CacheError;

/// A checksum algorithm the cache can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Parses "sha256", "SHA-512", "md5"…; empty or "auto" means "guess from the hex length".
    pub fn parse(name: &str) -> Option<Option<Self>> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "" | "auto" => Some(None),
            "md5" => Some(Some(Algorithm::Md5)),
            "sha256" => Some(Some(Algorithm::Sha256)),
            "sha512" => Some(Some(Algorithm::Sha512)),
            _ => None,
        }
    }

    /// Guesses the algorithm from the length of a hex digest.
    pub fn by_hex_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(Algorithm::Md5),
            64 => Some(Algorithm::Sha256),
            128 => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A checksum the downloaded bytes must match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expected {
    pub algorithm: Algorithm,
    /// Lowercase hex.
    pub hex: String,
}

impl Expected {
    /// Builds an expected checksum from an algorithm name (or "auto"/"") and a hex value; a
    /// value written as `algo:hex` is accepted too.
    pub fn parse(algorithm: &str, value: &str, allow_md5: bool) -> Result<Self, CacheError> {
        let value = value.trim();
        let (algorithm, value) = match value.split_once(':') {
            Some((a, v)) if algorithm.is_empty() || algorithm.eq_ignore_ascii_case("auto") => {
                (a, v)
            }
            _ => (algorithm, value),
        };
        let hex = value.to_ascii_lowercase();
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CacheError::BadChecksum(format!(
                "checksum value {value:?} is not hexadecimal"
            )));
        }
        let algorithm = match Algorithm::parse(algorithm) {
            None => {
                return Err(CacheError::BadChecksum(format!(
                    "unsupported checksum algorithm {algorithm:?}: use sha256, sha512 (or md5 when enabled)"
                )))
            }
            Some(Some(a)) => a,
            Some(None) => Algorithm::by_hex_len(hex.len()).ok_or_else(|| {
                CacheError::BadChecksum(format!(
                    "cannot tell the algorithm of a {}-digit checksum: give sha256 (64), sha512 (128) or md5 (32)",
                    hex.len()
                ))
            })?,
        };
        if hex.len() != algorithm.hex_len() {
            return Err(CacheError::BadChecksum(format!(
                "a {} checksum has {} hex digits, got {}",
                algorithm.name(),
                algorithm.hex_len(),
                hex.len()
            )));
        }
        if algorithm == Algorithm::Md5 && !allow_md5 {
            return Err(CacheError::BadChecksum(
                "md5 checksums are disabled: give sha256 or sha512, or set allow_md5 = true in [cache]"
                    .into(),
            ));
        }
        Ok(Self { algorithm, hex })
    }

    /// Stable text form, e.g. "sha256:ab…".
    pub fn label(&self) -> String {
        format!("{}:{}", self.algorithm.name(), self.hex)
    }
}

/// Finds the checksum of `file_name` in a checksum file: GNU style (`hex  name`, `hex *name`)
/// or BSD style (`SHA256 (name) = hex`). Paths in the file are matched by their last component.
pub fn find_in_sums(text: &str, file_name: &str) -> Option<String> {
    let base = |n: &str| n.rsplit('/').next().unwrap_or(n).to_string();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((left, hex)) = line.rsplit_once(") = ") {
            if let Some((_, name)) = left.split_once(" (") {
                if base(name) == file_name {
                    return Some(hex.trim().to_ascii_lowercase());
                }
            }
            continue;
        }
        let mut parts = line.splitn(2, char::is_whitespace);
        let (Some(hex), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = name.trim_start().trim_start_matches('*');
        if base(name) == file_name && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(hex.to_ascii_lowercase());
        }
    }
    None
}

/// Incremental hasher for one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    pub fn finish_hex(self) -> String {
        match self {
            Hasher::Md5(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// The content address (sha256, always) plus the user's algorithm when it differs.
#[derive(Clone)]
pub struct Digests {
    sha256: Hasher,
    extra: Option<(Algorithm, Hasher)>,
}

impl Digests {
    pub fn new(also: Option<Algorithm>) -> Self {
        Self {
            sha256: Hasher::new(Algorithm::Sha256),
            extra: also
                .filter(|a| *a != Algorithm::Sha256)
                .map(|a| (a, Hasher::new(a))),
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        if let Some((_, h)) = &mut self.extra {
            h.update(data);
        }
    }
    /// (algorithm, hex) pairs, sha256 first.
    pub fn finish(self) -> Vec<(Algorithm, String)> {
        let mut out = vec![(Algorithm::Sha256, self.sha256.finish_hex())];
        if let Some((a, h)) = self.extra {
            out.push((a, h.finish_hex()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_by_length_and_prefix() {
        let sha = "A".repeat(64);
        let e = Expected::parse("auto", &sha, false).unwrap();
        assert_eq!(e.algorithm, Algorithm::Sha256);
        assert_eq!(e.hex, "a".repeat(64));
        let e = Expected::parse("", &format!("sha512:{}", "b".repeat(128)), false).unwrap();
        assert_eq!(e.algorithm, Algorithm::Sha512);
        assert!(Expected::parse("", &"c".repeat(32), false)
            .unwrap_err()
            .to_string()
            .contains("md5 checksums are disabled"));
        assert_eq!(
            Expected::parse("md5", &"c".repeat(32), true)
                .unwrap()
                .algorithm,
            Algorithm::Md5
        );
        assert!(Expected::parse("sha256", &"c".repeat(63), true).is_err());
        assert!(Expected::parse("crc32", &"c".repeat(8), true).is_err());
        assert!(Expected::parse("", "xyz", true).is_err());
    }

    #[test]
    fn sums_file_formats() {
        let text = "# comment\n\
            1111  other.iso\n\
            aBcD *images/boot.iso\n\
            SHA256 (bsd.iso) = 9999\n";
        assert_eq!(find_in_sums(text, "boot.iso").as_deref(), Some("abcd"));
        assert_eq!(find_in_sums(text, "other.iso").as_deref(), Some("1111"));
        assert_eq!(find_in_sums(text, "bsd.iso").as_deref(), Some("9999"));
        assert_eq!(find_in_sums(text, "missing.iso"), None);
    }

    #[test]
    fn digests_known_values() {
        let mut d = Digests::new(Some(Algorithm::Md5));
        d.update(b"abc");
        let out = d.finish();
        assert_eq!(
            out[0].1,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            out[1],
            (Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72".into())
        );
    }
}
