-- The aggregator reads landed rows by event time (the windows that become final in a step, and the
-- span of every window it recomputes), but `events` is ordered by source position, so without an
-- index each step scanned all of a pipeline's rows of the month. Rows land roughly in event-time
-- order per partition, so a minmax skip index on event_time prunes all but the granules of the
-- windows read. Parts written before this migration are indexed when they merge.
ALTER TABLE events ADD INDEX IF NOT EXISTS events_event_time_minmax event_time TYPE minmax GRANULARITY 1;
