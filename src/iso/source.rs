//! Bounded random access to the image: a file or bytes in memory (tests, fuzzing).

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::IsoError;

/// Largest single read we do (a directory, a config file, an EFI image): hostile sizes stop here.
pub const MAX_READ: u64 = 64 << 20;

/// Something we can read bytes from at an offset.
pub trait Source {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl Source for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

impl Source for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A file with its length read once.
pub struct FileSource {
    pub file: File,
    pub len: u64,
    pub name: String,
}

impl FileSource {
    pub fn open(path: &std::path::Path) -> Result<Self, IsoError> {
        let file = File::open(path).map_err(|source| IsoError::Io {
            context: format!("opening {}", path.display()),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| IsoError::Io {
                context: format!("reading metadata of {}", path.display()),
                source,
            })?
            .len();
        Ok(Self {
            file,
            len,
            name: path.display().to_string(),
        })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

fn eof() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::UnexpectedEof)
}

/// Reads `len` bytes at `offset`, refusing reads past the end or larger than [`MAX_READ`];
/// `what` names the object for the error message.
pub fn read(src: &dyn Source, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, IsoError> {
    if len > MAX_READ {
        return Err(IsoError::malformed(format!(
            "{what} at byte {offset} claims {len} bytes, more than the {MAX_READ} we accept"
        )));
    }
    match offset.checked_add(len) {
        Some(end) if end <= src.len() => {}
        _ => {
            return Err(IsoError::malformed(format!(
            "{what} at byte {offset} ({len} bytes) extends past the end of the image ({} bytes)",
            src.len()
        )))
        }
    }
    let mut buf = vec![0u8; len as usize];
    src.read_exact_at(&mut buf, offset)
        .map_err(|source| IsoError::Io {
            context: format!("reading {what} at byte {offset}"),
            source,
        })?;
    Ok(buf)
}

/// Little-endian helpers over a slice that may be short (returns 0 past the end).
pub fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0)
}
pub fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}
pub fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

/// ECMA-119 §7.3.3 both-byte-order 32-bit field.
pub fn both32(v: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&v.to_le_bytes());
    out[4..].copy_from_slice(&v.to_be_bytes());
    out
}
