-- Side output of the aggregations (Flink's late-data side output): an event that arrives when the
-- window it belongs to is past its allowed lateness (window_end - 1 + allowed_lateness <= watermark)
-- cannot revise that window any more, so it lands here with how late it was and which window it
-- missed; nothing is dropped silently. One row per (event, missed window): a hopping window event
-- can miss some of its windows and still count in others. Inserts carry insert_deduplication_token
-- per aggregation step; ReplacingMergeTree keyed by the event and window is the second guard.
CREATE TABLE IF NOT EXISTS late_events
(
    pipeline LowCardinality(String),
    aggregation LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    batch_id String,
    event_time DateTime64(3, 'UTC'),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC') COMMENT 'exclusive',
    watermark DateTime64(3, 'UTC') COMMENT 'pipeline watermark when the event was read',
    late_by_ms Int64 COMMENT 'watermark - (window_end - 1): how far past the window end the watermark was',
    allowed_lateness_ms Int64,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (pipeline, aggregation, topic, partition, offset, window_start)
SETTINGS non_replicated_deduplication_window = 1000;
