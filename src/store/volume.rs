//! Volume connector and target rows. A connector's (type, connector_id) is unique; a target's
//! boot index is unique per node.

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Kind::*, ListQuery, Page, Table};
use super::{
    on_pool, unique_to_conflict, Store, StoreError, StoreResult, VolumeConnector, VolumeTarget,
};

/// The tables for lists. A migration that adds a column adds it here too.
pub const VOLUME_CONNECTORS: Table = Table {
    name: "volume_connectors",
    kind: "Volume connector",
    columns: &[
        col("id", Int),
        col("uuid", Text),
        col("node_uuid", Text),
        col("type", Text),
        col("connector_id", Text),
        json("extra"),
        col("created_at", Time),
        opt("updated_at", Time),
    ],
};

pub const VOLUME_TARGETS: Table = Table {
    name: "volume_targets",
    kind: "Volume target",
    columns: &[
        col("id", Int),
        col("uuid", Text),
        col("node_uuid", Text),
        col("volume_type", Text),
        col("volume_id", Text),
        col("boot_index", Int),
        json("properties"),
        json("extra"),
        col("created_at", Time),
        opt("updated_at", Time),
    ],
};

fn not_found(kind: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn connector_conflict(e: sqlx::Error, c: &VolumeConnector) -> StoreError {
    unique_to_conflict(e, |detail| {
        if detail.contains("connector_id") {
            format!(
                "A volume connector with type {} and connector ID {} already exists.",
                c.kind, c.connector_id
            )
        } else {
            format!("A volume connector with UUID {} already exists.", c.uuid)
        }
    })
}

fn target_conflict(e: sqlx::Error, t: &VolumeTarget) -> StoreError {
    unique_to_conflict(e, |detail| {
        if detail.contains("boot_index") {
            format!(
                "A volume target with boot index '{}' for the same node already exists.",
                t.boot_index
            )
        } else {
            format!("A volume target with UUID {} already exists.", t.uuid)
        }
    })
}

impl Store {
    pub async fn create_volume_connector(
        &self,
        c: &VolumeConnector,
    ) -> StoreResult<VolumeConnector> {
        on_pool!(self, pool => sqlx::query_as::<_, VolumeConnector>(
            "INSERT INTO volume_connectors (uuid, node_uuid, type, connector_id, extra, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        )
        .bind(&c.uuid)
        .bind(&c.node_uuid)
        .bind(&c.kind)
        .bind(&c.connector_id)
        .bind(Json(&c.extra))
        .bind(c.created_at)
        .fetch_one(pool)
        .await)
        .map_err(|e| connector_conflict(e, c))
    }

    pub async fn save_volume_connector(&self, c: &VolumeConnector) -> StoreResult<VolumeConnector> {
        on_pool!(self, pool => sqlx::query_as::<_, VolumeConnector>(
            "UPDATE volume_connectors SET node_uuid = $2, type = $3, connector_id = $4, \
             extra = $5, updated_at = $6 WHERE uuid = $1 RETURNING *",
        )
        .bind(&c.uuid)
        .bind(&c.node_uuid)
        .bind(&c.kind)
        .bind(&c.connector_id)
        .bind(Json(&c.extra))
        .bind(Utc::now())
        .fetch_optional(pool)
        .await)
        .map_err(|e| connector_conflict(e, c))?
        .ok_or_else(|| not_found("Volume connector", &c.uuid))
    }

    pub async fn volume_connector(&self, uuid: &str) -> StoreResult<VolumeConnector> {
        on_pool!(self, pool => sqlx::query_as::<_, VolumeConnector>(
            "SELECT * FROM volume_connectors WHERE uuid = $1",
        )
        .bind(uuid.to_ascii_lowercase())
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| not_found("Volume connector", uuid))
    }

    pub async fn list_volume_connectors(
        &self,
        q: &ListQuery,
    ) -> StoreResult<Page<VolumeConnector>> {
        self.list(&VOLUME_CONNECTORS, q).await
    }

    pub async fn delete_volume_connector(&self, uuid: &str) -> StoreResult<()> {
        self.delete_by_uuid("volume_connectors", "Volume connector", uuid)
            .await
    }

    pub async fn create_volume_target(&self, t: &VolumeTarget) -> StoreResult<VolumeTarget> {
        on_pool!(self, pool => sqlx::query_as::<_, VolumeTarget>(
            "INSERT INTO volume_targets (uuid, node_uuid, volume_type, volume_id, boot_index, \
             properties, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(&t.uuid)
        .bind(&t.node_uuid)
        .bind(&t.volume_type)
        .bind(&t.volume_id)
        .bind(t.boot_index)
        .bind(Json(&t.properties))
        .bind(Json(&t.extra))
        .bind(t.created_at)
        .fetch_one(pool)
        .await)
        .map_err(|e| target_conflict(e, t))
    }

    pub async fn save_volume_target(&self, t: &VolumeTarget) -> StoreResult<VolumeTarget> {
        on_pool!(self, pool => sqlx::query_as::<_, VolumeTarget>(
            "UPDATE volume_targets SET node_uuid = $2, volume_type = $3, volume_id = $4, \
             boot_index = $5, properties = $6, extra = $7, updated_at = $8 \
             WHERE uuid = $1 RETURNING *",
        )
        .bind(&t.uuid)
        .bind(&t.node_uuid)
        .bind(&t.volume_type)
        .bind(&t.volume_id)
        .bind(t.boot_index)
        .bind(Json(&t.properties))
        .bind(Json(&t.extra))
        .bind(Utc::now())
        .fetch_optional(pool)
        .await)
        .map_err(|e| target_conflict(e, t))?
        .ok_or_else(|| not_found("Volume target", &t.uuid))
    }

    pub async fn volume_target(&self, uuid: &str) -> StoreResult<VolumeTarget> {
        on_pool!(self, pool => sqlx::query_as::<_, VolumeTarget>(
            "SELECT * FROM volume_targets WHERE uuid = $1",
        )
        .bind(uuid.to_ascii_lowercase())
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| not_found("Volume target", uuid))
    }

    pub async fn list_volume_targets(&self, q: &ListQuery) -> StoreResult<Page<VolumeTarget>> {
        self.list(&VOLUME_TARGETS, q).await
    }

    pub async fn delete_volume_target(&self, uuid: &str) -> StoreResult<()> {
        self.delete_by_uuid("volume_targets", "Volume target", uuid)
            .await
    }
}
