//! Metal3 rows: BareMetalHost manifests with their status, and the Secrets they name.
//!
//! An apply writes every document of a manifest file in one transaction, so a file is applied
//! whole or not at all. The reconciler writes status and bookkeeping without touching the
//! manifest; its rare manifest edits (removing a consumed annotation) are fenced by the
//! generation it read, so they never overwrite a newer apply.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{on_pool, JsonMap, Metal3Host, Metal3Secret, Store, StoreError, StoreResult};

/// One document of an apply.
#[derive(Debug, Clone)]
pub enum Metal3Write {
    Secret {
        namespace: String,
        name: String,
        data: JsonMap,
    },
    Host {
        namespace: String,
        name: String,
        manifest: JsonMap,
    },
}

/// What an apply did to one document (kubectl's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

fn not_found(namespace: &str, name: &str) -> StoreError {
    StoreError::NotFound {
        kind: "BareMetalHost",
        id: format!("{namespace}/{name}"),
    }
}

impl Metal3Write {
    /// The document's kind, namespace, name and body (a Secret's data, a host's manifest).
    fn parts(&self) -> (DocKind, &str, &str, &JsonMap) {
        match self {
            Metal3Write::Secret {
                namespace,
                name,
                data,
            } => (DocKind::Secret, namespace, name, data),
            Metal3Write::Host {
                namespace,
                name,
                manifest,
            } => (DocKind::Host, namespace, name, manifest),
        }
    }
}

/// The two kinds of document an apply writes, each one table keyed by (namespace, name) with
/// one JSON body column. Every statement binds $1 namespace, $2 name, $3 body, $4 time; a new
/// host also binds $5, its uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocKind {
    Secret,
    Host,
}

impl DocKind {
    fn select_body(self) -> &'static str {
        match self {
            DocKind::Secret => "SELECT data FROM metal3_secrets WHERE namespace = $1 AND name = $2",
            DocKind::Host => "SELECT manifest FROM metal3_hosts WHERE namespace = $1 AND name = $2",
        }
    }

    /// A changed host gets a new generation and is due at once.
    fn update(self) -> &'static str {
        match self {
            DocKind::Secret => {
                "UPDATE metal3_secrets SET data = $3, updated_at = $4 \
                 WHERE namespace = $1 AND name = $2"
            }
            DocKind::Host => {
                "UPDATE metal3_hosts SET manifest = $3, updated_at = $4, \
                 generation = generation + 1, requeue_at = NULL \
                 WHERE namespace = $1 AND name = $2"
            }
        }
    }

    fn insert(self) -> &'static str {
        match self {
            DocKind::Secret => {
                "INSERT INTO metal3_secrets (namespace, name, data, created_at) \
                 VALUES ($1, $2, $3, $4)"
            }
            DocKind::Host => {
                "INSERT INTO metal3_hosts (namespace, name, manifest, created_at, uid, \
                 status, internal, generation, deleting) \
                 VALUES ($1, $2, $3, $4, $5, '{}', '{}', 1, FALSE)"
            }
        }
    }
}

/// Runs the writes of one apply inside the open transaction `$tx` of either backend.
macro_rules! apply_in {
    ($tx:ident, $writes:expr, $now:expr) => {{
        let mut out = Vec::with_capacity($writes.len());
        for w in $writes {
            let (kind, namespace, name, body) = w.parts();
            let old: Option<(Json<JsonMap>,)> = sqlx::query_as(kind.select_body())
                .bind(namespace)
                .bind(name)
                .fetch_optional(&mut *$tx)
                .await?;
            let applied = match old {
                Some((Json(o),)) if &o == body => Applied::Unchanged,
                Some(_) => {
                    sqlx::query(kind.update())
                        .bind(namespace)
                        .bind(name)
                        .bind(Json(body))
                        .bind($now)
                        .execute(&mut *$tx)
                        .await?;
                    Applied::Configured
                }
                None => {
                    let mut insert = sqlx::query(kind.insert())
                        .bind(namespace)
                        .bind(name)
                        .bind(Json(body))
                        .bind($now);
                    if kind == DocKind::Host {
                        insert = insert.bind(uuid::Uuid::new_v4().to_string());
                    }
                    insert.execute(&mut *$tx).await?;
                    Applied::Created
                }
            };
            out.push(applied);
        }
        out
    }};
}

impl Store {
    /// Writes every document of one apply in one transaction: all or nothing. A host whose
    /// manifest changed gets a new generation and is due for reconciling at once.
    pub async fn metal3_apply(&self, writes: &[Metal3Write]) -> StoreResult<Vec<Applied>> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let out = apply_in!(tx, writes, now);
            tx.commit().await?;
            Ok(out)
        })
    }

    /// The host `namespace/name`, if applied.
    pub async fn metal3_host(
        &self,
        namespace: &str,
        name: &str,
    ) -> StoreResult<Option<Metal3Host>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Metal3Host>(
                "SELECT * FROM metal3_hosts WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .fetch_optional(pool)
            .await)?)
    }

    /// Every host (of `namespace` when given), by namespace and name.
    pub async fn metal3_hosts(&self, namespace: Option<&str>) -> StoreResult<Vec<Metal3Host>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Metal3Host>(
                "SELECT * FROM metal3_hosts WHERE ($1 IS NULL OR namespace = $1) \
                 ORDER BY namespace, name")
            .bind(namespace)
            .fetch_all(pool)
            .await)?)
    }

    /// Hosts due for reconciling at `now` (no requeue time, or one that has passed).
    pub async fn metal3_hosts_due(&self, now: DateTime<Utc>) -> StoreResult<Vec<Metal3Host>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Metal3Host>(
                "SELECT * FROM metal3_hosts WHERE requeue_at IS NULL OR requeue_at <= $1 \
                 ORDER BY id")
            .bind(now)
            .fetch_all(pool)
            .await)?)
    }

    /// The reconciler's write: status, bookkeeping and the next time to look. `generation` is
    /// the one it read: a host applied meanwhile stays due at once.
    pub async fn metal3_save_status(
        &self,
        id: i64,
        generation: i64,
        status: &JsonMap,
        internal: &JsonMap,
        requeue_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
                "UPDATE metal3_hosts SET status = $3, internal = $4, \
                 requeue_at = CASE WHEN generation = $2 THEN $5 ELSE NULL END WHERE id = $1")
            .bind(id)
            .bind(generation)
            .bind(Json(status))
            .bind(Json(internal))
            .bind(requeue_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Replaces the manifest if it is still at `generation` (the reconciler removing an
    /// annotation it consumed); false when a newer apply came first.
    pub async fn metal3_edit_manifest(
        &self,
        id: i64,
        generation: i64,
        manifest: &JsonMap,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, pool => sqlx::query(
                "UPDATE metal3_hosts SET manifest = $3 WHERE id = $1 AND generation = $2")
            .bind(id)
            .bind(generation)
            .bind(Json(manifest))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Marks the host for deletion and makes it due at once.
    pub async fn metal3_mark_deleting(&self, namespace: &str, name: &str) -> StoreResult<()> {
        let done = on_pool!(self, pool => sqlx::query(
                "UPDATE metal3_hosts SET deleting = TRUE, requeue_at = NULL, updated_at = $3 \
                 WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(not_found(namespace, name));
        }
        Ok(())
    }

    /// Removes the host's row (the reconciler, once its node is gone).
    pub async fn metal3_forget_host(&self, id: i64) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM metal3_hosts WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The Secret `namespace/name`, if applied.
    pub async fn metal3_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> StoreResult<Option<Metal3Secret>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Metal3Secret>(
                "SELECT * FROM metal3_secrets WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .fetch_optional(pool)
            .await)?)
    }
}
