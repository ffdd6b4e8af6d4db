//! Allocation rows and their link to a node. Filling an allocation is one transaction that
//! claims the node only if it is still free (available, not in maintenance, no instance, no
//! allocation, not locked) and marks the allocation active; deleting one frees its node in
//! the same transaction. The conductor decides which nodes to try (`allocation_candidates`).

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Kind::*, ListQuery, Page, Table};
use super::{on_pool, unique_to_conflict, Allocation, Store, StoreError, StoreResult};

/// The allocations table for lists. A migration that adds a column adds it here too.
pub const ALLOCATIONS: Table = Table {
    name: "allocations",
    kind: "Allocation",
    columns: &[
        col("id", Int),
        col("uuid", Text),
        opt("name", Text),
        opt("node_uuid", Text),
        col("state", Text),
        opt("last_error", Text),
        opt("resource_class", Text),
        json("traits"),
        json("candidate_nodes"),
        json("extra"),
        opt("owner", Text),
        col("created_at", Time),
        opt("updated_at", Time),
    ],
};

/// What an allocation asks of a node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCriteria {
    pub resource_class: Option<String>,
    /// Every one of these traits.
    pub traits: Vec<String>,
    /// Only these node UUIDs (empty: any).
    pub candidates: Vec<String>,
    /// Only nodes this project owns or leases.
    pub project: Option<String>,
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Allocation",
        id: id.to_string(),
    }
}

fn conflict(e: sqlx::Error, a: &Allocation) -> StoreError {
    unique_to_conflict(e, |detail| {
        if detail.contains("name") {
            format!(
                "An allocation with name {} already exists.",
                a.name.as_deref().unwrap_or("")
            )
        } else if detail.contains("instance_uuid") {
            format!(
                "Instance {} is already associated with a node: an allocation's UUID becomes its node's instance_uuid.",
                a.uuid
            )
        } else if detail.contains("node_uuid") {
            format!(
                "Node {} already has an allocation.",
                a.node_uuid.as_deref().unwrap_or("")
            )
        } else {
            format!("An allocation with UUID {} already exists.", a.uuid)
        }
    })
}

/// The INSERT of a whole allocation row (bind with [`bind_new`]).
const INSERT: &str = "INSERT INTO allocations (uuid, name, node_uuid, state, last_error, \
     resource_class, traits, candidate_nodes, extra, owner, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *";

macro_rules! bind_new {
    ($q:expr, $a:expr) => {
        $q.bind(&$a.uuid)
            .bind(&$a.name)
            .bind(&$a.node_uuid)
            .bind(&$a.state)
            .bind(&$a.last_error)
            .bind(&$a.resource_class)
            .bind(Json(&$a.traits))
            .bind(Json(&$a.candidate_nodes))
            .bind(Json(&$a.extra))
            .bind(&$a.owner)
            .bind($a.created_at)
    };
}

/// Takes node `$2` for allocating allocation `$1` if the node is still free and of the
/// allocation's resource class.
const CLAIM_FREE_NODE: &str = "UPDATE nodes SET allocation_uuid = $1, instance_uuid = $1, \
     updated_at = $3 WHERE uuid = $2 AND resource_class = (SELECT resource_class FROM \
     allocations WHERE uuid = $1 AND state = 'allocating') AND provision_state = 'available' \
     AND maintenance = FALSE AND instance_uuid IS NULL AND allocation_uuid IS NULL \
     AND reservation IS NULL";

/// Links deployed node `$2` to allocation `$1` unless another instance or allocation holds it.
const CLAIM_DEPLOYED_NODE: &str = "UPDATE nodes SET allocation_uuid = $1, instance_uuid = $1, \
     updated_at = $3 WHERE uuid = $2 AND allocation_uuid IS NULL \
     AND (instance_uuid IS NULL OR instance_uuid = $1) AND reservation IS NULL";

impl Store {
    /// Saves a new allocation as given (state "allocating", no node).
    pub async fn create_allocation(&self, a: &Allocation) -> StoreResult<Allocation> {
        on_pool!(self, pool => bind_new!(sqlx::query_as::<_, Allocation>(INSERT), a)
            .fetch_one(pool)
            .await)
        .map_err(|e| conflict(e, a))
    }

    /// Saves a new allocation already holding the deployed node `a.node_uuid` (backfill): the
    /// node gets the allocation and its UUID as instance_uuid. `Conflict` when another
    /// allocation or instance holds the node or it is locked.
    pub async fn create_backfilled_allocation(&self, a: &Allocation) -> StoreResult<Allocation> {
        let node = a.node_uuid.clone().unwrap_or_default();
        let now = Utc::now();
        let made = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let made = bind_new!(sqlx::query_as::<_, Allocation>(INSERT), a)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| conflict(e, a))?;
            let claimed = sqlx::query(CLAIM_DEPLOYED_NODE)
                .bind(&a.uuid)
                .bind(&node)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, a))?
                .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "Node {node} is associated with another instance or allocation, or is \
                     locked by a running task: it cannot be backfilled now"
                )));
            }
            tx.commit().await?;
            made
        });
        Ok(made)
    }

    /// An allocation by UUID or name.
    pub async fn allocation(&self, ident: &str) -> StoreResult<Allocation> {
        on_pool!(self, pool => sqlx::query_as::<_, Allocation>(
            "SELECT * FROM allocations WHERE uuid = $1 OR name = $2",
        )
        .bind(ident.to_ascii_lowercase())
        .bind(ident)
        .fetch_optional(pool)
        .await)?
        .ok_or_else(|| not_found(ident))
    }

    /// The allocation holding node `node_uuid`, if any.
    pub async fn allocation_of_node(&self, node_uuid: &str) -> StoreResult<Option<Allocation>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Allocation>(
            "SELECT * FROM allocations WHERE node_uuid = $1",
        )
        .bind(node_uuid)
        .fetch_optional(pool)
        .await)?)
    }

    /// One page of allocations (see `store::list`).
    pub async fn list_allocations(&self, q: &ListQuery) -> StoreResult<Page<Allocation>> {
        self.list(&ALLOCATIONS, q).await
    }

    /// Saves the fields a client may change: name, extra, owner.
    pub async fn save_allocation(&self, a: &Allocation) -> StoreResult<Allocation> {
        on_pool!(self, pool => sqlx::query_as::<_, Allocation>(
            "UPDATE allocations SET name = $2, extra = $3, owner = $4, updated_at = $5 \
             WHERE uuid = $1 RETURNING *",
        )
        .bind(&a.uuid)
        .bind(&a.name)
        .bind(Json(&a.extra))
        .bind(&a.owner)
        .bind(Utc::now())
        .fetch_optional(pool)
        .await)
        .map_err(|e| conflict(e, a))?
        .ok_or_else(|| not_found(&a.uuid))
    }

    /// Marks a still-allocating allocation failed with `why`.
    pub async fn fail_allocation(&self, uuid: &str, why: &str) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE allocations SET state = 'error', last_error = $2, updated_at = $3 \
             WHERE uuid = $1 AND state = 'allocating'",
        )
        .bind(uuid)
        .bind(why)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Up to `limit` UUIDs of nodes free for an allocation that meet `c`, in random order.
    pub async fn allocation_candidates(
        &self,
        c: &NodeCriteria,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let mut sql = String::from(
            "SELECT uuid FROM nodes WHERE resource_class = $1 AND provision_state = 'available' \
             AND maintenance = FALSE AND instance_uuid IS NULL AND allocation_uuid IS NULL \
             AND power_state IS NOT NULL",
        );
        let mut binds: Vec<&str> = vec![c.resource_class.as_deref().unwrap_or("")];
        let mark = |binds: &mut Vec<&str>| format!("${}", binds.len());
        if let Some(p) = &c.project {
            binds.push(p);
            let m = mark(&mut binds);
            sql.push_str(&format!(" AND (owner = {m} OR lessee = {m})"));
        }
        if !c.candidates.is_empty() {
            let marks: Vec<String> = c
                .candidates
                .iter()
                .map(|u| {
                    binds.push(u);
                    mark(&mut binds)
                })
                .collect();
            sql.push_str(&format!(" AND uuid IN ({})", marks.join(", ")));
        }
        if !c.traits.is_empty() {
            let marks: Vec<String> = c
                .traits
                .iter()
                .map(|t| {
                    binds.push(t);
                    mark(&mut binds)
                })
                .collect();
            sql.push_str(&format!(
                " AND (SELECT COUNT(*) FROM node_traits t WHERE t.node_uuid = nodes.uuid \
                 AND t.trait IN ({})) = {}",
                marks.join(", "),
                c.traits.len()
            ));
        }
        sql.push_str(&format!(" ORDER BY RANDOM() LIMIT {limit}"));
        Ok(on_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, (String,)>(&sql);
            for b in &binds {
                q = q.bind(*b);
            }
            q.fetch_all(pool).await
        })?
        .into_iter()
        .map(|(u,)| u)
        .collect())
    }

    /// Gives node `node_uuid` to allocating allocation `uuid` if the node is still free and of
    /// the allocation's resource class: true when taken, false when the node was not free.
    pub async fn fill_allocation(&self, uuid: &str, node_uuid: &str) -> StoreResult<bool> {
        let now = Utc::now();
        // Writes only, the node first: a SQLite transaction that read before writing cannot
        // wait for the write lock (SQLITE_BUSY), one that starts with a write can.
        let done = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(CLAIM_FREE_NODE)
                .bind(uuid)
                .bind(node_uuid)
                .bind(now)
                .execute(&mut *tx)
                .await;
            let claimed = match claimed {
                Ok(r) => r.rows_affected(),
                // The allocation's UUID is some other node's instance_uuid already.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => 0,
                Err(e) => return Err(e.into()),
            };
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            let filled = sqlx::query(
                "UPDATE allocations SET node_uuid = $2, state = 'active', last_error = NULL, \
                 updated_at = $3 WHERE uuid = $1 AND state = 'allocating'",
            )
            .bind(uuid)
            .bind(node_uuid)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if filled == 0 {
                tx.rollback().await?;
                return Err(not_found(uuid));
            }
            tx.commit().await?;
            true
        });
        Ok(done)
    }

    /// Deletes allocation `uuid` and frees its node (allocation and instance_uuid cleared).
    pub async fn delete_allocation(&self, uuid: &str) -> StoreResult<()> {
        let done = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE nodes SET allocation_uuid = NULL, instance_uuid = NULL \
                 WHERE allocation_uuid = $1",
            )
            .bind(uuid)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query("DELETE FROM allocations WHERE uuid = $1")
                .bind(uuid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            done
        });
        if done == 0 {
            return Err(not_found(uuid));
        }
        Ok(())
    }
}
