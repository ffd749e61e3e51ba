-- Silences created with `platform alerts silence`: matchers plus a time window. Kept in ClickHouse
-- (not in a workflow) because they are data: the incident workflows read the ones in force through
-- an activity, people list them with SQL, and they outlive any Temporal history. Expiring a
-- silence early inserts the same id with a later version and ends_at = now.
CREATE TABLE IF NOT EXISTS alert_silences
(
    silence_id String,
    matchers Array(String),
    starts_at DateTime64(3, 'UTC'),
    ends_at DateTime64(3, 'UTC'),
    created_by String,
    comment String,
    version UInt64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY silence_id
SETTINGS non_replicated_deduplication_window = 1000;
