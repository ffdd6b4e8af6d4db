//! Lists in SQL for every resource: filters, sort key and direction, keyset pagination and
//! column projection, in one query text that both backends run.
//!
//! A resource describes its table once as a [`Table`] (columns with their type and
//! nullability) and lists through [`Store::list`] with a [`ListQuery`]. A new resource needs
//! only this (a `chassis` table as the example):
//!
//! ```ignore
//! use super::list::{col, json, opt, Kind::*, ListQuery, Page, Table};
//!
//! pub const CHASSIS: Table = Table {
//!     name: "chassis",
//!     kind: "Chassis",
//!     columns: &[col("id", Int), col("uuid", Text), opt("description", Text),
//!                json("extra"), col("created_at", Time), opt("updated_at", Time)],
//! };
//!
//! impl Store {
//!     pub async fn list_chassis(&self, q: &ListQuery) -> StoreResult<Page<Chassis>> {
//!         self.list(&CHASSIS, q).await
//!     }
//! }
//! ```
//!
//! The row struct derives `Default` and `sqlx::FromRow` with the container attribute
//! `#[sqlx(default)]`, so a projection that leaves columns out still decodes: the columns left
//! out hold their defaults, so a listed row is for rendering only, never for saving. The API
//! turns query parameters into [`Filter`]s (a column and a typed value), a sort key (any
//! non-JSON column, else [`StoreError::InvalidSortKey`]), a marker (the uuid of the previous
//! page's last row, else [`StoreError::MarkerNotFound`]) and a limit.
//!
//! Pagination is by keyset: a page starts strictly after the marker row's (sort key, id),
//! which an index on (sort key, id) turns into a seek, never an OFFSET, so every page costs
//! the same and no answer is bigger than its page. Ties on the sort key are broken by `id` in
//! the same direction (Ironic's order). NULLs sort first ascending and last descending on both
//! backends (`NULLS FIRST` / `NULLS LAST` spelled out; PostgreSQL indexes on nullable sort
//! keys are built `NULLS FIRST` to match).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{on_pool, Store, StoreError, StoreResult};

/// A column's SQL type, as far as listing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    Int,
    Time,
    /// A JSON document: selectable, never a sort key.
    Json,
}

/// One column of a listable table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

/// A NOT NULL column.
pub const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
    }
}

/// A nullable column.
pub const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: true,
    }
}

/// A JSON document column (NOT NULL).
pub const fn json(name: &'static str) -> Column {
    col(name, Kind::Json)
}

/// A listable table: every column (a projection may name only these), and the word errors use.
/// The table must have an integer `id` primary key and a unique text `uuid`.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// "Node", "Port": names the resource in errors.
    pub kind: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns that can be sort keys: all but JSON documents.
    pub fn sort_keys(&self) -> impl Iterator<Item = &'static str> {
        self.columns
            .iter()
            .filter(|c| c.kind != Kind::Json)
            .map(|c| c.name)
    }
}

/// A typed value to compare a column with.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Bool(bool),
    Int(i64),
    Time(DateTime<Utc>),
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(s: String) -> Self {
        SqlValue::Text(s)
    }
}

impl From<bool> for SqlValue {
    fn from(b: bool) -> Self {
        SqlValue::Bool(b)
    }
}

/// One condition every listed row meets. Column names come from code, never from input; the
/// store still refuses one its table lacks.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `column = value`.
    Eq(&'static str, SqlValue),
    /// `column` is one of the values (none: nothing matches).
    In(&'static str, Vec<SqlValue>),
    /// `column IS NULL` (true) or `IS NOT NULL` (false).
    IsNull(&'static str, bool),
    /// The column contains the text, ignoring ASCII case.
    Contains(&'static str, String),
    /// Any of the columns equals the value (Ironic's `project`: owner or lessee).
    AnyEq(&'static [&'static str], SqlValue),
    /// The row's node (its `node_uuid`) has `node_column` equal to one of the values (ports
    /// and portgroups by their node's conductor group or shard).
    NodeIn(&'static str, Vec<SqlValue>),
}

/// What to list: filters, order, page.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    /// Column to sort by; None: `id`.
    pub sort_key: Option<String>,
    pub desc: bool,
    /// uuid of the last row of the previous page.
    pub marker: Option<String>,
    /// Rows per page (at least 1).
    pub limit: usize,
    /// Columns to read; None: all. `id` and `uuid` are always read.
    pub columns: Option<Vec<String>>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filters: Vec::new(),
            sort_key: None,
            desc: false,
            marker: None,
            limit: 1000,
            columns: None,
        }
    }
}

/// One page of rows, and whether rows follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub more: bool,
}

/// SQL text with `$N` placeholders and the values they stand for, in order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<SqlValue>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn value(&mut self, v: SqlValue) {
        self.binds.push(v);
        self.text.push_str(&format!("${}", self.binds.len()));
    }
}

/// Where the previous page ended: the marker row's sort-key value (None: NULL) and id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seek {
    pub key: Option<SqlValue>,
    pub id: i64,
}

/// The sort column (validated), or None for `id`.
fn sort_column(table: &Table, q: &ListQuery) -> StoreResult<Option<&'static Column>> {
    match q.sort_key.as_deref() {
        None | Some("id") => Ok(None),
        Some(key) => match table.column(key) {
            Some(c) if c.kind != Kind::Json => Ok(Some(c)),
            _ => Err(StoreError::InvalidSortKey {
                key: key.to_string(),
                valid: table.sort_keys().collect::<Vec<_>>().join(", "),
            }),
        },
    }
}

fn known(table: &Table, column: &str) -> StoreResult<()> {
    match table.column(column) {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownColumn(format!(
            "{} has no column {column}",
            table.name
        ))),
    }
}

fn filter_sql(table: &Table, f: &Filter, sql: &mut Sql) -> StoreResult<()> {
    match f {
        Filter::Eq(c, v) => {
            known(table, c)?;
            sql.push(&format!("{c} = "));
            sql.value(v.clone());
        }
        Filter::In(c, vs) => {
            known(table, c)?;
            if vs.is_empty() {
                sql.push("1 = 0");
            } else {
                sql.push(&format!("{c} IN ("));
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.value(v.clone());
                }
                sql.push(")");
            }
        }
        Filter::IsNull(c, null) => {
            known(table, c)?;
            let not = if *null { "" } else { "NOT " };
            sql.push(&format!("{c} IS {not}NULL"));
        }
        Filter::Contains(c, text) => {
            known(table, c)?;
            let escaped = text
                .to_ascii_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            sql.push(&format!("LOWER({c}) LIKE "));
            sql.value(SqlValue::Text(format!("%{escaped}%")));
            sql.push(" ESCAPE '\\'");
        }
        Filter::NodeIn(node_column, vs) => {
            known(table, "node_uuid")?;
            known(&super::nodes::NODES, node_column)?;
            if vs.is_empty() {
                sql.push("1 = 0");
                return Ok(());
            }
            sql.push(&format!(
                "node_uuid IN (SELECT uuid FROM nodes WHERE {node_column} IN ("
            ));
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.value(v.clone());
            }
            sql.push("))");
        }
        Filter::AnyEq(cs, v) => {
            sql.push("(");
            for (i, c) in cs.iter().enumerate() {
                known(table, c)?;
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push(&format!("{c} = "));
                sql.value(v.clone());
            }
            sql.push(")");
        }
    }
    Ok(())
}

/// The condition "after the marker" in the page's order.
fn seek_sql(sort: Option<&Column>, desc: bool, seek: &Seek, sql: &mut Sql) {
    let after = if desc { "<" } else { ">" };
    let Some(c) = sort else {
        sql.push(&format!("id {after} "));
        sql.value(SqlValue::Int(seek.id));
        return;
    };
    let name = c.name;
    match &seek.key {
        Some(k) => {
            // A row value seeks on an index over (column, id). A NULL column compares as
            // unknown, so NULL rows drop out here: right ascending (they come first), and
            // added back descending (they come last, after every non-NULL marker).
            let nulls_follow = c.nullable && desc;
            sql.push(if nulls_follow { "((" } else { "(" });
            sql.push(&format!("{name}, id) {after} ("));
            sql.value(k.clone());
            sql.push(", ");
            sql.value(SqlValue::Int(seek.id));
            sql.push(")");
            if nulls_follow {
                sql.push(&format!(" OR {name} IS NULL)"));
            }
        }
        None if !desc => {
            // Ascending puts NULLs first: after a NULL marker come the later NULLs, then
            // every non-NULL row.
            sql.push(&format!("(({name} IS NULL AND id > "));
            sql.value(SqlValue::Int(seek.id));
            sql.push(&format!(") OR {name} IS NOT NULL)"));
        }
        None => {
            // Descending puts NULLs last: after a NULL marker come only the later NULLs.
            sql.push(&format!("({name} IS NULL AND id < "));
            sql.value(SqlValue::Int(seek.id));
            sql.push(")");
        }
    }
}

/// The ORDER BY clause: the sort key then `id`, both in the one direction.
fn order_sql(sort: Option<&Column>, desc: bool) -> String {
    let dir = if desc { "DESC" } else { "ASC" };
    match sort {
        None => format!("ORDER BY id {dir}"),
        Some(c) if c.nullable => {
            let nulls = if desc { "LAST" } else { "FIRST" };
            format!("ORDER BY {} {dir} NULLS {nulls}, id {dir}", c.name)
        }
        Some(c) => format!("ORDER BY {} {dir}, id {dir}", c.name),
    }
}

/// The SELECT list: every column, or the asked ones the table has plus `id` and `uuid`.
fn select_sql(table: &Table, columns: Option<&[String]>) -> String {
    let Some(wanted) = columns else {
        return "*".to_string();
    };
    let mut names: Vec<&str> = vec!["id", "uuid"];
    for c in table.columns {
        if wanted.iter().any(|w| w == c.name) && !names.contains(&c.name) {
            names.push(c.name);
        }
    }
    names.join(", ")
}

/// The page query: SELECT … WHERE filters AND after-marker ORDER BY … LIMIT page + 1 (the
/// extra row only tells whether more follow).
pub(crate) fn page_sql(table: &Table, q: &ListQuery, seek: Option<&Seek>) -> StoreResult<Sql> {
    let sort = sort_column(table, q)?;
    let mut sql = Sql::default();
    sql.push(&format!(
        "SELECT {} FROM {}",
        select_sql(table, q.columns.as_deref()),
        table.name
    ));
    let mut first = true;
    let mut and = |sql: &mut Sql| {
        sql.push(if first { " WHERE " } else { " AND " });
        first = false;
    };
    for f in &q.filters {
        and(&mut sql);
        filter_sql(table, f, &mut sql)?;
    }
    if let Some(seek) = seek {
        and(&mut sql);
        seek_sql(sort, q.desc, seek, &mut sql);
    }
    sql.push(&format!(
        " {} LIMIT {}",
        order_sql(sort, q.desc),
        q.limit.max(1) + 1
    ));
    Ok(sql)
}

/// Binds `$binds` (a `&[SqlValue]`) to query `$q`, in order.
macro_rules! bind_values {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for v in $binds {
            q = match v {
                SqlValue::Text(s) => q.bind(s.as_str()),
                SqlValue::Bool(b) => q.bind(*b),
                SqlValue::Int(i) => q.bind(*i),
                SqlValue::Time(t) => q.bind(*t),
            };
        }
        q
    }};
}

impl Store {
    /// One page of `table`'s rows as `q` asks: filtered, sorted, after the marker, at most
    /// `q.limit` rows, only the asked columns read.
    pub async fn list<T>(&self, table: &Table, q: &ListQuery) -> StoreResult<Page<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let seek = match &q.marker {
            Some(m) => Some(self.seek(table, q, m).await?),
            None => None,
        };
        let sql = page_sql(table, q, seek.as_ref())?;
        let mut rows: Vec<T> = on_pool!(self, pool => bind_values!(
            sqlx::query_as::<_, T>(&sql.text), &sql.binds)
            .fetch_all(pool)
            .await)?;
        let limit = q.limit.max(1);
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok(Page { rows, more })
    }

    /// The marker row's sort-key value and id.
    async fn seek(&self, table: &Table, q: &ListQuery, marker: &str) -> StoreResult<Seek> {
        let sort = sort_column(table, q)?;
        let key = sort.map(|c| c.name).unwrap_or("id");
        let sql = format!("SELECT id, {key} FROM {} WHERE uuid = $1", table.name);
        let kind = sort.map(|c| c.kind).unwrap_or(Kind::Int);
        let found = on_pool!(self, pool => {
            match sqlx::query(&sql).bind(marker).fetch_optional(pool).await? {
                None => None,
                Some(row) => {
                    let id: i64 = row.try_get(0)?;
                    let key = match kind {
                        Kind::Text => row.try_get::<Option<String>, _>(1)?.map(SqlValue::Text),
                        Kind::Bool => row.try_get::<Option<bool>, _>(1)?.map(SqlValue::Bool),
                        Kind::Int => row.try_get::<Option<i64>, _>(1)?.map(SqlValue::Int),
                        Kind::Time => row
                            .try_get::<Option<DateTime<Utc>>, _>(1)?
                            .map(SqlValue::Time),
                        Kind::Json => None,
                    };
                    Some(Seek { key, id })
                }
            }
        });
        found.ok_or_else(|| StoreError::MarkerNotFound {
            kind: table.kind,
            id: marker.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Kind::*;
    use super::*;

    const T: Table = Table {
        name: "t",
        kind: "Thing",
        columns: &[
            col("id", Int),
            col("uuid", Text),
            opt("name", Text),
            col("state", Text),
            json("extra"),
        ],
    };

    fn q() -> ListQuery {
        ListQuery {
            limit: 10,
            ..ListQuery::default()
        }
    }

    #[test]
    fn plain_list_is_by_id_with_one_extra_row() {
        let sql = page_sql(&T, &q(), None).unwrap();
        assert_eq!(sql.text, "SELECT * FROM t ORDER BY id ASC LIMIT 11");
        assert!(sql.binds.is_empty());
    }

    #[test]
    fn filters_become_placeholders_in_order() {
        let mut q = q();
        q.filters = vec![
            Filter::Eq("state", "active".into()),
            Filter::In("name", vec!["a".into(), "b".into()]),
            Filter::IsNull("name", false),
            Filter::Contains("name", "50%_X".into()),
        ];
        let sql = page_sql(&T, &q, None).unwrap();
        assert_eq!(
            sql.text,
            "SELECT * FROM t WHERE state = $1 AND name IN ($2, $3) AND name IS NOT NULL \
             AND LOWER(name) LIKE $4 ESCAPE '\\' ORDER BY id ASC LIMIT 11"
        );
        assert_eq!(sql.binds[3], SqlValue::Text("%50\\%\\_x%".into()));
    }

    #[test]
    fn node_in_selects_through_the_nodes_table() {
        let mut q = q();
        q.filters = vec![Filter::NodeIn(
            "conductor_group",
            vec!["g1".into(), "g2".into()],
        )];
        let sql = page_sql(&crate::store::ports::PORTS, &q, None).unwrap();
        assert!(
            sql.text.contains(
                "WHERE node_uuid IN (SELECT uuid FROM nodes WHERE conductor_group IN ($1, $2))"
            ),
            "{}",
            sql.text
        );
        q.filters = vec![Filter::NodeIn("no_such_column", vec!["x".into()])];
        assert!(page_sql(&crate::store::ports::PORTS, &q, None).is_err());
        q.filters = vec![Filter::NodeIn("shard", vec!["x".into()])];
        assert!(page_sql(&T, &q, None).is_err(), "t has no node_uuid");
        q.filters = vec![Filter::NodeIn("shard", Vec::new())];
        let none = page_sql(&crate::store::ports::PORTS, &q, None).unwrap();
        assert!(none.text.contains("1 = 0"));
    }

    #[test]
    fn projection_keeps_id_and_uuid_and_drops_unknown_names() {
        let mut q = q();
        q.columns = Some(vec!["name".into(), "links".into(), "name; DROP".into()]);
        let sql = page_sql(&T, &q, None).unwrap();
        assert!(
            sql.text.starts_with("SELECT id, uuid, name FROM t"),
            "{}",
            sql.text
        );
    }

    #[test]
    fn sort_keys_are_checked() {
        let mut q = q();
        q.sort_key = Some("extra".into());
        assert!(matches!(
            page_sql(&T, &q, None),
            Err(StoreError::InvalidSortKey { key, .. }) if key == "extra"
        ));
        q.sort_key = Some("nope".into());
        assert!(page_sql(&T, &q, None).is_err());
    }

    #[test]
    fn seek_after_marker_for_each_null_case() {
        let mut q = q();
        q.sort_key = Some("name".into());
        let at = |key: Option<&str>| Seek {
            key: key.map(SqlValue::from),
            id: 7,
        };
        let text = |q: &ListQuery, s: Seek| page_sql(&T, q, Some(&s)).unwrap().text;
        assert!(text(&q, at(Some("m")))
            .contains("WHERE (name, id) > ($1, $2) ORDER BY name ASC NULLS FIRST, id ASC"));
        assert!(
            text(&q, at(None)).contains("WHERE ((name IS NULL AND id > $1) OR name IS NOT NULL)")
        );
        q.desc = true;
        assert!(text(&q, at(Some("m"))).contains(
            "WHERE ((name, id) < ($1, $2) OR name IS NULL) ORDER BY name DESC NULLS LAST, id DESC"
        ));
        assert!(text(&q, at(None)).contains("WHERE (name IS NULL AND id < $1)"));
        q.sort_key = Some("state".into());
        assert!(text(&q, at(Some("s")))
            .contains("WHERE (state, id) < ($1, $2) ORDER BY state DESC, id DESC"));
        q.sort_key = None;
        assert!(text(&q, at(None)).contains("WHERE id < $1 ORDER BY id DESC"));
    }
}
