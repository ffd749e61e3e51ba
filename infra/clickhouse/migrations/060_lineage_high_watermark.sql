-- The partition's high watermark when the batch was planned (Kafka log end offset, exclusive), so
-- backlog can be read from lineage over time: lag when planned = high_watermark - from_offset,
-- lag left after the batch = high_watermark - to_offset. NULL for batches landed before this column.
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS high_watermark Nullable(UInt64) COMMENT 'partition high watermark at planning (exclusive)' AFTER to_offset;
