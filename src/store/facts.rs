//! Node facts: what the conductor learned about a node's hardware, one JSON document per
//! [`FactKind`] (inspection data, cached BIOS settings, firmware components, BMC event
//! subscriptions). Rows go with their node (ON DELETE CASCADE).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::{on_pool, Store, StoreResult};

/// Which document about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    /// `{"inventory": …, "plugin_data": …}` from the last inspection.
    Inspection,
    /// The BIOS settings last read from the BMC.
    Bios,
    /// The firmware components last read from the BMC.
    Firmware,
}

impl FactKind {
    fn as_str(self) -> &'static str {
        match self {
            FactKind::Inspection => "inspection",
            FactKind::Bios => "bios",
            FactKind::Firmware => "firmware",
        }
    }
}

/// One stored document with its times.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Fact {
    #[sqlx(json)]
    pub data: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Stores (or replaces) `node_uuid`'s document of `kind`; `created_at` stays the first
    /// write's.
    pub async fn put_fact(&self, node_uuid: &str, kind: FactKind, data: &Value) -> StoreResult<()> {
        let now = Utc::now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO node_facts (node_uuid, kind, data, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, NULL) \
             ON CONFLICT (node_uuid, kind) DO UPDATE SET data = $3, updated_at = $4",
        )
        .bind(node_uuid)
        .bind(kind.as_str())
        .bind(Json(data))
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// `node_uuid`'s document of `kind`, if one was stored.
    pub async fn fact(&self, node_uuid: &str, kind: FactKind) -> StoreResult<Option<Fact>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Fact>(
            "SELECT data, created_at, updated_at FROM node_facts WHERE node_uuid = $1 AND kind = $2",
        )
        .bind(node_uuid)
        .bind(kind.as_str())
        .fetch_optional(pool)
        .await)?)
    }
}
