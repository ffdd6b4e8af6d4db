-- Metal3 BareMetalHost manifests and the Secrets they name (sqlite). Never edit once released: add
-- a new numbered migration. Same columns as the other backend's 0011_metal3_hosts.sql.
-- `manifest` is the host as applied (apiVersion, kind, metadata, spec); `status` is BMO's status
-- shape, written by the reconciler; `internal` is the reconciler's bookkeeping. `generation`
-- grows with every apply, so the reconciler's annotation edits never overwrite a newer apply.

CREATE TABLE metal3_hosts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    manifest TEXT NOT NULL,
    status TEXT NOT NULL,
    internal TEXT NOT NULL,
    generation BIGINT NOT NULL,
    deleting BOOLEAN NOT NULL,
    requeue_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE (namespace, name)
);

CREATE TABLE metal3_secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE (namespace, name)
);
