/**
 * `platform lineage trace` on real data: events with an incident burst are landed from Kafka by
 * the ingest activities (high watermark recorded), rolled up, and the detector fires an alert on
 * the real Temporal server. The CLI (run as a child process, `--json`) must give, for a landed row,
 * the batch whose range holds it, its contract and processor versions, the rollup windows that
 * include it (their counts checked against an independent count over `events`) and the alert that
 * fired on them; for a rejected offset, its dead-letter reason; and from the alert back, the events
 * of each window it read, per batch, adding up to the same independent count.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRollupActivities } from '../../activities/analytics/rollup.js';
import { createIngestActivities, KafkaResources, type BatchPlan } from '../../activities/ingest/ingest.js';
import type { AlertTrace, RowTrace } from '../../activities/lineage/lineage-trace.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const id = uniqueId('lt');
const pipelineId = 'trace-test';
const topic = `trace-${id}`;
const mock = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000 });
const act = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => mock.run(fn, ...args) as Promise<R>;
let kafka: Kafka;
let resources: KafkaResources;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let temporal: Client;
let alertIds: string[] = [];

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function platform(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const endpoints = stackEndpoints();
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'workers/platform.ts', ...args], { cwd: root, env: { ...process.env, CLICKHOUSE_URL: endpoints.clickhouseUrl, CLICKHOUSE_DATABASE: id } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  temporal = await connectTemporal(config, endpoints);
  await migrate(warehouse, id, { admin });
  resources = new KafkaResources(kafka);
  const ingest = createIngestActivities({ kafka, warehouse, processorVersion: 'trace-1', resources });
  const start = Math.floor((Date.now() - 10 * 60_000) / 60_000) * 60_000;
  await produceEvents(kafka, { topic, partitions: 1, count: 600, rate: 100, invalid: 0.03, malformed: 0.02, incidentAt: 0, incidentDuration: 10, incidentErrorRate: 0.8, seed: 21, startTime: start });
  for (let cursor: number | null = null; ; ) {
    const plan: BatchPlan = await act(ingest.planBatch, { pipelineId, topic, partition: 0, cursor, maxEvents: 150, consumerGroup: `g-${id}`, startFrom: 'earliest' as const });
    if (plan.to === plan.from) break;
    await act(ingest.landBatch, { plan, maxEventBytes: 1 << 20 });
    cursor = plan.to;
  }
  const rollups = createRollupActivities({ warehouse, temporal, taskQueue: `trace-${id}`, processorVersion: 'trace-1' });
  await act(rollups.computeRollups, { pipelineId, since: null, overlapSeconds: 5 });
  const detected = await act(rollups.detectThresholds, { pipelineId, errorRateThreshold: 0.3, minRequests: 5, lookbackMinutes: 30, alreadyFired: [] });
  alertIds = detected.alertWorkflowIds;
});

afterAll(async () => {
  for (const a of new Set(alertIds)) await temporal?.workflow.getHandle(a).terminate('test over').catch(() => undefined);
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('platform lineage trace', () => {
  it('a landed row in an alerted window: batch, offsets, versions, windows and the alert', { timeout: 120_000 }, async () => {
    expect(alertIds.length).toBeGreaterThan(0);
    const [input] = await rows<{ alert_workflow_id: string; window_start: string; service: string }>('SELECT alert_workflow_id, toString(window_start) AS window_start, service FROM alert_firing_inputs LIMIT 1');
    const [row] = await rows<{ offset: string; event_id: string; route: string; n: string }>(
      `SELECT offset, event_id, JSONExtractString(data, 'route') AS route FROM events
       WHERE toStartOfMinute(event_time) = toDateTime({w:String}, 'UTC') AND JSONExtractString(data, 'service') = {s:String} ORDER BY offset LIMIT 1`,
      { w: input!.window_start, s: input!.service },
    );
    const res = await platform('lineage', 'trace', '--pipeline', pipelineId, '--topic', topic, '--partition', '0', '--offset', row!.offset, '--json');
    expect(res.code, res.stderr).toBe(0);
    const t = JSON.parse(res.stdout) as Extract<RowTrace, { found: 'event' }>;
    expect(t.found).toBe('event');
    expect(t.event).toMatchObject({ eventId: row!.event_id, offset: Number(row!.offset), subject: 'request-telemetry', contractVersion: 2, processorVersion: 'trace-1' });
    const [high] = await (await resources.admin()).fetchTopicOffsets(topic);
    expect(t.batch!.fromOffset).toBeLessThanOrEqual(Number(row!.offset));
    expect(t.batch!.toOffset).toBeGreaterThan(Number(row!.offset));
    expect(t.batch!.highWatermark).toBe(Number(high!.high));
    expect(t.batch!.contractVersions).toContain('request-telemetry@2');
    // Windows: the service total and the route, each with the count an independent query gives.
    expect(t.windows.map((w) => w.route).sort()).toEqual(['*', row!.route].sort());
    for (const w of t.windows) {
      const [c] = await rows<{ n: string }>(
        `SELECT count() AS n FROM events WHERE toStartOfMinute(event_time) = toDateTime({w:String}, 'UTC') AND JSONExtractString(data, 'service') = {s:String} AND ({r:String} = '*' OR JSONExtractString(data, 'route') = {r:String})`,
        { w: w.windowStart, s: w.service, r: w.route },
      );
      expect(w.requests).toBe(Number(c!.n));
    }
    expect(t.alerts.map((a) => a.alertWorkflowId)).toContain(input!.alert_workflow_id);

    const text = await platform('lineage', 'trace', '--event-id', row!.event_id);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`batch        ${t.batch!.batchId}`);
    // The worker's version and the processor are told apart (both were printed as "processor").
    expect(t.batch).toMatchObject({ processorVersion: 'trace-1', processor: '', flags: '', routing: null });
    expect(text.stdout).toContain('  worker     trace-1');
    expect(text.stdout).toContain('  processor  (none: events only)');
    expect(text.stdout).toContain(input!.alert_workflow_id);
  });

  it('a rejected offset shows its dead-letter reason; unknown rows exit 1; bad usage exits 2', { timeout: 60_000 }, async () => {
    const [dead] = await rows<{ offset: string; reason_code: string }>('SELECT offset, reason_code FROM dead_letters ORDER BY offset LIMIT 1');
    const res = await platform('lineage', 'trace', '--pipeline', pipelineId, '--topic', topic, '--partition', '0', '--offset', dead!.offset, '--json');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ found: 'dead_letter', deadLetter: { reasonCode: dead!.reason_code, offset: Number(dead!.offset) } });
    expect((await platform('lineage', 'trace', '--pipeline', pipelineId, '--topic', topic, '--partition', '0', '--offset', '999999')).code).toBe(1);
    const bad = await platform('lineage', 'trace', '--pipeline', pipelineId, '--topic', topic, '--partition', 'x', '--offset', '1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--partition: expected a non-negative integer');
  });

  it('--alert leads back to the windows it read and the events behind them, per batch', { timeout: 60_000 }, async () => {
    const alertId = alertIds[0]!;
    const res = await platform('lineage', 'trace', '--alert', alertId, '--json');
    expect(res.code, res.stderr).toBe(0);
    const t = JSON.parse(res.stdout) as AlertTrace;
    expect(t.alertWorkflowId).toBe(alertId);
    expect(t.firings.length).toBeGreaterThan(0);
    const batches = await rows<{ batch_id: string; from_offset: string; to_offset: string }>('SELECT batch_id, from_offset, to_offset FROM lineage_batches');
    for (const f of t.firings) {
      const [c] = await rows<{ n: string }>(
        `SELECT count() AS n FROM events WHERE toStartOfMinute(event_time) = toDateTime({w:String}, 'UTC') AND JSONExtractString(data, 'service') = {s:String}`,
        { w: f.windowStart, s: f.service },
      );
      expect(f.events).toBe(Number(c!.n));
      for (const b of f.batches) {
        const lineage = batches.find((x) => x.batch_id === b.batchId)!;
        expect(b.minOffset).toBeGreaterThanOrEqual(Number(lineage.from_offset));
        expect(b.maxOffset).toBeLessThan(Number(lineage.to_offset));
        expect(b.processorVersion).toBe('trace-1');
      }
    }
  });
});
