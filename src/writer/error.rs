//! The writer's one error enum: variants for outcomes a caller acts on.

use std::path::PathBuf;

/// Why writing (or inspecting) an image failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("destination {path} is outside the writer's allow list ({allowed}): pick a device under one of those paths or extend the allow list")]
    NotAllowed { path: PathBuf, allowed: String },
    #[error("destination {path} is {what}, not a block device: name a disk (e.g. /dev/sdb or /dev/disk/by-id/…), or pass --allow-file to write a regular file named directly")]
    NotABlockDevice { path: PathBuf, what: String },
    #[error("destination {path} is in use: {what}; unmount it (and its partitions) first")]
    InUse { path: PathBuf, what: String },
    #[error("destination {path} holds {target_size} bytes but the image's virtual size is {image_size} bytes: use a disk of at least that size")]
    TargetTooSmall {
        path: PathBuf,
        target_size: u64,
        image_size: u64,
    },
    #[error("checksum {given:?} is not understood: {why}; use ALGO:HEX with sha256 or sha512 (or bare hex of 64/128 digits)")]
    BadChecksum { given: String, why: String },
    #[error("checksum mismatch for {image}: expected {algorithm}:{expected}, got {algorithm}:{actual}{also}")]
    ChecksumMismatch {
        image: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
        /// A decode error that the corrupted bytes caused, when there was one.
        also: String,
    },
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("corrupt image: {0}")]
    Corrupt(String),
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read-back verify of {path} failed for bytes {offset}..{end}: the disk does not hold what was written (bad disk or concurrent writer?)")]
    VerifyFailed {
        path: PathBuf,
        offset: u64,
        end: u64,
    },
    #[error("{cause}; {wipe}")]
    Wiped {
        cause: Box<WriteError>,
        /// What was done to the target so a half-written disk cannot boot.
        wipe: String,
    },
}

impl WriteError {
    /// The underlying failure, looking through [`WriteError::Wiped`].
    pub fn cause(&self) -> &WriteError {
        match self {
            WriteError::Wiped { cause, .. } => cause.cause(),
            other => other,
        }
    }
}

/// Wraps an `io::Error` with what was being done (path, offset).
pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> WriteError {
    let context = context.into();
    move |source| WriteError::Io { context, source }
}
