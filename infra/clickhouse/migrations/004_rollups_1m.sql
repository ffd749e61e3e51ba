-- One-minute request rollups per pipeline, service and route; route = '*' is the whole service.
-- A window is recomputed from the events (not incremented), and ReplacingMergeTree(computed_at)
-- keeps the latest computation: recomputing a window replaces it. Read with FINAL (or argMax).
CREATE TABLE IF NOT EXISTS rollups_1m
(
    pipeline LowCardinality(String),
    window_start DateTime('UTC'),
    service LowCardinality(String),
    route String,
    requests UInt64,
    errors UInt64 COMMENT 'status >= 500',
    client_errors UInt64 COMMENT '400 <= status < 500',
    duration_p50 Float64,
    duration_p95 Float64,
    duration_p99 Float64,
    bytes_out UInt64,
    processor_version LowCardinality(String),
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (pipeline, window_start, service, route);
