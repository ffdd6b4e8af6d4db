-- Fields of Ironic's microversions 1.100 to 1.109 (postgres). Never edit once released: add a new
-- numbered migration. Same columns as the other backend's 0012_microversion_fields.sql.
-- port.vendor (1.100), port.category (1.101), portgroup.category (1.103), node.health (1.109:
-- the BMC's overall health, OK / Warning / Critical, null when unknown).

ALTER TABLE ports ADD COLUMN vendor TEXT;
ALTER TABLE ports ADD COLUMN category TEXT;
ALTER TABLE portgroups ADD COLUMN category TEXT;
ALTER TABLE nodes ADD COLUMN health TEXT;
