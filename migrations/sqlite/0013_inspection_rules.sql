-- Inspection rules (sqlite, API 1.96): conditions checked and actions applied to a node's
-- inspection data. Never edit once released: add a new numbered migration. Same columns as the
-- other backend's 0013_inspection_rules.sql.

CREATE TABLE inspection_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    priority INTEGER NOT NULL,
    description TEXT,
    sensitive BOOLEAN NOT NULL,
    phase TEXT,
    conditions TEXT NOT NULL,
    actions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT
);

CREATE INDEX inspection_rules_phase ON inspection_rules (phase);
