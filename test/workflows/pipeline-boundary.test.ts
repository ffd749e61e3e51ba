/**
 * The pipeline workflows' public boundary on a real Temporal server with an in-process worker
 * (startWorker): malformed inputs fail at once, non-retryably, with a message naming each field;
 * the pause/resume updates reject bad arguments without harming the workflow and steer it.
 */
import type { Client } from '@temporalio/client';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionWorkflowId, pipelineWorkflowId, type PartitionProgress, type PipelineProgress } from '../../schemas/ingest/pipeline.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { aggregatorWorkflowId } from '../../workflows/analytics/aggregator.js';
import { startPipeline } from '../../workers/pipelines.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = { ...testConfig(), LOG_LEVEL: 'warn' as const };
const id = uniqueId('t');
const taskQueue = `boundary-${id}`;
let worker: RunningWorker;
let client: Client;

beforeAll(async () => {
  worker = await startWorker({ config, endpoints: stackEndpoints(), database: id, taskQueue });
  client = worker.temporal;
});

afterAll(async () => {
  await worker?.shutdown();
  const admin = createWarehouse(config, stackEndpoints(), 'default');
  await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await admin.close();
});

async function failureOf(type: string, args: unknown[]): Promise<ApplicationFailure> {
  const handle = await client.workflow.start(type, { taskQueue, workflowId: `${type}-${uniqueId('bad')}`, args });
  const error = await handle.result().then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('pipeline workflow boundary', () => {
  it('a malformed pipeline input fails at once, non-retryable, naming each field', async () => {
    const failure = await failureOf('pipeline', [{ pipelineId: 'Bad Id', topic: 42, batchMaxEvents: 'lots' }]);
    expect(failure.type).toBe('invalid_input');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/^pipeline input: /);
    expect(failure.message).toContain('pipelineId: expected 1-63 chars');
    expect(failure.message).toContain('topic: expected a string, got 42');
    expect(failure.message).toContain('batchMaxEvents: expected a number, got "lots"');
  });

  it('a partition consumer without a partition fails the same way', async () => {
    const failure = await failureOf('partitionConsumer', [{ pipelineId: 'demo', topic: 'requests' }]);
    expect(failure.type).toBe('invalid_input');
    expect(failure.message).toContain('partition: expected a partition number, got nothing');
  });

  it('pause/resume updates reject bad arguments and steer a running partition consumer', async () => {
    const topic = `boundary-${id}`;
    const kafka = createKafka(config, stackEndpoints(), `-${id}`);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const workflowId = partitionWorkflowId('boundary', topic, 0);
    const handle = await client.workflow.start('partitionConsumer', { taskQueue, workflowId, args: [{ pipelineId: 'boundary', topic, partition: 0, pollIntervalMs: 200 }] });
    try {
      const rejected = await handle.executeUpdate('pause', { args: [{ reason: 5 }] }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(rejected).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(((rejected as WorkflowUpdateFailedError).cause as ApplicationFailure).message).toContain('reason: ');
      const paused = await handle.executeUpdate<PartitionProgress, [unknown]>('pause', { args: [{ reason: 'maintenance' }] });
      expect(paused).toMatchObject({ paused: true, partition: 0, topic });
      expect((await handle.query<PartitionProgress>('progress')).paused).toBe(true);
      const resumed = await handle.executeUpdate<PartitionProgress, [unknown]>('resume', { args: [{}] });
      expect(resumed.paused).toBe(false);
      expect((await handle.describe()).status.name).toBe('RUNNING');
    } finally {
      await handle.terminate('test over');
    }
  });

  it('the supervisor brings back a partition consumer that was terminated, and leaves running ones alone', async () => {
    const topic = `reattach-${id}`;
    const pipelineId = `reattach-${id.slice(2).replace(/_/g, '-')}`;
    const input = { pipelineId, topic, partitions: 2, pollIntervalMs: 200, rollup: { intervalMs: 200 }, detector: { enabled: false } };
    const { handle, started, workflowId } = await startPipeline(client, taskQueue, input);
    expect({ started, workflowId }).toEqual({ started: true, workflowId: pipelineWorkflowId(pipelineId) });
    try {
      // Starting it again keeps the running one (what `npm start` relies on after a restart).
      expect((await startPipeline(client, taskQueue, input)).started).toBe(false);
      await expect(startPipeline(client, taskQueue, { ...input, pipelineId: 'Not Valid' })).rejects.toThrow('pipelineId: expected');
      const child = (p: number) => client.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p));
      await waitUntil(async () => (await child(1).describe()).status.name === 'RUNNING');
      const before = await Promise.all([0, 1].map(async (p) => (await child(p).describe()).runId));
      await child(1).terminate('simulated loss of a consumer');
      await waitUntil(async () => {
        const d = await child(1).describe();
        return d.status.name === 'RUNNING' && d.runId !== before[1];
      });
      expect((await child(0).describe()).runId).toBe(before[0]);
      const progress = await handle.query<PipelineProgress>('progress');
      expect(progress.partitions).toEqual([0, 1]);
    } finally {
      await handle.terminate('test over');
      for (const p of [0, 1]) await client.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)).terminate('test over').catch(() => undefined);
    }
  });
});

describe('the pipeline progress query', () => {
  it('shows each partition: cursor, landed, rejected and lag, as its consumer reports them and as ClickHouse holds them', async () => {
    const topic = `progress-${id}`;
    const pipelineId = `progress-${id.slice(2).replace(/_/g, '-')}`;
    const kafka = createKafka(config, stackEndpoints(), `-${id}-progress`);
    const produced = await produceEvents(kafka, { topic, partitions: 2, count: 600, rate: 1000, invalid: 0.05, malformed: 0.02, seed: 7 });
    const { handle } = await startPipeline(client, taskQueue, { pipelineId, topic, partitions: 2, startFrom: 'earliest', pollIntervalMs: 200, rollup: { intervalMs: 300 }, detector: { enabled: false } });
    try {
      let progress: PipelineProgress | undefined;
      await waitUntil(async () => {
        progress = await handle.query<PipelineProgress>('progress');
        return progress.totals.landed !== null && progress.totals.landed + (progress.totals.rejected ?? 0) === produced.total && progress.totals.lag === 0;
      }, 120_000);
      expect(progress!.partitionProgress.map((p) => p.partition)).toEqual([0, 1]);
      expect(progress!.totals).toEqual({ landed: produced.valid, rejected: produced.rejected, lag: 0 });
      expect(progress!.partitionProgressAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      // Each row agrees with the partition consumer's own progress query (it has caught up, so they hold still) ...
      for (const row of progress!.partitionProgress) {
        const own = await client.workflow.getHandle(partitionWorkflowId(pipelineId, topic, row.partition)).query<PartitionProgress>('progress');
        expect(row).toMatchObject({ cursor: own.cursor, landed: own.landed, rejected: own.rejected, lag: own.lag, paused: false });
        expect(row.error).toBeUndefined();
      }
      // ... and with what ClickHouse holds per partition.
      const counts = await worker.warehouse
        .query({
          query: `SELECT partition, (SELECT count() FROM events WHERE pipeline = {p:String} AND partition = d.partition) AS landed, count() AS rejected
                  FROM dead_letters AS d WHERE pipeline = {p:String} GROUP BY partition ORDER BY partition`,
          query_params: { p: pipelineId },
          format: 'JSONEachRow',
        })
        .then((r) => r.json<{ partition: number; landed: string; rejected: string }>());
      for (const c of counts) {
        const row = progress!.partitionProgress.find((p) => p.partition === Number(c.partition))!;
        expect({ landed: row.landed, rejected: row.rejected }).toEqual({ landed: Number(c.landed), rejected: Number(c.rejected) });
      }
    } finally {
      await handle.terminate('test over');
      for (const p of [0, 1]) await client.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)).terminate('test over').catch(() => undefined);
    }
  });
});

describe('stopping a pipeline', () => {
  it('cancelling the supervisor cancels its partition consumers', async () => {
    const topic = `stop-${id}`;
    const pipelineId = `stop-${id.slice(2).replace(/_/g, '-')}`;
    const { handle } = await startPipeline(client, taskQueue, { pipelineId, topic, partitions: 2, pollIntervalMs: 200, rollup: { intervalMs: 500 }, detector: { enabled: false } });
    const children = [0, 1].map((p) => client.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)));
    await waitUntil(async () => (await Promise.all(children.map(async (c) => (await c.describe()).status.name))).every((s) => s === 'RUNNING'));
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    for (const c of children) {
      await waitUntil(async () => (await c.describe()).status.name === 'CANCELLED');
    }
    expect((await handle.describe()).status.name).toBe('CANCELLED');
  });

  it('a cancel while the supervisor is still setting up stops the consumers it has started', async () => {
    // The cancel arrives as soon as the aggregator exists: the supervisor has started its consumers
    // and is still starting the aggregator or reading the partitions' progress. Before the fix the supervisor completed as cancelled in the
    // same task as the SDK's cancel requests to its children, the server dropped those, and the
    // consumers ran on with nobody to stop them.
    const topic = `stop-early-${id}`;
    const pipelineId = `stop-early-${id.slice(2).replace(/_/g, '-')}`;
    const { handle } = await startPipeline(client, taskQueue, { pipelineId, topic, partitions: 2, pollIntervalMs: 200, rollup: { intervalMs: 500 }, detector: { enabled: false } });
    const children = [0, 1].map((p) => client.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)));
    const aggregator = client.workflow.getHandle(aggregatorWorkflowId(pipelineId));
    await waitUntil(async () => (await aggregator.describe()).status.name !== undefined, 60_000, 5);
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    const statusOf = async (c: (typeof children)[number]) => c.describe().then((d) => d.status.name, () => 'NOT_STARTED');
    await waitUntil(async () => (await Promise.all(children.map(statusOf))).every((s) => s !== 'RUNNING'), 30_000).catch(async () => {
      throw new Error(`consumers still running after the supervisor was cancelled: ${(await Promise.all(children.map(statusOf))).join(', ')}`);
    });
    expect(await statusOf(children[0]!)).toBe('CANCELLED');
  });
});

/** Polls until `probe` is true (bounded, so a broken supervisor fails the test instead of hanging it). */
async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 250): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
