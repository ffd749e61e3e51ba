/**
 * A partition's short activity whose task was handed out and then lost (issue 7, point 7: the one
 * slow Temporal-outage run). When Temporal dies just after handing a worker an activity task, or
 * stays down longer than the SDK's 10 s budget for reporting a result, the attempt is lost: the
 * server retries it only when one of its timeouts fires. planBatch and commitProgress had only a
 * 30 s start-to-close timeout, so a partition sat idle up to 30 s (20.1 s after an 11 s outage,
 * test/faults/temporal-outage.test.ts). They now have the data path's 2 s heartbeat timeout and
 * heartbeat while they run.
 *
 * Reproduced without killing anything: a raw `PollActivityTaskQueue` call on the partition's task
 * queue takes the first planBatch task and never answers (exactly what the server sees when the
 * worker that held it is gone), then the real worker starts. Asserted from the history: the lost
 * attempt ended by its HEARTBEAT timeout (START_TO_CLOSE, 30 s, before the fix), the retry ran on
 * the real worker, and every event landed once. Printed: seconds from the lost task to its retry.
 * Uses the shared Temporal, Kafka and ClickHouse with its own task queue, topic and database.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { partitionWorkflowId, pipelineWorkflowId, type PartitionConsumerInputRaw } from '../../schemas/ingest/pipeline.js';
import { startPipeline } from '../../workers/pipelines.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { bundlePlatformWorkflows, loadAlerting } from '../../workers/worker.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const { TimeoutType } = proto.temporal.api.enums.v1;
const config = testConfig();
const id = uniqueId('t');
const pipelineId = id.replace(/_/g, '-').slice(2);
const topic = `lost-${id}`;
const taskQueue = `lost-${id}`;
const workflowId = partitionWorkflowId(pipelineId, topic, 0);
let kafka: Kafka;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let temporal: Client;
let connection: NativeConnection;
const workers: { worker: Worker; running: Promise<void> }[] = [];
let produced: GeneratorSummary;
const supervisorWorkflows: string[] = [];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function run(worker: Worker): Promise<void> {
  workers.push({ worker, running: worker.run() });
  await waitFor('the worker running', async () => (worker.getState() === 'RUNNING' ? true : undefined));
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'lineage_batches']) await warehouse.command({ query: `SYSTEM STOP MERGES ${table}` });
  temporal = await connectTemporal(config, endpoints);
  connection = await NativeConnection.connect({ address: endpoints.temporalAddress });
  produced = await produceEvents(kafka, { topic, partitions: 1, count: 120, seed: 5, startTime: Date.now() - 3_600_000 });
}, 180_000);

afterAll(async () => {
  await temporal?.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
  for (const w of supervisorWorkflows) await temporal?.workflow.getHandle(w).terminate('test over').catch(() => undefined);
  for (const { worker } of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  await Promise.allSettled(workers.map((w) => w.running));
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.allSettled([admin?.close(), warehouse?.close(), temporal?.connection.close(), connection?.close()]);
}, 120_000);

describe('a partition activity task lost with its worker or its server', () => {
  it('is retried after the 2 s heartbeat timeout, not the 30 s start-to-close, and every event lands once', { timeout: 180_000 }, async () => {
    const endpoints = stackEndpoints();
    // Workflow tasks only: the lost planBatch task must go to the raw poll below, not to a worker.
    await run(await Worker.create({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, workflowBundle: await bundlePlatformWorkflows() }));
    // A long poll needs a deadline (the server refuses one without); 70 s is past its own 60 s.
    const lost = temporal.connection.withDeadline(Date.now() + 70_000, () =>
      temporal.workflowService.pollActivityTaskQueue({ namespace: config.TEMPORAL_NAMESPACE, taskQueue: { name: taskQueue }, identity: `lost-task-${id}` }),
    );
    const input: PartitionConsumerInputRaw = { pipelineId, topic, partition: 0, startFrom: 'earliest', batchMaxEvents: 50, pollIntervalMs: 200, reportLandings: false };
    await temporal.workflow.start('partitionConsumer', { taskQueue, workflowId, args: [input] });
    const task = await lost;
    const lostAt = Date.now();
    expect(task.activityType?.name).toBe('planBatch');

    const activities = createActivities({
      kafka: createKafka(config, endpoints, `-${taskQueue}`),
      warehouse,
      temporal,
      taskQueue,
      processorVersion: 'lost-task',
      alerting: await loadAlerting(config),
      chunkMaxBytes: 4096,
    });
    await run(await Worker.create({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, activities, maxHeartbeatThrottleInterval: '500 milliseconds' }));

    await waitFor('every event landed', async () => {
      const [r] = await (await warehouse.query({ query: 'SELECT sum(valid_count + rejected_count) AS n FROM lineage_batches', format: 'JSONEachRow' })).json<{ n: string }>();
      return Number(r?.n ?? 0) === produced.valid + produced.rejected ? true : undefined;
    }, 120_000);

    const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
    const retried = (history.events ?? []).find((e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.attempt) === 2);
    const retriedAt = retried?.eventTime ? Number(retried.eventTime.seconds) * 1000 + Math.floor((retried.eventTime.nanos ?? 0) / 1e6) : Number.NaN;
    const timeoutType = retried?.activityTaskStartedEventAttributes?.lastFailure?.timeoutFailureInfo?.timeoutType;
    const timeout = timeoutType === undefined || timeoutType === null ? 'none' : TimeoutType[timeoutType];
    const [events] = await (await warehouse.query({ query: 'SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events', format: 'JSONEachRow' })).json<{ n: string; u: string }>();
    const [dead] = await (await warehouse.query({ query: 'SELECT count() AS n FROM dead_letters', format: 'JSONEachRow' })).json<{ n: string }>();
    console.log(`lost planBatch task: retried ${((retriedAt - lostAt) / 1000).toFixed(2)} s after it was handed out (timeout ${timeout}); produced ${produced.valid + produced.rejected}, landed ${events!.n}, dead-lettered ${dead!.n}, duplicated ${Number(events!.n) - Number(events!.u)}, lost ${produced.valid - Number(events!.u)}`);

    expect(retried?.activityTaskStartedEventAttributes?.identity).not.toBe(`lost-task-${id}`);
    expect(timeout).toBe('TIMEOUT_TYPE_HEARTBEAT');
    // Without FINAL, merges stopped: every valid offset once, every reject dead-lettered once.
    expect([Number(events!.n), Number(events!.u), Number(dead!.n)]).toEqual([produced.valid, produced.valid, produced.rejected]);
  });

  it('a pipeline supervisor\'s activity lost with its worker is retried after the heartbeat timeout, not its start-to-close', { timeout: 180_000 }, async () => {
    // The same loss for the supervisor: in CI a worker SIGKILLed while it ran a supervisor's
    // detectThresholds (start-to-close 5 min, no heartbeat) left the pipeline without rollups for
    // the rest of the test (pipeline.test.ts, "pipeline with a worker killed mid-stream"). Its
    // first activity (pipelineDeclaresAnalytics, start-to-close 1 min) is taken by a raw poll that
    // never answers; the retry must start within a few seconds, by HEARTBEAT timeout.
    const endpoints = stackEndpoints();
    const queue = `${taskQueue}-sup`;
    const supId = `${pipelineId}-sup`;
    await run(await Worker.create({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue: queue, workflowBundle: await bundlePlatformWorkflows() }));
    const lost = temporal.connection.withDeadline(Date.now() + 70_000, () =>
      temporal.workflowService.pollActivityTaskQueue({ namespace: config.TEMPORAL_NAMESPACE, taskQueue: { name: queue }, identity: `lost-task-${id}` }),
    );
    supervisorWorkflows.push(pipelineWorkflowId(supId));
    await startPipeline(temporal, queue, { pipelineId: supId, topic: `${topic}-sup`, partitions: 1, pollIntervalMs: 200, rollup: { intervalMs: 500 }, detector: { enabled: false } });
    const task = await lost;
    const lostAt = Date.now();
    const activities = createActivities({ kafka: createKafka(config, endpoints, `-${queue}`), warehouse, temporal, taskQueue: queue, processorVersion: 'lost-task', alerting: await loadAlerting(config) });
    await run(await Worker.create({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue: queue, activities, maxHeartbeatThrottleInterval: '500 milliseconds' }));
    const retried = await waitFor('the lost activity retried', async () => {
      const history = await temporal.workflow.getHandle(pipelineWorkflowId(supId)).fetchHistory();
      return (history.events ?? []).find((e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.attempt) === 2);
    }, 40_000);
    const retriedAt = Number(retried.eventTime!.seconds) * 1000 + Math.floor((retried.eventTime!.nanos ?? 0) / 1e6);
    const timeoutType = retried.activityTaskStartedEventAttributes?.lastFailure?.timeoutFailureInfo?.timeoutType;
    console.log(`lost supervisor ${task.activityType?.name} task: retried ${((retriedAt - lostAt) / 1000).toFixed(2)} s after it was handed out`);
    expect(timeoutType === undefined || timeoutType === null ? 'none' : TimeoutType[timeoutType]).toBe('TIMEOUT_TYPE_HEARTBEAT');
  });
});
