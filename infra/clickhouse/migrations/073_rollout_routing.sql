-- The routing each canary rollout gives its pipeline, one row per routing change (epoch), written
-- by the rollout workflow (activity publishRouting) and read by the pipeline's batch planner: the
-- latest row of a pipeline (by published_at, then epoch) is the routing of the next batch while
-- `final` is 0. A final row (promoted, rolled back, aborted) ends the routing: the pipeline runs its
-- own processor again (after a promotion the rollout has switched it to the canary with setProcessor).
-- Idempotence: insert_deduplication_token per (rollout, epoch); ReplacingMergeTree keyed by
-- (pipeline, rollout_id, epoch) is the second guard.
CREATE TABLE IF NOT EXISTS rollout_routing
(
    pipeline String,
    rollout_id String,
    epoch UInt32,
    step UInt16 COMMENT '0-based step index when published',
    mode LowCardinality(String) COMMENT 'baseline | shadow | weight | canary',
    percent UInt8 COMMENT 'share of keys on the canary (weight mode)',
    baseline_version String,
    canary_version String COMMENT 'as the rollout names it: 3, v3 or name@3',
    canary_flags String COMMENT 'JSON object of the canary flags',
    fields Array(String) COMMENT 'numeric output columns observed for field:<column> metrics',
    final UInt8 COMMENT '1 once the rollout ended (its routing no longer applies)',
    status LowCardinality(String),
    published_at DateTime64(3, 'UTC') COMMENT 'workflow time of the change',
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (pipeline, rollout_id, epoch)
SETTINGS non_replicated_deduplication_window = 10000;
