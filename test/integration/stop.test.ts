/**
 * Stopping a partition mid-landing, on the real stack with a real worker: a batch of 700
 * offsets planned as 100 steps of 7 (or 6) (small steps make the landing long). A `pause` stops it at
 * the next step boundary and `resume` lands the rest exactly once; `workflow cancel` on the
 * pipeline ends its partition workflows within seconds, leaving only whole steps landed.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { partitionWorkflowId, pipelineWorkflowId, type PartitionConsumerInputRaw, type PartitionProgress, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = { ...testConfig(), LOG_LEVEL: 'warn' as const, PIPELINE_CHUNK_MAX_BYTES: 7_000 };
const id = uniqueId('t');
const taskQueue = `stop-${id}`;
const count = 700;
/** With a 7000-byte step budget, a 1000-byte record estimate plans steps of 7 offsets. */
const step = 7;
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let worker: RunningWorker;
const started: string[] = [];

async function landedRows(pipeline: string): Promise<{ n: number; u: number }> {
  const [r] = await (
    await warehouse.query({ query: 'SELECT count() AS n, uniqExact(offset) AS u FROM events WHERE pipeline = {p:String}', query_params: { p: pipeline }, format: 'JSONEachRow' })
  ).json<{ n: string; u: string }>();
  return { n: Number(r!.n), u: Number(r!.u) };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function produce(topic: string): Promise<void> {
  const summary = await produceEvents(kafka, { topic, partitions: 1, count, rate: 1000, seed: 5, startTime: recentStart() });
  expect(summary.valid).toBe(count);
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters']) await admin.command({ query: 'SYSTEM STOP MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } });
  worker = await startWorker({ config, endpoints, database: id, taskQueue, skipMigrations: true });
});

afterAll(async () => {
  for (const workflowId of started) await temporal?.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
  await worker?.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('stopping a partition mid-landing', () => {
  it('pause takes effect at the next step boundary; resume lands the rest exactly once', { timeout: 240_000 }, async () => {
    const pipelineId = 'paused';
    const topic = `pause-${id}`;
    await produce(topic);
    const input: PartitionConsumerInputRaw = { pipelineId, topic, partition: 0, batchMaxEvents: count, pollIntervalMs: 200, recordBytes: 1000 };
    const workflowId = partitionWorkflowId(pipelineId, topic, 0);
    const handle = await temporal.workflow.start('partitionConsumer', { taskQueue, workflowId, args: [input] });
    started.push(workflowId);
    await waitFor('a few steps landed', async () => ((await landedRows(pipelineId)).n >= 5 * step ? true : undefined));
    const pausedAt = Date.now();
    await handle.executeUpdate('pause', { args: [{ reason: 'test' }] });
    // Stopped within one step: the workflow leaves the landing and reports no batch in flight.
    const progress = await waitFor('the landing to stop', async () => {
      const p = await handle.query<PartitionProgress>('progress');
      return p.paused && p.inFlight === null ? p : undefined;
    });
    const stopMs = Date.now() - pausedAt;
    const atPause = await landedRows(pipelineId);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const later = await landedRows(pipelineId);
    console.log(`pause: landing stopped ${stopMs} ms after the update, ${atPause.n} of ${count} rows landed`);
    expect(later).toEqual(atPause);
    expect(atPause.n).toBeLessThan(count);
    // Whole steps only.
    expect(atPause.n % step).toBe(0);
    expect(progress.cursor).toBe(0);
    expect(stopMs).toBeLessThan(10_000);

    await handle.executeUpdate('resume', { args: [{}] });
    await waitFor('every offset landed', async () => {
      const p = await handle.query<PartitionProgress>('progress');
      return p.cursor === count ? true : undefined;
    });
    expect(await landedRows(pipelineId)).toEqual({ n: count, u: count });
  });

  it('workflow cancel on a pipeline ends its partition workflows within seconds, mid-landing', { timeout: 240_000 }, async () => {
    const pipelineId = 'cancelled';
    const topic = `cancel-${id}`;
    await produce(topic);
    const input: PipelineInputRaw = { pipelineId, topic, partitions: 1, batchMaxEvents: count, pollIntervalMs: 200, detector: { enabled: false } };
    const handle = await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });
    started.push(pipelineWorkflowId(pipelineId), partitionWorkflowId(pipelineId, topic, 0));
    await waitFor('a few steps landed', async () => ((await landedRows(pipelineId)).n >= 5 * step ? true : undefined));
    const cancelledAt = Date.now();
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const child = temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0));
    await waitFor('the partition workflow to close', async () => ((await child.describe()).status.name === 'CANCELLED' ? true : undefined), 30_000);
    const stopMs = Date.now() - cancelledAt;
    const landed = await landedRows(pipelineId);
    console.log(`cancel: partition workflow cancelled ${stopMs} ms after the pipeline cancel, ${landed.n} of ${count} rows landed`);
    expect(stopMs).toBeLessThan(15_000);
    expect(landed.n).toBeLessThan(count);
    // The pipeline plans its first batch with the default 1024-byte record estimate: steps of 6.
    expect(landed.n % Math.floor(7_000 / 1024)).toBe(0);
    expect(landed.u).toBe(landed.n);
  });
});
