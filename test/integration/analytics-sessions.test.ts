/**
 * Session-window aggregations on the real ClickHouse against the pure reference
 * (`sessionize` in schemas/analytics/windows.ts, property-tested on its own): events landed in
 * shuffled order over several steps give, after every step, exactly the reference's sessions per
 * key with their measures; two sessions bridged by a late-arriving event merge into one live row;
 * events exactly one gap apart share a session and one millisecond more splits; maxDuration
 * splits a continuous run; a retried step and re-landed rows change nothing; an event beyond the
 * allowed lateness goes to late_events and changes no session.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregationActivities } from '../../activities/analytics/aggregate.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { analyticsFileSchema, type AnalyticsFile } from '../../schemas/analytics/declarations.js';
import { sessionize } from '../../schemas/analytics/windows.js';
import { createWarehouse } from '../../workers/connections.js';
import { landBatch, type TestEvent } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('sess');
const gap = 10_000;
const maxDuration = 60_000;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
const mock = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => mock.run(fn, ...args) as Promise<R>;

const analytics: AnalyticsFile = analyticsFileSchema.parse({
  pipelines: ['sess', 'merge'].map((pipeline) => ({
    pipeline,
    fields: { service: { json: 'service' }, duration: { json: 'duration_ms', type: 'number' } },
    watermark: { outOfOrderness: '0s', idleness: '1m', allowedLateness: '10m' },
    aggregations: [{
      name: 'visits',
      window: { type: 'session', gap: '10s', maxDuration: '1m' },
      groupBy: ['service'],
      measures: [
        { name: 'n', kind: 'count' },
        { name: 'total', kind: 'sum', field: 'duration' },
        { name: 'slow', kind: 'count', where: [{ field: 'duration', op: '>=', value: 100 }] },
        { name: 'longest', kind: 'max', field: 'duration' },
      ],
    }],
  })),
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

interface Stored { key: string; ws: number; we: number; n: number; total: number; slow: number; longest: number; final: number }
async function stored(pipeline: string): Promise<Stored[]> {
  const rows = await (await warehouse.query({
    query: `SELECT key_id, toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(toUnixTimestamp64Milli(window_end)) AS we, measures, final
            FROM {t:Identifier} FINAL ORDER BY key_id, window_start`,
    query_params: { t: `agg_${pipeline}_visits` },
    format: 'JSONEachRow',
  })).json<{ key_id: string; ws: string; we: string; measures: Record<string, number>; final: number }>();
  return rows.map((r) => ({ key: r.key_id, ws: Number(r.ws), we: Number(r.we), n: r.measures.n!, total: r.measures.total!, slow: r.measures.slow!, longest: r.measures.longest!, final: r.final }));
}

/** The reference: sessionize per key, measures computed here, final when the watermark passed the end. */
function reference(events: TestEvent[], watermark: number): Stored[] {
  const out: Stored[] = [];
  for (const key of [...new Set(events.map((e) => e.service!))].sort()) {
    const mine = events.filter((e) => e.service === key);
    for (const s of sessionize(mine.map((e) => e.t), gap, maxDuration)) {
      const inSession = mine.filter((e) => e.t >= s.startMs && e.t <= s.times[s.times.length - 1]!);
      const d = inSession.map((e) => e.durationMs!);
      out.push({ key, ws: s.startMs, we: s.endMs, n: d.length, total: d.reduce((x, y) => x + y, 0), slow: d.filter((x) => x >= 100).length, longest: Math.max(...d), final: s.endMs - 1 <= watermark ? 1 : 0 });
    }
  }
  return out;
}

describe('session windows in ClickHouse', () => {
  it('equal the reference sessions after every step of a shuffled stream; retries and re-landing change nothing', async () => {
    const a = createAggregationActivities({ warehouse, analytics });
    await run(a.ensureAggregationTables, { pipeline: 'sess' });
    const t0 = Date.parse('2026-04-01T12:00:00Z');
    let seed = 99;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const events: TestEvent[] = [];
    // api: exact-gap neighbours (share), gap + 1 ms (split), and a continuous run every 5 s for
    // 150 s (maxDuration splits it); web: sparse visits with random gaps around the gap.
    for (const t of [0, 10_000, 20_000, 30_001, 40_001]) events.push({ t: t0 + t, service: 'api' });
    for (let t = 100_000; t <= 250_000; t += 5_000) events.push({ t: t0 + t, service: 'api' });
    let t = 0;
    for (let i = 0; i < 40; i++) {
      t += 2_000 + Math.floor(rand() * 14_000);
      events.push({ t: t0 + t, service: 'web' });
    }
    for (const e of events) e.durationMs = Math.floor(rand() * 200);
    // Shuffled arrival, in 8 batches over 2 partitions.
    const shuffled = [...events].sort(() => rand() - 0.5);
    const next = [0, 0];
    const landed: TestEvent[] = [];
    let watermark: number | null = null;
    let last: Parameters<typeof a.aggregateStep>[0] | undefined;
    for (let b = 0; b < 8; b++) {
      const part = b % 2;
      const batch = shuffled.slice(b * Math.ceil(shuffled.length / 8), (b + 1) * Math.ceil(shuffled.length / 8));
      if (batch.length === 0) continue;
      const r = await landBatch(warehouse, 'sess', part, next[part]!, batch);
      next[part] = r.to;
      landed.push(...batch);
      const before = watermark;
      watermark = Math.max(watermark ?? -Infinity, ...landed.map((e) => e.t)) - 30_000;
      last = { pipeline: 'sess', ranges: [r], watermarkBeforeMs: before, watermarkAfterMs: watermark, stepMs: t0 + b };
      await run(a.aggregateStep, last);
      expect(await stored('sess')).toEqual(reference(landed, watermark));
    }
    const all = await stored('sess');
    const api = all.filter((s) => s.key === 'api');
    // 0, 10 s, 20 s share one session (exactly one gap apart); 30.001 s starts another.
    expect(api.slice(0, 2).map((s) => [s.ws - t0, s.we - t0, s.n])).toEqual([[0, 30_000, 3], [30_001, 50_001, 2]]);
    // The 150 s run is split by maxDuration (60 s): starts at 100 s, 165 s, 230 s.
    expect(api.slice(2).map((s) => s.ws - t0)).toEqual([100_000, 165_000, 230_000]);

    // A retried step and the same rows landed again: identical sessions.
    await run(a.aggregateStep, last!);
    await landBatch(warehouse, 'sess', 0, 0, shuffled.slice(0, Math.ceil(shuffled.length / 8)));
    await run(a.aggregateStep, { ...last!, ranges: [{ partition: 0, from: 0, to: Math.ceil(shuffled.length / 8) }], watermarkBeforeMs: watermark, stepMs: t0 + 100 });
    expect(await stored('sess')).toEqual(all);

    // An event beyond the allowed lateness (10 min): late_events, no session changes.
    const wm = watermark!;
    const wmFar = t0 + 2_000_000;
    const far = await landBatch(warehouse, 'sess', 1, next[1]!, [{ t: wmFar, service: 'web', durationMs: 1 }]);
    await run(a.aggregateStep, { pipeline: 'sess', ranges: [far], watermarkBeforeMs: wm, watermarkAfterMs: wmFar, stepMs: t0 + 200 });
    const lateOne = await landBatch(warehouse, 'sess', 1, far.to, [{ t: t0 + 5_000, service: 'api', durationMs: 999 }]);
    const step = await run(a.aggregateStep, { pipeline: 'sess', ranges: [lateOne], watermarkBeforeMs: wmFar, watermarkAfterMs: wmFar, stepMs: t0 + 300 });
    expect(step.late).toEqual({ visits: 1 });
    const after = (await stored('sess')).filter((s) => s.key === 'api');
    expect(after).toEqual(all.filter((s) => s.key === 'api').map((s) => ({ ...s, final: 1 })));
  });

  it('an out-of-order event that bridges two sessions merges them into one live row', async () => {
    const a = createAggregationActivities({ warehouse, analytics });
    await run(a.ensureAggregationTables, { pipeline: 'merge' });
    const t0 = Date.parse('2026-04-02T00:00:00Z');
    const r1 = await landBatch(warehouse, 'merge', 0, 0, [{ t: t0, service: 's', durationMs: 1 }, { t: t0 + 18_000, service: 's', durationMs: 2 }]);
    await run(a.aggregateStep, { pipeline: 'merge', ranges: [r1], watermarkBeforeMs: null, watermarkAfterMs: t0, stepMs: 1 });
    expect((await stored('merge')).map((s) => [s.ws - t0, s.we - t0, s.n])).toEqual([[0, 10_000, 1], [18_000, 28_000, 1]]);
    const r2 = await landBatch(warehouse, 'merge', 0, 2, [{ t: t0 + 9_000, service: 's', durationMs: 4 }]);
    await run(a.aggregateStep, { pipeline: 'merge', ranges: [r2], watermarkBeforeMs: t0, watermarkAfterMs: t0, stepMs: 2 });
    expect((await stored('merge')).map((s) => [s.ws - t0, s.we - t0, s.n, s.total])).toEqual([[0, 28_000, 3, 7]]);
    // The replaced sessions are tombstones: without FINAL they are still there, marked deleted.
    const raw = await (await warehouse.query({ query: 'SELECT count() AS n, sum(is_deleted) AS deleted FROM agg_merge_visits', format: 'JSONEachRow' })).json<{ n: string; deleted: string }>();
    expect(Number(raw[0]!.deleted)).toBeGreaterThanOrEqual(2);
  });
});
