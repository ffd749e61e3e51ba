/**
 * The data path end to end on the real stack, with a crash: events (valid, contract violations,
 * malformed JSON, an incident burst) on a 3-partition topic; the `pipeline` workflow consuming
 * them on a worker that runs as a child process and is SIGKILLed mid-stream; a fresh worker
 * finishing the job. Then exactly-once is checked where it matters: rows in ClickHouse, lineage
 * ranges, consumer group offsets, rollups, and the alert the detector opened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorRateDetector } from '../../activities/analytics/rollup.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { alertFingerprint, alertWorkflowId } from '../../schemas/alerting/alert.js';
import { partitionWorkflowId, pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const id = uniqueId('t');
const pipelineId = id.replace(/_/g, '-').slice(2);
const topic = `requests-${id}`;
const taskQueue = `pipeline-${id}`;
let kafka: Kafka;
let kadmin: Admin;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let produced: GeneratorSummary;
const workers: ChildProcess[] = [];

/** A free TCP port on 127.0.0.1 (the workers' ack-link server must not collide with other stacks' 8787). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Starts `npm run worker`'s entrypoint as a child process (one process, so SIGKILL really kills it). */
async function spawnWorker(name: string, extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const endpoints = stackEndpoints();
  const httpPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
    cwd: root,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: endpoints.temporalAddress,
      KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
      CLICKHOUSE_URL: endpoints.clickhouseUrl,
      CLICKHOUSE_DATABASE: id,
      TEMPORAL_TASK_QUEUE: taskQueue,
      PROCESSOR_VERSION: `test-${name}`,
      LOG_LEVEL: 'warn',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      LOCAL_ACK_PORT: String(httpPort),
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const keep = (chunk: Buffer): void => {
    tail.push(chunk.toString());
    if (tail.length > 40) tail.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) console.error(`worker ${name} exited with ${code}:\n${tail.join('')}`);
  });
  workers.push(child);
  return child;
}

/** Polls `probe` until it returns a value other than undefined; fails with the last observation. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last error: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function highWatermarks(): Promise<Map<number, number>> {
  return new Map((await kadmin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
}

async function committedOffsets(): Promise<Map<number, number>> {
  const [t] = await kadmin.fetchOffsets({ groupId: `streamwarden-${pipelineId}`, topics: [topic] });
  return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}

const incidentLabels = { pipeline: pipelineId, service: 'checkout' };
const alertId = alertWorkflowId(alertFingerprint(errorRateDetector, incidentLabels));

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  kadmin = kafka.admin();
  await kadmin.connect();
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  // Merges stopped on the checked tables: counts without FINAL cannot be right by a lucky merge.
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'lineage_batches']) await admin.command({ query: 'SYSTEM STOP MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } });
  // Event times ten minutes back: every window is complete, so the detector judges them now.
  const start = Math.floor((Date.now() - 10 * 60_000) / 60_000) * 60_000;
  produced = await produceEvents(kafka, {
    topic,
    partitions: 3,
    count: 4000,
    rate: 100,
    invalid: 0.03,
    malformed: 0.02,
    incidentAt: 5,
    incidentDuration: 30,
    incidentErrorRate: 0.7,
    seed: 42,
    startTime: start,
  });
});

afterAll(async () => {
  // Terminate, not cancel: cancelling needs a worker to run the cancellation, and it is going away.
  await temporal?.workflow.getHandle(pipelineWorkflowId(pipelineId)).terminate('test over').catch(() => undefined);
  for (const p of [0, 1, 2]) await temporal?.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)).terminate('test over').catch(() => undefined);
  await temporal?.workflow.getHandle(alertId).terminate('test over').catch(() => undefined);
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => (w.exitCode === null && w.signalCode === null ? new Promise((resolve) => w.once('exit', resolve)) : null)));
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([kadmin?.disconnect(), admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('pipeline with a worker killed mid-stream', () => {
  it('lands every event exactly once, tiles lineage, commits offsets, rolls up and alerts', { timeout: 420_000 }, async () => {
    expect(produced.rejected).toBeGreaterThan(0);
    expect(produced.byReason.malformed_json).toBeGreaterThan(0);
    expect(produced.incidentErrors).toBeGreaterThan(20);

    // Tiny landing steps make a batch take several inserts, so the kill lands inside one; the
    // second worker has another chunk size, and must still land the first one's plans as planned.
    const first = await spawnWorker('a', { PIPELINE_CHUNK_MAX_BYTES: '4096' });
    const input: PipelineInputRaw = {
      pipelineId,
      topic,
      batchMaxEvents: 50,
      pollIntervalMs: 500,
      rollup: { intervalMs: 1000 },
      detector: { errorRateThreshold: 0.2, minRequests: 20, lookbackMinutes: 30 },
    };
    await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });

    // The worker creates the database; ask the server (not the database) until it has.
    await waitFor('the migrated database', async () => {
      const [r] = await (
        await admin.query({ query: "SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = 'lineage_batches'", query_params: { db: id }, format: 'JSONEachRow' })
      ).json<{ n: string }>();
      return Number(r!.n) === 1 ? true : undefined;
    });
    // Kill -9 in the middle of the stream and inside a landing: a few batches landed, and one has
    // rows in events but no lineage row yet (a landing step done, the batch not finished).
    const landedBeforeKill = await waitFor('a landing caught half way', async () => {
      const [r] = await rows<{ landed: string; halfway: string }>(
        `SELECT (SELECT count() FROM lineage_batches) AS landed,
                (SELECT count() FROM (SELECT DISTINCT batch_id FROM events) WHERE batch_id NOT IN (SELECT batch_id FROM lineage_batches)) AS halfway`,
      );
      return Number(r!.landed) >= 6 && Number(r!.halfway) > 0 ? Number(r!.landed) : undefined;
    });
    first.kill('SIGKILL');
    await new Promise((resolve) => (first.exitCode !== null || first.signalCode !== null ? resolve(null) : first.once('exit', resolve)));
    expect(first.signalCode).toBe('SIGKILL');
    const totalBatches = [...(await highWatermarks()).values()].reduce((s, h) => s + Math.ceil(h / 50), 0);
    expect(landedBeforeKill).toBeLessThan(totalBatches);

    await spawnWorker('b', { PIPELINE_CHUNK_MAX_BYTES: '20000' });
    const ends = await highWatermarks();
    await waitFor('group offsets at the end of every partition', async () => {
      const committed = await committedOffsets();
      return [...ends].every(([p, high]) => committed.get(p) === high) ? true : undefined;
    });

    // Events: exactly the valid ones, each source position once, without FINAL.
    const [events] = await rows<{ n: string; u: string }>('SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events');
    expect(Number(events!.n)).toBe(produced.valid);
    expect(Number(events!.u)).toBe(produced.valid);

    // Dead letters: exactly the invalid ones, with the reason each was built to trigger.
    const [dead] = await rows<{ n: string; u: string }>('SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM dead_letters');
    expect(Number(dead!.n)).toBe(produced.rejected);
    expect(Number(dead!.u)).toBe(produced.rejected);
    const reasons = await rows<{ reason_code: string; n: string }>('SELECT reason_code, count() AS n FROM dead_letters GROUP BY reason_code');
    expect(Object.fromEntries(reasons.map((r) => [r.reason_code, Number(r.n)]))).toEqual(produced.byReason);

    // Lineage: per partition, ranges tile [0, end) with no gap or overlap, counts add up.
    const lineage = await rows<{ partition: number; from_offset: string; to_offset: string; valid_count: number; rejected_count: number }>(
      'SELECT partition, from_offset, to_offset, valid_count, rejected_count FROM lineage_batches ORDER BY partition, from_offset',
    );
    for (const [partition, high] of ends) {
      let next = 0;
      for (const r of lineage.filter((l) => l.partition === partition)) {
        expect(Number(r.from_offset), `partition ${partition}`).toBe(next);
        expect(r.valid_count + r.rejected_count).toBe(Number(r.to_offset) - Number(r.from_offset));
        next = Number(r.to_offset);
      }
      expect(next, `partition ${partition} end`).toBe(high);
    }
    expect(lineage.reduce((s, l) => s + l.valid_count, 0)).toBe(produced.valid);
    const [stamps] = await rows<{ v: string[] }>('SELECT arraySort(groupUniqArray(processor_version)) AS v FROM events');
    // Both workers landed part of the stream: the kill really happened mid-stream.
    expect(stamps!.v).toEqual(['test-a', 'test-b']);
    // The history shows the interrupted landing: a landBatch that completed on a later attempt.
    let retried = 0;
    for (const p of [0, 1, 2]) {
      const history = await temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)).fetchHistory();
      const types = new Map<string, string>();
      for (const e of history.events ?? []) {
        const scheduled = e.activityTaskScheduledEventAttributes;
        if (scheduled) types.set(String(e.eventId), scheduled.activityType?.name ?? '');
        const started = e.activityTaskStartedEventAttributes;
        if (started && (started.attempt ?? 1) > 1 && types.get(String(started.scheduledEventId)) === 'landBatch') retried += 1;
      }
    }
    console.log(`landed batches before the kill: ${landedBeforeKill}; landings retried after the kill: ${retried}`);
    expect(retried).toBeGreaterThanOrEqual(1);

    // Rollups: the service-level windows count every valid request once.
    await waitFor('rollups covering every valid event', async () => {
      const [r] = await rows<{ n: string }>("SELECT sum(requests) AS n FROM rollups_1m FINAL WHERE route = '*'");
      return Number(r!.n) === produced.valid ? true : undefined;
    });
    const [checkout] = await rows<{ errors: string }>("SELECT sum(errors) AS errors FROM rollups_1m FINAL WHERE route = '*' AND service = 'checkout'");
    expect(Number(checkout!.errors)).toBeGreaterThanOrEqual(produced.incidentErrors);

    // The detector opened the incident for checkout: the alert workflow exists under its id.
    const alert = await waitFor('the alert workflow', async () => temporal.workflow.getHandle(alertId).describe());
    expect(alert.type).toBe('alert');

    // The partition workflows answer `progress` with the totals they landed.
    const progress = await Promise.all([0, 1, 2].map((p) => temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)).query<{ cursor: number; landed: number; rejected: number }>('progress')));
    for (const [p, high] of ends) expect(progress[p]!.cursor).toBe(high);
    expect(progress.reduce((s, p) => s + p.landed, 0)).toBe(produced.valid);
    expect(progress.reduce((s, p) => s + p.rejected, 0)).toBe(produced.rejected);
  });
});
