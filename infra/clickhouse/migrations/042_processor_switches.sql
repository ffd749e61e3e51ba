-- Audit of processor and flag changes of running pipelines: one row per (pipeline, topic,
-- partition) and change, written by the landing of the first batch that runs under the new
-- processor version or flags, so it names that batch exactly. requested_by and reason come from the
-- setProcessor / setFlags update.
CREATE TABLE IF NOT EXISTS processor_switches
(
    pipeline LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    change LowCardinality(String) COMMENT 'processor | flags',
    from_processor String COMMENT 'name@version before',
    to_processor String COMMENT 'name@version after',
    from_flags String,
    to_flags String,
    first_batch_id String COMMENT 'the first batch planned under the change',
    first_offset UInt64,
    requested_by String,
    reason String,
    requested_at DateTime64(3, 'UTC'),
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (pipeline, topic, partition, first_offset, change)
SETTINGS non_replicated_deduplication_window = 1000;
