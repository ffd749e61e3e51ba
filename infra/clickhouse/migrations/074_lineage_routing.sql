-- Lineage of routed batches: the canary routing a batch was planned with (empty when no rollout
-- ran), so every landed row can be traced to the rollout step that chose its processor version.
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS rollout_id String DEFAULT '' COMMENT 'rollout whose routing the batch ran under, empty = none';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS routing_epoch UInt32 DEFAULT 0 COMMENT 'routing epoch of that rollout';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS routing_mode LowCardinality(String) DEFAULT '' COMMENT 'shadow | weight, empty = none';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS routing_percent UInt8 DEFAULT 0 COMMENT 'share of keys on the canary (weight)';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS canary_processor String DEFAULT '' COMMENT 'name@version of the canary';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS canary_events UInt32 DEFAULT 0 COMMENT 'events of the batch the canary processed (live in weight, shadow tables in shadow)';
