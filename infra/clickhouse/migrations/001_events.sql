-- Valid events, one row per Kafka record, with lineage on every row. ReplacingMergeTree keyed by
-- the record's source position is the second guard behind insert_deduplication_token: a batch
-- landed twice (e.g. after a lost acknowledgement) collapses on merge, and readers can use FINAL
-- or uniqExact(topic, partition, offset) to be exact before the merge. The pipeline is part of
-- the key so that two pipelines (e.g. a canary) may read the same topic into the same table.
-- non_replicated_deduplication_window makes insert_deduplication_token work without replication.
CREATE TABLE IF NOT EXISTS events
(
    pipeline LowCardinality(String),
    batch_id String,
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    event_id UUID,
    subject LowCardinality(String),
    contract_version UInt32,
    event_key String,
    event_time DateTime64(3, 'UTC'),
    data String COMMENT 'the validated contract payload as JSON',
    kafka_timestamp DateTime64(3, 'UTC'),
    processor_version LowCardinality(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (pipeline, topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;
