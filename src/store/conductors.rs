//! Conductor rows: who runs (name, host, pid), and when it last said so. A conductor whose
//! heartbeat is older than the timeout is dead; the live ones share its nodes.

use chrono::{DateTime, Utc};

use super::{on_pool, ConductorRow, NodeLock, Store, StoreResult};

impl Store {
    /// Registers `name` as run by process `pid` on `host`, marking it online with a fresh
    /// heartbeat (the caller has checked that no live process holds the name).
    pub async fn register_conductor(&self, name: &str, host: &str, pid: i64) -> StoreResult<()> {
        let now = Utc::now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO conductors (hostname, online, created_at, heartbeat_at, host, pid) \
             VALUES ($1, TRUE, $2, $2, $3, $4) \
             ON CONFLICT (hostname) DO UPDATE SET online = TRUE, heartbeat_at = $2, host = $3, pid = $4",
        )
        .bind(name)
        .bind(now)
        .bind(host)
        .bind(pid)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Registers `hostname` or refreshes its heartbeat, marking it online.
    pub async fn heartbeat(&self, hostname: &str) -> StoreResult<()> {
        let now = Utc::now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO conductors (hostname, online, created_at, heartbeat_at) VALUES ($1, TRUE, $2, $2) \
             ON CONFLICT (hostname) DO UPDATE SET online = TRUE, heartbeat_at = $2",
        )
        .bind(hostname)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks `hostname` offline (clean shutdown, or a dead conductor fully taken over).
    pub async fn conductor_offline(&self, hostname: &str) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE conductors SET online = FALSE WHERE hostname = $1")
            .bind(hostname)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn conductors(&self) -> StoreResult<Vec<ConductorRow>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, ConductorRow>(
            "SELECT * FROM conductors ORDER BY hostname",
        )
        .fetch_all(pool)
        .await)?)
    }

    pub async fn conductor(&self, name: &str) -> StoreResult<Option<ConductorRow>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, ConductorRow>(
            "SELECT * FROM conductors WHERE hostname = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await)?)
    }

    /// Sets a test conductor's last heartbeat (back-dates it, instead of waiting for it to age).
    pub async fn set_heartbeat_at(&self, name: &str, at: DateTime<Utc>) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE conductors SET heartbeat_at = $2 WHERE hostname = $1")
            .bind(name)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Moves the node's lock from `from` (a dead conductor) to `to` in one conditional UPDATE:
    /// of several survivors trying at once, one wins. None when `from` no longer holds it.
    pub async fn steal_lock(
        &self,
        uuid: &str,
        from: &str,
        to: &str,
    ) -> StoreResult<Option<NodeLock>> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE nodes SET reservation = $3 WHERE uuid = $1 AND reservation = $2",
        )
        .bind(uuid)
        .bind(from)
        .bind(to)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok((done == 1).then(|| self.adopt_lock(uuid, to)))
    }
}
