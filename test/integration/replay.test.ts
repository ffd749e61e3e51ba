/**
 * Replay after a contract fix (issue 7, point 5), on the real stack: records dead-lettered by a
 * worker whose request-telemetry v1 contract wrongly refused 5xx statuses are replayed by the
 * `replay` workflow on a real worker running the fixed (working tree's) contract. They land once,
 * under a new generation (batch ids end in /g1), their dead letters are marked resolved, the replay
 * is in lineage; a second identical replay (here through `platform replay`) lands nothing new, and
 * valid rows never double; every generation keeps its own lineage_batches row (migration 076).
 * Merges are stopped so counts cannot pass by luck.
 */
import { execFile } from 'node:child_process';
import type { ClickHouseClient } from '@clickhouse/client';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { landedBatchesQuery } from '../../activities/analytics/aggregate-sql.js';
import { createIngestActivities, KafkaResources } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { defineSubject, subjects } from '../../schemas/contracts/index.js';
import { requestTelemetry } from '../../schemas/contracts/request-telemetry/index.js';
import { requestTelemetryV1 } from '../../schemas/contracts/request-telemetry/v1.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { defaultConsumerGroup } from '../../schemas/ingest/pipeline.js';
import { replayWorkflowId, type ReplayInputRaw, type ReplayResult } from '../../schemas/ingest/replay.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = { ...testConfig(), LOG_LEVEL: 'warn' as const };
const id = uniqueId('t');
const taskQueue = `replay-${id}`;
const topic = `replay-${id}`;
const pipelineId = 'fixed';
let kafka: Kafka;
let producer: Producer;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;
let worker: RunningWorker;

/** The contract as the old worker had it: v1 refused every 5xx status (the bug the fix removes). */
const buggy = [
  defineSubject({ ...requestTelemetry, versions: [{ version: 1, schema: requestTelemetryV1.extend({ status: z.number().int().min(100).max(499) }) }, ...requestTelemetry.versions.slice(1)] }),
  ...subjects.filter((s) => s.subject !== requestTelemetry.subject),
];

const T = recentStart();
const record = (n: number, status: number) =>
  JSON.stringify({
    id: `7a1c1f4e-8a39-4b8e-9d55-${String(n).padStart(12, '0')}`,
    subject: 'request-telemetry',
    version: 1,
    time: new Date(T + n * 1000).toISOString(),
    key: 'acme',
    data: { service: 'checkout', route: '/pay', method: 'POST', status, duration_ms: 12, region: 'eu-west-1', tenant_id: 'acme' },
  });
/** 20 records: offsets 1, 5, 9, 13 are 503s (refused by the buggy contract), offset 17 is malformed JSON (refused by both). */
const values = Array.from({ length: 20 }, (_, n) => (n === 17 ? '{"id": ' : record(n, n % 4 === 1 ? 503 : 200)));
const fiveHundreds = values.map((_, n) => n).filter((n) => n !== 17 && n % 4 === 1);

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: { p: pipelineId, ...params }, format: 'JSONEachRow' })).json<T>();
}

async function counts(): Promise<{ events: number; uniq: number; dead: number; resolutions: number; open: number }> {
  const [r] = await rows<Record<string, string>>(
    `SELECT (SELECT count() FROM events WHERE pipeline = {p:String}) AS events,
            (SELECT uniqExact(offset) FROM events WHERE pipeline = {p:String}) AS uniq,
            (SELECT count() FROM dead_letters WHERE pipeline = {p:String}) AS dead,
            (SELECT count() FROM dead_letter_resolutions WHERE pipeline = {p:String}) AS resolutions,
            (SELECT count() FROM open_dead_letters WHERE pipeline = {p:String}) AS open`,
  );
  return Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, Number(v)])) as never;
}

async function replay(input: Partial<ReplayInputRaw>, workflowId = replayWorkflowId(pipelineId, topic, 0)): Promise<ReplayResult> {
  const full = { pipelineId, topic, partition: 0, from: 0, to: 20, by: 'ann', reason: 'request-telemetry v1 accepts 5xx again', ...input };
  return temporal.workflow.execute('replay', { taskQueue, workflowId, args: [full] }) as Promise<ReplayResult>;
}

function platform(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'workers/platform.ts', 'replay', ...args], { env: { ...process.env, TEMPORAL_TASK_QUEUE: taskQueue }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'dead_letter_resolutions', 'lineage_batches']) {
    await admin.command({ query: 'SYSTEM STOP MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } });
  }
  resources = new KafkaResources(kafka);
  // The first landing, by a worker with the buggy contract: the real landing activity.
  const old = createIngestActivities({ kafka, warehouse, processorVersion: 'old', resources, contracts: buggy });
  await run(old.ensureTopic, { topic, partitions: 1 });
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({ topic, messages: values.map((value) => ({ key: 'acme', value, partition: 0 })) });
  const first = await run(old.landBatch, { plan: planRange(pipelineId, topic, 0, 0, 20, 0, 6), maxEventBytes: 1 << 20 });
  expect(first).toMatchObject({ valid: 20 - 1 - fiveHundreds.length, rejected: 1 + fiveHundreds.length, rejectCodes: { contract_violation: fiveHundreds.length, malformed_json: 1 } });
  await run(old.commitProgress, { consumerGroup: defaultConsumerGroup(pipelineId), topic, partition: 0, offset: 20 });
  // The fixed code: a real worker with the working tree's contracts.
  worker = await startWorker({ config, endpoints, database: id, taskQueue, skipMigrations: true });
}, 180_000);

afterAll(async () => {
  await worker?.shutdown();
  await producer?.disconnect();
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('replay after a contract fix', () => {
  it('lands the fixed records once under a new generation, resolves their dead letters, records the replay', { timeout: 120_000 }, async () => {
    expect(await counts()).toEqual({ events: 15, uniq: 15, dead: 5, resolutions: 0, open: 5 });
    const result = await replay({});
    expect(result).toMatchObject({ generation: 1, from: 0, to: 20, read: 20, landed: 4, rejected: 1, resolved: 4, alreadyLanded: 16, state: 'completed' });
    expect(await counts()).toEqual({ events: 19, uniq: 19, dead: 5, resolutions: 4, open: 1 });
    const landed = await rows<{ offset: string; batch_id: string }>('SELECT offset, batch_id FROM events WHERE pipeline = {p:String} AND batch_id LIKE {g:String} ORDER BY offset', { g: '%/g1' });
    expect(landed.map((r) => Number(r.offset))).toEqual(fiveHundreds);
    expect(landed[0]!.batch_id).toBe(`${pipelineId}/${topic}/0/0-20/g1`);
    const resolved = await rows<{ offset: string; reason_code: string; resolved_by: string; reason: string; generation: number }>(
      'SELECT offset, reason_code, resolved_by, reason, generation FROM dead_letter_resolutions WHERE pipeline = {p:String} ORDER BY offset',
    );
    expect(resolved.map((r) => [Number(r.offset), r.reason_code, r.resolved_by, r.generation])).toEqual(fiveHundreds.map((o) => [o, 'contract_violation', 'ann', 1]));
    const [open] = await rows<{ offset: string; reason_code: string }>('SELECT offset, reason_code FROM open_dead_letters WHERE pipeline = {p:String}');
    expect([Number(open!.offset), open!.reason_code]).toEqual([17, 'malformed_json']);
    const lineage = await rows<Record<string, unknown>>(
      'SELECT status, generation, from_offset, to_offset, requested_by, reason, workflow_id, batch_ids, landed, resolved FROM lineage_replays WHERE pipeline = {p:String} ORDER BY generation, status',
    );
    expect(lineage.map((l) => [l.status, l.generation, Number(l.from_offset), Number(l.to_offset), l.requested_by, l.workflow_id])).toEqual([
      ['completed', 1, 0, 20, 'ann', replayWorkflowId(pipelineId, topic, 0)],
      ['started', 1, 0, 20, 'ann', replayWorkflowId(pipelineId, topic, 0)],
    ]);
    expect(lineage[0]).toMatchObject({ reason: 'request-telemetry v1 accepts 5xx again', batch_ids: [`${pipelineId}/${topic}/0/0-20/g1`] });
    expect([Number(lineage[0]!.landed), Number(lineage[0]!.resolved)]).toEqual([4, 4]);
    const [batch] = await rows<{ valid_count: number }>('SELECT valid_count FROM lineage_batches WHERE batch_id = {b:String}', { b: `${pipelineId}/${topic}/0/0-20/g1` });
    expect(Number(batch!.valid_count)).toBe(19);
  });

  it('a second identical replay, from `platform replay`, lands nothing new under the next generation', { timeout: 180_000 }, async () => {
    const cli = await platform('--pipeline', pipelineId, '--topic', topic, '--partition', '0', '--from', '0', '--to', '20', '--reason', 'again', '--by', 'bob');
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toContain(`replay generation 2 of ${pipelineId} ${topic}[0]: read 20 offset(s) of [0, 20): 19 valid (0 landed now, 19 already landed before), 1 still rejected (dead letters stay open); 0 dead letter(s) resolved`);
    expect(cli.code).toBe(0);
    // Only the open dead letters: the range narrows to offset 17, which still fails.
    const only = await replay({ onlyDeadLetters: true });
    expect(only).toMatchObject({ generation: 3, from: 17, to: 18, read: 1, landed: 0, rejected: 1, resolved: 0 });
    expect(await counts()).toEqual({ events: 19, uniq: 19, dead: 5, resolutions: 4, open: 1 });
  });

  it('keeps the lineage row of every generation, under FINAL too: a replay never erases the landing it re-read', { timeout: 60_000 }, async () => {
    // Three replays started at offset 0 or 17; before migration 076 the replays' rows replaced the
    // first landing's (same sorting key) and FINAL showed one row for offset 0.
    const batches = await rows<{ batch_id: string; from_offset: string; valid_count: number; rejected_count: number; processor_version: string }>(
      'SELECT batch_id, from_offset, valid_count, rejected_count, processor_version FROM lineage_batches FINAL WHERE pipeline = {p:String} ORDER BY from_offset, batch_id',
    );
    const base = `${pipelineId}/${topic}/0`;
    expect(batches.map((b) => [b.batch_id, Number(b.from_offset), Number(b.valid_count), Number(b.rejected_count)])).toEqual([
      [`${base}/0-20`, 0, 15, 5],
      [`${base}/0-20/g1`, 0, 19, 1],
      [`${base}/0-20/g2`, 0, 19, 1],
      [`${base}/17-18/g3`, 17, 0, 1],
    ]);
    const generations = await rows<{ batch_id: string; generation: number }>('SELECT batch_id, generation FROM lineage_batches FINAL WHERE pipeline = {p:String} ORDER BY generation');
    expect(generations.map((g) => g.generation)).toEqual([0, 1, 2, 3]);
    expect(generations.map((g) => g.batch_id)).toEqual(batches.map((b) => b.batch_id));
    expect(batches[0]!.processor_version).toBe('old');
    // Every landed row and dead letter still traces to its batch.
    const [orphans] = await rows<Record<string, string>>(
      `SELECT (SELECT count() FROM events WHERE pipeline = {p:String} AND batch_id NOT IN (SELECT batch_id FROM lineage_batches FINAL WHERE pipeline = {p:String})) AS events,
              (SELECT count() FROM dead_letters WHERE pipeline = {p:String} AND batch_id NOT IN (SELECT batch_id FROM lineage_batches FINAL WHERE pipeline = {p:String})) AS dead`,
    );
    expect([Number(orphans!.events), Number(orphans!.dead)]).toEqual([0, 0]);
    // The aggregator's cursor reads only first landings, which tile the partition.
    const cursor = landedBatchesQuery(pipelineId, {}, 100);
    const landed = await (await warehouse.query({ query: cursor.query, query_params: cursor.params, format: 'JSONEachRow' })).json<{ from_offset: string; to_offset: string }>();
    expect(landed.map((b) => [Number(b.from_offset), Number(b.to_offset)])).toEqual([[0, 20]]);
  });

  it('refuses a range beyond the committed offset, a missing field and a wrong workflow id, naming each', { timeout: 120_000 }, async () => {
    const failure = async (p: Promise<unknown>): Promise<string> => {
      const err = await p.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      // The innermost cause: the activity's or the workflow's own ApplicationFailure.
      let cause: Error | undefined = (err as WorkflowFailedError).cause;
      while (cause?.cause instanceof Error) cause = cause.cause;
      return cause?.message ?? '';
    };
    expect(await failure(replay({ to: 25 }))).toMatch(/^replay to: expected at most 20 \(the pipeline's committed offset on replay-t_\S+\[0\]; later offsets are still being landed by the partition workflow\), got 25$/);
    expect(await failure(replay({ by: '' }))).toBe('replay input: by: expected who asks for the replay, e.g. "ann", got ""');
    expect(await failure(replay({ from: 5, to: 5 }))).toBe('replay input: to: expected an offset above from (5), got 5');
    expect(await failure(replay({}, `replay-other-${id}`))).toContain(`replay workflow id: expected ${replayWorkflowId(pipelineId, topic, 0)}`);
    const usage = await platform('--pipeline', pipelineId, '--partition', 'zero', '--from', '0', '--to', '1');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--partition: expected a non-negative integer, got "zero"');
  });
});
