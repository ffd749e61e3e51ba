-- Reference data of the demo processor's enrichment: which team owns a service and its tier
-- (1 = most critical). Owned by people, not by the pipeline: edit it with INSERT; the latest row
-- of a service wins (ReplacingMergeTree on updated_at; read with FINAL).
CREATE TABLE IF NOT EXISTS service_catalog
(
    service String,
    team LowCardinality(String),
    tier UInt8,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY service;
