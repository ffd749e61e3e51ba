/**
 * Recovery of a running worker (issue 7, point 7), measured: two workers serve one pipeline; the
 * one running the landing is SIGKILLed mid-batch, and the test measures how long until the other
 * worker runs the same landing (the activity attempt started there, from Temporal) and until it
 * lands its first rows (ClickHouse). Figures are printed, not asserted (speed is measured, never
 * a timed assertion); exactness is asserted: every event lands once, without FINAL, merges stopped.
 * Kills only the test's own worker processes; uses the shared Temporal and Kafka with its own task
 * queue, topic and database. `npm run test:faults` (not in `npm test`: about two minutes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { partitionWorkflowId, pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { freePort } from '../support/observability.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const id = uniqueId('t');
const pipelineId = id.replace(/_/g, '-').slice(2);
const topic = `kill-${id}`;
const taskQueue = `kill-${id}`;
const workers = new Map<string, ChildProcess>();
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let produced: GeneratorSummary;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function rows<T>(query: string): Promise<T[]> {
  return (await warehouse.query({ query, format: 'JSONEachRow' })).json<T>();
}

async function spawnWorker(name: string): Promise<ChildProcess> {
  const endpoints = stackEndpoints();
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
    cwd: root,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: endpoints.temporalAddress,
      KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
      CLICKHOUSE_URL: endpoints.clickhouseUrl,
      CLICKHOUSE_DATABASE: id,
      TEMPORAL_TASK_QUEUE: taskQueue,
      PROCESSOR_VERSION: `kill-${name}`,
      // Small steps: a batch is many inserts, so the kill falls inside a landing.
      PIPELINE_CHUNK_MAX_BYTES: '4096',
      LOG_LEVEL: 'warn',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      LOCAL_ACK_PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
      TEMPORAL_METRICS_PORT: String(await freePort()),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.resume();
  workers.set(name, child);
  return child;
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'lineage_batches']) await warehouse.command({ query: `SYSTEM STOP MERGES ${table}` });
  produced = await produceEvents(kafka, { topic, partitions: 1, count: 3000, seed: 5, startTime: Date.now() - 3_600_000 });
}, 300_000);

afterAll(async () => {
  await temporal?.workflow.getHandle(pipelineWorkflowId(pipelineId)).terminate('test over').catch(() => undefined);
  await temporal?.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0)).terminate('test over').catch(() => undefined);
  for (const w of workers.values()) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
  await Promise.all([...workers.values()].map((w) => (w.exitCode === null && w.signalCode === null ? new Promise((resolve) => w.once('exit', resolve)) : null)));
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
}, 120_000);

describe('a SIGKILLed worker with a second one running', () => {
  it('its landing moves to the other worker; every event lands once', { timeout: 420_000 }, async () => {
    const a = await spawnWorker('a');
    const b = await spawnWorker('b');
    expect(a.pid).not.toBe(b.pid);
    const input: PipelineInputRaw = { pipelineId, topic, batchMaxEvents: 400, pollIntervalMs: 500 };
    await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });
    const partition = temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0));
    // Wait for a landing in flight after some batches landed, find which worker runs it, and kill
    // that worker. The landing can end between the describe and the SIGKILL (the kill then hits
    // a worker between landings, and no landing is ever retried on the other one): after the
    // kill, the same landing (activity id) must still be pending, since a dead worker
    // cannot complete it; otherwise that worker is started again and the search repeats.
    const pids = new Map<number | undefined, string>();
    const inFlight = async (): Promise<{ name: string; activityId: string } | undefined> => {
      const pending = (await partition.describe().catch(() => null))?.raw.pendingActivities ?? [];
      const landing = pending.find((p) => p.activityType?.name === 'landBatch' && p.lastWorkerIdentity && p.attempt === 1);
      const name = pids.get(Number(/^(\d+)@/.exec(landing?.lastWorkerIdentity ?? '')?.[1]));
      return name && landing?.activityId ? { name, activityId: landing.activityId } : undefined;
    };
    let victim = '';
    let killedAt = 0;
    let before = 0;
    let killedLanding = '';
    for (let round = 1; ; round++) {
      for (const [name, w] of workers) pids.set(w.pid, name);
      const target = await waitFor('a landing in flight after two batches', async () => {
        const [landed] = await rows<{ n: string }>('SELECT count() AS n FROM lineage_batches');
        return Number(landed?.n ?? 0) < 2 ? undefined : inFlight();
      }, 240_000, 50);
      const other = target.name === 'a' ? 'b' : 'a';
      const [count] = await rows<{ n: string }>(`SELECT count() AS n FROM events WHERE processor_version = 'kill-${other}'`);
      killedAt = Date.now();
      const child = workers.get(target.name)!;
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once('exit', r) : r(null)));
      const pending = (await partition.describe()).raw.pendingActivities ?? [];
      if (pending.some((p) => p.activityId === target.activityId)) {
        [victim, before, killedLanding] = [target.name, Number(count!.n), target.activityId];
        break;
      }
      console.log(`worker kill: round ${round}: the landing ended before the SIGKILL reached ${target.name}; starting it again`);
      if (round === 3) throw new Error('the landing ended before the SIGKILL three times');
      await spawnWorker(target.name);
    }
    const survivor = victim === 'a' ? 'b' : 'a';
    // The same landing restarted on the other worker (Temporal's view), then its first rows. A
    // retried landing that is short can start and end between two describes: its end (gone from
    // the pending activities, while the killed worker cannot have ended it) also counts as picked up.
    const pickedUp = await waitFor('the landing on the other worker', async () => {
      const pending = (await partition.describe().catch(() => null))?.raw.pendingActivities;
      if (!pending) return undefined;
      const landing = pending.find((p) => p.activityId === killedLanding);
      if (!landing) return Date.now();
      const pid = Number(/^(\d+)@/.exec(landing?.lastWorkerIdentity ?? '')?.[1]);
      return landing && pids.get(pid) === survivor && (landing.attempt ?? 1) > 1 ? Date.now() : undefined;
    }, 60_000, 50);
    const firstRows = await waitFor('rows from the other worker', async () => {
      const [r] = await rows<{ n: string }>(`SELECT count() AS n FROM events WHERE processor_version = 'kill-${survivor}'`);
      return Number(r!.n) > before ? Date.now() : undefined;
    }, 60_000, 50);
    console.log(`worker kill: landing restarted on the other worker ${((pickedUp - killedAt) / 1000).toFixed(2)} s after SIGKILL (poll step 50 ms), its first rows in events after ${((firstRows - killedAt) / 1000).toFixed(2)} s`);

    await waitFor('every event landed', async () => {
      const [r] = await rows<{ n: string }>('SELECT sum(valid_count + rejected_count) AS n FROM lineage_batches');
      return Number(r!.n) === produced.valid + produced.rejected ? true : undefined;
    }, 240_000, 500);
    const [events] = await rows<{ n: string; u: string }>('SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events');
    const [dead] = await rows<{ n: string }>('SELECT count() AS n FROM dead_letters');
    console.log(`worker kill: produced ${produced.valid + produced.rejected}, landed ${events!.n}, dead-lettered ${dead!.n}, duplicated ${Number(events!.n) - Number(events!.u)}, lost ${produced.valid - Number(events!.u)}`);
    expect([Number(events!.n), Number(events!.u), Number(dead!.n)]).toEqual([produced.valid, produced.valid, produced.rejected]);
    expect(workers.get(survivor)!.exitCode).toBeNull();
  });
});
