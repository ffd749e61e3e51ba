-- The processor registry: one row per registered (name, version). Versions are immutable like
-- contracts: the registry code refuses a different descriptor under a registered version, reads take
-- the earliest row of a version as authoritative, and the fingerprint is in the key so two racing
-- registrations of different descriptors both stay visible. Re-registering the same version is
-- idempotent (insert_deduplication_token = processor_registry/<name>/<version>/<fingerprint>).
CREATE TABLE IF NOT EXISTS processor_registry
(
    name LowCardinality(String),
    version UInt32,
    fingerprint String COMMENT 'sha256 of the canonical JSON descriptor',
    descriptor String COMMENT 'JSON: input, stages, outputs (table + output JSON Schema), flags, breaker, implementation',
    output_schemas String COMMENT 'JSON: output name -> output JSON Schema (draft 2020-12)',
    description String,
    notes String,
    registered_by String,
    registered_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (name, version, fingerprint)
SETTINGS non_replicated_deduplication_window = 1000;
