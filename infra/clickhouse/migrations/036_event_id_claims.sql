-- Claims of event ids (issue 7, point 6): before a landing step inserts its events, it inserts one
-- claim per candidate id here, then reads back every claim of its ids within the duplicate-id
-- window. An id lands from the claimant (topic, partition, offset) whose claim has the lowest
-- `_block_number` (ties within one block by position); every other claimant becomes a
-- `duplicate_id` dead letter pointing at it (activities/ingest/ingest.ts, rankClaims). Exact on
-- one server because a plain MergeTree numbers its blocks from one counter when each part is
-- committed: a claim committed before mine has a lower number and is visible when I read after my
-- insert, so two partitions landing the same new id at the same moment cannot both win.
-- enable_block_number_column persists `_block_number` in every row, so merges keep it.
-- non_replicated_deduplication_window makes a retried claim insert (same token) keep its block.
-- No PARTITION BY: an insert is then one block. No TTL: the window is in event time, which
-- producers control (a replay of old data must still find old claims); one small row per event.
-- On ReplicatedMergeTree this would need insert_quorum and select_sequential_consistency.
CREATE TABLE IF NOT EXISTS event_id_claims
(
    pipeline LowCardinality(String),
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    batch_id String,
    claimed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (pipeline, event_id, event_time)
SETTINGS enable_block_number_column = 1, non_replicated_deduplication_window = 1000;
-- Backfill: every event already landed claims its id (in the few blocks of this insert, which rank
-- before every later claim). Positions already claimed are left out, so a second application of
-- this file (two processes starting at once) adds nothing more than a repeated claim, which ranks
-- with the same claimant and changes no decision.
INSERT INTO event_id_claims (pipeline, event_id, event_time, topic, partition, offset, batch_id)
SELECT pipeline, event_id, event_time, topic, partition, offset, batch_id
FROM events
WHERE (pipeline, topic, partition, offset) NOT IN (SELECT pipeline, topic, partition, offset FROM event_id_claims);
