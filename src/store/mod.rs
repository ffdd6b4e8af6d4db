//! Persistence on sqlx: SQLite by default, PostgreSQL for several conductors; only this module knows SQL.
