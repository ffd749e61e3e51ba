/**
 * Declared aggregations on the real ClickHouse: out-of-order events land in the right windows;
 * windows are provisional until the watermark passes them; late events within the allowed
 * lateness revise a final window (revision counted); beyond it they go to late_events with the
 * window they missed; a retried step and re-landed rows never double-count; and the SQL window
 * assignment equals the TypeScript one (schemas/analytics/windows.ts) on random times, before 1970
 * included, for hopping windows whose size is not a multiple of the slide.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregationActivities } from '../../activities/analytics/aggregate.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { analyticsFileSchema, type AnalyticsFile } from '../../schemas/analytics/declarations.js';
import { hoppingWindows } from '../../schemas/analytics/windows.js';
import { createWarehouse } from '../../workers/connections.js';
import { landBatch } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('agg');
const minute = 60_000;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
const mock = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => mock.run(fn, ...args) as Promise<R>;

const analytics: AnalyticsFile = analyticsFileSchema.parse({
  pipelines: [
    {
      pipeline: 'shop',
      fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' }, duration: { json: 'duration_ms', type: 'number' }, route: { json: 'route' } },
      watermark: { outOfOrderness: '5s', idleness: '1m', allowedLateness: '1m' },
      aggregations: [
        {
          name: 'requests',
          window: { type: 'tumbling', size: '1m' },
          groupBy: ['service'],
          measures: [
            { name: 'requests', kind: 'count' },
            { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] },
            { name: 'p95', kind: 'p95', field: 'duration' },
            { name: 'routes', kind: 'uniq', field: 'route' },
            { name: 'slowest', kind: 'max', field: 'duration' },
          ],
        },
      ],
    },
    ...['bounded', 'scanned'].map((pipeline) => ({
      pipeline,
      fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' }, duration: { json: 'duration_ms', type: 'number' } },
      watermark: { outOfOrderness: '2s', idleness: '1m', allowedLateness: '8s' },
      aggregations: [
        { name: 'tum', window: { type: 'tumbling', size: '5s' }, groupBy: ['service'], measures: [{ name: 'n', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }, { name: 'p95', kind: 'p95', field: 'duration' }] },
        { name: 'hop', window: { type: 'hopping', size: '7s', slide: '3s' }, groupBy: ['service'], measures: [{ name: 'n', kind: 'count' }, { name: 'slowest', kind: 'max', field: 'duration' }] },
      ],
      detectors: [
        { name: 'errs', aggregation: 'tum', measure: 'errors', method: { kind: 'threshold' }, levels: { warning: 3 }, clear: { below: 1 } },
        { name: 'hops', aggregation: 'hop', measure: 'n', method: { kind: 'threshold' }, levels: { warning: 1000 }, clear: { below: 1 } },
      ],
    })),
    {
      pipeline: 'hops',
      fields: {},
      watermark: { outOfOrderness: '0s', allowedLateness: '0s' },
      aggregations: [{ name: 'hop', window: { type: 'hopping', size: '5s', slide: '2s' }, measures: [{ name: 'n', kind: 'count' }] }],
    },
  ],
});

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, db);
  await migrate(warehouse, db, { admin });
});

afterAll(async () => {
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

interface Row { service: string; ws: string; requests: number; errors: number; p95: number; routes: number; slowest: number; final: number; revision: number; events: string }
async function windows(): Promise<Row[]> {
  return (await warehouse.query({
    query: `SELECT keys['service'] AS service, toString(toUnixTimestamp64Milli(window_start)) AS ws, measures['requests'] AS requests, measures['errors'] AS errors,
                   measures['p95'] AS p95, measures['routes'] AS routes, measures['slowest'] AS slowest, final, revision, events
            FROM agg_shop_requests FINAL ORDER BY window_start, service`,
    format: 'JSONEachRow',
  })).json<Row>();
}

describe('tumbling aggregation with watermarks and lateness', () => {
  const acts = () => createAggregationActivities({ warehouse, analytics });
  const t0 = Math.floor(Date.parse('2026-03-01T10:00:00Z') / minute) * minute;

  it('out-of-order events land in their windows; windows stay provisional until the watermark passes', async () => {
    const a = acts();
    await run(a.ensureAggregationTables, { pipeline: 'shop' });
    // Arrival order is not event-time order: 10:01:10 arrives before 10:00:20.
    const r1 = await landBatch(warehouse, 'shop', 0, 0, [
      { t: t0 + 70_000, service: 'api', status: 200, durationMs: 30, route: '/a' },
      { t: t0 + 20_000, service: 'api', status: 503, durationMs: 100, route: '/a' },
      { t: t0 + 59_999, service: 'api', status: 200, durationMs: 20, route: '/b' },
      { t: t0 + 60_000, service: 'api', status: 500, durationMs: 40, route: '/b' },
      { t: t0 + 5_000, service: 'db', status: 200, durationMs: 5 },
    ]);
    const step = await run(a.aggregateStep, { pipeline: 'shop', ranges: [r1], watermarkBeforeMs: null, watermarkAfterMs: t0 + 70_000 - 5_000, stepMs: Date.now() });
    expect(step.late).toEqual({ requests: 0 });
    // Watermark 10:01:05 passed the end of [10:00, 10:01): that window is final, [10:01, 10:02) is provisional.
    expect(step.finalized.requests).toEqual([t0]);
    const rows = await windows();
    expect(rows.map((r) => [r.service, Number(r.ws) - t0, r.requests, r.errors, r.routes, r.slowest, r.final])).toEqual([
      ['api', 0, 2, 1, 2, 100, 1],
      ['db', 0, 1, 0, 1, 5, 1],
      ['api', 60_000, 2, 1, 2, 40, 0],
    ]);
  });

  it('a late event within the allowed lateness revises the final window; beyond it goes to late_events with the missed window', async () => {
    const a = acts();
    const wmBefore = t0 + 65_000;
    // Watermark moves to 10:02:25: [10:01, 10:02) becomes final.
    const r2 = await landBatch(warehouse, 'shop', 1, 0, [{ t: t0 + 150_000, service: 'api' }]);
    const s2 = await run(a.aggregateStep, { pipeline: 'shop', ranges: [r2], watermarkBeforeMs: wmBefore, watermarkAfterMs: t0 + 145_000, stepMs: Date.now() });
    expect(s2.finalized.requests).toEqual([t0 + 60_000]);
    await new Promise((r) => setTimeout(r, 5));
    // Now a late event for [10:01, 10:02) (cleanup at 10:02:59.999 > watermark 10:02:25: allowed)
    // and one for [10:00, 10:01) (cleanup 10:01:59.999 <= 10:02:25: too late).
    const r3 = await landBatch(warehouse, 'shop', 0, 5, [
      { t: t0 + 61_000, service: 'api', status: 502, durationMs: 7 },
      { t: t0 + 1_000, service: 'api', status: 500, durationMs: 9 },
    ]);
    const input = { pipeline: 'shop', ranges: [r3], watermarkBeforeMs: t0 + 145_000, watermarkAfterMs: t0 + 145_000, stepMs: Date.now() };
    const s3 = await run(a.aggregateStep, input);
    expect(s3.late).toEqual({ requests: 1 });
    const rows = await windows();
    const api = (ws: number) => rows.find((r) => r.service === 'api' && Number(r.ws) === t0 + ws)!;
    expect([api(60_000).requests, api(60_000).errors, api(60_000).final, api(60_000).revision]).toEqual([3, 2, 1, 1]);
    // The too-late event did not change its window.
    expect([api(0).requests, api(0).errors, api(0).revision]).toEqual([2, 1, 0]);
    const late = await (await warehouse.query({ query: 'SELECT partition, offset, toUnixTimestamp64Milli(window_start) AS ws, toUnixTimestamp64Milli(window_end) AS we, late_by_ms, allowed_lateness_ms FROM late_events', format: 'JSONEachRow' })).json<Record<string, number | string>>();
    expect(late.map((l) => [Number(l.partition), Number(l.offset), Number(l.ws) - t0, Number(l.we) - t0, Number(l.late_by_ms), Number(l.allowed_lateness_ms)])).toEqual([[0, 6, 0, 60_000, 145_000 - 59_999, 60_000]]);

    // The same step again (an activity retry) and the same rows landed again: nothing double-counts.
    await run(a.aggregateStep, input);
    await landBatch(warehouse, 'shop', 0, 5, [
      { t: t0 + 61_000, service: 'api', status: 502, durationMs: 7 },
      { t: t0 + 1_000, service: 'api', status: 500, durationMs: 9 },
    ]);
    await run(a.aggregateStep, { ...input, stepMs: Date.now() });
    const again = await windows();
    expect(again.map((r) => [r.service, r.ws, r.requests, r.errors, r.p95, r.final, r.revision])).toEqual(rows.map((r) => [r.service, r.ws, r.requests, r.errors, r.p95, r.final, r.revision]));
    const [lateCount] = await (await warehouse.query({ query: 'SELECT count() AS n FROM late_events', format: 'JSONEachRow' })).json<{ n: string }>();
    expect(Number(lateCount!.n)).toBe(1);
  });
});

describe('windows derived from the batches\' event-time bounds', () => {
  it('give the same rows, late side output, finalized and final windows as the windows read from the landed rows', async () => {
    // Two pipelines with the same declarations and the same landed events, stepped with the same
    // watermarks: "bounded" passes each range's event-time bounds (the aggregator's way since the
    // step derives its windows from lineage), "scanned" does not (the step queries the rows).
    const a = createAggregationActivities({ warehouse, analytics });
    for (const p of ['bounded', 'scanned']) await run(a.ensureAggregationTables, { pipeline: p });
    const t0 = Date.parse('2026-05-01T00:00:00Z');
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const services = ['api', 'db', 'web'];
    const next: Record<number, number> = { 0: 0, 1: 0 };
    let maxT = t0;
    let watermark: number | null = null;
    for (let step = 0; step < 14; step++) {
      // Each step lands one batch per partition, mostly in order, a few out of order, some very late.
      const batches = [0, 1].map(() => Array.from({ length: 5 + Math.floor(rand() * 20) }, () => {
        const r = rand();
        const t = r < 0.1 ? maxT - 15_000 - Math.floor(rand() * 20_000) : r < 0.3 ? maxT - Math.floor(rand() * 6_000) : maxT + Math.floor(rand() * 1_500);
        maxT = Math.max(maxT, t);
        return { t, service: services[Math.floor(rand() * 3)]!, status: rand() < 0.3 ? 500 : 200, durationMs: Math.floor(rand() * 100) };
      }));
      const ranges = [];
      for (const [partition, events] of batches.entries()) {
        const from = next[partition]!;
        for (const pipeline of ['bounded', 'scanned']) await landBatch(warehouse, pipeline, partition, from, events);
        next[partition] = from + events.length;
        ranges.push({ partition, from, to: from + events.length, minEventTimeMs: Math.min(...events.map((e) => e.t)), maxEventTimeMs: Math.max(...events.map((e) => e.t)) });
      }
      const before = watermark;
      watermark = maxT - 2_000;
      // Processing time, as the aggregator passes it: after the landing of the step's rows (a
      // revision is a batch ingested after the step that first made its window final).
      const stepMs = Date.now();
      const bounded = await run(a.aggregateStep, { pipeline: 'bounded', ranges, watermarkBeforeMs: before, watermarkAfterMs: watermark, stepMs, returnFinalWindows: true });
      const scanned = await run(a.aggregateStep, { pipeline: 'scanned', ranges: ranges.map(({ partition, from, to }) => ({ partition, from, to })), watermarkBeforeMs: before, watermarkAfterMs: watermark, stepMs });
      expect(bounded.late).toEqual(scanned.late);
      expect(bounded.finalized).toEqual(scanned.finalized);
      for (const agg of ['tum', 'hop']) {
        const read = await run(a.readFinalWindows, { pipeline: 'scanned', aggregation: agg, afterWatermarkMs: before, uptoWatermarkMs: watermark });
        expect(bounded.finalWindows?.[agg]).toEqual(read.windows);
      }
      if (before !== null) expect(bounded.timingsMs.affected).toBeUndefined();
    }
    for (const agg of ['tum', 'hop']) {
      const table = (p: string) => warehouse.query({
        query: `SELECT toString(toUnixTimestamp64Milli(window_start)) AS ws, key_id, measures, events, final, revision, finalized_at_ms FROM {t:Identifier} FINAL ORDER BY window_start, key_id`,
        query_params: { t: `agg_${p}_${agg}` },
        format: 'JSONEachRow',
      }).then((r) => r.json());
      const [b, sc] = await Promise.all([table('bounded'), table('scanned')]);
      expect(b.length).toBeGreaterThan(20);
      expect(b).toEqual(sc);
    }
    const late = await (await warehouse.query({ query: "SELECT pipeline, count() AS n FROM late_events WHERE pipeline IN ('bounded', 'scanned') GROUP BY pipeline ORDER BY pipeline", format: 'JSONEachRow' })).json<{ pipeline: string; n: string }>();
    expect(late.map((l) => l.n)).toEqual([late[0]?.n, late[0]?.n]);
    expect(Number(late[0]?.n ?? 0)).toBeGreaterThan(0);
  });
});

describe('hopping windows in SQL equal the TypeScript assignment', () => {
  it('size 5 s, slide 2 s, random times around and before 1970', async () => {
    const a = createAggregationActivities({ warehouse, analytics });
    await run(a.ensureAggregationTables, { pipeline: 'hops' });
    // Deterministic pseudo-random times (LCG), spread over ±40 s around the epoch and around 1969-06-01.
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const times = [
      ...Array.from({ length: 150 }, () => Math.round(rand() * 80_000 - 40_000)),
      ...Array.from({ length: 100 }, () => Date.parse('1969-06-01T00:00:00Z') + Math.round(rand() * 30_000)),
      -1, 0, 1, -2000, -2001, 1999, 2000,
    ];
    const r = await landBatch(warehouse, 'hops', 0, 0, times.map((t) => ({ t })));
    await run(a.aggregateStep, { pipeline: 'hops', ranges: [r], watermarkBeforeMs: null, watermarkAfterMs: Date.parse('1970-01-02T00:00:00Z'), stepMs: Date.now() });
    const got = await (await warehouse.query({ query: "SELECT toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(toUnixTimestamp64Milli(window_end)) AS we, measures['n'] AS n FROM agg_hops_hop FINAL ORDER BY window_start", format: 'JSONEachRow' })).json<{ ws: string; we: string; n: number }>();
    const expected = new Map<number, number>();
    for (const t of times) for (const w of hoppingWindows(t, 5000, 2000)) expected.set(w.startMs, (expected.get(w.startMs) ?? 0) + 1);
    const want = [...expected].sort((x, y) => x[0] - y[0]).map(([s, n]) => [s, s + 5000, n]);
    expect(got.map((g) => [Number(g.ws), Number(g.we), g.n])).toEqual(want);
  });
});
