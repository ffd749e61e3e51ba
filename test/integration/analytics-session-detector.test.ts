/**
 * A window detector over a session aggregation, end to end on the real stack (Temporal dev
 * server, ClickHouse, a platform worker in this process, the `aggregator` workflow): events land,
 * session rows appear in ClickHouse, and a threshold detector on the session's event count judges
 * each session once the watermark passes its end plus the allowed lateness. It fires on the long
 * session (the injected incident) and not on the short ones before it, not before that point,
 * and resolves by itself after the next short session. Before, such a detector was refused at
 * start ("session windows have no regular series").
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertFingerprint, alertWorkflowId } from '../../schemas/alerting/alert.js';
import type { IncidentState } from '../../schemas/alerting/alert-incident.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import type { AggregatorProgress } from '../../workflows/analytics/aggregator.js';
import type { DetectorStates } from '../../schemas/analytics/evaluate.js';
import { connectTemporal, createWarehouse } from '../../workers/connections.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { landBatch, type TestEvent } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const db = uniqueId('aggsess');
const pipeline = `sess-${randomBytes(4).toString('hex')}`;
const taskQueue = uniqueId('aggsess');
const second = 1000;
const minute = 60_000;
const t0 = Date.parse('2026-02-04T09:00:00Z');
/** Sessions start 5 minutes apart: gap 1 min, allowed lateness 30 s, so each is judged when the next lands. */
const spacing = 5 * minute;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let temporal: Client;
let worker: RunningWorker;
const started: string[] = [];

const analytics = analyticsFileSchema.parse({
  pipelines: [{
    pipeline,
    fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' } },
    watermark: { outOfOrderness: '0s', idleness: '1h', allowedLateness: '30s' },
    pollInterval: '300ms',
    aggregations: [{
      name: 'visits', window: { type: 'session', gap: '1m', maxDuration: '1h' }, groupBy: ['service'],
      measures: [{ name: 'requests', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }],
    }],
    detectors: [{ name: 'long_session', aggregation: 'visits', measure: 'requests', method: { kind: 'threshold' }, levels: { warning: 20 }, clear: { below: 20, windows: 1 } }],
  }],
});

/** Session `s` of service api: `n` events 5 s apart starting at t0 + s * spacing. */
function session(s: number, n: number): TestEvent[] {
  return Array.from({ length: n }, (_, i) => ({ t: t0 + s * spacing + i * 5 * second, service: 'api', status: 200 }));
}

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

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('window detector over a session aggregation', () => {
  it('judges each session past its end plus the allowed lateness: fires on the long session, resolves after the next', { timeout: 180_000 }, async () => {
    const id = `aggregator-${pipeline}`;
    started.push(id);
    const handle = await temporal.workflow.start('aggregator', { taskQueue, workflowId: id, args: [{ pipeline }] });
    const progress = () => handle.query<AggregatorProgress>('progress');
    const alertId = alertWorkflowId(alertFingerprint('long_session', { pipeline, service: 'api' }));
    started.push(alertId);
    let offset = 0;
    const land = async (s: number, n: number) => {
      const r = await landBatch(warehouse, pipeline, 0, offset, session(s, n));
      offset = r.to;
      // The iteration that read this batch is done once the aggregator's cursor passed it.
      return waitFor(`session ${s} aggregated`, async () => {
        const p = await progress();
        return p.partitions['0']?.nextOffset === offset ? p : undefined;
      });
    };
    const open = async () => (await handle.query<DetectorStates>('detectors')).long_session?.api?.open ?? null;

    // Three short sessions (8 events): each is judged when the next lands; nothing fires.
    for (let s = 0; s < 3; s++) await land(s, 8);
    // The long session (30 events, 145 s) makes sessions 0-2 judgeable; it is not judged yet: the
    // watermark is at its last event, short of its end (+ 1 min gap) + 30 s allowed lateness.
    const atIncident = await land(3, 30);
    expect(atIncident.finalWindows).toBe(3);
    expect(await open()).toBeNull();
    // The next session moves the watermark past the long one's end + 30 s: it fires.
    await land(4, 8);
    const fired = await waitFor('long_session open', async () => {
      const s = await temporal.workflow.getHandle(alertId).query<IncidentState>('state');
      return s.timeline.some((e) => e.type === 'opened') ? s : undefined;
    });
    expect(fired.severity).toBe('warning');
    expect(fired.summary).toContain('window 09:15:00 UTC');
    expect(fired.timeline.filter((e) => e.type === 'opened')).toHaveLength(1);
    // The short session after it clears the rule (clear below 20 for 1 session): auto-resolved.
    await land(5, 8);
    const resolved = (await temporal.workflow.getHandle(alertId).result()) as IncidentState;
    expect(resolved.resolvedBy).toBe('detector:long_session');
    expect(resolved.timeline.map((e) => e.type).filter((t) => ['opened', 'fired_again', 'upgraded', 'resolved'].includes(t))).toEqual(['opened', 'resolved']);

    // The session rows in ClickHouse: one per session, the ones judged final.
    const rows = await (await warehouse.query({
      query: `SELECT toUnixTimestamp64Milli(window_start) AS ws, toUnixTimestamp64Milli(window_end) AS we, measures['requests'] AS n, final FROM {t:Identifier} FINAL WHERE is_deleted = 0 ORDER BY window_start`,
      query_params: { t: `agg_${pipeline.replace(/-/g, '_')}_visits` },
      format: 'JSONEachRow',
    })).json<{ ws: string; we: string; n: number; final: number }>();
    expect(rows.map((r) => [Number(r.ws) - t0, Number(r.we) - Number(r.ws), Number(r.n), r.final])).toEqual([
      [0, 35 * second + minute, 8, 1],
      [spacing, 35 * second + minute, 8, 1],
      [2 * spacing, 35 * second + minute, 8, 1],
      [3 * spacing, 145 * second + minute, 30, 1],
      [4 * spacing, 35 * second + minute, 8, 1],
      [5 * spacing, 35 * second + minute, 8, 0],
    ]);
    const judged = await waitFor('sessions 0-4 judged', async () => {
      const p = await progress();
      return p.finalWindows >= 5 ? p : undefined;
    });
    expect(judged.finalWindows).toBe(5);
    expect(judged.transitions).toBe(2);
  });
});
