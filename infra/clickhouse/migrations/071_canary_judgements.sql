-- Every judgement of a canary rollout, one row per metric, each repeating the judgement's
-- aggregate (outcome, score) so that `platform rollouts show` and dashboards read one table.
-- Per metric: the samples (sizes, summaries, and the values themselves up to 10,000 per side), the
-- test and its statistic, p-value, effect (Hodges–Lehmann shift or rate difference), tolerance
-- and verdict with its reason.
-- Idempotence: inserts carry insert_deduplication_token = judgement_id; ReplacingMergeTree keyed by
-- (rollout_id, judgement_id, metric) is the second guard.
CREATE TABLE IF NOT EXISTS canary_judgements
(
    rollout_id String,
    judgement_id String,
    pipeline LowCardinality(String),
    step UInt16,
    epoch UInt32,
    baseline_version LowCardinality(String),
    canary_version LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    outcome LowCardinality(String) COMMENT 'pass | marginal | inconclusive | fail',
    score Float64 COMMENT '0-100, weighted share of passing metrics among conclusive ones',
    pass_score Float64,
    marginal_score Float64,
    confidence Float64,
    metric LowCardinality(String),
    kind LowCardinality(String) COMMENT 'continuous | proportion',
    direction LowCardinality(String),
    weight Float64,
    critical UInt8,
    test LowCardinality(String) COMMENT 'mann-whitney-exact | mann-whitney-asymptotic | fisher-exact | none',
    baseline_n UInt64 COMMENT 'observations (continuous) or events (proportion)',
    canary_n UInt64,
    baseline_hits UInt64,
    canary_hits UInt64,
    baseline_nan UInt64,
    canary_nan UInt64,
    baseline_center Float64 COMMENT 'median (continuous) or rate (proportion); NaN when missing',
    canary_center Float64,
    baseline_samples Array(Float64),
    canary_samples Array(Float64),
    statistic Float64 COMMENT 'U of the canary sample, or the odds ratio',
    p_value Float64,
    effect Float64 COMMENT 'Hodges–Lehmann shift canary - baseline, or rate difference',
    tolerance Float64,
    verdict LowCardinality(String) COMMENT 'pass | fail | inconclusive',
    reason String,
    judged_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(judged_at)
ORDER BY (rollout_id, judgement_id, metric)
SETTINGS non_replicated_deduplication_window = 10000;
