/** Helpers for the analytics tests: land synthetic rows in `events` + `lineage_batches` of a test database. */
import type { ClickHouseClient } from '@clickhouse/client';
import { toClickHouseTime } from '../../activities/ingest/ingest.js';

/** One synthetic landed event. */
export interface TestEvent {
  t: number;
  service?: string;
  status?: number;
  durationMs?: number;
  route?: string;
}

/**
 * Lands `events` as one batch `[from, from + n)` of a partition: rows in `events` (payload in
 * `data`, as the ingest path writes them) and one `lineage_batches` row with the batch's
 * event-time bounds. Returns the range.
 */
export async function landBatch(warehouse: ClickHouseClient, pipeline: string, partition: number, from: number, events: TestEvent[]): Promise<{ partition: number; from: number; to: number }> {
  const to = from + events.length;
  const batchId = `${pipeline}/t/${partition}/${from}-${to}`;
  await warehouse.insert({
    table: 'events',
    format: 'JSONEachRow',
    values: events.map((e, i) => ({
      pipeline,
      batch_id: batchId,
      topic: 't',
      partition,
      offset: from + i,
      event_id: `00000000-0000-4000-8000-${String(partition * 1e6 + from + i).padStart(12, '0')}`,
      subject: 'test-subject',
      contract_version: 1,
      event_key: 'k',
      event_time: toClickHouseTime(e.t),
      data: JSON.stringify({ service: e.service ?? 'api', status: e.status ?? 200, duration_ms: e.durationMs ?? 10, route: e.route ?? '/' }),
      kafka_timestamp: toClickHouseTime(Date.now()),
      processor_version: 'test',
    })),
  });
  const times = events.map((e) => e.t);
  await warehouse.insert({
    table: 'lineage_batches',
    format: 'JSONEachRow',
    values: [{
      pipeline, batch_id: batchId, topic: 't', partition, from_offset: from, to_offset: to, valid_count: events.length, rejected_count: 0, missing_count: 0, bytes: 0,
      contract_versions: [], reject_codes: {}, min_event_time: events.length ? toClickHouseTime(Math.min(...times)) : null, max_event_time: events.length ? toClickHouseTime(Math.max(...times)) : null,
      processor_version: 'test', workflow_id: 'w', run_id: 'r', activity_attempt: 1, started_at: toClickHouseTime(Date.now()), finished_at: toClickHouseTime(Date.now()),
    }],
  });
  return { partition, from, to };
}
