-- Which aggregate rows each detector firing read: one row per (alert firing, aggregate row), so an
-- alert leads back to its windows and, through their keys, to the landed events and their batches
-- (`platform lineage trace --alert ID`). rollup_table names the aggregate (rollups_1m today).
CREATE TABLE IF NOT EXISTS alert_firing_inputs
(
    alert_workflow_id String,
    detector LowCardinality(String),
    fired_at DateTime64(3, 'UTC'),
    pipeline LowCardinality(String),
    rollup_table LowCardinality(String),
    window_start DateTime('UTC'),
    window_end DateTime('UTC'),
    service LowCardinality(String),
    route String,
    requests UInt64,
    errors UInt64,
    value Float64,
    threshold Float64
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_workflow_id, rollup_table, pipeline, window_start, service, route);
