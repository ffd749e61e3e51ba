/**
 * Duplicate event ids across batches (issue 7, point 6): per pipeline, an event whose id already
 * landed in an earlier batch (any partition) within the duplicate-id window becomes a
 * `duplicate_id` dead letter pointing at the offset where the id first landed, whatever the batch
 * and step boundaries; re-landing the same offsets (retry, re-plan) is never a duplicate of itself.
 * Real broker, real ClickHouse, the real landing activity; merges stopped so counts cannot pass by luck.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
const topic = `dupids-${id}`;
let kafka: Kafka;
let producer: Producer;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;
let byCheck: Record<'claims' | 'lookup', ReturnType<typeof createIngestActivities>>;

const T = recentStart();
const uuid = (n: number) => `0d9c6a3e-2b1f-4c5d-8e7f-${String(n).padStart(12, '0')}`;
const [A, B, C, D, E, G] = [1, 2, 3, 4, 5, 6].map(uuid) as [string, string, string, string, string, string];
const telemetry = { service: 'checkout', route: '/orders/:id', method: 'GET', status: 200, duration_ms: 40, region: 'eu-west-1', tenant_id: 'acme' };
const event = (eventId: string, offsetMs = 0) =>
  JSON.stringify({ id: eventId, subject: 'request-telemetry', version: 1, time: new Date(T + offsetMs).toISOString(), key: 'acme', data: telemetry });
const twoDays = 2 * 24 * 3_600_000;

/** Partition 0, in offset order. */
const p0 = [event(A), event(B), event(C), event(D), event(A, 1000), event(B, twoDays), event(E), event(C.toUpperCase(), 5000), event(A, 9000)];
/** Partition 1. */
const p1 = [event(D, 60_000), event(G)];

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}

async function rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

/** Every row of the pipeline as [partition, offset] (events) and [partition, offset, first partition, first offset] (dead letters). */
async function landed(pipeline: string): Promise<{ events: number[][]; dead: (number | string)[][] }> {
  const events = await rows<{ partition: number; offset: string }>('SELECT partition, offset FROM events WHERE pipeline = {p:String} ORDER BY partition, offset', { p: pipeline });
  const dead = await rows<{ partition: number; offset: string; reason_code: string; reason_detail: string }>(
    'SELECT partition, offset, reason_code, reason_detail FROM dead_letters WHERE pipeline = {p:String} ORDER BY partition, offset',
    { p: pipeline },
  );
  return {
    events: events.map((e) => [Number(e.partition), Number(e.offset)]),
    dead: dead.map((d) => {
      const detail = JSON.parse(d.reason_detail) as { firstPartition: number; firstOffset: string; firstTopic: string };
      expect(detail.firstTopic).toBe(topic);
      return [Number(d.partition), Number(d.offset), d.reason_code, detail.firstPartition, Number(detail.firstOffset)];
    }),
  };
}

const expected = {
  events: [
    [0, 0],
    [0, 1],
    [0, 2],
    [0, 3],
    // B again, but two days later: outside the 24 h window, so it lands.
    [0, 5],
    [0, 6],
    [1, 1],
  ],
  dead: [
    [0, 4, 'duplicate_id', 0, 0],
    // The same id in upper case is the same UUID.
    [0, 7, 'duplicate_id', 0, 2],
    // A third A, in the same step as the second: points at where A landed, not at the repeat.
    [0, 8, 'duplicate_id', 0, 0],
    // Another partition: D landed first on partition 0, offset 3.
    [1, 0, 'duplicate_id', 0, 3],
  ],
};

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters']) await warehouse.command({ query: 'SYSTEM STOP MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } });
  resources = new KafkaResources(kafka);
  byCheck = {
    claims: createIngestActivities({ kafka, warehouse, processorVersion: 'dup-test', resources, duplicateIdCheck: 'claims' }),
    lookup: createIngestActivities({ kafka, warehouse, processorVersion: 'dup-test', resources, duplicateIdCheck: 'lookup' }),
  };
  await run(byCheck.claims.ensureTopic, { topic, partitions: 2 });
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({ topic, messages: p0.map((value) => ({ key: 'acme', value, partition: 0 })) });
  await producer.send({ topic, messages: p1.map((value) => ({ key: 'acme', value, partition: 1 })) });
});

afterAll(async () => {
  for (const table of ['events', 'dead_letters']) await warehouse?.command({ query: 'SYSTEM START MERGES {db:Identifier}.{t:Identifier}', query_params: { db: id, t: table } }).catch(() => undefined);
  await producer?.disconnect();
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

// Both checks give the same rows when batches land one after another (the race between
// partitions, where only claims is exact, is test/integration/duplicate-ids-race.test.ts).
describe.each(['claims', 'lookup'] as const)('duplicate ids across batches (%s)', (check) => {
  it('dead-letters an id that landed in an earlier batch, pointing at its first offset; retries and re-plans change nothing', async () => {
    const pipeline = `batches-${check}`;
    const acts = byCheck[check];
    await run(acts.landBatch, { plan: planRange(pipeline, topic, 0, 0, 3, 0, 10), maxEventBytes: 1 << 20 });
    const second = await run(acts.landBatch, { plan: planRange(pipeline, topic, 0, 3, 9, 0, 10), maxEventBytes: 1 << 20 });
    expect(second).toMatchObject({ valid: 3, rejected: 3, rejectCodes: { duplicate_id: 3 } });
    await run(acts.landBatch, { plan: planRange(pipeline, topic, 1, 0, 2, 0, 10), maxEventBytes: 1 << 20 });
    expect(await landed(pipeline)).toEqual(expected);
    // A retry of the same plan, then the whole partition re-planned in other steps (a workflow
    // restarted from an older offset): the same offsets are not duplicates of themselves.
    const retry = await run(acts.landBatch, { plan: planRange(pipeline, topic, 0, 3, 9, 0, 10), maxEventBytes: 1 << 20 });
    expect(retry).toMatchObject({ valid: 3, rejected: 3, alreadyLanded: 6 });
    await run(acts.landBatch, { plan: planRange(pipeline, topic, 0, 0, 9, 0, 2), maxEventBytes: 1 << 20 });
    await run(acts.landBatch, { plan: planRange(pipeline, topic, 1, 0, 2, 0, 1), maxEventBytes: 1 << 20 });
    expect(await landed(pipeline)).toEqual(expected);
    const [dead] = await rows<{ reason_message: string; raw: string }>('SELECT reason_message, raw FROM dead_letters WHERE pipeline = {p:String} AND partition = 1', { p: pipeline });
    expect(dead!.reason_message).toBe(`event id ${D} already landed at ${topic}[0] offset 3 (batch ${pipeline}/${topic}/0/3-9)`);
    // The raw record is kept exactly.
    expect(dead!.raw).toBe(p1[0]);
  });

  it('gives the same rows whatever the batch boundaries: one offset per batch', async () => {
    const pipeline = `singles-${check}`;
    const acts = byCheck[check];
    for (let o = 0; o < p0.length; o++) await run(acts.landBatch, { plan: planRange(pipeline, topic, 0, o, o + 1, 0, 1), maxEventBytes: 1 << 20 });
    for (let o = 0; o < p1.length; o++) await run(acts.landBatch, { plan: planRange(pipeline, topic, 1, o, o + 1, 0, 1), maxEventBytes: 1 << 20 });
    expect(await landed(pipeline)).toEqual(expected);
  });

  it('is per pipeline, and a window of 0 turns the cross-batch check off', async () => {
    // Another pipeline over the same topic sees none of the first pipeline's ids.
    const pipeline = `unchecked-${check}`;
    const acts = byCheck[check];
    await run(acts.landBatch, { plan: planRange(pipeline, topic, 0, 0, 4, 0, 10), maxEventBytes: 1 << 20, duplicateIdWindowMinutes: 0 });
    const rest = await run(acts.landBatch, { plan: planRange(pipeline, topic, 0, 4, 9, 0, 10), maxEventBytes: 1 << 20, duplicateIdWindowMinutes: 0 });
    // Within one step ids stay unique (offset 8 repeats offset 4 in the same step).
    expect(rest).toMatchObject({ valid: 4, rejected: 1 });
    await expect(run(acts.landBatch, { plan: planRange(pipeline, topic, 0, 0, 1, 0, 1), maxEventBytes: 1 << 20, duplicateIdWindowMinutes: -5 })).rejects.toThrow(
      /duplicateIdWindowMinutes: expected a whole number of minutes >= 0, got -5/,
    );
  });
});
