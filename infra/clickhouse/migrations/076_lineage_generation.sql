-- A replay keeps the lineage of the landing it re-reads (issue 7). lineage_batches is a
-- ReplacingMergeTree keyed by (pipeline, topic, partition, from_offset), so a replay batch
-- starting at the same offset as the first landing replaced that landing's row at the next merge
-- (and under FINAL at once): the original batch_id, counts, contract and processor version were
-- lost, and rows of `events` pointing at it had no batch any more. The replay `generation` (0 for
-- the first landing, N for the partition's Nth replay; the `/g<N>` suffix of batch_id) is now part
-- of the sorting key, so each generation keeps its own row; retries of one batch (same generation)
-- still collapse. A column added to the sorting key may not have a default expression, so rows
-- written before this migration read generation 0 (their batch_id still ends in `/g<N>`).
ALTER TABLE lineage_batches ADD COLUMN IF NOT EXISTS generation UInt32 COMMENT 'replay generation of the batch: 0 = first landing, N = the partition''s Nth replay (batch_id ends in /gN)' AFTER batch_id, MODIFY ORDER BY (pipeline, topic, partition, from_offset, generation);
