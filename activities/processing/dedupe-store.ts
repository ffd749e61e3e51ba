/**
 * State of dedupe stages in ClickHouse (`processor_dedupe_keys`). For a batch starting at offset
 * `from`, a key counts as seen before when an occurrence at a lower offset of the same partition lies
 * within the window of the event's time. Only lower offsets are consulted, so a retried batch (whose
 * own keys may already be stored) gets the same answer as its first attempt: deterministic, as the
 * batch plan requires. Kept keys are stored with the batch's de-duplication token.
 */
import type { ClickHouseClient } from '@clickhouse/client';

/** Where a dedupe stage runs. */
export interface DedupeScope {
  readonly pipelineId: string;
  readonly stage: string;
  readonly topic: string;
  readonly partition: number;
}

function chTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** The store's operations. */
export type DedupeStore = ReturnType<typeof createDedupeStore>;

/** Builds the store around a client bound to the platform database. */
export function createDedupeStore(warehouse: ClickHouseClient) {
  return {
    /** Keys of `events` (key, time ms) seen at offsets below `beforeOffset` within `windowMs`. */
    async seenBefore(scope: DedupeScope, beforeOffset: number, events: readonly { key: string; time: number }[], windowMs: number): Promise<Set<string>> {
      if (events.length === 0) return new Set();
      const first = new Map<string, number>();
      for (const e of events) if (!first.has(e.key)) first.set(e.key, e.time);
      const times = [...first.values()];
      const result = await warehouse.query({
        query: `SELECT key, toUnixTimestamp64Milli(event_time) AS t FROM processor_dedupe_keys
                WHERE pipeline = {pipeline:String} AND stage = {stage:String} AND topic = {topic:String} AND partition = {partition:UInt32}
                  AND offset < {before:UInt64} AND key IN {keys:Array(String)}
                  AND event_time BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')}`,
        query_params: {
          pipeline: scope.pipelineId,
          stage: scope.stage,
          topic: scope.topic,
          partition: scope.partition,
          before: beforeOffset,
          keys: [...first.keys()],
          lo: chTime(Math.min(...times) - windowMs),
          hi: chTime(Math.max(...times) + windowMs),
        },
        format: 'JSONEachRow',
      });
      const seen = new Set<string>();
      for (const r of await result.json<{ key: string; t: string | number }>()) {
        const t = first.get(r.key);
        if (t !== undefined && Math.abs(Number(r.t) - t) <= windowMs) seen.add(r.key);
      }
      return seen;
    },

    /** Records kept keys (first occurrences) of a batch step, de-duplicated by `token`. */
    async record(scope: DedupeScope, kept: readonly { key: string; time: number; offset: number }[], token: string): Promise<void> {
      if (kept.length === 0) return;
      await warehouse.insert({
        table: 'processor_dedupe_keys',
        values: kept.map((k) => ({ pipeline: scope.pipelineId, stage: scope.stage, topic: scope.topic, partition: scope.partition, key: k.key, offset: k.offset, event_time: chTime(k.time) })),
        format: 'JSONEachRow',
        clickhouse_settings: { insert_deduplicate: 1, insert_deduplication_token: token, async_insert: 0 },
      });
    },
  };
}
