/**
 * Exactly-once is physical: with merges stopped on every table it checks, `count()` without FINAL
 * equals the number of offsets after retries under different worker configurations (chunk size,
 * heartbeat resume point). Runs the real landing activity on the real broker and ClickHouse.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
const topic = `exact-${id}`;
let kafka: Kafka;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;
let produced: GeneratorSummary;

/** Runs an activity function in a fresh activity context (optionally resuming from heartbeat details), typed. */
function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function counts(pipeline: string): Promise<{ events: number; dead: number; uniq: number }> {
  const [r] = await rows<{ e: string; d: string; u: string }>(
    `SELECT (SELECT count() FROM events WHERE pipeline = {p:String}) AS e,
            (SELECT count() FROM dead_letters WHERE pipeline = {p:String}) AS d,
            (SELECT uniqExact(offset) FROM events WHERE pipeline = {p:String}) AS u`,
    { p: pipeline },
  );
  return { events: Number(r!.e), dead: Number(r!.d), uniq: Number(r!.u) };
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  // Nothing may depend on ReplacingMergeTree collapsing duplicates.
  for (const table of ['events', 'dead_letters', 'lineage_batches']) await warehouse.command({ query: `SYSTEM STOP MERGES {db:Identifier}.{t:Identifier}`, query_params: { db: id, t: table } });
  resources = new KafkaResources(kafka);
  produced = await produceEvents(kafka, { topic, partitions: 1, count: 300, rate: 100, invalid: 0.05, malformed: 0.03, seed: 11, startTime: recentStart() });
});

afterAll(async () => {
  for (const table of ['events', 'dead_letters', 'lineage_batches']) await warehouse?.command({ query: `SYSTEM START MERGES {db:Identifier}.{t:Identifier}`, query_params: { db: id, t: table } }).catch(() => undefined);
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

describe('exactly-once without merges', () => {
  it('retries under a different chunk size and from a heartbeat insert the planned steps once', async () => {
    const pipelineId = 'chunks';
    const small = createIngestActivities({ kafka, warehouse, processorVersion: 'a', resources, chunkMaxBytes: 4096 });
    const large = createIngestActivities({ kafka, warehouse, processorVersion: 'b', resources, chunkMaxBytes: 8 << 20 });
    const odd = createIngestActivities({ kafka, warehouse, processorVersion: 'c', resources, chunkMaxBytes: 6000 });
    // The plan as recorded in history by the first worker (small steps: about 14 offsets each).
    const plan = await run(small.planBatch, { pipelineId, topic, partition: 0, cursor: 0, maxEvents: 300, consumerGroup: `g-${id}`, startFrom: 'earliest' as const, recordBytes: 300 });
    expect(plan.steps.length).toBeGreaterThan(10);
    const input = { plan, maxEventBytes: 1 << 20 };
    const first = await run(small.landBatch, input);
    expect(first.valid + first.rejected).toBe(300);
    // A retry on a worker with another chunk size: same steps, same tokens.
    await run(large.landBatch, input);
    // A retry resuming from a heartbeat recorded after step 5 of the first attempt.
    const details = { batchId: plan.batchId, stepsDone: 5, valid: 0, rejected: 0, alreadyLanded: 0, bytes: 0, versions: [], codes: {}, minEventTime: null, maxEventTime: null, startedAt: '2026-01-01 00:00:00.000' };
    await (new MockActivityEnvironment({ heartbeatDetails: details }).run(odd.landBatch, input) as Promise<unknown>);
    expect(await counts(pipelineId)).toEqual({ events: produced.valid, dead: produced.rejected, uniq: produced.valid });
  });

  it('a batch re-planned with other steps (workflow restarted from the group offset) adds no row', async () => {
    const pipelineId = 'replanned';
    const acts = createIngestActivities({ kafka, warehouse, processorVersion: 'a', resources });
    // First landing in steps of 7 offsets, then the same offsets planned as one step of 300, then as steps of 40.
    await run(acts.landBatch, { plan: planRange(pipelineId, topic, 0, 0, 300, 0, 7), maxEventBytes: 1 << 20 });
    const again = await run(acts.landBatch, { plan: planRange(pipelineId, topic, 0, 0, 300, 0, 300), maxEventBytes: 1 << 20 });
    expect(again.alreadyLanded).toBe(300);
    await run(acts.landBatch, { plan: planRange(pipelineId, topic, 0, 100, 300, 0, 40), maxEventBytes: 1 << 20 });
    expect(await counts(pipelineId)).toEqual({ events: produced.valid, dead: produced.rejected, uniq: produced.valid });
  });

  it('refuses a malformed plan with a non-retryable error naming the field', async () => {
    const acts = createIngestActivities({ kafka, warehouse, processorVersion: 'a', resources });
    const plan = planRange('bad', topic, 0, 0, 10, 0, 5);
    const broken = { ...plan, steps: [plan.steps[0]!] };
    await expect(run(acts.landBatch, { plan: broken, maxEventBytes: 1024 })).rejects.toThrow(/steps: expected steps to tile \[0, 10\)/);
  });
});
