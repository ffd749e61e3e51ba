/**
 * Migrations, rollups and the detector on the real ClickHouse and Temporal: two processes'
 * worth of concurrent migrations converge; a recomputed rollup window replaces the previous
 * computation; the detector fires once per (service, window) above the threshold, never for a
 * window under the minimum request count, and the alert workflow exists under its fingerprint id.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toClickHouseTime } from '../../activities/ingest/ingest.js';
import { createRollupActivities, errorRateDetector } from '../../activities/analytics/rollup.js';
import { loadMigrations, migrate } from '../../infra/clickhouse/migrate.js';
import { alertFingerprint, alertWorkflowId, type AlertFiring } from '../../schemas/alerting/alert.js';
import { connectTemporal, createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
const pipelineId = 'rollup-test';
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let temporal: Client;
const mock = new MockActivityEnvironment();
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => mock.run(fn, ...args) as Promise<R>;
const firedIds: string[] = [];

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

/** Inserts request events for one window: `errors` of `total` fail with 503. */
async function insertWindow(windowStart: number, service: string, total: number, errors: number, offsetBase: number): Promise<void> {
  await warehouse.insert({
    table: 'events',
    format: 'JSONEachRow',
    values: Array.from({ length: total }, (_, i) => ({
      pipeline: pipelineId,
      batch_id: `${pipelineId}/t/0/${offsetBase}-${offsetBase + total}`,
      topic: 't',
      partition: 0,
      offset: offsetBase + i,
      event_id: `00000000-0000-4000-8000-${String(offsetBase + i).padStart(12, '0')}`,
      subject: 'request-telemetry',
      contract_version: 1,
      event_key: 'tenant-001',
      event_time: toClickHouseTime(windowStart + (i * 50_000) / total),
      data: JSON.stringify({ service, route: i % 2 ? '/a' : '/b', method: 'GET', status: i < errors ? 503 : 200, duration_ms: 10 + i, region: 'eu-west-1', tenant_id: 't', bytes_in: 0, bytes_out: 100 }),
      kafka_timestamp: toClickHouseTime(windowStart),
      processor_version: 'test',
    })),
  });
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  temporal = await connectTemporal(config, endpoints);
});

afterAll(async () => {
  for (const w of firedIds) await temporal?.workflow.getHandle(w).terminate('test over').catch(() => undefined);
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('migrations', () => {
  it('converge when several processes run them at once, and a re-run applies nothing', async () => {
    const files = await loadMigrations();
    const results = await Promise.all([0, 1, 2].map(() => migrate(warehouse, id, { admin })));
    expect(results.some((r) => r.applied.length > 0)).toBe(true);
    const [versions] = await rows<{ n: string }>('SELECT uniqExact(version) AS n FROM schema_migrations');
    expect(Number(versions!.n)).toBe(files.length);
    const again = await migrate(warehouse, id, { admin });
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toHaveLength(files.length);
    const tables = await rows<{ name: string }>("SELECT name FROM system.tables WHERE database = {db:String} AND name IN ('events', 'dead_letters', 'lineage_batches', 'rollups_1m')", { db: id });
    expect(tables.map((t) => t.name).sort()).toEqual(['dead_letters', 'events', 'lineage_batches', 'rollups_1m']);
  });
});

describe('rollups and the error-rate detector', () => {
  const minute = 60_000;
  const base = Math.floor((Date.now() - 20 * minute) / minute) * minute;

  it('recomputing a window replaces it, late rows included', async () => {
    const acts = createRollupActivities({ warehouse, temporal, taskQueue: `rollup-${id}`, processorVersion: 'test' });
    await insertWindow(base, 'checkout', 100, 30, 0);
    await insertWindow(base, 'search', 10, 9, 1000);
    await insertWindow(base + minute, 'checkout', 100, 1, 2000);
    const first = await run(acts.computeRollups, { pipelineId, since: null, overlapSeconds: 0 });
    expect(first.windows).toBe(2);
    // A late arrival for the first window, then a recomputation from the watermark.
    await insertWindow(base, 'checkout', 20, 20, 3000);
    const second = await run(acts.computeRollups, { pipelineId, since: first.watermark, overlapSeconds: 0 });
    // The late rows' window is recomputed (with the last-ingested one: the bound is inclusive).
    expect(second.windows).toBeGreaterThanOrEqual(1);
    const final = await rows<{ service: string; route: string; requests: string; errors: string }>(
      "SELECT service, route, requests, errors FROM rollups_1m FINAL WHERE pipeline = {p:String} AND window_start = {w:DateTime} AND route = '*' ORDER BY service",
      { p: pipelineId, w: toClickHouseTime(base).slice(0, 19) },
    );
    expect(final.map((r) => [r.service, Number(r.requests), Number(r.errors)])).toEqual([
      ['checkout', 120, 50],
      ['search', 10, 9],
    ]);
    const routes = await rows<{ n: string }>("SELECT sum(requests) AS n FROM rollups_1m FINAL WHERE pipeline = {p:String} AND route != '*'", { p: pipelineId });
    expect(Number(routes[0]!.n)).toBe(230);
  });

  it('fires once per breaching service window, skips small windows, and reaches the alert workflow', async () => {
    const taskQueue = `rollup-${id}`;
    const acts = createRollupActivities({ warehouse, temporal, taskQueue, processorVersion: 'test' });
    const input = { pipelineId, errorRateThreshold: 0.2, minRequests: 50, lookbackMinutes: 60, alreadyFired: [] as string[] };
    const first = await run(acts.detectThresholds, input);
    // checkout at 50/120 in the first window breaches; search (9/10) has too few requests;
    // checkout's second window (1/100) is fine.
    expect(first.fired).toEqual([`checkout@${new Date(base).toISOString()}`]);
    const expectedId = alertWorkflowId(alertFingerprint(errorRateDetector, { pipeline: pipelineId, service: 'checkout' }));
    expect(first.alertWorkflowIds).toEqual([expectedId]);
    firedIds.push(expectedId);
    const description = await temporal.workflow.getHandle(expectedId).describe();
    expect(description.type).toBe('alert');
    expect(description.taskQueue).toBe(taskQueue);
    // The breach ended far more than 3 complete windows ago (window base, now ~19 min later), so
    // the same run clears it: the incident gets `fire` then `clear` (before, it had no clear path
    // and stayed open until someone resolved it).
    expect(first.cleared).toEqual(['checkout']);
    const history = await temporal.workflow.getHandle(expectedId).fetchHistory();
    const signals = (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes.signalName] : []));
    expect(signals).toEqual(['fire', 'clear']);
    // The firing's query carries its values as query parameters (none inlined), and run with them
    // it finds the window's failed requests.
    const fireInput = (history.events ?? []).find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'fire')!.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!;
    const firing = defaultPayloadConverter.fromPayload<AlertFiring>(fireInput);
    expect(firing.query).toBeDefined();
    expect(firing.query).not.toContain(pipelineId);
    expect(firing.query).not.toContain('checkout');
    expect(firing.context?.queryParams).toEqual({ pipeline: pipelineId, service: 'checkout', from: toClickHouseTime(base) });
    const breakdown = await rows<{ status: number; n: string }>(firing.query!, firing.context!.queryParams);
    expect(breakdown.filter((r) => Number(r.status) >= 500).reduce((n, r) => n + Number(r.n), 0)).toBe(50);
    expect(breakdown.reduce((n, r) => n + Number(r.n), 0)).toBe(120);

    const second = await run(acts.detectThresholds, { ...input, alreadyFired: first.keep });
    expect(second.fired).toEqual([]);
    expect(second.breaches).toBe(1);
    expect(second.keep).toEqual(first.keep);

    // A breach in the last complete window is not cleared yet.
    const recent = Math.floor(Date.now() / minute) * minute - minute;
    await insertWindow(recent, 'payments', 100, 60, 5000);
    await run(acts.computeRollups, { pipelineId, since: null, overlapSeconds: 0 });
    const third = await run(acts.detectThresholds, { ...input, alreadyFired: second.keep });
    expect(third.fired).toEqual([`payments@${new Date(recent).toISOString()}`]);
    firedIds.push(...third.alertWorkflowIds);
    expect(third.cleared).not.toContain('payments');
  });
});
