-- Allocations (postgres): a request for a node of a resource class (and traits), which the
-- conductor fills by reserving one available node, or backfills from a deployed one. Never
-- edit once released: add a new numbered migration. Same columns as the other backend's
-- 0009_allocations.sql.

CREATE TABLE allocations (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    node_uuid TEXT REFERENCES nodes (uuid) ON DELETE CASCADE,
    state TEXT NOT NULL,
    last_error TEXT,
    resource_class TEXT,
    traits JSONB NOT NULL,
    candidate_nodes JSONB NOT NULL,
    extra JSONB NOT NULL,
    owner TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX allocations_node_uuid ON allocations (node_uuid);
CREATE INDEX allocations_state_id ON allocations (state, id);
CREATE INDEX allocations_resource_class_id ON allocations (resource_class, id);

-- The node's side of the link: which allocation holds it (Ironic's nodes.allocation_id).
ALTER TABLE nodes ADD COLUMN allocation_uuid TEXT;
