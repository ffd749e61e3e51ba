-- Every aggregation step reads its windows' rows from `events` by event time
-- (activities/analytics/aggregate-sql.ts: `pipeline = ... AND event_time >= lo AND event_time < hi`).
-- events is ordered by source position (pipeline, topic, partition, offset), so the sort key narrows
-- the read to the pipeline only, and the partition key's per-part min/max prunes only parts whose
-- whole event-time span misses the windows: once merges have built large parts, each step read
-- event_time over the pipeline's whole history in the month (at 5,000 events/s, 432 M rows a day),
-- and the step's cost grew with the pipeline's age. Within a Kafka partition, offsets follow event
-- time up to the producers' out-of-orderness, so each granule (8,192 rows of one partition) spans a
-- narrow event-time range: a min/max skip index per granule lets ClickHouse read only the granules
-- that can hold the windows, and the step's cost stays flat as the history grows (measured by
-- `npm run bench:aggregation`). The late-events side output gets the same index on window_start,
-- which the recompute's exclusion and the lineage of a window filter on.
-- Parts written before this migration have no index (read in full) until merged or
-- `ALTER TABLE events MATERIALIZE INDEX events_event_time_minmax`.
ALTER TABLE events ADD INDEX IF NOT EXISTS events_event_time_minmax event_time TYPE minmax GRANULARITY 1;
ALTER TABLE late_events ADD INDEX IF NOT EXISTS late_events_window_start_minmax window_start TYPE minmax GRANULARITY 1;
