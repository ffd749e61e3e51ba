-- Rejected records with a machine-readable reason and the raw input kept exactly: `raw` holds the
-- bytes as text when they are valid UTF-8 (raw_encoding = 'utf8'), else base64 (raw_encoding =
-- 'base64'). Keyed by source position like events, for the same de-duplication reasons.
CREATE TABLE IF NOT EXISTS dead_letters
(
    pipeline LowCardinality(String),
    batch_id String,
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    reason_code LowCardinality(String),
    reason_message String,
    reason_detail String COMMENT 'JSON: issues, subject, version, sizes...',
    subject LowCardinality(String) DEFAULT '',
    contract_version UInt32 DEFAULT 0,
    message_key String,
    raw String,
    raw_encoding LowCardinality(String),
    raw_bytes UInt32,
    kafka_timestamp DateTime64(3, 'UTC'),
    processor_version LowCardinality(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(kafka_timestamp)
ORDER BY (pipeline, topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;
