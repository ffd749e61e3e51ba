/**
 * The aggregator's reads stay bounded as a pipeline's history grows (migration 052 and
 * `landedBatchesQuery`), on the real ClickHouse:
 * - after merges have built one large part of a pipeline's history, the recompute's source scan
 *   of one second of event time reads only the granules that can hold it (skip index on
 *   `events.event_time`), not the pipeline's whole history;
 * - the cursor read returns exactly the batches at or after the cursor (compared with the plain
 *   definition, row by row, for many cursors, with re-landed duplicate rows that FINAL collapses),
 *   and reads only the granules at or after the cursor.
 * Both read-size checks use `EXPLAIN ESTIMATE` (rows ClickHouse plans to read), not timings.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { landedBatchesQuery } from '../../activities/analytics/aggregate-sql.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('histscan');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
const base = Date.UTC(2026, 10, 2);
const historyRows = 300_000; // 100,000 offsets per partition, 60 s of event time at 5,000/s
const rate = 5000;

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}
async function estimate(query: string, params: Record<string, unknown>): Promise<number> {
  const found = await rows<{ rows: string }>(`EXPLAIN ESTIMATE ${query}`, params);
  return found.reduce((n, r) => n + Number(r.rows), 0);
}

beforeAll(async () => {
  const endpoints = await stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, db);
  await migrate(warehouse, db, { admin });
  // Event time follows the offsets of each partition, with up to ±150 ms of out-of-orderness.
  await warehouse.command({
    query: `INSERT INTO events (pipeline, batch_id, topic, partition, offset, event_id, subject, contract_version, event_key, event_time, data, kafka_timestamp, processor_version)
SELECT 'hist', concat('b', toString(number % 3)), 'hist-topic', toUInt32(number % 3), intDiv(number, 3), generateUUIDv4(number), 'hist', 1, '',
       fromUnixTimestamp64Milli(toInt64(${base} + intDiv(number * 1000, ${rate}) + toInt64(cityHash64(number) % 301) - 150), 'UTC'),
       concat('{"service":"s', toString(number % 4), '"}'), now64(3), 'test'
FROM numbers(${historyRows})`,
  });
  await warehouse.command({ query: 'OPTIMIZE TABLE events FINAL' });
}, 120_000);

afterAll(async () => {
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
  await Promise.all([warehouse?.close(), admin?.close()]);
});

describe('reads of the aggregator on a long history', () => {
  it('reads only the granules of the windows it recomputes from a merged events part', async () => {
    const [parts] = await rows<{ n: string }>(`SELECT count() AS n FROM system.parts WHERE database = {db:String} AND table = 'events' AND active`, { db });
    expect(Number(parts!.n)).toBe(1);
    // One second of event time, 40 s into the history (the recompute's predicate shape).
    const from = base + 40_000;
    const read = await estimate(
      `SELECT count() FROM events WHERE pipeline = {p:String} AND event_time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND event_time < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`,
      { p: 'hist', from, to: from + 1000 },
    );
    const [inWindow] = await rows<{ n: string }>(`SELECT count() AS n FROM events WHERE event_time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND event_time < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`, { from, to: from + 1000 });
    expect(Number(inWindow!.n)).toBeGreaterThan(4000);
    // Without the index every row of the pipeline is read (300,000); with it, about one granule
    // (8,192 rows) per partition on each side of the window.
    expect(read).toBeLessThanOrEqual(6 * 8192);
    expect(read).toBeGreaterThanOrEqual(Number(inWindow!.n));
  });

  it('returns exactly the batches at or after the cursor, and reads only from the cursor on', async () => {
    // Batches of 100 offsets, 3 partitions, 20,000 batches each (about 8 granules); then a re-landed copy of some
    // batches (the same key), which FINAL collapses; and another pipeline on the same topic.
    const insertBatches = (pipeline: string, count: number, from = 0) => warehouse.command({
      query: `INSERT INTO lineage_batches (pipeline, batch_id, topic, partition, from_offset, to_offset, valid_count, rejected_count, missing_count, bytes, contract_versions, reject_codes, min_event_time, max_event_time, processor_version, workflow_id, run_id, activity_attempt, started_at, finished_at)
SELECT {pipeline:String}, concat('b', toString(number)), 'hist-topic', toUInt32(number % 3), intDiv(number, 3) * 100, intDiv(number, 3) * 100 + 100, 100, 0, 0, 0, [], map(),
       if(number % 7 = 0, NULL, fromUnixTimestamp64Milli(toInt64(${base} + number * 10), 'UTC')), if(number % 7 = 0, NULL, fromUnixTimestamp64Milli(toInt64(${base} + number * 10 + 9), 'UTC')),
       'test', 'w', 'r', 1, now64(3), fromUnixTimestamp64Milli(toInt64(${base} + number), 'UTC')
FROM numbers({from:UInt64}, {count:UInt64})`,
      query_params: { pipeline, from, count },
    });
    await insertBatches('hist', 60_000);
    await warehouse.command({ query: 'OPTIMIZE TABLE lineage_batches FINAL' });
    await insertBatches('hist', 30, 59_970);
    await insertBatches('other', 600);
    const all = await rows<{ partition: number; from_offset: string }>(`SELECT partition, from_offset FROM lineage_batches FINAL WHERE pipeline = 'hist' ORDER BY partition, from_offset`);
    expect(all).toHaveLength(60_000);
    const cursors: Record<string, number>[] = [
      {},
      { '0': 0, '1': 0, '2': 0 },
      { '0': 1_999_900, '1': 1_999_900, '2': 1_999_900 },
      { '0': 2_000_000, '1': 2_000_000, '2': 2_000_000 },
      { '0': 1_500_050, '2': 1_999_000 },
      { '1': 1_234_400 },
      { '0': 5, '1': 1_999_999, '2': 10_000_000 },
      { '7': 100 },
    ];
    for (const cursor of cursors) {
      for (const limit of [500, 20_000]) {
        const expected = all
          .filter((b) => Number(b.from_offset) >= (cursor[String(b.partition)] ?? 0))
          .slice(0, limit)
          .map((b) => `${b.partition}:${b.from_offset}`);
        const q = landedBatchesQuery('hist', cursor, limit);
        const got = (await rows<{ partition: number; from_offset: string }>(q.query, q.params)).map((b) => `${b.partition}:${b.from_offset}`);
        expect(got, JSON.stringify({ cursor, limit })).toEqual(expected);
      }
    }
    // A cursor at the newest batch of every partition reads from there on, not the history.
    const q = landedBatchesQuery('hist', { '0': 1_999_900, '1': 1_999_900, '2': 1_999_900 }, 500);
    const read = await estimate(q.query, q.params);
    expect(read).toBeLessThanOrEqual(3 * 2 * 8192);
  });
});
