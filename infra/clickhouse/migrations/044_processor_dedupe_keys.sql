-- State of dedupe stages: the first occurrence of each business key per (pipeline, stage, topic,
-- partition), with its event time and offset. A key is a repeat when an occurrence at a lower offset
-- lies within the stage's window; asking only about lower offsets keeps a retried batch's answer
-- the same as its first attempt's. Old keys expire with the TTL (longest supported window: 7 days).
CREATE TABLE IF NOT EXISTS processor_dedupe_keys
(
    pipeline LowCardinality(String),
    stage LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    key String,
    offset UInt64,
    event_time DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (pipeline, stage, topic, partition, key, offset)
TTL toDateTime(event_time) + INTERVAL 8 DAY
SETTINGS non_replicated_deduplication_window = 1000;
