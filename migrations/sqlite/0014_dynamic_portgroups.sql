-- Ironic's 1.111 (sqlite): a port may be taken into a dynamic portgroup, a portgroup may be one.
-- Never edit once released: add a new numbered migration. Same columns as the other
-- backend's 0014_dynamic_portgroups.sql.

ALTER TABLE ports ADD COLUMN available_for_dynamic_portgroup BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE portgroups ADD COLUMN dynamic_portgroup BOOLEAN NOT NULL DEFAULT FALSE;
