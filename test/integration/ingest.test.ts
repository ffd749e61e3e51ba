/**
 * The ingest activities on the real broker and ClickHouse (in an activity context, outside a
 * workflow): planning, exact-range landing with validation and dead letters, de-duplication of
 * a re-landed batch, byte-capped multi-step landing, the offset edge cases (empty range, empty
 * partition, range below the log start offset), an open transaction in the range (waited out) and
 * committing a member-less group's offsets.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import { Partitioners, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources, type BatchPlan, type LandBatchResult } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { generateEvents, produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
let kafka: Kafka;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;
let activities: ReturnType<typeof createIngestActivities>;
const id = uniqueId('t');
const topic = `ingest-${id}`;
const pipelineId = 'ingest-test';
let produced: GeneratorSummary;

const mock = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000 });
/** Runs an activity function in an activity context (heartbeats, info), typed. */
const env = {
  run: <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => mock.run(fn, ...args) as Promise<R>,
};

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function landAll(partition: number, maxEvents: number, acts = activities): Promise<LandBatchResult[]> {
  const results: LandBatchResult[] = [];
  let cursor: number | null = null;
  for (;;) {
    const plan: BatchPlan = await env.run(acts.planBatch, { pipelineId, topic, partition, cursor, maxEvents, consumerGroup: `g-${id}`, startFrom: 'earliest' as const });
    if (plan.to === plan.from) return results;
    results.push(await env.run(acts.landBatch, { plan, maxEventBytes: 1 << 20 }));
    cursor = plan.to;
  }
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  resources = new KafkaResources(kafka);
  activities = createIngestActivities({ kafka, warehouse, processorVersion: 'test-1', resources });
  const ensured = await env.run(activities.ensureTopic, { topic, partitions: 3 });
  expect(ensured).toEqual({ partitions: [0, 1, 2], created: true });
  produced = await produceEvents(kafka, { topic, count: 900, rate: 100, invalid: 0.05, malformed: 0.03, seed: 7, startTime: recentStart() });
});

afterAll(async () => {
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

describe('ingest activities', () => {
  it('land every partition exactly, valid rows in events and the rest in dead_letters with reasons', async () => {
    const results = (await Promise.all([0, 1, 2].map((p) => landAll(p, 100)))).flat();
    const valid = results.reduce((s, r) => s + r.valid, 0);
    const rejected = results.reduce((s, r) => s + r.rejected, 0);
    expect(valid).toBe(produced.valid);
    expect(rejected).toBe(produced.rejected);
    expect(results.every((r) => r.missing === 0)).toBe(true);

    const [events] = await rows<{ n: string; u: string }>('SELECT count() AS n, uniqExact(topic, partition, offset) AS u FROM events');
    expect(Number(events!.n)).toBe(produced.valid);
    expect(Number(events!.u)).toBe(produced.valid);
    const reasons = await rows<{ reason_code: string; n: string }>('SELECT reason_code, count() AS n FROM dead_letters GROUP BY reason_code');
    expect(Object.fromEntries(reasons.map((r) => [r.reason_code, Number(r.n)]))).toEqual(produced.byReason);
    const [stamp] = await rows<{ v: string[] }>('SELECT groupUniqArray(processor_version) AS v FROM events');
    expect(stamp!.v).toEqual(['test-1']);
  });

  it('lineage ranges tile each partition from 0 to its end without gaps or overlaps', async () => {
    const lineage = await rows<{ partition: number; from_offset: string; to_offset: string; valid_count: number; rejected_count: number }>(
      'SELECT partition, from_offset, to_offset, valid_count, rejected_count FROM lineage_batches ORDER BY partition, from_offset',
    );
    const offsets = await kafka.admin();
    await offsets.connect();
    const ends = await offsets.fetchTopicOffsets(topic);
    await offsets.disconnect();
    for (const end of ends) {
      const ranges = lineage.filter((l) => l.partition === end.partition);
      let expected = 0;
      for (const r of ranges) {
        expect(Number(r.from_offset)).toBe(expected);
        expected = Number(r.to_offset);
      }
      expect(expected).toBe(Number(end.high));
    }
  });

  it('re-landing the same range adds nothing (insert de-duplication token)', async () => {
    const [batch] = await rows<{ from_offset: string; to_offset: string }>('SELECT from_offset, to_offset FROM lineage_batches WHERE partition = 1 ORDER BY from_offset LIMIT 1');
    const range = { from: Number(batch!.from_offset), to: Number(batch!.to_offset) };
    const again = await env.run(activities.landBatch, { plan: planRange(pipelineId, topic, 1, range.from, range.to, 0, 10_000), maxEventBytes: 1 << 20 });
    expect(again.valid + again.rejected).toBe(range.to - range.from);
    const [events] = await rows<{ n: string }>('SELECT count() AS n FROM events');
    const [dead] = await rows<{ n: string }>('SELECT count() AS n FROM dead_letters');
    const [lineage] = await rows<{ n: string }>('SELECT count() AS n FROM lineage_batches WHERE partition = 1 AND from_offset = 0');
    expect(Number(events!.n)).toBe(produced.valid);
    expect(Number(dead!.n)).toBe(produced.rejected);
    expect(Number(lineage!.n)).toBe(1);
  });

  it('lands a batch in byte-capped steps, and a repeat with the same cap adds nothing', async () => {
    const smallSteps = createIngestActivities({ kafka, warehouse, processorVersion: 'test-1', resources, chunkMaxBytes: 8_000 });
    // Records of ~300 bytes: an 8000-byte step budget plans steps of about 26 offsets.
    const plan = await env.run(smallSteps.planBatch, { pipelineId: 'steps', topic, partition: 0, cursor: 0, maxEvents: 200, consumerGroup: `g-${id}`, startFrom: 'earliest' as const, recordBytes: 300 });
    const size = plan.to - plan.from;
    expect(size).toBeGreaterThan(50);
    expect(plan.steps.length).toBeGreaterThan(3);
    const first = await env.run(smallSteps.landBatch, { plan, maxEventBytes: 1 << 20 });
    expect(first.chunks).toBe(plan.steps.length);
    expect(first.valid + first.rejected).toBe(size);
    await env.run(smallSteps.landBatch, { plan, maxEventBytes: 1 << 20 });
    const [n] = await rows<{ e: string; d: string }>(
      "SELECT (SELECT count() FROM events WHERE pipeline = 'steps') AS e, (SELECT count() FROM dead_letters WHERE pipeline = 'steps') AS d",
    );
    expect(Number(n!.e) + Number(n!.d)).toBe(size);
    expect(Number(n!.e)).toBe(first.valid);
  });

  it('handles an empty range, an empty partition and a range below the log start offset', async () => {
    const edge = `edge-${id}`;
    await env.run(activities.ensureTopic, { topic: edge, partitions: 2 });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: edge, messages: Array.from({ length: 100 }, (_, i) => ({ partition: 0, value: JSON.stringify({ n: i }) })) });
    await producer.disconnect();

    const empty = await env.run(activities.planBatch, { pipelineId, topic: edge, partition: 1, cursor: null, maxEvents: 10, consumerGroup: `g-${id}`, startFrom: 'earliest' as const });
    expect(empty).toMatchObject({ from: 0, to: 0, highWatermark: 0 });
    const none = await env.run(activities.landBatch, { plan: planRange(pipelineId, edge, 0, 5, 5, 0, 10_000), maxEventBytes: 1024 });
    expect(none).toMatchObject({ valid: 0, rejected: 0, missing: 0 });

    const kadmin = kafka.admin();
    await kadmin.connect();
    await kadmin.fetchTopicMetadata({ topics: [edge] });
    await kadmin.deleteTopicRecords({ topic: edge, partitions: [{ partition: 0, offset: '40' }] });
    await kadmin.disconnect();
    const plan = await env.run(activities.planBatch, { pipelineId, topic: edge, partition: 0, cursor: 0, maxEvents: 60, consumerGroup: `g-${id}`, startFrom: 'earliest' as const });
    expect(plan).toMatchObject({ from: 0, to: 60, lowWatermark: 40, highWatermark: 100 });
    const below = await env.run(activities.landBatch, { plan: planRange(pipelineId, edge, 0, 0, 60, 0, 10_000), maxEventBytes: 1024 });
    // The 20 records still there are not envelopes; the 40 deleted ones are missing, not invented.
    expect(below).toMatchObject({ valid: 0, rejected: 20, missing: 40 });
    const whole = await env.run(activities.landBatch, { plan: planRange(pipelineId, edge, 0, 0, 30, 0, 10_000), maxEventBytes: 1024 });
    expect(whole).toMatchObject({ valid: 0, rejected: 0, missing: 30 });
  });

  it('lands a batch whose event times span more than 100 months (no poison via partitioning)', async () => {
    const spread = `spread-${id}`;
    await env.run(activities.ensureTopic, { topic: spread, partitions: 1 });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const messages = Array.from({ length: 150 }, (_, i) => ({
      value: JSON.stringify({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        subject: 'request-telemetry',
        version: 1,
        time: new Date(Date.UTC(1990, i, 1)).toISOString(),
        key: 'k',
        data: { service: 'checkout', route: '/cart', method: 'GET', status: 200, duration_ms: 1, region: 'eu-west-1', tenant_id: 't' },
      }),
    }));
    await producer.send({ topic: spread, messages });
    await producer.disconnect();
    const landed = await env.run(activities.landBatch, { plan: planRange('spread', spread, 0, 0, 150, 0, 10_000), maxEventBytes: 1 << 20 });
    expect(landed).toMatchObject({ valid: 150, rejected: 0 });
  });

  it('creates topics whose max.message.bytes lets oversized events reach the pipeline; a tombstone gets its own reason', async () => {
    const big = `big-${id}`;
    await env.run(activities.ensureTopic, { topic: big, partitions: 1, maxEventBytes: 64 * 1024 });
    const kadmin = kafka.admin();
    await kadmin.connect();
    const described = await kadmin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: big, configNames: ['max.message.bytes'] }] });
    await kadmin.disconnect();
    expect(described.resources[0]!.configEntries[0]!.configValue).toBe(String(2 * 64 * 1024 + 64 * 1024));
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    // 100 KB: above the pipeline's 64 KiB limit, accepted by the topic.
    await producer.send({ topic: big, messages: [{ value: 'x'.repeat(100_000) }, { value: null }, { value: '' }] });
    await producer.disconnect();
    await env.run(activities.landBatch, { plan: planRange('big', big, 0, 0, 3, 0, 10), maxEventBytes: 64 * 1024 });
    const reasons = await rows<{ offset: string; reason_code: string }>("SELECT offset, reason_code FROM dead_letters WHERE pipeline = 'big' ORDER BY offset");
    expect(reasons.map((r) => r.reason_code)).toEqual(['oversized', 'tombstone', 'malformed_json']);
  });

  it('waits out an open transaction in the range (read_committed) and lands it once committed', { timeout: 120_000 }, async () => {
    const txTopic = `txn-${id}`;
    await env.run(activities.ensureTopic, { topic: txTopic, partitions: 1 });
    const events = [...generateEvents({ count: 10, seed: 5, startTime: recentStart() })].map((r) => r.value);
    const plain = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await plain.connect();
    await plain.send({ topic: txTopic, acks: -1, messages: events.slice(0, 5).map((value) => ({ value })) });
    await plain.disconnect();
    const transactional = kafka.producer({ transactionalId: `tx-${id}`, idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await transactional.connect();
    try {
      const transaction = await transactional.transaction();
      await transaction.send({ topic: txTopic, messages: events.slice(5).map((value) => ({ value })) });
      // planBatch stops at the last stable offset (ListOffsets is read_committed): 5 here. A range
      // planned otherwise (a replay's, a hand-made plan) can reach into the open transaction.
      const planned = await env.run(activities.planBatch, { pipelineId: 'ingest-txn', topic: txTopic, partition: 0, cursor: 0, maxEvents: 100, consumerGroup: `g-${id}`, startFrom: 'earliest' as const });
      expect(planned).toMatchObject({ from: 0, to: 5 });
      const plan = planRange('ingest-txn', txTopic, 0, 0, 10, 0, 10_000);
      // Committed once the landing runs (its first heartbeat): the reader must wait for it, not fail.
      const landing = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000 });
      let committed: Promise<void> | null = null;
      landing.on('heartbeat', () => {
        committed ??= transaction.commit();
      });
      const landed = (await landing.run(activities.landBatch, { plan, maxEventBytes: 1 << 20 })) as LandBatchResult;
      await committed;
      expect(committed).not.toBeNull();
      expect(landed).toMatchObject({ valid: 10, rejected: 0, missing: 0 });
      const ids = await rows<{ id: string }>('SELECT toString(event_id) AS id FROM events WHERE pipeline = {p:String} ORDER BY offset', { p: 'ingest-txn' });
      expect(ids.map((r) => r.id)).toEqual(events.map((e) => (JSON.parse(e) as { id: string }).id));
    } finally {
      await transactional.disconnect();
    }
  });

  it('commits progress to a member-less consumer group, partitions concurrently', async () => {
    const group = `g-commit-${id}`;
    await Promise.all([0, 1, 2].map((partition) => env.run(activities.commitProgress, { consumerGroup: group, topic, partition, offset: 10 + partition })));
    const kadmin = kafka.admin();
    await kadmin.connect();
    const offsets = await kadmin.fetchOffsets({ groupId: group, topics: [topic] });
    await kadmin.disconnect();
    expect(offsets[0]!.partitions.map((p) => [p.partition, Number(p.offset)]).sort()).toEqual([[0, 10], [1, 11], [2, 12]]);
    const resumed = await env.run(activities.planBatch, { pipelineId, topic, partition: 2, cursor: null, maxEvents: 5, consumerGroup: group, startFrom: 'earliest' as const });
    expect(resumed).toMatchObject({ from: 12, to: 17, source: 'group' });
  });
});
