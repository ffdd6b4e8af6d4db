//! Durable files: the one place the rule "a file that matters survives a power loss whole or
//! not at all" is written down.
//!
//! - [`write`]: temp file in the same directory → write → fsync the file → rename over the
//!   target → fsync the directory. A reader sees the old bytes or the new, never half; after a
//!   crash the new bytes are there once `write` returned.
//! - [`commit`]: the same rename + directory fsync for a file its writer already synced (the
//!   cache's `.part`, streamed too large to hold in memory).
//! - [`remove`]: unlink → fsync the directory, so a removal (a revoked publication) cannot come
//!   back after a power loss.
//! - [`FileLock`]: an exclusive `flock(2)` held until dropped, across processes.
//!
//! Used by the cache, the image server's publication records, remaster patch sets, netboot
//! configs and config drives. Non-goal: durability of directories' own creation beyond the
//! parent fsync done here.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A filesystem call failed; `context` names the call and the path.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct DurableError {
    pub context: String,
    #[source]
    pub source: io::Error,
}

pub type Result<T, E = DurableError> = std::result::Result<T, E>;

fn ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> DurableError {
    let context = context.into();
    move |source| DurableError { context, source }
}

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0600 whatever the umask: records holding tokens, URLs, kernel args.
    Private,
    /// 0644: files another service serves (a TFTP server reads netboot configs).
    Public,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Private => 0o600,
            Mode::Public => 0o644,
        }
    }
}

/// A temp name beside `path`, unique per writer: two tasks writing one file never share it.
/// It ends in `.tmp` so directory scans can recognise (and clean) leftovers.
pub fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.{}-{n}.tmp", std::process::id()))
}

/// Replaces `path` with `data` atomically and durably (see the module doc).
pub fn write(path: &Path, data: &[u8], mode: Mode) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode.bits())
            .open(&tmp)
            .map_err(ctx(format!("creating {}", tmp.display())))?;
        f.set_permissions(fs::Permissions::from_mode(mode.bits()))
            .map_err(ctx(format!("setting the mode of {}", tmp.display())))?;
        f.write_all(data)
            .and_then(|_| f.sync_all())
            .map_err(ctx(format!("writing {}", tmp.display())))?;
        commit(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Renames the already-synced file `from` to `to` and syncs the directory.
pub fn commit(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(ctx(format!(
        "renaming {} to {}",
        from.display(),
        to.display()
    )))?;
    sync_dir(to)
}

/// Removes `path` durably; returns whether it existed (a missing file is not an error).
pub fn remove(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ctx(format!("removing {}", path.display()))(e)),
    }
}

/// [`remove`] on the blocking pool, for async callers.
pub async fn remove_blocking(path: PathBuf) -> Result<bool> {
    let context = format!("removing {}", path.display());
    tokio::task::spawn_blocking(move || remove(&path))
        .await
        .map_err(|e| ctx(context)(io::Error::other(e)))?
}

/// Fsyncs the directory holding `path`, so a rename or unlink in it is on disk.
pub fn sync_dir(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(ctx(format!("syncing directory {}", parent.display())))
}

/// An exclusive advisory lock (`flock(2)`) held until dropped, across processes.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock is held.
    pub fn acquire(path: &Path) -> Result<Self> {
        Self::lock(path, libc::LOCK_EX).map(|l| l.expect("blocking flock returns a lock"))
    }

    /// Returns `None` when another holder has it.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>> {
        Self::lock(path, libc::LOCK_EX | libc::LOCK_NB)
    }

    fn lock(path: &Path, op: libc::c_int) -> Result<Option<Self>> {
        loop {
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(ctx(format!("opening lock {}", path.display())))?;
            if !flock(&file, op).map_err(ctx(format!("locking {}", path.display())))? {
                return Ok(None);
            }
            // Lock files may be removed while locked (stale downloads, dead leases): a lock won
            // on an inode no longer at `path` excludes nobody, so open the path again.
            let here = fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
            let mine = file
                .metadata()
                .map_err(ctx(format!("reading lock {}", path.display())))?;
            if here == Some((mine.dev(), mine.ino())) {
                return Ok(Some(Self { _file: file }));
            }
        }
    }

    /// Whether some open file description (any process, this one included) holds the lock at
    /// `path`; a missing file is not held. Nothing is created.
    pub fn is_held(path: &Path) -> Result<bool> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(ctx(format!("opening lock {}", path.display()))(e)),
        };
        let won = flock(&file, libc::LOCK_EX | libc::LOCK_NB)
            .map_err(ctx(format!("testing lock {}", path.display())))?;
        Ok(!won)
    }
}

/// flock(2) retried on EINTR; false when a non-blocking request finds it held.
fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(false),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_whole_with_the_mode_asked_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write(&path, b"one", Mode::Private).unwrap();
        write(&path, b"two", Mode::Public).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the target remains");
    }

    #[test]
    fn write_into_a_missing_directory_names_the_temp_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("no/such/a"), b"x", Mode::Private).unwrap_err();
        assert!(err.context.contains("no/such/a."), "{err}");
    }

    #[test]
    fn remove_says_whether_there_was_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        write(&path, b"x", Mode::Private).unwrap();
        assert!(remove(&path).unwrap());
        assert!(!path.exists());
        assert!(!remove(&path).unwrap());
    }

    #[test]
    fn a_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        let held = FileLock::acquire(&path).unwrap();
        assert!(FileLock::is_held(&path).unwrap());
        assert!(FileLock::try_acquire(&path).unwrap().is_none());
        drop(held);
        assert!(!FileLock::is_held(&path).unwrap());
        assert!(FileLock::try_acquire(&path).unwrap().is_some());
    }
}
