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
        json("local_link_connection"),
        json("internal_info"),
        opt("physical_network", Text),
        opt("portgroup_uuid", Text),
        col("is_smartnic", Bool),
        opt("name", Text),
        opt("description", Text),
        opt("vendor", Text),
        opt("category", Text),
        col("available_for_dynamic_portgroup", Bool),
    ],
};

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Port",
        id: id.to_string(),
    }
}

/// Names the field a unique constraint refused, in Ironic's words.
fn conflict(e: sqlx::Error, p: &Port) -> StoreError {
    unique_to_conflict(e, |detail| {
        if detail.contains("address") {
            format!("A port with MAC address {} already exists.", p.address)
        } else if detail.contains("name") {
            format!(
                "A port with name {} already exists.",
                p.name.as_deref().unwrap_or("")
            )
        } else {
            format!("A port with UUID {} already exists.", p.uuid)
        }
    })
}

impl Store {
    /// Inserts a port; a MAC address or name already in use is a Conflict.
    pub async fn create_port(&self, p: &Port) -> StoreResult<Port> {
        on_pool!(self, pool => sqlx::query_as::<_, Port>(
            "INSERT INTO ports (uuid, address, node_uuid, extra, pxe_enabled, created_at, \
             local_link_connection, internal_info, physical_network, portgroup_uuid, is_smartnic, \
             name, description, vendor, category, available_for_dynamic_portgroup) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             RETURNING *",
        )
        .bind(&p.uuid)
        .bind(&p.address)
        .bind(&p.node_uuid)
        .bind(Json(&p.extra))
        .bind(p.pxe_enabled)
        .bind(p.created_at)
        .bind(Json(&p.local_link_connection))
        .bind(Json(&p.internal_info))
        .bind(&p.physical_network)
        .bind(&p.portgroup_uuid)
        .bind(p.is_smartnic)
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.vendor)
        .bind(&p.category)
        .bind(p.available_for_dynamic_portgroup)
        .fetch_one(pool)
        .await)
        .map_err(|e| conflict(e, p))
    }

    /// Saves every field of `p` but its uuid and created_at.
    pub async fn save_port(&self, p: &Port) -> StoreResult<Port> {
        on_pool!(self, pool => sqlx::query_as::<_, Port>(
            "UPDATE ports SET address = $2, extra = $3, pxe_enabled = $4, updated_at = $5, \
             node_uuid = $6, local_link_connection = $7, internal_info = $8, \
             physical_network = $9, portgroup_uuid = $10, is_smartnic = $11, name = $12, \
             description = $13, vendor = $14, category = $15, \
             available_for_dynamic_portgroup = $16 WHERE uuid = $1 RETURNING *",
        )
        .bind(&p.uuid)
        .bind(&p.address)
        .bind(Json(&p.extra))
        .bind(p.pxe_enabled)
        .bind(Utc::now())
        .bind(&p.node_uuid)
        .bind(Json(&p.local_link_connection))
        .bind(Json(&p.internal_info))
        .bind(&p.physical_network)
        .bind(&p.portgroup_uuid)
        .bind(p.is_smartnic)
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.vendor)
        .bind(&p.category)
        .bind(p.available_for_dynamic_portgroup)
        .fetch_optional(pool)
        .await)
        .map_err(|e| conflict(e, p))?
        .ok_or_else(|| not_found(&p.uuid))
    }

    /// A port by UUID or by name.
    pub async fn port(&self, ident: &str) -> StoreResult<Port> {
        on_pool!(self, pool => sqlx::query_as::<_, Port>(
            "SELECT * FROM ports WHERE uuid = $1 OR name = $2",
        )
        .bind(ident.to_ascii_lowercase())
        .bind(ident)
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

    /// The ports of a portgroup, in creation order.
    pub async fn portgroup_ports(&self, portgroup_uuid: &str) -> StoreResult<Vec<Port>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Port>(
            "SELECT * FROM ports WHERE portgroup_uuid = $1 ORDER BY id",
        )
        .bind(portgroup_uuid)
        .fetch_all(pool)
        .await)?)
    }

    /// One page of ports (see `store::list`).
    pub async fn list_ports(&self, q: &ListQuery) -> StoreResult<Page<Port>> {
        self.list(&PORTS, q).await
    }

    pub async fn delete_port(&self, uuid: &str) -> StoreResult<()> {
        self.delete_by_uuid("ports", "Port", uuid).await
    }
}
