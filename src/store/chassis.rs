//! Chassis rows: a named group of nodes (Ironic's chassis). A chassis that still holds nodes
//! cannot be deleted.

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Kind::*, ListQuery, Page, Table};
use super::{on_pool, unique_to_conflict, Chassis, Store, StoreError, StoreResult};

/// The chassis table for lists. A migration that adds a column adds it here too.
pub const CHASSIS: Table = Table {
    name: "chassis",
    kind: "Chassis",
    columns: &[
        col("id", Int),
        col("uuid", Text),
        opt("description", Text),
        json("extra"),
        col("created_at", Time),
        opt("updated_at", Time),
    ],
};

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Chassis",
        id: id.to_string(),
    }
}

impl Store {
    /// Inserts a chassis; a UUID already in use is a Conflict.
    pub async fn create_chassis(&self, c: &Chassis) -> StoreResult<Chassis> {
        on_pool!(self, pool => sqlx::query_as::<_, Chassis>(
            "INSERT INTO chassis (uuid, description, extra, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(&c.uuid)
        .bind(&c.description)
        .bind(Json(&c.extra))
        .bind(c.created_at)
        .fetch_one(pool)
        .await)
        .map_err(|e| {
            unique_to_conflict(e, |_| {
                format!("A chassis with UUID {} already exists.", c.uuid)
            })
        })
    }

    /// Saves description and extra of `c`.
    pub async fn save_chassis(&self, c: &Chassis) -> StoreResult<Chassis> {
        on_pool!(self, pool => sqlx::query_as::<_, Chassis>(
            "UPDATE chassis SET description = $2, extra = $3, updated_at = $4 \
             WHERE uuid = $1 RETURNING *",
        )
        .bind(&c.uuid)
        .bind(&c.description)
        .bind(Json(&c.extra))
        .bind(Utc::now())
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| not_found(&c.uuid))
    }

    /// A chassis by UUID.
    pub async fn chassis(&self, uuid: &str) -> StoreResult<Chassis> {
        on_pool!(self, pool => sqlx::query_as::<_, Chassis>(
            "SELECT * FROM chassis WHERE uuid = $1",
        )
        .bind(uuid.to_ascii_lowercase())
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| not_found(uuid))
    }

    /// One page of chassis (see `store::list`).
    pub async fn list_chassis(&self, q: &ListQuery) -> StoreResult<Page<Chassis>> {
        self.list(&CHASSIS, q).await
    }

    /// Deletes a chassis that holds no node; one that still does is `Invalid`, as in Ironic.
    pub async fn delete_chassis(&self, uuid: &str) -> StoreResult<()> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM chassis WHERE uuid = $1 \
             AND NOT EXISTS (SELECT 1 FROM nodes WHERE chassis_uuid = $1)",
        )
        .bind(uuid)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 1 {
            return Ok(());
        }
        self.chassis(uuid).await?;
        Err(StoreError::Invalid(format!(
            "Cannot complete the requested action because chassis {uuid} contains nodes."
        )))
    }
}
