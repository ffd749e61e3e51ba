/**
 * The provisional refresh (`provisionalRefresh`, session 11) on the real ClickHouse, differentially:
 * the same out-of-order batches (late ones included) go through `aggregateLanded` for two pipelines
 * that differ only in how often provisional windows are refreshed: `every` (`0s`, each step
 * recomputes every window its data touched, as before session 11) and `deferred` (`1h`: after the
 * first step, no provisional window is refreshed until the test makes the refresh due). After every
 * step both must hold the same final rows (measures, events, revision, first-final time) and
 * return the same windows to judge, the same late rows and the same watermark; once the refresh
 * runs, every row, provisional ones included, must be the same. Last, a step of an aggregator
 * started again from an empty state must not rewrite a final window's first-final time.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregationActivities, type ProvisionalOutcome, type ProvisionalState } from '../../activities/analytics/aggregate.js';
import { mergeSpans } from '../../schemas/analytics/step-windows.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { emptyWatermarkState, type WatermarkState } from '../../schemas/analytics/watermark.js';
import { createWarehouse } from '../../workers/connections.js';
import { landBatch, type TestEvent } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('prov');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
const mock = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => mock.run(fn, ...args) as Promise<R>;

const analytics = analyticsFileSchema.parse({
  pipelines: (['every', 'deferred'] as const).map((pipeline) => ({
    pipeline,
    fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' }, duration: { json: 'duration_ms', type: 'number' } },
    watermark: { outOfOrderness: '2s', idleness: '48h', allowedLateness: '6s' },
    provisionalRefresh: pipeline === 'every' ? '0s' : '1h',
    aggregations: [
      { name: 'tum', window: { type: 'tumbling', size: '5s' }, groupBy: ['service'], measures: [{ name: 'n', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }, { name: 'p95', kind: 'p95', field: 'duration' }] },
      { name: 'hop', window: { type: 'hopping', size: '7s', slide: '3s' }, groupBy: ['service'], measures: [{ name: 'n', kind: 'count' }, { name: 'slowest', kind: 'max', field: 'duration' }] },
    ],
    detectors: [
      { name: 'errs', aggregation: 'tum', measure: 'errors', method: { kind: 'threshold' }, levels: { warning: 3 }, clear: { below: 1 } },
      { name: 'hops', aggregation: 'hop', measure: 'n', method: { kind: 'threshold' }, levels: { warning: 1000 }, clear: { below: 1 } },
    ],
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

/** Every row of an aggregation's table (FINAL), without the pipeline and the row version. */
async function table(pipeline: string, agg: string, finalOnly: boolean): Promise<unknown[]> {
  return (await warehouse.query({
    query: `SELECT toString(toUnixTimestamp64Milli(window_start)) AS ws, key_id, measures, events, final, revision, finalized_at_ms
            FROM {t:Identifier} FINAL WHERE pipeline = {p:String} AND final >= {f:UInt8} ORDER BY window_start, key_id`,
    query_params: { t: `agg_${pipeline}_${agg}`, p: pipeline, f: finalOnly ? 1 : 0 },
    format: 'JSONEachRow',
  })).json();
}

describe('provisional refresh', () => {
  it('deferring provisional windows changes no final window, no judgement and no late row, and the refresh catches up', async () => {
    const a = createAggregationActivities({ warehouse, analytics });
    for (const p of ['every', 'deferred']) await run(a.ensureAggregationTables, { pipeline: p });
    // A seeded generator: two partitions, event time ~400 ms apart per partition, jittered by up to
    // 3 s (beyond the 2 s out-of-orderness), and now and then an event 10 s old (beyond lateness).
    let seed = 11;
    const rnd = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const t0 = Date.parse('2026-06-01T12:00:00Z');
    const next = [0, 0];
    const clock = [t0, t0 + 700];
    let wm: Record<string, WatermarkState> = { every: emptyWatermarkState(), deferred: emptyWatermarkState() };
    let provisional: ProvisionalState = { refreshedAtMs: null, pending: [] };
    const outcomes: ProvisionalOutcome[] = [];
    for (let step = 0; step < 24; step++) {
      const partition = step % 2;
      const events: TestEvent[] = Array.from({ length: 15 }, () => {
        clock[partition]! += 400;
        const old = rnd() < 0.05 ? 10_000 : 0;
        return { t: clock[partition]! - Math.floor(rnd() * 3000) - old, service: rnd() < 0.5 ? 'api' : 'web', status: rnd() < 0.3 ? 503 : 200, durationMs: Math.floor(rnd() * 900) };
      });
      for (const p of ['every', 'deferred']) await landBatch(warehouse, p, partition, next[partition]!, events);
      next[partition]! += events.length;
      const nowMs = Date.now();
      const every = await run(a.aggregateLanded, { pipeline: 'every', watermark: wm.every!, nowMs, provisional: { refreshedAtMs: null, pending: [] } });
      const deferred = await run(a.aggregateLanded, { pipeline: 'deferred', watermark: wm.deferred!, nowMs, provisional });
      // (Activity times differ: each pipeline's lineage rows were written at their own moment.)
      const marks = (w: WatermarkState) => ({ watermarkMs: w.watermarkMs, partitions: Object.fromEntries(Object.entries(w.partitions).map(([k, m]) => [k, [m.maxEventTimeMs, m.nextOffset]])) });
      expect(marks(deferred.watermark)).toEqual(marks(every.watermark));
      expect(deferred.step?.late).toEqual(every.step?.late);
      expect(deferred.step?.finalized).toEqual(every.step?.finalized);
      expect(deferred.step?.finalWindows).toEqual(every.step?.finalWindows);
      for (const agg of ['tum', 'hop']) expect(await table('deferred', agg, true)).toEqual(await table('every', agg, true));
      expect(every.step?.provisional).toBe('refreshed');
      const outcome = deferred.step?.provisional ?? 'unchanged';
      outcomes.push(outcome);
      if (outcome === 'refreshed') provisional = { refreshedAtMs: nowMs, pending: [] };
      else if (outcome === 'deferred') provisional = { ...provisional, pending: mergeSpans(provisional.pending, deferred.step?.deferredSpans ?? []) };
      wm = { every: every.watermark, deferred: deferred.watermark };
    }
    // The first step refreshed (never refreshed before); with 1 h between refreshes, later steps deferred.
    expect(outcomes[0]).toBe('refreshed');
    expect(outcomes.filter((o) => o === 'deferred').length).toBeGreaterThan(10);
    expect(provisional.pending.length).toBeGreaterThan(0);
    expect(await table('deferred', 'tum', false)).not.toEqual(await table('every', 'tum', false));
    // The refresh comes due: nothing new lands, and the pending refresh still runs.
    const due = await run(a.aggregateLanded, { pipeline: 'deferred', watermark: wm.deferred!, nowMs: Date.now() + 3_600_000, provisional });
    expect(due.batches).toBe(0);
    expect(due.step?.provisional).toBe('refreshed');
    for (const agg of ['tum', 'hop']) expect(await table('deferred', agg, false)).toEqual(await table('every', agg, false));
    // Nothing pending and nothing new: no step.
    const idle = await run(a.aggregateLanded, { pipeline: 'deferred', watermark: due.watermark, nowMs: Date.now() + 7_200_000, provisional: { refreshedAtMs: Date.now() + 3_600_000, pending: [] } });
    expect(idle.step).toBeNull();

    // An aggregator started again from an empty state (pipeline stop, then start) rebuilds its
    // watermark from the first batch, below windows the first run made final. Recomputing one of
    // them (here: made final again by a watermark move) keeps its first-final time and revisions,
    // because ensureAggregationTables reports the last final window (finalFloorMs).
    const { finalUptoMs } = await run(a.ensureAggregationTables, { pipeline: 'every' });
    expect(Object.keys(finalUptoMs).sort()).toEqual(['hop', 'tum']);
    const stored = await table('every', 'tum', true) as { ws: string }[];
    const end = Number(stored[0]!.ws) + 5000;
    const again = await run(a.aggregateStep, { pipeline: 'every', ranges: [], watermarkBeforeMs: end - 2, watermarkAfterMs: end - 1, stepMs: Date.now(), finalFloorMs: finalUptoMs, returnFinalWindows: true });
    expect(again.finalWindows?.tum?.length).toBeGreaterThan(0);
    expect(await table('every', 'tum', true)).toEqual(stored);
  }, 120_000);
});
