-- Audit trail of canary rollouts: one row per event of the rollout workflow (started, each step
-- and routing change, judgements, pause/resume/promote/abort with who and why, reminders). The
-- routing columns say what the pipeline was told to do from that moment on.
-- Idempotence: insert_deduplication_token per batch of events; ReplacingMergeTree keyed by
-- (rollout_id, seq) is the second guard.
CREATE TABLE IF NOT EXISTS rollout_events
(
    rollout_id String,
    seq UInt32,
    pipeline LowCardinality(String),
    baseline_version LowCardinality(String),
    canary_version LowCardinality(String),
    event_time DateTime64(3, 'UTC'),
    event_type LowCardinality(String),
    step UInt16,
    status LowCardinality(String),
    actor String,
    reason String,
    routing_mode LowCardinality(String),
    routing_weight UInt8,
    routing_epoch UInt32,
    workflow_id String,
    run_id String,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (rollout_id, seq)
SETTINGS non_replicated_deduplication_window = 10000;
