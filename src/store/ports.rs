//! Port rows: a MAC address of a node, unique across all nodes.

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Kind::*, ListQuery, Page, Table};
use super::{on_pool, unique_to_conflict, Port, Store, StoreError, StoreResult};

/// The ports table for lists: every column, its type and nullability. A migration that adds a
/// column adds it here too.
pub const PORTS: Table = Table {
    name: "ports",
    kind: "Port",
    columns: &[
        col("id", Int),
        col("uuid", Text),
        col("address", Text),
        col("node_uuid", Text),
        json("extra"),
        col("pxe_enabled", Bool),
        col("created_at", Time),
        opt("updated_at", Time),
    ],
};

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Port",
        id: id.to_string(),
    }
}

impl Store {
    /// Inserts a port; a MAC address already in use is a Conflict.
    pub async fn create_port(&self, p: &Port) -> StoreResult<Port> {
        on_pool!(self, pool => sqlx::query_as::<_, Port>(
            "INSERT INTO ports (uuid, address, node_uuid, extra, pxe_enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        )
        .bind(&p.uuid)
        .bind(&p.address)
        .bind(&p.node_uuid)
        .bind(Json(&p.extra))
        .bind(p.pxe_enabled)
        .bind(p.created_at)
        .fetch_one(pool)
        .await)
        .map_err(|e| {
            unique_to_conflict(e, |detail| {
                if detail.contains("address") {
                    format!("A port with MAC address {} already exists.", p.address)
                } else {
                    format!("A port with UUID {} already exists.", p.uuid)
                }
            })
        })
    }

    /// Saves address, extra and pxe_enabled of `p`.
    pub async fn save_port(&self, p: &Port) -> StoreResult<Port> {
        on_pool!(self, pool => sqlx::query_as::<_, Port>(
            "UPDATE ports SET address = $2, extra = $3, pxe_enabled = $4, updated_at = $5 \
             WHERE uuid = $1 RETURNING *",
        )
        .bind(&p.uuid)
        .bind(&p.address)
        .bind(Json(&p.extra))
        .bind(p.pxe_enabled)
        .bind(Utc::now())
        .fetch_optional(pool)
        .await)
        .map_err(|e| {
            unique_to_conflict(e, |_| {
                format!("A port with MAC address {} already exists.", p.address)
            })
        })?
        .ok_or_else(|| not_found(&p.uuid))
    }

    /// A port by UUID or by MAC address.
    pub async fn port(&self, ident: &str) -> StoreResult<Port> {
        let ident_lower = ident.to_ascii_lowercase();
        on_pool!(self, pool => sqlx::query_as::<_, Port>(
            "SELECT * FROM ports WHERE uuid = $1 OR address = $2",
        )
        .bind(ident)
        .bind(&ident_lower)
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| not_found(ident))
    }

    /// Every port, or only `node_uuid`'s, in creation order.
    pub async fn ports(&self, node_uuid: Option<&str>) -> StoreResult<Vec<Port>> {
        Ok(match node_uuid {
            Some(node) => on_pool!(self, pool => sqlx::query_as::<_, Port>(
                "SELECT * FROM ports WHERE node_uuid = $1 ORDER BY id",
            )
            .bind(node)
            .fetch_all(pool)
            .await)?,
            None => {
                on_pool!(self, pool => sqlx::query_as::<_, Port>("SELECT * FROM ports ORDER BY id")
                .fetch_all(pool)
                .await)?
            }
        })
    }

    /// One page of ports (see `store::list`).
    pub async fn list_ports(&self, q: &ListQuery) -> StoreResult<Page<Port>> {
        self.list(&PORTS, q).await
    }

    pub async fn delete_port(&self, uuid: &str) -> StoreResult<()> {
        self.delete_by_uuid("ports", "Port", uuid).await
    }
}
