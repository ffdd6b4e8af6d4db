-- Metal3 BareMetalHost manifests and the Secrets they name (postgres). Never edit once released:
-- add a new numbered migration. Same columns as the other backend's 0011_metal3_hosts.sql.
-- `manifest` is the host as applied (apiVersion, kind, metadata, spec); `status` is BMO's status
-- shape, written by the reconciler; `internal` is the reconciler's bookkeeping. `generation`
-- grows with every apply, so the reconciler's annotation edits never overwrite a newer apply.

CREATE TABLE metal3_hosts (
    id BIGSERIAL PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    manifest JSONB NOT NULL,
    status JSONB NOT NULL,
    internal JSONB NOT NULL,
    generation BIGINT NOT NULL,
    deleting BOOLEAN NOT NULL,
    requeue_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ,
    UNIQUE (namespace, name)
);

CREATE TABLE metal3_secrets (
    id BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ,
    UNIQUE (namespace, name)
);
