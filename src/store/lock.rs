//! The node lock (Ironic's reservation) as a guard: [`NodeLock`] exists exactly while its
//! holder's name is in the node's `reservation`, and dropping it releases the node.
//!
//! Why a guard: a lock released by hand leaks on every path nobody wrote a release for — an API
//! handler future dropped by hyper when the client hangs up, a panic in a worker task, an early
//! `?`. Drop cannot await, so a guard dropped while still held spawns its release on the tokio
//! runtime it was dropped in; the normal path awaits [`NodeLock::release`] so the node is free
//! before a response goes out. The release is a conditional UPDATE (`AND reservation =
//! holder`), so a late release never frees a lock someone else has taken since.
//!
//! The store enforces the lock: [`Store::save_node`] and [`Store::delete_node`] take the guard
//! and write only while the row still names its holder; otherwise they refuse with
//! [`StoreError::LockLost`] (the node was taken over), never overwriting silently.

use super::{on_pool, Store, StoreError, StoreResult};

/// A held node lock. Dropped means released.
#[derive(Debug)]
pub struct NodeLock {
    store: Store,
    uuid: String,
    holder: String,
    /// False once released (or the row deleted): nothing left for Drop to do.
    held: bool,
    /// Set when a fenced write found the lock taken by another conductor.
    lost: std::sync::atomic::AtomicBool,
    lost_signal: tokio::sync::Notify,
}

impl NodeLock {
    /// The locked node's UUID.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Whose name is in the node's `reservation`.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Resolves once a write under this lock was refused because another conductor took the
    /// node over: the holder must stop working on it.
    pub async fn lost(&self) {
        if self.lost.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        self.lost_signal.notified().await;
    }

    fn mark_lost(&self) {
        self.lost.store(true, std::sync::atomic::Ordering::Release);
        self.lost_signal.notify_one();
    }

    /// Releases the node now. True when it was still ours to release (false after a takeover).
    /// Cancel-safe: if this future is dropped before the UPDATE finishes, the guard's Drop
    /// releases instead.
    pub async fn release(mut self) -> StoreResult<bool> {
        // A crash here leaves the lock on the row: start-up recovery or a survivor's takeover
        // frees it.
        crate::fail_point!("lock-release");
        let released = self.store.release_node(&self.uuid, &self.holder).await;
        self.held = false;
        released
    }

    /// The row is gone with the lock in it (the node was deleted under the lock).
    pub(crate) fn forget(mut self) {
        self.held = false;
    }
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let (store, uuid, holder) = (self.store.clone(), self.uuid.clone(), self.holder.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                tracing::debug!(node = %uuid, "node lock dropped while held: releasing");
                rt.spawn(async move {
                    if let Err(e) = store.release_node(&uuid, &holder).await {
                        tracing::error!(node = %uuid, error = %e, "cannot release dropped node lock: it is freed at the next start-up or by takeover");
                    }
                });
            }
            Err(_) => tracing::error!(
                node = %uuid,
                "node lock dropped outside the runtime: it is freed at the next start-up or by takeover"
            ),
        }
    }
}

impl Store {
    /// Takes the node's lock for `holder` if nobody holds it (one conditional UPDATE, atomic in
    /// both backends, so it also arbitrates between conductor processes). None when busy.
    pub async fn lock_node(&self, uuid: &str, holder: &str) -> StoreResult<Option<NodeLock>> {
        if !self.reserve_node(uuid, holder).await? {
            return Ok(None);
        }
        Ok(Some(NodeLock {
            store: self.clone(),
            uuid: uuid.to_string(),
            holder: holder.to_string(),
            held: true,
            lost: Default::default(),
            lost_signal: Default::default(),
        }))
    }

    /// A guard for a reservation `holder` already has in the row: this conductor's own stale
    /// lock found at start-up. Writes under it are still fenced by the row.
    pub fn adopt_lock(&self, uuid: &str, holder: &str) -> NodeLock {
        NodeLock {
            store: self.clone(),
            uuid: uuid.to_string(),
            holder: holder.to_string(),
            held: true,
            lost: Default::default(),
            lost_signal: Default::default(),
        }
    }

    /// Sets the reservation to `holder` if it is free: the raw step under [`Store::lock_node`],
    /// also used to simulate another conductor's lock. True when taken.
    pub async fn reserve_node(&self, uuid: &str, holder: &str) -> StoreResult<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE nodes SET reservation = $1 WHERE uuid = $2 AND reservation IS NULL",
        )
        .bind(holder)
        .bind(uuid)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Clears the reservation if `holder` holds it. True when released.
    pub async fn release_node(&self, uuid: &str, holder: &str) -> StoreResult<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE nodes SET reservation = NULL WHERE uuid = $1 AND reservation = $2",
        )
        .bind(uuid)
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Releases every lock `holder` holds (a dead or restarted conductor's stale locks);
    /// returns how many nodes were released.
    pub async fn release_all_nodes(&self, holder: &str) -> StoreResult<u64> {
        Ok(on_pool!(self, pool => sqlx::query(
            "UPDATE nodes SET reservation = NULL WHERE reservation = $1",
        )
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Why a write fenced by `lock` touched no row: the node is gone, or no longer ours.
    pub(crate) async fn fence_failure(&self, lock: &NodeLock) -> StoreError {
        match self.node_by_uuid(&lock.uuid).await {
            Ok(Some(n)) => {
                lock.mark_lost();
                StoreError::LockLost {
                    node: lock.uuid.clone(),
                    holder: lock.holder.clone(),
                    now: n.reservation,
                }
            }
            Ok(None) => StoreError::NotFound {
                kind: "Node",
                id: lock.uuid.clone(),
            },
            Err(e) => e,
        }
    }
}
