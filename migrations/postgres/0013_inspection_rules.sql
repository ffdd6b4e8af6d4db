-- Inspection rules (postgres, API 1.96): conditions checked and actions applied to a node's
-- inspection data. Never edit once released: add a new numbered migration. Same columns as the
-- other backend's 0013_inspection_rules.sql.

CREATE TABLE inspection_rules (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    priority BIGINT NOT NULL,
    description TEXT,
    sensitive BOOLEAN NOT NULL,
    phase TEXT,
    conditions JSONB NOT NULL,
    actions JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ
);

CREATE INDEX inspection_rules_phase ON inspection_rules (phase);
