-- Ironic's port fields and portgroups (sqlite). Never edit once released: add a new numbered
-- migration. Kept column-for-column identical to the other backend's 0005_ports_portgroups.sql.

ALTER TABLE ports ADD COLUMN local_link_connection TEXT NOT NULL DEFAULT '{}';
ALTER TABLE ports ADD COLUMN internal_info TEXT NOT NULL DEFAULT '{}';
ALTER TABLE ports ADD COLUMN physical_network TEXT;
ALTER TABLE ports ADD COLUMN portgroup_uuid TEXT;
ALTER TABLE ports ADD COLUMN is_smartnic BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE ports ADD COLUMN name TEXT;
ALTER TABLE ports ADD COLUMN description TEXT;
CREATE UNIQUE INDEX ports_name ON ports (name);
CREATE INDEX ports_portgroup_uuid_id ON ports (portgroup_uuid, id);

CREATE TABLE portgroups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    address TEXT UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    extra TEXT NOT NULL,
    internal_info TEXT NOT NULL,
    mode TEXT,
    properties TEXT NOT NULL,
    standalone_ports_supported BOOLEAN NOT NULL,
    physical_network TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE INDEX portgroups_node_uuid_id ON portgroups (node_uuid, id);
