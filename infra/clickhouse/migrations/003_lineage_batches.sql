-- One row per landed batch [from_offset, to_offset): what was read, what came out, by which code
-- and which workflow execution. Rows of events and dead_letters point here through batch_id.
-- missing_count counts offsets of the range with no record (retention, compaction, transaction
-- markers), so the ranges of a partition tile it without gaps even when records do not.
CREATE TABLE IF NOT EXISTS lineage_batches
(
    pipeline LowCardinality(String),
    batch_id String,
    topic LowCardinality(String),
    partition UInt32,
    from_offset UInt64,
    to_offset UInt64 COMMENT 'exclusive',
    valid_count UInt32,
    rejected_count UInt32,
    missing_count UInt32,
    bytes UInt64,
    contract_versions Array(String) COMMENT 'subject@version of the valid rows',
    reject_codes Map(String, UInt32),
    min_event_time Nullable(DateTime64(3, 'UTC')),
    max_event_time Nullable(DateTime64(3, 'UTC')),
    processor_version LowCardinality(String),
    workflow_id String,
    run_id String,
    activity_attempt UInt32,
    started_at DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (pipeline, topic, partition, from_offset)
SETTINGS non_replicated_deduplication_window = 1000;
