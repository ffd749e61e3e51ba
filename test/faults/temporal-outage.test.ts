/**
 * Temporal outages under a RUNNING worker (issue 7, point 7): a worker lands a stream through a
 * Temporal dev server this test starts itself (free ports, its own database file, so it restarts
 * with its workflows; the shared server is never touched). For each outage length of
 * SW_FAULT_OUTAGES (seconds, comma-separated; default "10"; SW_FAULT_OUTAGE_SECONDS is read when
 * it is unset), 3000 more events are produced, and once two of their batches landed the server is
 * SIGKILLed mid-stream, stays down that long and is started again.
 * Asserted after each outage: every event produced so far landed exactly once (merges stopped).
 * Asserted at the end: per outage ONE `dependency outage started` and ONE `dependency outage ended`
 * line for temporal (retried count > 0) and ONE `temporal workers replaced` line (the worker's
 * Temporal Workers rebuilt on a fresh connection, workers/task-queue-workers.ts; none with
 * TEMPORAL_WORKER_REPLACEMENT=false), no other line
 * naming the server's address, the same PID. Printed, not asserted (speed is measured, never a
 * timed assertion): seconds from the server answering again to the first new rows, per outage,
 * and the load average. `npm run test:faults`, `npm run test:faults:ci`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { registerSearchAttributes, temporalBinary, temporalComponent } from '../../infra/local/temporal.js';
import { pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { freePort } from '../support/observability.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const id = uniqueId('t');
const pipelineId = id.replace(/_/g, '-').slice(2);
const topic = `tout-${id}`;
const taskQueue = `tout-${id}`;
const dir = mkdtempSync(join(tmpdir(), 'sw-tout-'));
const workerLog = join(tmpdir(), `streamwarden-${id}-worker.log`);
let temporalPort = 0;
let uiPort = 0;
let server: ChildProcess | undefined;
let worker: ChildProcess | undefined;
let kafka: Kafka;
let connection: Connection | undefined;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
/** What the test produced so far (every round adds 3000 events). */
const produced = { valid: 0, rejected: 0 };
/** How long the server stays down in each outage, s: SW_FAULT_OUTAGES ("10,60"), else SW_FAULT_OUTAGE_SECONDS, else 10. */
const outages = (process.env.SW_FAULT_OUTAGES ?? process.env.SW_FAULT_OUTAGE_SECONDS ?? '10').split(',').map((v) => Number(v.trim()));
if (outages.length === 0 || outages.some((v) => !Number.isFinite(v) || v < 0)) throw new Error(`SW_FAULT_OUTAGES: expected seconds separated by commas, got ${process.env.SW_FAULT_OUTAGES}`);
/** Set when landing resumed more than 5 s after the server answered: the database file is kept for `temporal workflow show`. */
let keepDir = false;

interface LogLine {
  msg?: string;
  dependency?: string;
  outageMs?: number;
  retriedOperations?: number;
  buildMs?: number;
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

/** Starts the dev server on the test's ports and database file; resolves when it answers GetSystemInfo. */
async function startServer(): Promise<number> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TEMPORAL_')));
  server = spawn(temporalBinary(config), ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(temporalPort), '--ui-port', String(uiPort), '--headless', '--log-level', 'error', '--db-filename', join(dir, 'temporal.db')], { env, stdio: 'ignore' });
  return waitFor('the Temporal dev server', async () => {
    try {
      const c = await Connection.connect({ address: `127.0.0.1:${temporalPort}`, connectTimeout: 1000 });
      try {
        await c.workflowService.getSystemInfo({});
        return Date.now();
      } finally {
        await c.close();
      }
    } catch {
      return undefined;
    }
  }, 120_000, 100);
}

beforeAll(async () => {
  await temporalComponent.install(config, () => undefined);
  [temporalPort, uiPort] = [await freePort(), await freePort()];
  await startServer();
  await registerSearchAttributes(`127.0.0.1:${temporalPort}`, 'default', () => undefined);
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  temporal = new Client({ connection });
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'lineage_batches']) await warehouse.command({ query: `SYSTEM STOP MERGES ${table}` });
}, 300_000);

/** Produces 3000 more events (a new seed each round) and adds them to {@link produced}. */
async function produceMore(round: number): Promise<void> {
  const summary: GeneratorSummary = await produceEvents(kafka, { topic, partitions: 1, count: 3000, seed: 8 + round, startTime: Date.now() - 3_600_000 });
  produced.valid += summary.valid;
  produced.rejected += summary.rejected;
}

async function landedBatches(): Promise<number> {
  const [landed] = await rows<{ n: string }>('SELECT count() AS n FROM lineage_batches');
  return Number(landed?.n ?? 0);
}

afterAll(async () => {
  for (const child of [worker, server]) {
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
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), connection?.close().catch(() => undefined)]);
  if (keepDir || process.env.SW_FAULT_KEEP_STATE === '1') console.log(`temporal outage: server database kept in ${dir} (temporal.db)`);
  else rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('Temporal outages under a running worker', () => {
  it('per outage one start line, one end line and one Workers replacement, no dump per retry; every event lands once, same worker', { timeout: 120_000 + outages.length * 300_000 + outages.reduce((a, b) => a + b, 0) * 1000 }, async () => {
    const endpoints = stackEndpoints();
    worker = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
      cwd: root,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
        KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
        CLICKHOUSE_URL: endpoints.clickhouseUrl,
        CLICKHOUSE_DATABASE: id,
        TEMPORAL_TASK_QUEUE: taskQueue,
        PROCESSOR_VERSION: 'tout',
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
          // not the JSON log: kept as text
        }
        lines.push({ ...(parsed as Partial<LogLine>), at: Date.now(), text });
        appendFileSync(workerLog, `${text}\n`);
      }
    };
    worker.stdout!.on('data', collect);
    worker.stderr!.on('data', collect);

    const input: PipelineInputRaw = { pipelineId, topic, batchMaxEvents: 400, pollIntervalMs: 500 };
    await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });
    const figures: string[] = [];
    for (const [round, outageSeconds] of outages.entries()) {
      const batchesBefore = await landedBatches();
      await produceMore(round);
      // Two batches of this round's events landed: the outage falls in the middle of the stream.
      await waitFor('two batches landed', async () => ((await landedBatches()) >= batchesBefore + 2 ? true : undefined), 240_000, 100);
      const killedAt = Date.now();
      appendFileSync(workerLog, `==== test: SIGKILL of the Temporal server at ${new Date(killedAt).toISOString()} (outage ${round + 1}, ${outageSeconds} s)\n`);
      server!.kill('SIGKILL');
      await new Promise((r) => server!.once('exit', r));
      await new Promise((r) => setTimeout(r, outageSeconds * 1000));
      const [before] = await rows<{ n: string }>('SELECT count() AS n FROM events');
      const healthyAt = await startServer();
      appendFileSync(workerLog, `==== test: Temporal server healthy at ${new Date(healthyAt).toISOString()}\n`);
      const firstRows = await waitFor('rows after the outage', async () => {
        const [r] = await rows<{ n: string }>('SELECT count() AS n FROM events');
        return Number(r!.n) > Number(before!.n) ? Date.now() : undefined;
      }, 120_000, 50);
      keepDir ||= firstRows - healthyAt > 5_000;
      appendFileSync(workerLog, `==== test: first new rows at ${new Date(firstRows).toISOString()}\n`);
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

      await waitFor('every event landed', async () => {
        const [r] = await rows<{ n: string }>('SELECT sum(valid_count + rejected_count) AS n FROM lineage_batches');
        return Number(r!.n) === produced.valid + produced.rejected ? true : undefined;
      }, 300_000, 500);
      const [events] = await rows<{ n: string; u: string }>('SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events');
      const [dead] = await rows<{ n: string }>('SELECT count() AS n FROM dead_letters');
      const replaced = lines.filter((l) => l.msg === 'temporal workers replaced' && l.at >= killedAt);
      const figure = `outage ${round + 1}: down ${((healthyAt - killedAt) / 1000).toFixed(1)} s; first new rows ${((firstRows - healthyAt) / 1000).toFixed(2)} s after the server answered (poll step 50 ms); workers replaced ${replaced.length > 0 ? `${((replaced[0]!.at - healthyAt) / 1000).toFixed(2)} s after it (buildMs ${replaced[0]!.buildMs})` : 'never'}; load ${load}`;
      figures.push(figure);
      console.log(`temporal outage: ${figure}`);
      console.log(`temporal outage: produced ${produced.valid + produced.rejected}, landed ${events!.n}, dead-lettered ${dead!.n}, duplicated ${Number(events!.n) - Number(events!.u)}, lost ${produced.valid - Number(events!.u)}`);
      expect([Number(events!.n), Number(events!.u), Number(dead!.n)], `exactly once after outage ${round + 1}`).toEqual([produced.valid, produced.valid, produced.rejected]);
    }
    const endedLines = () => lines.filter((l) => l.msg === 'dependency outage ended' && l.dependency === 'temporal');
    await waitFor('the outage end lines', () => (endedLines().length >= outages.length ? true : undefined), 30_000).catch(() => undefined);
    console.log(`temporal outage: ${outages.length} outage(s) of ${outages.join(', ')} s; worker log ${workerLog}\n${figures.map((f) => `  ${f}`).join('\n')}`);

    const started = lines.filter((l) => l.msg === 'dependency outage started' && l.dependency === 'temporal');
    const ended = endedLines();
    const replaced = lines.filter((l) => l.msg === 'temporal workers replaced');
    const address = `127.0.0.1:${temporalPort}`;
    const noisy = lines.filter((l) => l.msg === 'Activity failed' || (l.text.includes(address) && !l.msg?.startsWith('dependency outage')));
    if (noisy.length > 0) console.log(`lines that should have been folded into the outage (${noisy.length}):\n${noisy.slice(0, 5).map((l) => l.text.slice(0, 400)).join('\n')}`);
    expect(worker.exitCode).toBeNull();
    expect(worker.pid).toBe(pid);
    expect(started).toHaveLength(outages.length);
    expect(ended).toHaveLength(outages.length);
    for (const line of ended) expect(line.retriedOperations).toBeGreaterThan(0);
    // TEMPORAL_WORKER_REPLACEMENT=false (the worker inherits this environment) measures the Core SDK's own recovery.
    expect(replaced).toHaveLength(config.TEMPORAL_WORKER_REPLACEMENT ? outages.length : 0);
    expect(noisy).toHaveLength(0);
  });
});
