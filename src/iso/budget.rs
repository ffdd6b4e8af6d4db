//! What one reading of an image may spend, across every directory tree it walks: a crafted
//! ISO (directory loops, huge trees, deep nesting, names continued over long Rock Ridge CE
//! chains) ends with a clear error instead of a hang or an exhausted memory. Each limit is far
//! above what real install media use (the largest distribution DVDs hold about 10,000 files).

use super::IsoError;

/// Directory entries listed in all.
pub const MAX_ENTRIES: usize = 200_000;
/// Bytes of all listed paths together (the walk keeps every path in memory).
pub const MAX_PATH_BYTES: u64 = 64 << 20;
/// Bytes of one path (Linux PATH_MAX).
pub const MAX_PATH_LEN: usize = 4096;
/// Bytes of one Rock Ridge name, NM continuations included (Linux allows 255).
pub const MAX_NAME_LEN: usize = 1024;
/// Directory bytes read in all (overlapping hostile directories).
pub const MAX_DIRECTORY_BYTES: u64 = 256 << 20;
/// Rock Ridge continuation areas (CE) followed in all.
pub const MAX_CE_AREAS: usize = 65_536;
/// Bytes of Rock Ridge continuation areas read in all.
pub const MAX_CE_BYTES: u64 = 64 << 20;

/// The budget left for the rest of a reading; every walk of one image draws from the same.
#[derive(Debug, Clone)]
pub struct Budget {
    pub entries: usize,
    pub path_bytes: u64,
    pub directory_bytes: u64,
    pub ce_areas: usize,
    pub ce_bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            entries: MAX_ENTRIES,
            path_bytes: MAX_PATH_BYTES,
            directory_bytes: MAX_DIRECTORY_BYTES,
            ce_areas: MAX_CE_AREAS,
            ce_bytes: MAX_CE_BYTES,
        }
    }
}

fn over(what: String) -> IsoError {
    IsoError::malformed(format!(
        "{what}: the image is damaged or built to exhaust the reader; rebuild it with a standard tool (xorriso, mkisofs)"
    ))
}

impl Budget {
    /// One more entry with this path.
    pub fn take_entry(&mut self, path: &str) -> Result<(), IsoError> {
        if path.len() > MAX_PATH_LEN {
            return Err(over(format!(
                "a path of {} bytes (longer than {MAX_PATH_LEN}) starting {:?}",
                path.len(),
                path.chars().take(64).collect::<String>()
            )));
        }
        self.entries = self
            .entries
            .checked_sub(1)
            .ok_or_else(|| over(format!("more than {MAX_ENTRIES} directory entries")))?;
        self.path_bytes = self
            .path_bytes
            .checked_sub(path.len() as u64)
            .ok_or_else(|| over(format!("paths add up to more than {MAX_PATH_BYTES} bytes")))?;
        Ok(())
    }

    /// A directory of `len` bytes about to be read.
    pub fn take_directory(&mut self, len: u64) -> Result<(), IsoError> {
        self.directory_bytes = self.directory_bytes.checked_sub(len).ok_or_else(|| {
            over(format!(
                "directories add up to more than {MAX_DIRECTORY_BYTES} bytes"
            ))
        })?;
        Ok(())
    }

    /// A continuation area of `len` bytes about to be read.
    pub fn take_ce(&mut self, len: u64) -> Result<(), IsoError> {
        self.ce_areas = self.ce_areas.checked_sub(1).ok_or_else(|| {
            over(format!(
                "more than {MAX_CE_AREAS} Rock Ridge continuation areas"
            ))
        })?;
        self.ce_bytes = self.ce_bytes.checked_sub(len).ok_or_else(|| {
            over(format!(
                "Rock Ridge continuation areas add up to more than {MAX_CE_BYTES} bytes"
            ))
        })?;
        Ok(())
    }

    /// A Rock Ridge name grown to `len` bytes.
    pub fn check_name(len: usize) -> Result<(), IsoError> {
        if len > MAX_NAME_LEN {
            return Err(over(format!(
                "a Rock Ridge name longer than {MAX_NAME_LEN} bytes"
            )));
        }
        Ok(())
    }
}
