//! Node traits: the capabilities a node advertises (os-traits names or `CUSTOM_*`), one row per
//! (node, trait). At most [`MAX_TRAITS_PER_NODE`] per node, as Ironic (Placement's limit).
//! Names are checked by the API; the store keeps sets and the limit.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::Row;

use super::{on_pool, Store, StoreError, StoreResult};

/// Most traits one node may have (Ironic's, from Placement's per-provider limit).
pub const MAX_TRAITS_PER_NODE: usize = 50;

fn too_many(node: &str, n: usize) -> StoreError {
    StoreError::Invalid(format!(
        "Could not modify traits for node {node} as it would exceed the maximum number of \
         traits per node ({n} vs. {MAX_TRAITS_PER_NODE})"
    ))
}

impl Store {
    /// The traits of node `uuid`, sorted.
    pub async fn node_traits(&self, uuid: &str) -> StoreResult<Vec<String>> {
        let rows = on_pool!(self, pool => sqlx::query(
            "SELECT trait FROM node_traits WHERE node_uuid = $1 ORDER BY trait",
        )
        .bind(uuid)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>())?;
        Ok(rows)
    }

    /// The traits of each of `uuids` (a page of nodes), sorted; a node without any is absent.
    pub async fn traits_of(&self, uuids: &[&str]) -> StoreResult<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        if uuids.is_empty() {
            return Ok(out);
        }
        let marks: Vec<String> = (1..=uuids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT node_uuid, trait FROM node_traits WHERE node_uuid IN ({}) ORDER BY trait",
            marks.join(", ")
        );
        let rows: Vec<(String, String)> = on_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, (String, String)>(&sql);
            for u in uuids {
                q = q.bind(*u);
            }
            q.fetch_all(pool).await
        })?;
        for (node, t) in rows {
            out.entry(node).or_default().push(t);
        }
        Ok(out)
    }

    /// Sets `traits` of each of `nodes` (a page, or one node) from the table.
    pub async fn fill_traits(&self, nodes: &mut [super::Node]) -> StoreResult<()> {
        let uuids: Vec<&str> = nodes.iter().map(|n| n.uuid.as_str()).collect();
        let mut found = self.traits_of(&uuids).await?;
        for n in nodes {
            n.traits = found.remove(&n.uuid).unwrap_or_default();
        }
        Ok(())
    }

    /// Replaces the traits of node `uuid` with `traits` (duplicates ignored).
    pub async fn set_node_traits(&self, uuid: &str, traits: &[String]) -> StoreResult<()> {
        let mut unique: Vec<&String> = traits.iter().collect();
        unique.sort();
        unique.dedup();
        if unique.len() > MAX_TRAITS_PER_NODE {
            return Err(too_many(uuid, unique.len()));
        }
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM node_traits WHERE node_uuid = $1")
                .bind(uuid)
                .execute(&mut *tx)
                .await?;
            for t in &unique {
                sqlx::query(
                    "INSERT INTO node_traits (node_uuid, trait, created_at) VALUES ($1, $2, $3)",
                )
                .bind(uuid)
                .bind(t.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Adds `trait_name` to node `uuid` (already there: nothing changes).
    pub async fn add_node_trait(&self, uuid: &str, trait_name: &str) -> StoreResult<()> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO node_traits (node_uuid, trait, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (node_uuid, trait) DO NOTHING",
            )
            .bind(uuid)
            .bind(trait_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM node_traits WHERE node_uuid = $1")
                .bind(uuid)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if n as usize > MAX_TRAITS_PER_NODE {
                tx.rollback().await?;
                return Err(too_many(uuid, n as usize));
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes `trait_name` from node `uuid`; `NotFound` when the node lacks it.
    pub async fn remove_node_trait(&self, uuid: &str, trait_name: &str) -> StoreResult<()> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM node_traits WHERE node_uuid = $1 AND trait = $2",
        )
        .bind(uuid)
        .bind(trait_name)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound {
                kind: "Trait",
                id: format!("{trait_name} of node {uuid}"),
            });
        }
        Ok(())
    }

    /// Removes every trait of node `uuid`.
    pub async fn clear_node_traits(&self, uuid: &str) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM node_traits WHERE node_uuid = $1")
            .bind(uuid)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
