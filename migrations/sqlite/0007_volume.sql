-- Volume connectors and targets (sqlite): a node's boot-from-volume wiring. Never edit once
-- released: add a new numbered migration. Same columns as the other backend's 0007_volume.sql.

CREATE TABLE volume_connectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    type TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    extra TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    CONSTRAINT volume_connectors_type_connector_id UNIQUE (type, connector_id)
);
CREATE INDEX volume_connectors_node_uuid_id ON volume_connectors (node_uuid, id);

CREATE TABLE volume_targets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    volume_type TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    boot_index BIGINT NOT NULL,
    properties TEXT NOT NULL,
    extra TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    CONSTRAINT volume_targets_node_boot_index UNIQUE (node_uuid, boot_index)
);
CREATE INDEX volume_targets_node_uuid_id ON volume_targets (node_uuid, id);
