/**
 * Landing reports (`batchLanded`) reach a pipeline's aggregator, and only when it has one. Real
 * stack: one worker whose declarations cover pipeline `with`, two pipelines started as users start
 * them (the `pipeline` supervisor), real events through Kafka.
 * - `without` declares no analytics, so it has no aggregator: its partition sends no report and
 *   has no failed signal event (before, every landed batch added a SignalExternalWorkflowExecution
 *   command that failed, `aggregator-<pipeline>` not found), and its landings are not asked to report.
 * - `with` reports every landed batch. Since the landing activity sends the report itself, once
 *   the lineage row is written, the aggregator's history shows one `batchLanded` per batch, sent by
 *   a client (the worker's), not by the partition workflow, whose history has no signal command;
 *   each landBatch result says it reported. The reports carry the lineage row's facts, and the
 *   iterations they wake take the batches from them (no lineage_batches read) and end with the
 *   watermark and cursor that lineage_batches gives. The aggregator runs on the analytics task queue
 *   (`<queue>-analytics`), served by the worker's own Worker for it, and reads every landing.
 * - A report that cannot be delivered (no such aggregator) costs the landing nothing: the rows
 *   land and the result says `reportedLanding: false`, for the workflow to send it instead.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
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
import { createIngestActivities, KafkaResources, type BatchPlan, type LandBatchResult } from '../../activities/ingest/ingest.js';
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
async function landAndReadPartitionHistory(pipelineId: string): Promise<{ types: string[]; batches: number; total: number; landings: LandBatchResult[]; reportAsked: boolean[] }> {
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
  const landingIds = new Set<string>();
  const reportAsked: boolean[] = [];
  const landings: LandBatchResult[] = [];
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === 'landBatch') {
      landingIds.add(String(e.eventId));
      const arg = defaultPayloadConverter.fromPayload<{ reportLandingTo?: string }>(scheduled.input!.payloads![0]!);
      reportAsked.push(arg.reportLandingTo === aggregatorWorkflowId(pipelineId));
    }
    const done = e.activityTaskCompletedEventAttributes;
    if (done && landingIds.has(String(done.scheduledEventId))) landings.push(defaultPayloadConverter.fromPayload<LandBatchResult>(done.result!.payloads![0]!));
  }
  return { types, batches: progress.batches, total: summary.total, landings, reportAsked };
}

describe('landing reports', () => {
  it('a pipeline without analytics lands without signalling a nonexistent aggregator; one with analytics has each landing report itself', { timeout: 240_000 }, async () => {
    const plain = await landAndReadPartitionHistory(without);
    expect(plain.batches).toBeGreaterThan(1);
    expect(plain.types.filter((t) => t === 'signalExternalWorkflowExecutionFailedEventAttributes')).toEqual([]);
    expect(plain.types.filter((t) => t === 'signalExternalWorkflowExecutionInitiatedEventAttributes')).toEqual([]);
    expect(plain.reportAsked).not.toContain(true);
    expect(plain.landings.map((l) => l.reportedLanding)).not.toContain(true);

    // The control: a pipeline that declares analytics reports every landing, from the landing
    // activity (the partition's history has no signal command, each result says it reported).
    const declared = await landAndReadPartitionHistory(withAnalytics);
    const landedValid = declared.landings.filter((l) => l.valid > 0);
    expect(landedValid.length).toBeGreaterThan(1);
    expect(declared.reportAsked.every(Boolean)).toBe(true);
    expect(landedValid.map((l) => l.reportedLanding)).toEqual(landedValid.map(() => true));
    expect(declared.types.filter((t) => t.startsWith('signalExternalWorkflowExecution'))).toEqual([]);

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
    // One report per landed batch in the aggregator's history, each sent by a client (the
    // landing activity), none by another workflow.
    const reports = ((await aggregator.fetchHistory()).events ?? []).flatMap((e) => {
      const s = e.workflowExecutionSignaledEventAttributes;
      return s?.signalName === 'batchLanded' ? [s] : [];
    });
    expect(reports.length).toBe(landedValid.length);
    expect(reports.filter((r) => r.externalWorkflowExecution?.workflowId)).toEqual([]);
    // The reports carry the lineage row's facts, and the iterations they woke took the batches
    // from them instead of reading lineage_batches (the first, with an empty cursor, reads it); the
    // watermark they built is the one lineage_batches gives.
    const aggHistory = (await aggregator.fetchHistory()).events ?? [];
    const stepIds = new Set(aggHistory.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'aggregateLanded').map((e) => String(e.eventId)));
    const sources = aggHistory.flatMap((e) => {
      const done = e.activityTaskCompletedEventAttributes;
      return done && stepIds.has(String(done.scheduledEventId)) ? [defaultPayloadConverter.fromPayload<{ batchesFrom?: string; batches: number }>(done.result!.payloads![0]!)] : [];
    });
    expect(sources[0]?.batchesFrom).toBe('lineage');
    expect(sources.filter((r) => r.batchesFrom === 'reports' && r.batches > 0).length).toBeGreaterThanOrEqual(1);
    const [lineage] = await (await warehouse.query({
      query: `SELECT toUnixTimestamp64Milli(max(assumeNotNull(max_event_time))) AS max_t, max(to_offset) AS next FROM lineage_batches FINAL WHERE pipeline = {p:String} AND generation = 0`,
      query_params: { p: withAnalytics },
      format: 'JSONEachRow',
    })).json<{ max_t: string; next: string }>();
    const progress = await aggregator.query<AggregatorProgress>('progress');
    expect(Date.parse(progress.partitions['0']!.maxEventTime)).toBe(Number(lineage!.max_t));
    expect(progress.partitions['0']!.nextOffset).toBe(Number(lineage!.next));
  });

  it('a report that cannot be delivered leaves the landing whole and says so', { timeout: 120_000 }, async () => {
    const topic = `topic-undelivered-${id}`;
    const summary = await produceEvents(kafka, { topic, partitions: 1, count: 50, rate: 2000, seed: 5, startTime: recentStart() });
    const resources = new KafkaResources(kafka);
    try {
      const activities = createIngestActivities({ kafka, warehouse, processorVersion: 'test-1', resources, temporal });
      const mock = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000 });
      const plan = (await mock.run(activities.planBatch, { pipelineId: `undelivered-${id}`.replaceAll('_', '-'), topic, partition: 0, cursor: null, maxEvents: 100, consumerGroup: `g-${id}`, startFrom: 'earliest' as const })) as BatchPlan;
      const landed = (await mock.run(activities.landBatch, { plan, maxEventBytes: 1 << 20, reportLandingTo: `aggregator-nobody-${id}` })) as LandBatchResult;
      expect(landed.valid).toBe(summary.valid);
      expect(landed.reportedLanding).toBe(false);
      const [row] = await (await warehouse.query({ query: 'SELECT count() AS n FROM events WHERE topic = {topic:String}', query_params: { topic }, format: 'JSONEachRow' })).json<{ n: string }>();
      expect(Number(row!.n)).toBe(summary.valid);
    } finally {
      await resources.close();
    }
  });
});
