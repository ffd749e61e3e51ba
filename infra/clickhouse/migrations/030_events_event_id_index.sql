-- The duplicate-id check (issue 7) looks up, per landing step, which of the step's event ids
-- already landed for the pipeline: `WHERE pipeline = ... AND event_id IN (...) AND event_time
-- BETWEEN ...`. events is ordered by source position, so without an index on event_id that reads
-- every granule of the pipeline in the window's months. A bloom filter skip index lets ClickHouse
-- skip the granules that cannot hold any of the ids. Parts written before this migration have no
-- index (they are read in full) until merged or `ALTER TABLE events MATERIALIZE INDEX events_event_id_bf`.
ALTER TABLE events ADD INDEX IF NOT EXISTS events_event_id_bf event_id TYPE bloom_filter(0.001) GRANULARITY 1;
