//! A patch set over a base file: the ISO engine's output and the image server's input.
//!
//! A [`PatchSet`] is a small value: the base length it was computed against, the length of the
//! result, and sorted non-overlapping byte patches. Bytes of the result come from the patches
//! where one covers them, else from the base below `base_len`, else are zero (an appended
//! extent). Serving it (`imageserver`) and materialising it to a file (`iso remaster --output`)
//! consume the same plan through [`PatchSet::segments`], so they cannot disagree.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Why a patch set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("patch at offset {offset} ({len} bytes) overlaps or precedes the previous one; patches must be sorted and disjoint")]
    Unsorted { offset: u64, len: usize },
    #[error("patch at offset {offset} ({len} bytes) ends past the result length {total}")]
    PastEnd { offset: u64, len: usize, total: u64 },
    #[error("base file {path} is {actual} bytes but the patch set was made for {expected} bytes: remaster it again")]
    BaseChanged {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("reading patch set {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("patch set {path} is not valid JSON: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

/// One run of replacement bytes at `offset` of the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    pub offset: u64,
    #[serde(with = "b64")]
    pub data: Vec<u8>,
}

impl Patch {
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// Byte patches over a base file; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchSet {
    pub base_len: u64,
    pub len: u64,
    pub patches: Vec<Patch>,
}

/// A piece of the result: where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// `len` bytes of the base file starting at `offset`.
    Base { offset: u64, len: u64 },
    /// Bytes held in the patch set.
    Bytes(&'a [u8]),
    /// `len` zero bytes (past the end of the base, not covered by a patch).
    Zeros(u64),
}

impl Segment<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Segment::Base { len, .. } | Segment::Zeros(len) => *len,
            Segment::Bytes(b) => b.len() as u64,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PatchSet {
    /// The identity patch set: the base served unchanged.
    pub fn identity(base_len: u64) -> Self {
        Self {
            base_len,
            len: base_len,
            patches: Vec::new(),
        }
    }

    /// Builds a patch set, sorting the patches and checking they are disjoint and in bounds.
    pub fn new(base_len: u64, len: u64, mut patches: Vec<Patch>) -> Result<Self, OverlayError> {
        patches.retain(|p| !p.data.is_empty());
        patches.sort_by_key(|p| p.offset);
        let set = Self {
            base_len,
            len,
            patches,
        };
        set.validate()?;
        Ok(set)
    }

    /// Checks the invariants a deserialised patch set must hold before it is served.
    pub fn validate(&self) -> Result<(), OverlayError> {
        let mut prev_end = 0u64;
        for (i, p) in self.patches.iter().enumerate() {
            let end = p.offset.checked_add(p.data.len() as u64);
            if i > 0 && p.offset < prev_end {
                return Err(OverlayError::Unsorted {
                    offset: p.offset,
                    len: p.data.len(),
                });
            }
            match end {
                Some(end) if end <= self.len => prev_end = end,
                _ => {
                    return Err(OverlayError::PastEnd {
                        offset: p.offset,
                        len: p.data.len(),
                        total: self.len,
                    })
                }
            }
        }
        Ok(())
    }

    /// Loads and validates a patch set stored as JSON.
    pub fn load(path: &Path) -> Result<Self, OverlayError> {
        let text = std::fs::read(path).map_err(|source| OverlayError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let set: PatchSet =
            serde_json::from_slice(&text).map_err(|source| OverlayError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        set.validate()?;
        Ok(set)
    }

    /// The segments making up result bytes `[start, end)`, clamped to the result length.
    pub fn segments(&self, start: u64, end: u64) -> Vec<Segment<'_>> {
        let end = end.min(self.len);
        let mut out = Vec::new();
        let mut pos = start;
        // First patch that ends after `start`.
        let first = self.patches.partition_point(|p| p.end() <= start);
        for p in &self.patches[first..] {
            if pos >= end {
                break;
            }
            if p.offset > pos {
                self.plain(pos, p.offset.min(end), &mut out);
                pos = p.offset.min(end);
            }
            if pos < end && p.offset < end {
                let from = (pos - p.offset) as usize;
                let to = (end.min(p.end()) - p.offset) as usize;
                out.push(Segment::Bytes(&p.data[from..to]));
                pos = p.offset + to as u64;
            }
        }
        if pos < end {
            self.plain(pos, end, &mut out);
        }
        out
    }

    /// Unpatched bytes `[start, end)`: base below `base_len`, zeros above.
    fn plain<'a>(&self, start: u64, end: u64, out: &mut Vec<Segment<'a>>) {
        let split = self.base_len.clamp(start, end);
        if split > start {
            out.push(Segment::Base {
                offset: start,
                len: split - start,
            });
        }
        if end > split {
            out.push(Segment::Zeros(end - split));
        }
    }

    /// Reads result bytes at `offset` into `buf` (short only at the end of the result).
    pub fn read_at(&self, base: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let end = offset.saturating_add(buf.len() as u64).min(self.len);
        let mut filled = 0usize;
        for seg in self.segments(offset, end) {
            let n = seg.len() as usize;
            let dst = &mut buf[filled..filled + n];
            match seg {
                Segment::Base { offset, .. } => base.read_exact_at(dst, offset)?,
                Segment::Bytes(b) => dst.copy_from_slice(b),
                Segment::Zeros(_) => dst.fill(0),
            }
            filled += n;
        }
        Ok(filled)
    }

    /// Checks that `base` is the file this patch set was made for (by length).
    pub fn check_base(&self, path: &Path, base: &File) -> Result<(), OverlayError> {
        let actual = base
            .metadata()
            .map_err(|source| OverlayError::Io {
                context: format!("reading metadata of {}", path.display()),
                source,
            })?
            .len();
        if actual != self.base_len {
            return Err(OverlayError::BaseChanged {
                path: path.display().to_string(),
                expected: self.base_len,
                actual,
            });
        }
        Ok(())
    }

    /// Writes the result to `out`: a copy of the base (`copy_file_range`/reflink where the
    /// filesystem has them, through `std::fs::copy`), resized, with the patches written over.
    pub fn materialize(&self, base: &Path, out: &Path) -> Result<(), OverlayError> {
        let io = |context: String| move |source| OverlayError::Io { context, source };
        let base_file = File::open(base).map_err(io(format!("opening {}", base.display())))?;
        self.check_base(base, &base_file)?;
        std::fs::copy(base, out).map_err(io(format!(
            "copying {} to {}",
            base.display(),
            out.display()
        )))?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(out)
            .map_err(io(format!("opening {}", out.display())))?;
        file.set_len(self.len).map_err(io(format!(
            "resizing {} to {} bytes",
            out.display(),
            self.len
        )))?;
        for p in &self.patches {
            file.write_all_at(&p.data, p.offset).map_err(io(format!(
                "writing {} bytes at offset {} of {}",
                p.data.len(),
                p.offset,
                out.display()
            )))?;
        }
        file.sync_all()
            .map_err(io(format!("syncing {}", out.display())))?;
        Ok(())
    }
}

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn check(set: &PatchSet, base: &[u8]) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(base).unwrap();
        // Expected result, computed naively.
        let mut want = base.to_vec();
        want.resize(set.len as usize, 0);
        for p in &set.patches {
            want[p.offset as usize..p.end() as usize].copy_from_slice(&p.data);
        }
        for start in 0..=set.len {
            for end in start..=set.len + 2 {
                let mut buf = vec![0xAA; (end - start) as usize];
                let n = set.read_at(&f, start, &mut buf).unwrap();
                let want_end = (end as usize).min(want.len());
                assert_eq!(
                    &buf[..n],
                    &want[start as usize..want_end],
                    "range {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn segments_match_naive_application() {
        let base: Vec<u8> = (0..20u8).collect();
        let patches = vec![
            Patch {
                offset: 3,
                data: vec![100, 101],
            },
            Patch {
                offset: 5,
                data: vec![102],
            },
            Patch {
                offset: 18,
                data: vec![103, 104, 105, 106],
            },
            Patch {
                offset: 25,
                data: vec![107],
            },
        ];
        check(&PatchSet::new(20, 27, patches).unwrap(), &base);
        check(&PatchSet::identity(20), &base);
        check(&PatchSet::new(20, 12, vec![]).unwrap(), &base);
    }

    #[test]
    fn rejects_overlap_and_overflow() {
        let overlap = vec![
            Patch {
                offset: 3,
                data: vec![1, 2],
            },
            Patch {
                offset: 4,
                data: vec![3],
            },
        ];
        assert!(matches!(
            PatchSet::new(10, 10, overlap),
            Err(OverlayError::Unsorted { .. })
        ));
        let past = vec![Patch {
            offset: 9,
            data: vec![1, 2],
        }];
        assert!(matches!(
            PatchSet::new(10, 10, past),
            Err(OverlayError::PastEnd { .. })
        ));
        let wrap = PatchSet {
            base_len: 1,
            len: 1,
            patches: vec![Patch {
                offset: u64::MAX,
                data: vec![1],
            }],
        };
        assert!(wrap.validate().is_err());
    }

    #[test]
    fn json_round_trip_and_materialize() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::write(&base, b"hello world").unwrap();
        let set = PatchSet::new(
            11,
            14,
            vec![Patch {
                offset: 6,
                data: b"there!!!".to_vec(),
            }],
        )
        .unwrap();
        let json = dir.path().join("p.json");
        std::fs::write(&json, serde_json::to_vec(&set).unwrap()).unwrap();
        let loaded = PatchSet::load(&json).unwrap();
        assert_eq!(loaded, set);
        let out = dir.path().join("out");
        loaded.materialize(&base, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"hello there!!!");
        std::fs::write(&base, b"changed").unwrap();
        assert!(matches!(
            loaded.materialize(&base, &out),
            Err(OverlayError::BaseChanged { .. })
        ));
    }
}
