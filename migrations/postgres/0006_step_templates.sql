-- Deploy templates and runbooks (postgres): named lists of steps. Never edit once released: add a
-- new numbered migration. Same columns as the other backend's 0006_step_templates.sql.
-- Both tables have the same columns, so one row type serves both (a deploy template leaves
-- disable_ramdisk, public and owner at their defaults; a runbook has no description yet).

CREATE TABLE deploy_templates (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    steps JSONB NOT NULL,
    extra JSONB NOT NULL,
    disable_ramdisk BOOLEAN NOT NULL,
    public BOOLEAN NOT NULL,
    owner TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ
);

CREATE TABLE runbooks (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    steps JSONB NOT NULL,
    extra JSONB NOT NULL,
    disable_ramdisk BOOLEAN NOT NULL,
    public BOOLEAN NOT NULL,
    owner TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ
);
