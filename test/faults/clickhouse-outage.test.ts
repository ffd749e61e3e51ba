/**
 * A ClickHouse outage under a RUNNING worker (issue 7, point 7): a worker lands a stream into a
 * ClickHouse endpoint this test starts itself (free port, own data folder; the shared one is never
 * touched); the endpoint is SIGKILLed in the middle of the stream, stays down 10 s and is started
 * again on the same data. Asserted: the worker logs ONE `dependency outage started` line and ONE
 * `dependency outage ended` line for clickhouse (the end line with the outage's duration and a
 * retried-operation count > 0), no `Activity failed` line and no other line naming the endpoint's
 * address (no dump per retry), the same PID throughout, and every event landed exactly once
 * (merges stopped, counts without FINAL). Printed, not asserted: seconds from the endpoint being
 * healthy again to the first new rows. `npm run test:faults`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouseServerMain } from '../../infra/local/clickhouse/component.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { portOpen } from '../../infra/local/process.js';
import { partitionWorkflowId, pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { connectTemporal, createKafka } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { freePort } from '../support/observability.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const id = uniqueId('t');
const pipelineId = id.replace(/_/g, '-').slice(2);
const topic = `chout-${id}`;
const taskQueue = `chout-${id}`;
const chDir = mkdtempSync(join(tmpdir(), 'sw-chout-'));
const workerLog = join(tmpdir(), `streamwarden-${id}-worker.log`);
let chPort = 0;
let chUrl = '';
let endpoint: ChildProcess | undefined;
let worker: ChildProcess | undefined;
let kafka: Kafka;
let temporal: Client;
let warehouse: ClickHouseClient;
let produced: GeneratorSummary;

interface LogLine {
  msg?: string;
  dependency?: string;
  outageMs?: number;
  retriedOperations?: number;
  at: number;
  text: string;
}
const lines: LogLine[] = [];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000, everyMs = 100): Promise<T> {
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

async function startEndpoint(): Promise<number> {
  endpoint = spawn(process.execPath, ['--import', 'tsx', clickhouseServerMain, '--host', '127.0.0.1', '--port', String(chPort), '--path', chDir], { cwd: root, stdio: 'ignore' });
  return waitFor('the ClickHouse endpoint', async () => {
    try {
      const res = await fetch(`${chUrl}/ping`, { signal: AbortSignal.timeout(1000) });
      return res.ok ? Date.now() : undefined;
    } catch {
      return undefined;
    }
  }, 120_000, 50);
}

beforeAll(async () => {
  chPort = await freePort();
  chUrl = `http://127.0.0.1:${chPort}`;
  await startEndpoint();
  const endpoints = { ...stackEndpoints(), clickhouseUrl: chUrl };
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  const admin = createClient({ url: chUrl, database: 'default' });
  warehouse = createClient({ url: chUrl, database: id });
  await migrate(warehouse, id, { admin });
  await admin.close();
  produced = await produceEvents(kafka, { topic, partitions: 1, count: 3000, seed: 7, startTime: Date.now() - 3_600_000 });
}, 300_000);

afterAll(async () => {
  await temporal?.workflow.getHandle(pipelineWorkflowId(pipelineId)).terminate('test over').catch(() => undefined);
  await temporal?.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0)).terminate('test over').catch(() => undefined);
  for (const child of [worker, endpoint]) {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          r(null);
        }, 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          r(null);
        });
      });
    }
  }
  await Promise.all([warehouse?.close(), temporal?.connection.close()]);
  rmSync(chDir, { recursive: true, force: true });
}, 120_000);

describe('a ClickHouse outage under a running worker', () => {
  it('one start line and one end line, no dump per retry; every event lands once, same worker', { timeout: 420_000 }, async () => {
    const endpoints = stackEndpoints();
    worker = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
      cwd: root,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: endpoints.temporalAddress,
        KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
        CLICKHOUSE_URL: chUrl,
        CLICKHOUSE_DATABASE: id,
        TEMPORAL_TASK_QUEUE: taskQueue,
        PROCESSOR_VERSION: 'chout',
        // Small steps: a batch is many inserts, so the outage falls inside a landing.
        PIPELINE_CHUNK_MAX_BYTES: '4096',
        LOG_LEVEL: 'info',
        KAFKAJS_NO_PARTITIONER_WARNING: '1',
        LOCAL_ACK_PORT: String(await freePort()),
        METRICS_PORT: '0',
        TEMPORAL_METRICS_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = worker.pid;
    let buffered = '';
    const collect = (chunk: Buffer): void => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const text of parts) {
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // A line that is not the JSON log (a library writing to the console) is kept as text.
        }
        lines.push({ ...(parsed as Partial<LogLine>), at: Date.now(), text });
        appendFileSync(workerLog, `${text}\n`);
      }
    };
    worker.stdout!.on('data', collect);
    worker.stderr!.on('data', collect);

    const input: PipelineInputRaw = { pipelineId, topic, batchMaxEvents: 400, pollIntervalMs: 500 };
    await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });
    await waitFor('two batches landed', async () => {
      const [landed] = await rows<{ n: string }>('SELECT count() AS n FROM lineage_batches');
      return Number(landed?.n ?? 0) >= 2 ? true : undefined;
    }, 240_000, 100);
    const [before] = await rows<{ n: string }>('SELECT count() AS n FROM events');
    const killedAt = Date.now();
    endpoint!.kill('SIGKILL');
    await new Promise((r) => endpoint!.once('exit', r));
    await new Promise((r) => setTimeout(r, 10_000));
    expect(await portOpen('127.0.0.1', chPort, 300)).toBe(false);
    const healthyAt = await startEndpoint();
    // Merges stopped on the restarted endpoint too: exactness cannot come from a background merge.
    for (const table of ['events', 'dead_letters', 'lineage_batches']) await warehouse.command({ query: `SYSTEM STOP MERGES ${table}` });
    const firstRows = await waitFor('rows after the outage', async () => {
      const [r] = await rows<{ n: string }>('SELECT count() AS n FROM events');
      return Number(r!.n) > Number(before!.n) ? Date.now() : undefined;
    }, 120_000, 50);

    await waitFor('every event landed', async () => {
      const [r] = await rows<{ n: string }>('SELECT sum(valid_count + rejected_count) AS n FROM lineage_batches');
      return Number(r!.n) === produced.valid + produced.rejected ? true : undefined;
    }, 300_000, 500);
    const endLine = () => lines.find((l) => l.msg === 'dependency outage ended' && l.dependency === 'clickhouse');
    await waitFor('the outage end line', endLine, 30_000).catch(() => undefined);
    const ended = endLine() ?? { at: Number.NaN, outageMs: undefined, retriedOperations: undefined };
    const [events] = await rows<{ n: string; u: string }>('SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events');
    const [dead] = await rows<{ n: string }>('SELECT count() AS n FROM dead_letters');
    console.log(`clickhouse outage: down ${((healthyAt - killedAt) / 1000).toFixed(1)} s; first new rows ${((firstRows - healthyAt) / 1000).toFixed(2)} s after the endpoint answered /ping (poll step 50 ms); end line ${((ended.at - healthyAt) / 1000).toFixed(2)} s after it, outageMs ${ended.outageMs}, retriedOperations ${ended.retriedOperations}; worker log ${workerLog}`);
    console.log(`clickhouse outage: produced ${produced.valid + produced.rejected}, landed ${events!.n}, dead-lettered ${dead!.n}, duplicated ${Number(events!.n) - Number(events!.u)}, lost ${produced.valid - Number(events!.u)}`);

    const started = lines.filter((l) => l.msg === 'dependency outage started' && l.dependency === 'clickhouse');
    const endedAll = lines.filter((l) => l.msg === 'dependency outage ended' && l.dependency === 'clickhouse');
    const activityFailed = lines.filter((l) => l.msg === 'Activity failed');
    const address = `127.0.0.1:${chPort}`;
    const noisy = lines.filter((l) => l.text.includes(address) && !l.msg?.startsWith('dependency outage'));
    if (activityFailed.length + noisy.length > 0) console.log(`lines that should have been folded into the outage:\n${[...activityFailed, ...noisy].slice(0, 5).map((l) => l.text.slice(0, 400)).join('\n')}`);
    expect(started).toHaveLength(1);
    expect(endedAll).toHaveLength(1);
    expect(ended.retriedOperations).toBeGreaterThan(0);
    expect(ended.outageMs).toBeGreaterThan(5_000);
    // The outage ends once the endpoint answers again, not long after.
    expect(ended.at).toBeGreaterThanOrEqual(healthyAt);
    expect(activityFailed).toHaveLength(0);
    expect(noisy).toHaveLength(0);
    expect([Number(events!.n), Number(events!.u), Number(dead!.n)]).toEqual([produced.valid, produced.valid, produced.rejected]);
    expect(worker.exitCode).toBeNull();
    expect(worker.pid).toBe(pid);
  });
});
