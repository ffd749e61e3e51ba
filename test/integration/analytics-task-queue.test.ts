/**
 * The analytics task queue can be served by a worker process of its own (WORKER_TASK_QUEUES):
 * a `platform` worker lands the batches of a pipeline that declares analytics, and its aggregator,
 * started on `<queue>-analytics`, does not run until an `analytics` worker polls that queue; then
 * it reads every landed batch and writes its windows. Real stack (Temporal, Kafka, ClickHouse);
 * the two workers are two `startWorker` calls with the two settings, as two processes would run them.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { aggregationTable, analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { analyticsTaskQueue } from '../../schemas/analytics/task-queue.js';
import { partitionWorkflowId, pipelineWorkflowId, type PartitionProgress, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { aggregatorWorkflowId, type AggregatorProgress } from '../../workflows/analytics/aggregator.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { bundlePlatformWorkflows, startWorker, type RunningWorker } from '../../workers/worker.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = { ...testConfig(), LOG_LEVEL: 'warn' as const };
const id = uniqueId('aggq');
const taskQueue = `aggq-${id}`;
const pipelineId = `aggq-${id}`.replaceAll('_', '-');
const topic = `topic-${pipelineId}`;
const count = 600;
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
const workers: RunningWorker[] = [];

const analytics = analyticsFileSchema.parse({
  pipelines: [{
    pipeline: pipelineId,
    fields: { service: { json: 'service' } },
    watermark: { outOfOrderness: '0s', idleness: '1h', allowedLateness: '0s' },
    pollInterval: '1s',
    aggregations: [{ name: 'svc', window: { type: 'tumbling', size: '1s' }, groupBy: ['service'], measures: [{ name: 'requests', kind: 'count' }] }],
    detectors: [],
  }],
});

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
});

afterAll(async () => {
  for (const workflowId of [pipelineWorkflowId(pipelineId), partitionWorkflowId(pipelineId, topic, 0), aggregatorWorkflowId(pipelineId)]) {
    await temporal?.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
  }
  for (const w of workers) await w.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('the analytics task queue served by a worker of its own', () => {
  it('a platform-only worker lands but leaves the aggregator to an analytics-only worker, which then aggregates every landed batch', { timeout: 240_000 }, async () => {
    const endpoints = stackEndpoints();
    const workflowBundle = await bundlePlatformWorkflows();
    const common = { config, endpoints, database: id, taskQueue, analytics, workflowBundle, skipMigrations: true } as const;
    workers.push(await startWorker({ ...common, queues: 'platform' }));

    const input: PipelineInputRaw = { pipelineId, topic, partitions: 1, batchMaxEvents: 100, pollIntervalMs: 200, detector: { enabled: false } };
    await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });
    const summary = await produceEvents(kafka, { topic, partitions: 1, count, rate: 2000, seed: 11, startTime: recentStart() });
    const partition = temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0));
    await waitFor('every event landed', async () => ((await partition.query<PartitionProgress>('progress')).cursor === summary.total ? true : undefined));

    // Started on the analytics queue, which nobody polls yet: not a single workflow task ran.
    const aggregator = temporal.workflow.getHandle(aggregatorWorkflowId(pipelineId));
    const described = await waitFor('the aggregator started', () => aggregator.describe());
    expect(described.taskQueue).toBe(analyticsTaskQueue(taskQueue));
    const before = (await aggregator.fetchHistory()).events ?? [];
    expect(before.some((e) => e.workflowTaskCompletedEventAttributes)).toBe(false);

    workers.push(await startWorker({ ...common, queues: 'analytics' }));
    const progress = await waitFor('the aggregator read every landed batch', async () => {
      const p = await aggregator.query<AggregatorProgress>('progress');
      return p.partitions['0']?.nextOffset === summary.total && p.watermarkMs !== null ? p : undefined;
    });
    expect(progress.lastError).toBeNull();
    // Its windows landed in the aggregation table, counting every valid event once.
    const [row] = await (await warehouse.query({ query: `SELECT sum(events) AS n FROM {t:Identifier} FINAL`, query_params: { t: aggregationTable(pipelineId, analytics.pipelines[0]!.aggregations[0]!) }, format: 'JSONEachRow' })).json<{ n: string }>();
    expect(Number(row?.n)).toBe(summary.valid);
  });
});
