-- Lists in SQL (sqlite): Ironic's node `fault`, and indexes for keyset pages. Never edit once
-- released: add a new numbered migration. Same columns and index names as
-- migrations/postgres/0003_node_lists.sql.
--
-- A page seeks on (sort key, id) and filters on the same columns, so each sortable or
-- filterable column gets an index ending in id. parent_node gets none on purpose: every list
-- filters `parent_node IS NULL`, which matches nearly every row, and an index there would lure
-- the planner away from walking the sort order.

ALTER TABLE nodes ADD COLUMN fault TEXT;

DROP INDEX nodes_provision_state;
CREATE INDEX nodes_provision_state_id ON nodes (provision_state, id);
CREATE INDEX nodes_name_id ON nodes (name, id);
CREATE INDEX nodes_driver_id ON nodes (driver, id);
CREATE INDEX nodes_resource_class_id ON nodes (resource_class, id);
CREATE INDEX nodes_conductor_group_id ON nodes (conductor_group, id);
CREATE INDEX nodes_owner_id ON nodes (owner, id);
CREATE INDEX nodes_lessee_id ON nodes (lessee, id);
CREATE INDEX nodes_shard_id ON nodes (shard, id);
CREATE INDEX nodes_updated_at_id ON nodes (updated_at, id);
CREATE INDEX nodes_provision_updated_at_id ON nodes (provision_updated_at, id);

DROP INDEX ports_node_uuid;
CREATE INDEX ports_node_uuid_id ON ports (node_uuid, id);
