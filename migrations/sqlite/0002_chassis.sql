-- Chassis (sqlite): a group of nodes. Never edit once released: add a new numbered migration.
-- Kept column-for-column identical to migrations/postgres/0002_chassis.sql.

CREATE TABLE chassis (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    description TEXT,
    extra TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE INDEX nodes_chassis_uuid ON nodes (chassis_uuid);
