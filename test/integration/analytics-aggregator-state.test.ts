/**
 * The aggregator's state on the real stack (Temporal dev server, ClickHouse, platform workers in
 * this process):
 * - detector state (EWMA history, MAD baselines, `for` and clear counters, open incidents) is the
 *   same whether the aggregator continues-as-new after every iteration or not, across a worker
 *   restart in the middle: two pipelines with the same declarations and the same landed data, one
 *   with `iterationsPerRun: 1`, compared with each other (differential) and with the pure detector
 *   code run over the stored final windows;
 * - late events decided by the workflow's own watermark: after the watermark but within the
 *   allowed lateness they revise the window (a new revision, counts updated, still final); beyond
 *   it they land in `late_events` with the window they missed, and the window does not change.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { aggregationTable, analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { evaluateWindows, type DetectorStates } from '../../schemas/analytics/evaluate.js';
import type { AggregatorProgress } from '../../workflows/analytics/aggregator.js';
import { connectTemporal, createWarehouse } from '../../workers/connections.js';
import { bundlePlatformWorkflows, startWorker, type RunningWorker } from '../../workers/worker.js';
import { landBatch, type TestEvent } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('aggstate');
const suffix = randomBytes(3).toString('hex');
const everyIteration = `can-${suffix}`;
const neverInTest = `one-${suffix}`;
const lateness = `late-${suffix}`;
const taskQueue = uniqueId('aggstate');
const minute = 60_000;
const t0 = Date.parse('2026-02-03T09:00:00Z');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let temporal: Client;
let worker: RunningWorker | undefined;
let bundle: WorkflowBundle;
const started: string[] = [];

const detectorPipeline = (pipeline: string) => ({
  pipeline,
  fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' }, duration: { json: 'duration_ms', type: 'number' } },
  watermark: { outOfOrderness: '0s', idleness: '10m', allowedLateness: '0s' },
  pollInterval: '200ms',
  aggregations: [{
    name: 'svc', window: { type: 'tumbling', size: '1m' }, groupBy: ['service'],
    measures: [{ name: 'requests', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }, { name: 'p95', kind: 'p95', field: 'duration' }],
  }],
  detectors: [
    { name: 'errors_high', aggregation: 'svc', measure: 'errors', ratioOf: 'requests', method: { kind: 'threshold' }, levels: { warning: 0.2, critical: 0.9 }, for: 2, clear: { below: 0.1, windows: 3 } },
    { name: 'latency_ewma', aggregation: 'svc', measure: 'p95', method: { kind: 'ewma', alpha: 0.3, minHistory: 4 }, levels: { warning: 4 }, clear: { below: 2, windows: 2 } },
    { name: 'traffic_mad', aggregation: 'svc', measure: 'requests', method: { kind: 'mad', history: 8, minHistory: 4 }, direction: 'both', levels: { warning: 50 }, clear: { below: 3, windows: 2 } },
  ],
});

const analytics = analyticsFileSchema.parse({
  pipelines: [
    detectorPipeline(everyIteration),
    detectorPipeline(neverInTest),
    {
      pipeline: lateness,
      fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' } },
      watermark: { outOfOrderness: '0s', idleness: '10m', allowedLateness: '2m' },
      pollInterval: '200ms',
      aggregations: [{ name: 'svc', window: { type: 'tumbling', size: '1m' }, groupBy: ['service'], measures: [{ name: 'requests', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }] }],
      detectors: [],
    },
  ],
});

/** 10 + (w % 3) events in window `w`, `errors` of them 503, latencies varying with the window. */
function window(w: number, errors: number): TestEvent[] {
  const n = 10 + (w % 3);
  return Array.from({ length: n }, (_, i) => ({ t: t0 + w * minute + i * 5000 + 11, service: 'api', status: i < errors ? 503 : 200, durationMs: 20 + ((w * 7) % 5) + i }));
}

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m: string) => console.error(m) };
const start = async () => {
  worker = await startWorker({ config, endpoints: stackEndpoints(), database: db, taskQueue, analytics, workflowBundle: bundle, skipMigrations: true, log: quiet });
};

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, db);
  await migrate(warehouse, db, { admin });
  temporal = await connectTemporal(config, endpoints);
  bundle = await bundlePlatformWorkflows();
  await start();
}, 180_000);

afterAll(async () => {
  for (const id of started) await temporal?.workflow.getHandle(id).terminate('test over').catch(() => undefined);
  await worker?.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await check().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('aggregator state', () => {
  it('detector state is the same with continue-as-new after every iteration and a worker restart', async () => {
    const handles = await Promise.all(
      [[everyIteration, 1], [neverInTest, 100_000]].map(async ([pipeline, iterationsPerRun]) => {
        const id = `aggregator-${pipeline}`;
        started.push(id);
        return temporal.workflow.start('aggregator', { taskQueue, workflowId: id, args: [{ pipeline, iterationsPerRun }] });
      }),
    );
    const firstRun = handles[0]!.firstExecutionRunId;
    const offsets: Record<string, number> = { [everyIteration]: 0, [neverInTest]: 0 };
    // Clean windows 0-11, an error incident from 12 on (opens at 13 with for = 2, stays open).
    const errorsIn = (w: number) => (w >= 12 ? 6 : 0);
    const land = async (w: number) => {
      for (const p of [everyIteration, neverInTest]) offsets[p] = (await landBatch(warehouse, p, 0, offsets[p]!, window(w, errorsIn(w)))).to;
    };
    const judgedThrough = async (w: number) => {
      for (const h of handles) {
        // (throws while a fresh run has not registered its handlers yet; waitFor asks again)
        const p = await h.query<AggregatorProgress>('progress');
        if (p.watermarkMs === null || p.watermarkMs < t0 + (w + 1) * minute - 1) return false;
      }
      return true;
    };
    for (let w = 0; w < 8; w++) {
      await land(w);
      // Several iterations per window, so the every-iteration aggregator continues-as-new between them.
      await waitFor(`window ${w - 1} judged`, () => judgedThrough(w - 1));
    }
    // A worker restart in the middle: the next worker replays nothing; state comes from history.
    await worker!.shutdown();
    worker = undefined;
    await start();
    for (let w = 8; w < 16; w++) {
      await land(w);
      await waitFor(`window ${w - 1} judged`, () => judgedThrough(w - 1));
    }

    // The every-iteration aggregator really continued-as-new, many times.
    const runs: string[] = [];
    for await (const r of temporal.workflow.list({ query: `WorkflowId = 'aggregator-${everyIteration}'` })) runs.push(r.runId);
    expect(runs.length).toBeGreaterThan(15);
    expect((await handles[0]!.describe()).runId).not.toBe(firstRun);

    // (A run that has just continued-as-new answers once its first task registered the handlers.)
    const ask = <T,>(name: string) => Promise.all(handles.map((h) => waitFor(`${h.workflowId} ${name}`, () => temporal.workflow.getHandle(h.workflowId).query<T>(name))));
    const [a, b] = await ask<DetectorStates>('detectors');
    const [pa, pb] = await ask<AggregatorProgress>('progress');
    // Windows 0-14 are final (window 15's end is past the watermark).
    expect(pa!.finalWindows).toBe(15);
    expect(pb!.finalWindows).toBe(15);
    expect(a).toEqual(b);
    // The state carried is the real thing: EWMA warmed up, a MAD baseline, an open incident.
    const api = (s: DetectorStates, d: string) => s[d]!['api']!;
    expect(api(a!, 'latency_ewma').ewma).not.toBeNull();
    expect(api(a!, 'traffic_mad').recent.length).toBeGreaterThanOrEqual(8);
    expect(api(a!, 'errors_high').open).toBe('warning');
    expect(pa!.open.errors_high).toEqual({ api: 'warning' });
    expect(pa!.open).toEqual(pb!.open);
    expect(pa!.transitions).toBe(pb!.transitions);

    // And the pure detector code over the stored final windows, in one go, gives the same state.
    const table = aggregationTable(everyIteration, analytics.pipelines[0]!.aggregations[0]!);
    const stored = await (await warehouse.query({
      query: `SELECT key_id, keys, toUnixTimestamp64Milli(window_start) AS ws, toUnixTimestamp64Milli(window_end) AS we, measures
              FROM {table:Identifier} FINAL WHERE pipeline = {p:String} AND final = 1 ORDER BY window_start, key_id`,
      query_params: { table, p: everyIteration },
      format: 'JSONEachRow',
    })).json<{ key_id: string; keys: Record<string, string>; ws: string; we: string; measures: Record<string, number> }>();
    expect(stored).toHaveLength(15);
    const reference = evaluateWindows(analytics.pipelines[0]!, 'svc', stored.map((r) => ({ key: r.key_id, keys: r.keys, startMs: Number(r.ws), endMs: Number(r.we), measures: r.measures })), {});
    expect(a).toEqual(reference.states);
  }, 300_000);

  it('late events: within the allowed lateness they revise the window, beyond it they go to late_events', async () => {
    const id = `aggregator-${lateness}`;
    started.push(id);
    const handle = await temporal.workflow.start('aggregator', { taskQueue, workflowId: id, args: [{ pipeline: lateness }] });
    const progress = () => handle.query<AggregatorProgress>('progress');
    let offset = 0;
    for (let w = 0; w <= 5; w++) offset = (await landBatch(warehouse, lateness, 0, offset, window(w, 0))).to;
    const table = aggregationTable(lateness, analytics.pipelines[2]!.aggregations[0]!);
    const read = async () =>
      (await (await warehouse.query({
        query: `SELECT toUnixTimestamp64Milli(window_start) - {t0:Int64} AS ws, measures['requests'] AS requests, measures['errors'] AS errors, final, revision
                FROM {table:Identifier} FINAL WHERE pipeline = {p:String} ORDER BY window_start`,
        query_params: { table, p: lateness, t0 },
        format: 'JSONEachRow',
      })).json<{ ws: string; requests: number; errors: number; final: number; revision: number }>()).map((r) => ({ ws: Number(r.ws) / minute, requests: Number(r.requests), errors: Number(r.errors), final: Number(r.final), revision: Number(r.revision) }));
    // The watermark is the max event time (window 5's last event): windows 0-4 final, 5 provisional
    // (its row written by the provisional refresh, within provisionalRefresh of the step).
    const watermark = (await waitFor('windows 0-4 final and 5 provisional', async () => {
      const p = await progress();
      const rows = await read();
      return p.partitions['0']?.nextOffset === offset && rows.filter((r) => r.final === 1).length === 5 && rows.length === 6 ? p : undefined;
    })).watermarkMs!;
    expect(watermark).toBe(Math.max(...window(5, 0).map((e) => e.t)));
    const before = await read();
    expect(before.map((r) => [r.ws, r.final, r.revision])).toEqual([[0, 1, 0], [1, 1, 0], [2, 1, 0], [3, 1, 0], [4, 1, 0], [5, 0, 0]]);

    // Window 3 ends at 09:04: its end - 1 + 2 min lateness is after the watermark (09:05:45): revised.
    // Window 1 ends at 09:02: end - 1 + 2 min = 09:03:59.999 is before it: too late, side output.
    const late: TestEvent[] = [
      { t: t0 + 3 * minute + 30_000, service: 'api', status: 503 },
      { t: t0 + 3 * minute + 31_000, service: 'api', status: 200 },
      { t: t0 + 1 * minute + 30_000, service: 'api', status: 503 },
    ];
    offset = (await landBatch(warehouse, lateness, 0, offset, late)).to;
    await waitFor('the late batch read', async () => (await progress()).partitions['0']?.nextOffset === offset);
    const after = await waitFor('window 3 revised', async () => {
      const rows = await read();
      return rows.find((r) => r.ws === 3)?.revision === 1 ? rows : undefined;
    });
    const w = (rows: typeof before, ws: number) => rows.find((r) => r.ws === ws)!;
    expect(w(after, 3)).toEqual({ ...w(before, 3), requests: w(before, 3).requests + 2, errors: 1, revision: 1 });
    expect(w(after, 1)).toEqual(w(before, 1));
    for (const ws of [0, 2, 4, 5]) expect(w(after, ws)).toEqual(w(before, ws));
    // The watermark did not move back for the old events.
    expect((await progress()).watermarkMs).toBe(watermark);
    const side = await (await warehouse.query({
      query: `SELECT offset, toUnixTimestamp64Milli(event_time) - {t0:Int64} AS et, toUnixTimestamp64Milli(window_start) - {t0:Int64} AS ws, toUnixTimestamp64Milli(window_end) - {t0:Int64} AS we, late_by_ms, allowed_lateness_ms
              FROM late_events WHERE pipeline = {p:String}`,
      query_params: { p: lateness, t0 },
      format: 'JSONEachRow',
    })).json<Record<string, string | number>>();
    expect(side.map((r) => [Number(r.offset), Number(r.et), Number(r.ws), Number(r.we), Number(r.late_by_ms), Number(r.allowed_lateness_ms)])).toEqual([
      [offset - 1, 90_000, minute, 2 * minute, watermark - (t0 + 2 * minute - 1), 2 * minute],
    ]);
  }, 180_000);
});
