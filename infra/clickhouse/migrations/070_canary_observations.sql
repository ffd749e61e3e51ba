-- Per-batch observations of baseline and canary during a rollout, written by the pipeline at batch
-- boundaries (one row per batch, role and metric), read by the canary judge. Continuous metrics
-- carry their values in `values` (e.g. per-event processing times, an output field); proportions
-- carry `hits` out of `events` (rejects, processing errors, detector firings). NaN values are
-- kept as written: the judge treats them as missing, never as zero.
-- Idempotence: the pipeline inserts with insert_deduplication_token = the batch id; the
-- ReplacingMergeTree key is the second guard.
CREATE TABLE IF NOT EXISTS canary_observations
(
    rollout_id String,
    pipeline LowCardinality(String),
    epoch UInt32 COMMENT 'routing epoch the batch ran under (changes with every step change)',
    role Enum8('baseline' = 1, 'canary' = 2),
    processor_version LowCardinality(String),
    metric LowCardinality(String),
    batch_id String,
    topic LowCardinality(String),
    partition UInt32,
    from_offset UInt64,
    to_offset UInt64 COMMENT 'exclusive',
    events UInt64,
    hits UInt64,
    values Array(Float64),
    observed_at DateTime64(3, 'UTC'),
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(observed_at)
ORDER BY (rollout_id, epoch, metric, role, batch_id)
SETTINGS non_replicated_deduplication_window = 10000;
