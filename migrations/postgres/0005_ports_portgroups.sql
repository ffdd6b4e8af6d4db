-- Ironic's port fields and portgroups (postgres). Never edit once released: add a new numbered
-- migration. Kept column-for-column identical to the other backend's 0005_ports_portgroups.sql.

ALTER TABLE ports ADD COLUMN local_link_connection JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE ports ADD COLUMN internal_info JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE ports ADD COLUMN physical_network TEXT;
ALTER TABLE ports ADD COLUMN portgroup_uuid TEXT;
ALTER TABLE ports ADD COLUMN is_smartnic BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE ports ADD COLUMN name TEXT;
ALTER TABLE ports ADD COLUMN description TEXT;
CREATE UNIQUE INDEX ports_name ON ports (name);
CREATE INDEX ports_portgroup_uuid_id ON ports (portgroup_uuid, id);

CREATE TABLE portgroups (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    address TEXT UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    extra JSONB NOT NULL,
    internal_info JSONB NOT NULL,
    mode TEXT,
    properties JSONB NOT NULL,
    standalone_ports_supported BOOLEAN NOT NULL,
    physical_network TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ
);
CREATE INDEX portgroups_node_uuid_id ON portgroups (node_uuid, id);
