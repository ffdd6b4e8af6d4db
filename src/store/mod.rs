//! Persistence on sqlx: SQLite by default, PostgreSQL for several conductors; only this module
//! knows SQL.
//!
//! [`Store`] wraps one pool of either backend. Every query is written once, in SQL both
//! backends accept (`$N` placeholders, `RETURNING`), and run on whichever pool is open through
//! the `on_pool!` macro, which expands the same code per backend so types resolve for each.
//! Rows map to plain structs with runtime `query_as` + `FromRow` (no compile-time checked
//! macros: the shared store suite in tests/store.rs checks both backends instead).
//! Migrations live in `migrations/<backend>/` and run at [`Store::connect`].
//!
//! Non-goals: caching, business rules (the conductor decides; the store only persists and
//! offers the atomic reservation update and refuses writes not fenced by it).

mod allocations;
mod chassis;
mod conductors;
mod facts;
mod history;
mod inspection_rules;
mod list;
mod lock;
mod metal3;
mod model;
mod nodes;
mod portgroups;
mod ports;
mod step_templates;
mod traits;
mod volume;

pub use allocations::NodeCriteria;
pub use facts::{Fact, FactKind};
pub use list::{col, json, opt, Column, Filter, Kind, ListQuery, Page, SqlValue, Table};
pub use lock::NodeLock;
pub use metal3::{Applied, Metal3Write};
pub use model::*;
pub use step_templates::TemplateKind;
pub use traits::MAX_TRAITS_PER_NODE;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

/// Runs `$body` with `$pool` bound to whichever backend's pool is open.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} could not be found")]
    NotFound { kind: &'static str, id: String },
    /// A unique constraint refused the write; the message names the field.
    #[error("{0}")]
    Conflict(String),
    /// A write fenced by a node lock found the lock gone: the node was released or taken over
    /// (`now` is whoever holds it now), and the write was refused.
    #[error("node {node} is no longer locked by {holder} (reservation now {now:?}): the write was refused; the node was released or taken over by another conductor")]
    LockLost {
        node: String,
        holder: String,
        now: Option<String>,
    },
    /// A list was asked to sort by something that is not a sortable column.
    #[error("{key} is not a sortable column: use one of {valid}")]
    InvalidSortKey { key: String, valid: String },
    /// A list's marker names no row.
    #[error("{kind} {id} could not be found")]
    MarkerNotFound { kind: &'static str, id: String },
    /// Code asked for a column its table lacks (a bug, not bad input).
    #[error("{0}")]
    UnknownColumn(String),
    /// The write would break a rule between rows (e.g. deleting a chassis that holds nodes).
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database URL {0:?} is neither sqlite: nor postgres://")]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database: nodes, ports, node history, conductors.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: Db,
}

impl Store {
    /// Deletes the row of `table` (a table of ours, never input) whose uuid is `uuid`;
    /// `NotFound` names `kind` when there was none.
    pub(crate) async fn delete_by_uuid(
        &self,
        table: &'static str,
        kind: &'static str,
        uuid: &str,
    ) -> StoreResult<()> {
        let sql = format!("DELETE FROM {table} WHERE uuid = $1");
        let done = on_pool!(self, pool => sqlx::query(&sql)
            .bind(uuid)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound {
                kind,
                id: uuid.to_string(),
            });
        }
        Ok(())
    }

    /// Opens the database at `url` (creating a SQLite file if missing) and applies migrations.
    /// A store on a pool of its own of `connections` connections to the same database, for
    /// work that must never wait behind the main pool (the conductor's heartbeat).
    pub async fn dedicated(&self, connections: u32) -> StoreResult<Store> {
        let db = match &self.db {
            Db::Sqlite(p) => Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(connections)
                    .connect_with((*p.connect_options()).clone())
                    .await?,
            ),
            Db::Postgres(p) => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .connect_with((*p.connect_options()).clone())
                    .await?,
            ),
        };
        Ok(Store { db })
    }

    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
        let db = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(opts)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .connect_with(opts)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        Ok(Store { db })
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] with `message`.
pub(crate) fn unique_to_conflict(
    err: sqlx::Error,
    message: impl FnOnce(&str) -> String,
) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let detail = format!("{} {}", db.constraint().unwrap_or(""), db.message());
            StoreError::Conflict(message(&detail))
        }
        _ => StoreError::Database(err),
    }
}
