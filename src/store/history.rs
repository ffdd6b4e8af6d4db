//! Node history rows: what happened to a node, when, and how it went.

use chrono::Utc;

use super::{on_pool, HistoryEvent, Store, StoreResult};

impl Store {
    /// Appends an event to `node_uuid`'s history.
    pub async fn add_history(
        &self,
        node_uuid: &str,
        conductor: &str,
        event_type: &str,
        severity: &str,
        event: &str,
    ) -> StoreResult<HistoryEvent> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, HistoryEvent>(
            "INSERT INTO node_history (uuid, node_uuid, conductor, event_type, severity, event, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(node_uuid)
        .bind(conductor)
        .bind(event_type)
        .bind(severity)
        .bind(event)
        .bind(Utc::now())
        .fetch_one(pool)
        .await)?)
    }

    /// `node_uuid`'s history, oldest first.
    pub async fn history(&self, node_uuid: &str) -> StoreResult<Vec<HistoryEvent>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, HistoryEvent>(
            "SELECT * FROM node_history WHERE node_uuid = $1 ORDER BY id",
        )
        .bind(node_uuid)
        .fetch_all(pool)
        .await)?)
    }
}
