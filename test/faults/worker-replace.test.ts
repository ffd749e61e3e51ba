/**
 * Replacing a running worker's Temporal Workers (issue 7, point 7; what a Temporal outage
 * triggers, workers/task-queue-workers.ts), on the real stack with a real worker, mid-landing: a
 * batch of 700 offsets planned as 100 steps of 7. `replaceWorkers()` builds new Workers on a new
 * connection, starts them, then shuts the old ones down: the old Workers stop, the new ones poll,
 * one `temporal workers replaced` line is logged, and the landing ends with every offset landed
 * exactly once (merges stopped, no FINAL).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../activities/logger.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { partitionWorkflowId, type PartitionConsumerInputRaw, type PartitionProgress } from '../../schemas/ingest/pipeline.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = { ...testConfig(), LOG_LEVEL: 'warn' as const, PIPELINE_CHUNK_MAX_BYTES: 7_000 };
const id = uniqueId('t');
const taskQueue = `replace-${id}`;
const count = 700;
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let worker: RunningWorker;
const started: string[] = [];
const infoLines: { message: string; meta?: Record<string, unknown> }[] = [];
const log: Logger = {
  debug: () => undefined,
  info: (message, meta) => infoLines.push({ message, ...(meta ? { meta } : {}) }),
  warn: (message, meta) => console.error(`warn: ${message} ${JSON.stringify(meta ?? {})}`),
  error: (message, meta) => console.error(`error: ${message} ${JSON.stringify(meta ?? {})}`),
};

async function landedRows(pipeline: string): Promise<{ n: number; u: number }> {
  const [r] = await (
    await warehouse.query({ query: 'SELECT count() AS n, uniqExact(offset) AS u FROM events WHERE pipeline = {p:String}', query_params: { p: pipeline }, format: 'JSONEachRow' })
  ).json<{ n: string; u: string }>();
  return { n: Number(r!.n), u: Number(r!.u) };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters']) await admin.command({ query: 'SYSTEM STOP MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } });
  worker = await startWorker({ config, endpoints, database: id, taskQueue, skipMigrations: true, log });
});

afterAll(async () => {
  for (const workflowId of started) await temporal?.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
  await worker?.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('replacing the Temporal Workers of a running worker', () => {
  it('mid-landing: the old Workers stop, new ones poll, one log line; every offset lands once', { timeout: 240_000 }, async () => {
    const pipelineId = 'replaced';
    const topic = `replace-${id}`;
    const summary = await produceEvents(kafka, { topic, partitions: 1, count, rate: 1000, seed: 7, startTime: recentStart() });
    expect(summary.valid).toBe(count);
    const input: PartitionConsumerInputRaw = { pipelineId, topic, partition: 0, batchMaxEvents: count, pollIntervalMs: 200, recordBytes: 1000 };
    const workflowId = partitionWorkflowId(pipelineId, topic, 0);
    const handle = await temporal.workflow.start('partitionConsumer', { taskQueue, workflowId, args: [input] });
    started.push(workflowId);
    await waitFor('a few steps landed', async () => ((await landedRows(pipelineId)).n >= 35 ? true : undefined));

    const old = worker.worker;
    await worker.replaceWorkers();
    const atReplace = await landedRows(pipelineId);
    expect(worker.worker).not.toBe(old);
    expect(worker.worker.getState()).toBe('RUNNING');
    expect(worker.worker.options.taskQueue).toBe(taskQueue);
    expect(infoLines.filter((l) => l.message === 'temporal workers replaced')).toHaveLength(1);
    await waitFor('the old Worker to stop', () => (old.getState() === 'STOPPED' ? true : undefined), 60_000);

    await waitFor('every offset landed', async () => {
      const p = await handle.query<PartitionProgress>('progress');
      return p.cursor === count ? true : undefined;
    });
    console.log(`worker replace: ${atReplace.n} of ${count} rows landed when the new Workers polled`);
    expect(atReplace.n).toBeLessThan(count);
    expect(await landedRows(pipelineId)).toEqual({ n: count, u: count });
  });
});
