/**
 * The aggregator wakes on a landing report (`batchLanded` signal, sent by the partition consumer
 * after each landed batch) instead of waiting for its poll: with a poll interval of one hour, a
 * batch that moves the watermark past a window is aggregated and judged after the signal, and no
 * poll timer fired in between (read from the workflow's history, not from a clock). A malformed
 * signal argument is ignored with a warning, not a failed workflow.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { batchLandedSignal, type AggregatorProgress } from '../../workflows/analytics/aggregator.js';
import { connectTemporal, createWarehouse } from '../../workers/connections.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { landBatch } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('aggwake');
const pipeline = `wake-${randomBytes(4).toString('hex')}`;
const taskQueue = uniqueId('aggwake');
const minute = 60_000;
const t0 = Date.parse('2026-02-03T08:00:00Z');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let temporal: Client;
let worker: RunningWorker;
const started: string[] = [];

const analytics = analyticsFileSchema.parse({
  pipelines: [{
    pipeline,
    fields: { service: { json: 'service' } },
    watermark: { outOfOrderness: '0s', idleness: '1h', allowedLateness: '0s' },
    pollInterval: '1h',
    aggregations: [{ name: 'svc', window: { type: 'tumbling', size: '1m' }, groupBy: ['service'], measures: [{ name: 'requests', kind: 'count' }] }],
    detectors: [{ name: 'busy', aggregation: 'svc', measure: 'requests', method: { kind: 'threshold' }, levels: { warning: 1000 }, clear: { below: 1 } }],
  }],
});

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, db);
  await migrate(warehouse, db, { admin });
  temporal = await connectTemporal(config, endpoints);
  worker = await startWorker({ config, endpoints, database: db, taskQueue, analytics, skipMigrations: true, log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m: string) => console.error(m) } });
});

afterAll(async () => {
  for (const id of started) await temporal?.workflow.getHandle(id).terminate('test over').catch(() => undefined);
  await worker?.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('aggregator wakes on batchLanded', () => {
  it('judges the window a reported landing made final without waiting for its one-hour poll', async () => {
    const id = `aggregator-${pipeline}`;
    started.push(id);
    const handle = await temporal.workflow.start('aggregator', { taskQueue, workflowId: id, args: [{ pipeline }] });
    const progress = () => handle.query<AggregatorProgress>('progress');
    const events = (w: number) => Array.from({ length: 5 }, (_, i) => ({ t: t0 + w * minute + i * 1000, service: 'api' }));
    // The first iteration runs at start and finds nothing; then the aggregator waits (1 h poll).
    await waitFor('first iteration', async () => (await handle.describe()).historyLength > 10 && (await progress()));
    const r1 = await landBatch(warehouse, pipeline, 0, 0, events(0));
    await handle.signal(batchLandedSignal, { partition: 0, from: r1.from, to: r1.to });
    const first = await waitFor('window 0 landed seen', async () => { const p = await progress(); return p.partitions['0']?.nextOffset === r1.to ? p : undefined; });
    expect(first.finalWindows).toBe(0);
    // A malformed report is only a nudge with a warning: the workflow goes on.
    await handle.signal(batchLandedSignal, { partition: 'zero' } as never);
    const r2 = await landBatch(warehouse, pipeline, 0, r1.to, events(1));
    await handle.signal(batchLandedSignal, { partition: 0, from: r2.from, to: r2.to });
    const judged = await waitFor('window 0 final and judged', async () => { const p = await progress(); return p.finalWindows >= 1 ? p : undefined; });
    expect(judged.watermarkMs).toBe(t0 + minute + 4000);
    const read = async () => (await warehouse.query({ query: `SELECT final, measures['requests'] AS n FROM {t:Identifier} FINAL ORDER BY window_start`, query_params: { t: `agg_${pipeline.replace(/-/g, '_')}_svc` }, format: 'JSONEachRow' })).json<{ final: number; n: number }>();
    expect((await read())[0]).toEqual({ final: 1, n: 5 });
    // The step that made window 0 final left window 1's provisional row to the refresh, which runs
    // within provisionalRefresh (1 s) although nothing else lands and the poll is an hour away.
    const rows = await waitFor('window 1 provisional', async () => { const r = await read(); return r.length === 2 ? r : undefined; }, 10_000);
    expect(rows).toEqual([{ final: 1, n: 5 }, { final: 0, n: 5 }]);
    expect((await progress()).provisional.pending).toEqual([]);
    const history = await handle.fetchHistory();
    const types = (history.events ?? []).map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes')));
    // No timer of the one-hour poll fired: only the refresh's, of at most provisionalRefresh.
    const fired = new Set((history.events ?? []).filter((e) => e.timerFiredEventAttributes).map((e) => String(e.timerFiredEventAttributes!.startedEventId)));
    const firedTimeouts = (history.events ?? []).filter((e) => e.timerStartedEventAttributes && fired.has(String(e.eventId))).map((e) => Number(e.timerStartedEventAttributes!.startToFireTimeout?.seconds ?? 0));
    expect(firedTimeouts.every((s) => s <= 1)).toBe(true);
    expect(types.filter((t) => t === 'workflowExecutionSignaledEventAttributes').length).toBe(3);
    expect((await handle.describe()).status.name).toBe('RUNNING');
  });
});
