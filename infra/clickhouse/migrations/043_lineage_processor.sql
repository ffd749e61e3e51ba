-- Lineage of processed batches: which processor version and flags a batch ran with, and how many
-- of its events the stages dropped or failed. Rows of the processor's output tables point here
-- through batch_id.
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS processor String DEFAULT '' COMMENT 'name@version of the processor the batch was planned with, empty = none';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS flags String DEFAULT '' COMMENT 'JSON of the flags the batch ran with';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS processed_count UInt32 DEFAULT 0 COMMENT 'rows written to output tables';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS dropped_count UInt32 DEFAULT 0 COMMENT 'events dropped on purpose by stages';
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS processing_failures UInt32 DEFAULT 0 COMMENT 'processing_error + output_violation dead letters';
