-- Chassis (postgres): a group of nodes. Never edit once released: add a new numbered migration.
-- Kept column-for-column identical to migrations/sqlite/0002_chassis.sql.

CREATE TABLE chassis (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    description TEXT,
    extra JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ
);
CREATE INDEX nodes_chassis_uuid ON nodes (chassis_uuid);
