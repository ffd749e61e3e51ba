-- The schema registry: one row per registered (subject, version). A version is immutable: the
-- registry code refuses to register a different schema under an existing version, and reads take
-- the earliest row of a version as authoritative, so even two racing registrations of different
-- schemas cannot replace a registered one (the fingerprint is in the key: both rows stay visible
-- and the loser sees the conflict). Re-registering the same schema is idempotent: the insert
-- carries insert_deduplication_token = schema_registry/<subject>/<version>/<fingerprint>, and
-- identical rows collapse on merge.
CREATE TABLE IF NOT EXISTS schema_registry
(
    subject LowCardinality(String),
    version UInt32,
    fingerprint String COMMENT 'sha256 of the canonical JSON Schema',
    json_schema String COMMENT 'zod 4 input JSON Schema (draft 2020-12) of the event data',
    description String,
    notes String,
    upcast_from UInt32 DEFAULT 0 COMMENT 'version this one declares a migration from (0 = none)',
    registered_by String,
    registered_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (subject, version, fingerprint)
SETTINGS non_replicated_deduplication_window = 1000;
