-- Offsets whose processor failure (a processing_error / output_violation / stage dead letter) a
-- replay batch processed again without failure (issue 7). The event itself was valid, so it is in
-- events from the first landing and a replay never lands it again: this table is what lets
-- resolveDeadLetters mark such dead letters resolved, like the contract failures a replay lands.
CREATE TABLE IF NOT EXISTS processing_recoveries
(
    pipeline LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    batch_id String COMMENT 'the replay batch that processed the offset without failure (ends in /g<generation>)',
    processor String COMMENT 'name@version that processed it',
    recovered_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (pipeline, topic, partition, offset, batch_id)
SETTINGS non_replicated_deduplication_window = 1000;
