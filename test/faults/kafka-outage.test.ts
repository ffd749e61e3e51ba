/**
 * Landing resumes after a Kafka outage (issue 7, point 7), measured: a worker lands a pipeline
 * from a broker of the test's own (free ports, never the shared one); the broker is SIGKILLed in
 * the middle of the stream, stays down 10 s, and is started again. The test measures the time
 * from the broker being healthy again (port open, group coordinator answering) to the first new
 * rows in events. Printed, not asserted; exactness is asserted (every event once, merges stopped,
 * same worker PID). `npm run test:faults`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { startPrivateKafka, type PrivateKafka } from '../support/private-kafka.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const id = uniqueId('t');
const pipelineId = id.replace(/_/g, '-').slice(2);
const topic = `outage-${id}`;
const taskQueue = `outage-${id}`;
let broker: PrivateKafka | undefined;
const workerLog = join(tmpdir(), `streamwarden-${id}-worker.log`);
const workers = new Map<string, ChildProcess>();
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let produced: GeneratorSummary;

interface LogLine {
  msg?: string;
  dependency?: string;
  outageMs?: number;
  retriedOperations?: number;
  text: string;
}
const lines: LogLine[] = [];

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
      KAFKA_BROKERS: broker!.broker,
      CLICKHOUSE_URL: endpoints.clickhouseUrl,
      CLICKHOUSE_DATABASE: id,
      TEMPORAL_TASK_QUEUE: taskQueue,
      PROCESSOR_VERSION: `outage-${name}`,
      // Small steps: a batch is many inserts, so the kill falls inside a landing.
      PIPELINE_CHUNK_MAX_BYTES: '4096',
      LOG_LEVEL: 'info',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      LOCAL_ACK_PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
      TEMPORAL_METRICS_PORT: String(await freePort()),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The worker's log lines (JSON on stdout, anything a library prints on stderr), kept for the
  // assertions on outage lines and the diagnosis of a slow recovery (path printed below).
  let buffered = '';
  const collect = (chunk: Buffer): void => {
    appendFileSync(workerLog, chunk);
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const text of parts) {
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // not the JSON log: kept as text
      }
      lines.push({ ...(parsed as Partial<LogLine>), text });
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  workers.set(name, child);
  return child;
}

beforeAll(async () => {
  broker = await startPrivateKafka(config);
  const endpoints = { ...stackEndpoints(), kafkaBrokers: [broker.broker] };
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'lineage_batches']) await warehouse.command({ query: `SYSTEM STOP MERGES ${table}` });
  produced = await produceEvents(kafka, { topic, partitions: 1, count: 3000, seed: 6, startTime: Date.now() - 3_600_000 });
}, 300_000);

afterAll(async () => {
  await temporal?.workflow.getHandle(pipelineWorkflowId(pipelineId)).terminate('test over').catch(() => undefined);
  await temporal?.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0)).terminate('test over').catch(() => undefined);
  for (const w of workers.values()) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
  await Promise.all([...workers.values()].map((w) => (w.exitCode === null && w.signalCode === null ? new Promise((resolve) => w.once('exit', resolve)) : null)));
  await broker?.stop();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
}, 120_000);

describe('a Kafka outage in the middle of a stream', () => {
  it('landing resumes after the broker is back; every event lands once, same worker', { timeout: 420_000 }, async () => {
    const worker = await spawnWorker('a');
    const input: PipelineInputRaw = { pipelineId, topic, batchMaxEvents: 400, pollIntervalMs: 500 };
    await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });
    await waitFor('two batches landed', async () => {
      const [landed] = await rows<{ n: string }>('SELECT count() AS n FROM lineage_batches');
      return Number(landed?.n ?? 0) >= 2 ? true : undefined;
    }, 240_000, 100);
    broker!.kill();
    await new Promise((r) => setTimeout(r, 10_000));
    const [before] = await rows<{ n: string }>('SELECT count() AS n FROM events');
    const restartedAt = Date.now();
    appendFileSync(workerLog, `==== test: restarting the broker at ${new Date(restartedAt).toISOString()}\n`);
    await broker!.restart();
    const healthyAt = Date.now();
    appendFileSync(workerLog, `==== test: broker healthy at ${new Date(healthyAt).toISOString()}\n`);
    const firstRows = await waitFor('rows after the outage', async () => {
      const [r] = await rows<{ n: string }>('SELECT count() AS n FROM events');
      return Number(r!.n) > Number(before!.n) ? Date.now() : undefined;
    }, 120_000, 50);
    console.log(`kafka outage: broker healthy ${((healthyAt - restartedAt) / 1000).toFixed(2)} s after its restart; first new rows in events ${((firstRows - healthyAt) / 1000).toFixed(2)} s after it was healthy (poll step 50 ms); worker log ${workerLog}`);

    await waitFor('every event landed', async () => {
      const [r] = await rows<{ n: string }>('SELECT sum(valid_count + rejected_count) AS n FROM lineage_batches');
      return Number(r!.n) === produced.valid + produced.rejected ? true : undefined;
    }, 300_000, 500);
    const [events] = await rows<{ n: string; u: string }>('SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events');
    const [dead] = await rows<{ n: string }>('SELECT count() AS n FROM dead_letters');
    console.log(`kafka outage: produced ${produced.valid + produced.rejected}, landed ${events!.n}, dead-lettered ${dead!.n}, duplicated ${Number(events!.n) - Number(events!.u)}, lost ${produced.valid - Number(events!.u)}`);
    expect([Number(events!.n), Number(events!.u), Number(dead!.n)]).toEqual([produced.valid, produced.valid, produced.rejected]);
    expect(worker.exitCode).toBeNull();

    // One start line and one end line for the outage; no line per KafkaJS retry, no `Activity failed` dump.
    const started = lines.filter((l) => l.msg === 'dependency outage started' && l.dependency === 'kafka');
    const ended = lines.filter((l) => l.msg === 'dependency outage ended' && l.dependency === 'kafka');
    const address = broker!.broker;
    const noisy = lines.filter((l) => l.msg === 'Activity failed' || (l.text.includes(address) && !l.msg?.startsWith('dependency outage')));
    console.log(`kafka outage: outage lines ${started.length} start / ${ended.length} end (outageMs ${ended[0]?.outageMs}, retriedOperations ${ended[0]?.retriedOperations}); ${noisy.length} lines that should have been folded${noisy.length > 0 ? `, e.g.\n${noisy.slice(0, 3).map((l) => l.text.slice(0, 300)).join('\n')}` : ''}`);
    expect(started).toHaveLength(1);
    expect(ended).toHaveLength(1);
    expect(ended[0]!.retriedOperations).toBeGreaterThan(0);
    expect(noisy).toHaveLength(0);
  });
});
