-- What the conductor learned about a node's hardware (postgres): one JSON document per kind —
-- the inspected inventory and plugin data, the cached BIOS settings, the firmware components,
-- the BMC event subscriptions. Never edit once released: add a new numbered migration. Same
-- columns as the other backend's 0010_node_facts.sql.

CREATE TABLE node_facts (
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (node_uuid, kind)
);
