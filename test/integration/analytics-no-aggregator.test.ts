/**
 * A pipeline without analytics declared has no aggregator, so its partition consumers must not
 * report landings to one: before, every landed batch added a SignalExternalWorkflowExecution
 * command to the partition's history that failed (`aggregator-<pipeline>` not found). Real stack:
 * one worker whose declarations cover pipeline `with`, two pipelines started as users start them
 * (the `pipeline` supervisor), real events through Kafka. The partition of `with` reports its
 * landings (the control: the history check can see signals); the one of `without` sends none and
 * has no failed signal event. The aggregator of `with` runs on the analytics task queue
 * (`<queue>-analytics`), served by the worker's own Worker for it, and reads every landing.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { partitionWorkflowId, pipelineWorkflowId, type PartitionProgress, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { aggregatorWorkflowId, type AggregatorProgress } from '../../workflows/analytics/aggregator.js';
import { analyticsTaskQueue } from '../../schemas/analytics/task-queue.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = { ...testConfig(), LOG_LEVEL: 'warn' as const };
const id = uniqueId('noagg');
const taskQueue = `noagg-${id}`;
const withAnalytics = `with-${id}`.replaceAll('_', '-');
const without = `without-${id}`.replaceAll('_', '-');
const count = 600;
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let worker: RunningWorker;
const started: string[] = [];

const analytics = analyticsFileSchema.parse({
  pipelines: [{
    pipeline: withAnalytics,
    fields: { service: { json: 'service' } },
    watermark: { outOfOrderness: '0s', idleness: '1h', allowedLateness: '0s' },
    pollInterval: '1h',
    aggregations: [{ name: 'svc', window: { type: 'tumbling', size: '1m' }, groupBy: ['service'], measures: [{ name: 'requests', kind: 'count' }] }],
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
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  worker = await startWorker({ config, endpoints, database: id, taskQueue, analytics, skipMigrations: true });
});

afterAll(async () => {
  for (const workflowId of started) await temporal?.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
  await worker?.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

/** Starts pipeline `pipelineId` on a fresh one-partition topic, lands `count` events in several batches, returns the partition's history event types. */
async function landAndReadPartitionHistory(pipelineId: string): Promise<{ types: string[]; batches: number; total: number }> {
  const topic = `topic-${pipelineId}`;
  const input: PipelineInputRaw = { pipelineId, topic, partitions: 1, batchMaxEvents: 100, pollIntervalMs: 200, detector: { enabled: false } };
  started.push(pipelineWorkflowId(pipelineId), partitionWorkflowId(pipelineId, topic, 0), aggregatorWorkflowId(pipelineId));
  await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });
  const summary = await produceEvents(kafka, { topic, partitions: 1, count, rate: 2000, seed: 11, startTime: recentStart() });
  const partition = temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0));
  const progress = await waitFor('every event landed', async () => {
    const p = await partition.query<PartitionProgress>('progress');
    return p.cursor === summary.total ? p : undefined;
  });
  const history = await partition.fetchHistory();
  const types = (history.events ?? []).map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes')) ?? 'unknown');
  return { types, batches: progress.batches, total: summary.total };
}

describe('a pipeline without analytics', () => {
  it('lands batches without signalling a nonexistent aggregator; one with analytics reports each landing', { timeout: 240_000 }, async () => {
    const plain = await landAndReadPartitionHistory(without);
    expect(plain.batches).toBeGreaterThan(1);
    expect(plain.types.filter((t) => t === 'signalExternalWorkflowExecutionFailedEventAttributes')).toEqual([]);
    expect(plain.types.filter((t) => t === 'signalExternalWorkflowExecutionInitiatedEventAttributes')).toEqual([]);

    // The control: the same check sees the reports of a pipeline that declares analytics.
    const declared = await landAndReadPartitionHistory(withAnalytics);
    const initiated = declared.types.filter((t) => t === 'signalExternalWorkflowExecutionInitiatedEventAttributes').length;
    expect(initiated).toBeGreaterThanOrEqual(1);
    expect(declared.types.filter((t) => t === 'signalExternalWorkflowExecutionFailedEventAttributes')).toEqual([]);

    // The aggregator runs on the analytics task queue, served by the worker's second Worker: it
    // read every landed batch (its cursor reached the last offset; its poll is 1 h, so the
    // batchLanded reports woke it).
    const aggregator = temporal.workflow.getHandle(aggregatorWorkflowId(withAnalytics));
    expect((await aggregator.describe()).taskQueue).toBe(analyticsTaskQueue(taskQueue));
    expect(analyticsTaskQueue(taskQueue)).toBe(`${taskQueue}-analytics`);
    await waitFor('the aggregator read every landed batch', async () => {
      const p = await aggregator.query<AggregatorProgress>('progress');
      return p.partitions['0']?.nextOffset === declared.total ? true : undefined;
    });
  });
});
