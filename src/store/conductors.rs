//! Conductor rows: who runs, and when it last said so (for multi-conductor takeover later).

use chrono::Utc;

use super::{on_pool, ConductorRow, Store, StoreResult};

impl Store {
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

    /// Marks `hostname` offline (clean shutdown).
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
}
