-- Dead letters resolved by a replay (issue 7): one row per dead letter whose offset a replay
-- landed into events. dead_letters itself stays append-only (no mutations); open dead letters are
-- those without a row here (see the view below). Keyed like dead_letters.
CREATE TABLE IF NOT EXISTS dead_letter_resolutions
(
    pipeline LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    reason_code LowCardinality(String) COMMENT 'the reason the dead letter had',
    resolved_by_batch String COMMENT 'batch_id of the events row that landed the offset (ends in /g<generation>)',
    generation UInt32,
    replay_id String COMMENT 'workflow id / run id of the replay',
    resolved_by String COMMENT 'who asked for the replay',
    reason String COMMENT 'why',
    resolved_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (pipeline, topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;

-- Dead letters no replay resolved yet.
CREATE VIEW IF NOT EXISTS open_dead_letters AS
SELECT d.*
FROM dead_letters AS d
LEFT ANTI JOIN dead_letter_resolutions AS r
    ON r.pipeline = d.pipeline AND r.topic = d.topic AND r.partition = d.partition AND r.offset = d.offset;
