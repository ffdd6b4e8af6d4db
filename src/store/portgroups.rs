//! Portgroup rows: bonded ports of one node. Name and address are unique; a portgroup that
//! still has ports cannot be deleted.

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Kind::*, ListQuery, Page, Table};
use super::{on_pool, unique_to_conflict, Portgroup, Store, StoreError, StoreResult};

/// The portgroups table for lists. A migration that adds a column adds it here too.
pub const PORTGROUPS: Table = Table {
    name: "portgroups",
    kind: "Portgroup",
    columns: &[
        col("id", Int),
        col("uuid", Text),
        opt("name", Text),
        opt("address", Text),
        col("node_uuid", Text),
        json("extra"),
        json("internal_info"),
        opt("mode", Text),
        json("properties"),
        col("standalone_ports_supported", Bool),
        opt("physical_network", Text),
        opt("category", Text),
        col("dynamic_portgroup", Bool),
        col("created_at", Time),
        opt("updated_at", Time),
    ],
};

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Portgroup",
        id: id.to_string(),
    }
}

fn conflict(e: sqlx::Error, p: &Portgroup) -> StoreError {
    unique_to_conflict(e, |detail| {
        if detail.contains("address") {
            format!(
                "A port group with MAC address {} already exists.",
                p.address.as_deref().unwrap_or("")
            )
        } else if detail.contains("name") {
            format!(
                "A port group with name {} already exists.",
                p.name.as_deref().unwrap_or("")
            )
        } else {
            format!("A port group with UUID {} already exists.", p.uuid)
        }
    })
}

impl Store {
    pub async fn create_portgroup(&self, p: &Portgroup) -> StoreResult<Portgroup> {
        on_pool!(self, pool => sqlx::query_as::<_, Portgroup>(
            "INSERT INTO portgroups (uuid, name, address, node_uuid, extra, internal_info, mode, \
             properties, standalone_ports_supported, physical_network, created_at, category, \
             dynamic_portgroup) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *",
        )
        .bind(&p.uuid)
        .bind(&p.name)
        .bind(&p.address)
        .bind(&p.node_uuid)
        .bind(Json(&p.extra))
        .bind(Json(&p.internal_info))
        .bind(&p.mode)
        .bind(Json(&p.properties))
        .bind(p.standalone_ports_supported)
        .bind(&p.physical_network)
        .bind(p.created_at)
        .bind(&p.category)
        .bind(p.dynamic_portgroup)
        .fetch_one(pool)
        .await)
        .map_err(|e| conflict(e, p))
    }

    /// Saves every field of `p` but its uuid and created_at.
    pub async fn save_portgroup(&self, p: &Portgroup) -> StoreResult<Portgroup> {
        on_pool!(self, pool => sqlx::query_as::<_, Portgroup>(
            "UPDATE portgroups SET name = $2, address = $3, node_uuid = $4, extra = $5, \
             internal_info = $6, mode = $7, properties = $8, standalone_ports_supported = $9, \
             physical_network = $10, updated_at = $11, category = $12 WHERE uuid = $1 \
             RETURNING *",
        )
        .bind(&p.uuid)
        .bind(&p.name)
        .bind(&p.address)
        .bind(&p.node_uuid)
        .bind(Json(&p.extra))
        .bind(Json(&p.internal_info))
        .bind(&p.mode)
        .bind(Json(&p.properties))
        .bind(p.standalone_ports_supported)
        .bind(&p.physical_network)
        .bind(Utc::now())
        .bind(&p.category)
        .fetch_optional(pool)
        .await)
        .map_err(|e| conflict(e, p))?
        .ok_or_else(|| not_found(&p.uuid))
    }

    /// A portgroup by UUID or name.
    pub async fn portgroup(&self, ident: &str) -> StoreResult<Portgroup> {
        on_pool!(self, pool => sqlx::query_as::<_, Portgroup>(
            "SELECT * FROM portgroups WHERE uuid = $1 OR name = $2",
        )
        .bind(ident.to_ascii_lowercase())
        .bind(ident)
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| not_found(ident))
    }

    /// Gives every member port of portgroup `uuid` the physical network `net` (Ironic's
    /// `Portgroup.update_physical_network`, after the portgroup's own is saved).
    pub async fn set_member_physical_network(
        &self,
        uuid: &str,
        net: Option<&str>,
    ) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE ports SET physical_network = $2, updated_at = $3 WHERE portgroup_uuid = $1",
        )
        .bind(uuid)
        .bind(net)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// One page of portgroups (see `store::list`).
    pub async fn list_portgroups(&self, q: &ListQuery) -> StoreResult<Page<Portgroup>> {
        self.list(&PORTGROUPS, q).await
    }

    /// Deletes a portgroup that has no ports; one that still has is `Invalid`.
    pub async fn delete_portgroup(&self, uuid: &str) -> StoreResult<()> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM portgroups WHERE uuid = $1 \
             AND NOT EXISTS (SELECT 1 FROM ports WHERE portgroup_uuid = $1)",
        )
        .bind(uuid)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 1 {
            return Ok(());
        }
        self.portgroup(uuid).await?;
        Err(StoreError::Invalid(format!(
            "Cannot complete the requested action because portgroup {uuid} contains ports."
        )))
    }
}
