-- Initial schema (postgres). Never edit once released: add a new numbered migration.
-- Kept column-for-column identical to migrations/sqlite/0001_initial.sql.

CREATE TABLE nodes (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    driver TEXT NOT NULL,
    driver_info JSONB NOT NULL,
    instance_info JSONB NOT NULL,
    properties JSONB NOT NULL,
    extra JSONB NOT NULL,
    driver_internal_info JSONB NOT NULL,
    network_data JSONB NOT NULL,
    clean_step JSONB NOT NULL,
    deploy_step JSONB NOT NULL,
    provision_state TEXT NOT NULL,
    target_provision_state TEXT,
    power_state TEXT,
    target_power_state TEXT,
    last_error TEXT,
    maintenance BOOLEAN NOT NULL,
    maintenance_reason TEXT,
    reservation TEXT,
    instance_uuid TEXT,
    instance_name TEXT,
    bios_interface TEXT NOT NULL,
    boot_interface TEXT NOT NULL,
    console_interface TEXT NOT NULL,
    deploy_interface TEXT NOT NULL,
    firmware_interface TEXT NOT NULL,
    inspect_interface TEXT NOT NULL,
    management_interface TEXT NOT NULL,
    network_interface TEXT NOT NULL,
    power_interface TEXT NOT NULL,
    raid_interface TEXT NOT NULL,
    rescue_interface TEXT NOT NULL,
    storage_interface TEXT NOT NULL,
    vendor_interface TEXT NOT NULL,
    description TEXT,
    owner TEXT,
    lessee TEXT,
    resource_class TEXT,
    conductor_group TEXT NOT NULL,
    boot_mode TEXT,
    automated_clean BOOLEAN,
    protected BOOLEAN NOT NULL,
    protected_reason TEXT,
    retired BOOLEAN NOT NULL,
    retired_reason TEXT,
    shard TEXT,
    parent_node TEXT,
    disable_power_off BOOLEAN NOT NULL,
    chassis_uuid TEXT,
    console_enabled BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ,
    provision_updated_at TIMESTAMPTZ,
    inspection_started_at TIMESTAMPTZ,
    inspection_finished_at TIMESTAMPTZ
);

CREATE INDEX nodes_provision_state ON nodes (provision_state);
CREATE INDEX nodes_reservation ON nodes (reservation);
CREATE UNIQUE INDEX nodes_instance_uuid ON nodes (instance_uuid);

CREATE TABLE ports (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    extra JSONB NOT NULL,
    pxe_enabled BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ,
    CONSTRAINT ports_address_unique UNIQUE (address)
);
CREATE INDEX ports_node_uuid ON ports (node_uuid);

CREATE TABLE node_history (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    conductor TEXT NOT NULL,
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    event TEXT NOT NULL,
    user_id TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX node_history_node_uuid ON node_history (node_uuid);

CREATE TABLE conductors (
    hostname TEXT PRIMARY KEY,
    online BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
