-- Audit trail of alert incidents: one row per transition (opened, acknowledged, resolved, ...) and
-- per notification attempt, written by the alert workflow's audit activity. Every row repeats the
-- incident's identity (severity, route receiver, labels) so MTTA / MTTR per severity and receiver
-- are plain GROUP BYs without joins.
-- Idempotence: inserts carry insert_deduplication_token (the batch's event ids); the
-- ReplacingMergeTree keyed by (incident_id, seq) is the second guard for retries that re-batch.
CREATE TABLE IF NOT EXISTS alert_events
(
    event_id String,
    incident_id String,
    workflow_id String,
    fingerprint String,
    seq UInt32,
    event_time DateTime64(3, 'UTC'),
    event_type LowCardinality(String),
    status LowCardinality(String),
    severity LowCardinality(String),
    level UInt8,
    actor String,
    note String,
    detector LowCardinality(String),
    summary String,
    labels Map(String, String),
    pipeline String,
    route_receiver LowCardinality(String),
    policy LowCardinality(String),
    config_version UInt32,
    receiver String,
    target String,
    notification_id String,
    notification_kind LowCardinality(String),
    delivered Nullable(UInt8),
    attempts UInt16,
    detail String,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (incident_id, seq)
SETTINGS non_replicated_deduplication_window = 10000;
