/**
 * Detector state advances only once its signals went out: when delivering an iteration's
 * transitions fails, the aggregator keeps the state from before that iteration and redoes it.
 * Real stack (Temporal dev server, ClickHouse, the platform's workflows and activities in a worker
 * built here), with one injected fault: the first `signalDetections` (a local activity since
 * `aggregator-signals-from-local-activity`) fails non-retryably. The incident opens exactly once,
 * for the right window, the transition and the judged windows are counted once, and the detector
 * goes on from there (the next clean window resolves it).
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { alertFingerprint, alertWorkflowId } from '../../schemas/alerting/alert.js';
import type { IncidentState } from '../../schemas/alerting/alert-incident.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import type { DetectorStates } from '../../schemas/analytics/evaluate.js';
import type { AggregatorProgress } from '../../workflows/analytics/aggregator.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { bundlePlatformWorkflows, loadAlerting } from '../../workers/worker.js';
import { landBatch, type TestEvent } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('aggrb');
const pipeline = `rb-${randomBytes(4).toString('hex')}`;
const taskQueue = uniqueId('aggrb');
const minute = 60_000;
const t0 = Date.parse('2026-02-05T08:00:00Z');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let temporal: Client;
let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
const started: string[] = [];
const calls: { transitions: string[]; failed: boolean }[] = [];

const analytics = analyticsFileSchema.parse({
  pipelines: [{
    pipeline,
    fields: { service: { json: 'service' } },
    watermark: { outOfOrderness: '0s', idleness: '1h', allowedLateness: '0s' },
    pollInterval: '300ms',
    aggregations: [{ name: 'svc', window: { type: 'tumbling', size: '1m' }, groupBy: ['service'], measures: [{ name: 'requests', kind: 'count' }] }],
    detectors: [{ name: 'busy', aggregation: 'svc', measure: 'requests', method: { kind: 'threshold' }, levels: { warning: 10 }, clear: { below: 5, windows: 1 } }],
  }],
});

const events = (w: number, n: number): TestEvent[] => Array.from({ length: n }, (_, i) => ({ t: t0 + w * minute + i * 1000, service: 'api' }));

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, db);
  await migrate(warehouse, db, { admin });
  temporal = await connectTemporal(config, endpoints);
  const real = createActivities({
    kafka: createKafka(config, endpoints, `-${taskQueue}`),
    warehouse,
    temporal,
    taskQueue,
    processorVersion: 'test',
    alerting: await loadAlerting(config),
    analytics,
  });
  let first = true;
  const signalDetections: typeof real.signalDetections = async (input) => {
    const transitions = input.events.map((e) => `${e.transition}@${new Date(e.windowStartMs).toISOString().slice(11, 16)}`);
    if (first) {
      first = false;
      calls.push({ transitions, failed: true });
      throw ApplicationFailure.nonRetryable('injected: the alert workflows could not be reached', 'invalid_input');
    }
    calls.push({ transitions, failed: false });
    return real.signalDetections(input);
  };
  connection = await NativeConnection.connect({ address: endpoints.temporalAddress });
  worker = await Worker.create({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, workflowBundle: await bundlePlatformWorkflows(), activities: { ...real, signalDetections } });
  running = worker.run();
}, 120_000);

afterAll(async () => {
  for (const id of started) await temporal?.workflow.getHandle(id).terminate('test over').catch(() => undefined);
  worker?.shutdown();
  await running;
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close(), connection?.close()]);
});

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('aggregator detector delivery failure', () => {
  it('a failed delivery leaves the detector state where it was and the iteration is redone: one incident, counted once, and the detector goes on', { timeout: 180_000 }, async () => {
    const id = `aggregator-${pipeline}`;
    started.push(id);
    const handle = await temporal.workflow.start('aggregator', { taskQueue, workflowId: id, args: [{ pipeline }] });
    const alertId = alertWorkflowId(alertFingerprint('busy', { pipeline, service: 'api' }));
    started.push(alertId);
    let offset = 0;
    for (const [w, n] of [[0, 3], [1, 20], [2, 3]] as const) offset = (await landBatch(warehouse, pipeline, 0, offset, events(w, n))).to;
    // Window 1 (20 requests) is final once window 2 landed: its first delivery fails, the redo fires.
    const opened = await waitFor('busy open', async () => {
      const s = await temporal.workflow.getHandle(alertId).query<IncidentState>('state');
      return s.timeline.some((e) => e.type === 'opened') ? s : undefined;
    });
    expect(opened.summary).toContain('window 08:01:00 UTC');
    expect(calls[0]).toEqual({ transitions: ['fire@08:01'], failed: true });
    expect(calls[1]).toEqual({ transitions: ['fire@08:01'], failed: false });
    const afterFire = await waitFor('windows 0-1 judged and delivered', async () => {
      const p = await handle.query<AggregatorProgress>('progress');
      return p.finalWindows >= 2 && p.transitions >= 1 ? p : undefined;
    });
    expect(afterFire).toMatchObject({ finalWindows: 2, transitions: 1 });
    expect((await handle.query<DetectorStates>('detectors')).busy?.api?.open).toBe('warning');

    // The detector continues from the delivered state: window 2 (3 requests) clears it.
    offset = (await landBatch(warehouse, pipeline, 0, offset, events(3, 3))).to;
    const resolved = (await temporal.workflow.getHandle(alertId).result()) as IncidentState;
    expect(resolved.resolvedBy).toBe('detector:busy');
    expect(resolved.timeline.map((e) => e.type).filter((t) => ['opened', 'fired_again', 'upgraded', 'resolved'].includes(t))).toEqual(['opened', 'resolved']);
    const end = await waitFor('window 2 judged', async () => {
      const p = await handle.query<AggregatorProgress>('progress');
      return p.finalWindows >= 3 && p.transitions >= 2 ? p : undefined;
    });
    expect(end).toMatchObject({ finalWindows: 3, transitions: 2, open: {} });
    expect(calls.map((c) => c.transitions)).toEqual([['fire@08:01'], ['fire@08:01'], ['resolve@08:02']]);
  });
});
