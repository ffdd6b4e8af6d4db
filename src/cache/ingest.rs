//! Entries made on this host rather than downloaded (a captured disk), and names for them.
//!
//! An [`Ingest`] holds what a download holds: the key's flock, a quota reservation made
//! before any byte is written (refused with the sizes when the quota cannot hold it), and a
//! `.part` that its owner writes however it likes (a qcow2 is written out of order). Commit
//! hashes the finished file, syncs it and makes it an entry in the same locked step as a
//! download's commit; dropping an uncommitted ingest removes the `.part` and its reservation.
//!
//! A name is a durable lease whose holder is `image:<name>`: a named image is never evicted,
//! lists with its name (`cache list`), and re-using a name moves it to the new entry (the old
//! one loses its lease and ages out like any other). Names are resolved from a fresh scan, so
//! every process sharing the directory sees the same.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checksum::Digests;
use super::fetch::Committed;
use super::store::{self, io_err, EntryMeta, FileLock, Source};
use super::{blocking, lock, Cache, CacheError, Inner, Reservation, Result};

/// The lease holder that names an entry.
const NAME_PREFIX: &str = "image:";

/// Whether `lease` is an image's name rather than a node's use of it.
pub fn is_name_lease(lease: &super::Lease) -> bool {
    lease.holder.starts_with(NAME_PREFIX)
}

/// The image name `lease` gives its entry, when it is a name.
pub fn lease_name(lease: &super::Lease) -> Option<&str> {
    lease.holder.strip_prefix(NAME_PREFIX)
}

/// An entry being built locally; see the module docs.
pub struct Ingest {
    inner: Arc<Inner>,
    key: String,
    part: PathBuf,
    reservation: Reservation,
    // Held until commit or drop: the reservation counts while it is.
    _flock: FileLock,
}

impl Cache {
    /// Reserves `bytes` of the quota for an entry built under `key` (evicting unleased entries
    /// by the quota plan if needed); `QuotaExceeded` names the sizes when it cannot.
    pub async fn begin_ingest(&self, key: &str, bytes: u64) -> Result<Ingest> {
        let (lock_path, resv, part) = (
            self.inner.layout.lock(key),
            self.inner.layout.reservation(key),
            self.inner.layout.part(key),
        );
        let k = key.to_string();
        let part2 = part.clone();
        let flock = blocking(move || {
            let l = FileLock::try_acquire(&lock_path)?.ok_or_else(|| CacheError::Io {
                context: format!("locking {}", lock_path.display()),
                message: format!("{k} is already being built by another task"),
            })?;
            store::remove_quiet(&resv);
            store::remove_quiet(&part2);
            Ok(l)
        })
        .await?;
        let reservation = self.inner.reserve(key, bytes).await?;
        Ok(Ingest {
            inner: self.inner.clone(),
            key: key.to_string(),
            part,
            reservation,
            _flock: flock,
        })
    }

    /// The entry named `name` (see the module docs).
    pub async fn named(&self, name: &str) -> Result<EntryMeta> {
        self.inner.rescan().await?;
        let holder = format!("{NAME_PREFIX}{name}");
        let st = lock(&self.inner.state);
        st.leases
            .values()
            .filter(|l| l.holder == holder)
            .max_by_key(|l| l.created_at)
            .and_then(|l| st.entries.get(&l.sha256))
            .cloned()
            .ok_or_else(|| {
                CacheError::NotFound(format!(
                    "image named {name:?} (capture one with `ironcast node capture NODE --name {name}`)"
                ))
            })
    }

    /// Deletes the image named `name`: its name, then its entry. Refused, the name kept, while
    /// anything else (a node's deploy, another name) leases the entry.
    pub async fn evict_named(&self, name: &str) -> Result<EntryMeta> {
        let entry = self.named(name).await?;
        let holder = format!("{NAME_PREFIX}{name}");
        let (names, others): (Vec<super::Lease>, Vec<super::Lease>) = lock(&self.inner.state)
            .leases
            .values()
            .filter(|l| l.sha256 == entry.sha256 || l.holder == holder)
            .cloned()
            .partition(|l| l.holder == holder);
        if !others.is_empty() {
            let holders: Vec<String> = others
                .iter()
                .map(|l| format!("{} (lease {})", l.holder, l.id))
                .collect();
            return Err(CacheError::Leased {
                sha256: entry.sha256,
                holders: holders.join(", "),
            });
        }
        for lease in names {
            self.release(&lease.id).await?;
        }
        self.evict(&entry.sha256).await?;
        Ok(entry)
    }

    /// Names entry `sha256` `name`, taking the name from the entry that had it.
    pub async fn name_entry(&self, sha256: &str, name: &str) -> Result<()> {
        let holder = format!("{NAME_PREFIX}{name}");
        let lease = self.lease(sha256, &holder).await?;
        let old: Vec<String> = lock(&self.inner.state)
            .leases
            .values()
            .filter(|l| l.holder == holder && l.id != lease.id)
            .map(|l| l.id.clone())
            .collect();
        for id in old {
            self.release(&id).await?;
        }
        Ok(())
    }
}

impl Ingest {
    /// The file to write the entry's bytes into.
    pub fn part(&self) -> &Path {
        &self.part
    }

    /// The bytes reserved.
    pub fn reserved(&self) -> u64 {
        self.reservation.bytes
    }

    /// Hashes and syncs the `.part` and makes it the entry, recording `source` (e.g.
    /// `capture://NODE/NAME`) as where it came from.
    pub async fn commit(self, source: &str) -> Result<EntryMeta> {
        let part = self.part.clone();
        let (written, sums) = blocking(move || {
            let mut f = std::fs::File::open(&part)
                .map_err(io_err(format!("opening {}", part.display())))?;
            f.sync_all()
                .map_err(io_err(format!("syncing {}", part.display())))?;
            let mut digests = Digests::new(None);
            let mut buf = vec![0u8; 1 << 20];
            let mut written = 0u64;
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(io_err(format!("reading {} at {written}", part.display())))?;
                if n == 0 {
                    break;
                }
                digests.update(&buf[..n]);
                written += n as u64;
            }
            Ok((written, digests.finish()))
        })
        .await?;
        if written > self.reservation.bytes {
            return Err(CacheError::Io {
                context: format!("committing {}", self.part.display()),
                message: format!(
                    "{written} bytes were written, more than the {} reserved",
                    self.reservation.bytes
                ),
            });
        }
        let committed = Committed {
            part: self.part.clone(),
            part_meta: None,
            key: self.key.clone(),
            written,
            sums,
            url: source.to_string(),
            source: Source::default(),
        };
        let entry = self
            .inner
            .with_lock(move |_, layout| committed.apply(layout))
            .await?;
        lock(&self.inner.state)
            .entries
            .insert(entry.sha256.clone(), entry.clone());
        tracing::info!(source, sha256 = %entry.sha256, size = entry.size, "image ingested");
        Ok(entry)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Committed: the part was renamed and this unlink finds nothing.
        store::remove_quiet(&self.part);
    }
}
