-- Node traits (sqlite): the capabilities a node advertises (os-traits names or CUSTOM_*), used
-- by allocations to pick candidates. Never edit once released: add a new numbered migration.
-- Same columns as the other backend's 0008_node_traits.sql.

CREATE TABLE node_traits (
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    trait TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (node_uuid, trait)
);
CREATE INDEX node_traits_trait ON node_traits (trait);
