-- Replays in lineage (issue 7): who asked, when, why, which range, under which generation, and
-- what came of it. A `started` row is written when the replay claims its generation (so a failed
-- replay's generation is never reused) and a `completed` row with the counts when it ends.
CREATE TABLE IF NOT EXISTS lineage_replays
(
    pipeline LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    generation UInt32,
    status LowCardinality(String) COMMENT 'started | completed',
    from_offset UInt64,
    to_offset UInt64 COMMENT 'exclusive',
    only_dead_letters Bool,
    requested_by String,
    reason String,
    requested_at DateTime64(3, 'UTC'),
    workflow_id String,
    run_id String,
    batch_ids Array(String) COMMENT 'lineage_batches rows of the replay',
    landed UInt64,
    already_landed UInt64,
    rejected UInt64,
    resolved UInt64,
    written_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (pipeline, topic, partition, generation, status)
SETTINGS non_replicated_deduplication_window = 1000;
