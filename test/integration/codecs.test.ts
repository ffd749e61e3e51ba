/**
 * Every record batch Kafka can hold is read: the reference Java producer (kafka-clients) writes
 * the same valid events with compression.type none, gzip, snappy, lz4 and zstd, and a
 * transactional producer writes committed and aborted transactions (control records included).
 * The real landing activities read them: every committed record lands exactly once, no aborted
 * one ever does, and control records are skipped (counted as missing offsets, not as events).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources, type BatchPlan, type LandBatchResult } from '../../activities/ingest/ingest.js';
import type { FetchedRecord } from '../../activities/ingest/kafka-range.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { generateEvents } from '../../workers/generator.js';
import { produceWithJava, javaProducerClasspath, type JavaCompression, type JavaRecord } from '../support/java-producer.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
let kafka: Kafka;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;
let activities: ReturnType<typeof createIngestActivities>;

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}

/** Valid request-telemetry envelopes with unique ids (the generator's, deterministic per seed). */
function envelopes(count: number, seed: number): { value: string; id: string }[] {
  return [...generateEvents({ count, seed, startTime: recentStart() })].map((r) => ({ value: r.value, id: (JSON.parse(r.value) as { id: string }).id }));
}

/** Plans and lands partition 0 of `topic` from offset 0 to its end, as the workflow would. */
async function landTopic(pipelineId: string, topic: string): Promise<LandBatchResult[]> {
  const results: LandBatchResult[] = [];
  let cursor: number | null = 0;
  for (;;) {
    const plan: BatchPlan = await run(activities.planBatch, { pipelineId, topic, partition: 0, cursor, maxEvents: 500, consumerGroup: `g-${id}`, startFrom: 'earliest' as const });
    if (plan.to === plan.from) return results;
    results.push(await run(activities.landBatch, { plan, maxEventBytes: 1 << 20 }));
    cursor = plan.to;
  }
}

/**
 * Differential check of the raw reader (activities/ingest/kafka-raw-fetch.ts, used when KafkaJS
 * cannot decode a range) against KafkaJS on the same range: the same records, offsets, keys,
 * values, timestamps and headers, aborted transactions and control records left out alike.
 */
async function expectRawReaderAgrees(topic: string, to: number): Promise<number> {
  const normal = (records: FetchedRecord[]): unknown[] =>
    records.map((r) => [r.offset, r.key?.toString('base64') ?? null, r.value?.toString('base64') ?? null, r.timestamp, JSON.stringify(r.headers ?? {})]);
  const viaKafkaJs = await resources.fetcher.fetch(topic, 0, 0, to, { deadline: Date.now() + 60_000, maxBytes: 1 << 30 });
  const viaRaw = await resources.rawReader.read(topic, 0, 0, to, 1 << 30);
  expect(viaRaw.poison).toEqual([]);
  expect(viaRaw.next).toBe(viaKafkaJs.next);
  expect(normal(viaRaw.records)).toEqual(normal(viaKafkaJs.records));
  return viaRaw.records.length;
}

async function landedIds(pipelineId: string): Promise<string[]> {
  const result = await warehouse.query({ query: 'SELECT toString(event_id) AS id FROM events WHERE pipeline = {p:String} ORDER BY offset', query_params: { p: pipelineId }, format: 'JSONEachRow' });
  return (await result.json<{ id: string }>()).map((r) => r.id);
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  resources = new KafkaResources(kafka);
  activities = createIngestActivities({ kafka, warehouse, processorVersion: 'codecs', resources });
  await javaProducerClasspath(config);
}, 600_000);

afterAll(async () => {
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

describe('record batches written by the Java producer', () => {
  const codecs: JavaCompression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
  it.each(codecs)('compression.type=%s: every record lands once', { timeout: 120_000 }, async (codec) => {
    const topic = `codec-${codec}-${id}`;
    await run(activities.ensureTopic, { topic, partitions: 1 });
    const events = envelopes(300, codecs.indexOf(codec) + 1);
    const sent = await produceWithJava(config, stackEndpoints().kafkaBrokers.join(','), topic, codec, events);
    expect(sent).toEqual({ committed: 300, aborted: 0 });
    const results = await landTopic(codec, topic);
    expect(results.reduce((s, r) => s + r.valid, 0)).toBe(300);
    expect(results.reduce((s, r) => s + r.rejected, 0)).toBe(0);
    expect(await landedIds(codec)).toEqual(events.map((e) => e.id));
    expect(await expectRawReaderAgrees(topic, 300)).toBe(300);
  });

  it('transactions: committed records land once, aborted ones never, control records are skipped', { timeout: 120_000 }, async () => {
    const topic = `txn-${id}`;
    await run(activities.ensureTopic, { topic, partitions: 1 });
    const events = envelopes(400, 99);
    // Committed, aborted, committed, aborted, committed: five transactions.
    const records: JavaRecord[] = events.map((e, i) => ({ value: e.value, abort: (i >= 100 && i < 150) || (i >= 300 && i < 330) }));
    const sent = await produceWithJava(config, stackEndpoints().kafkaBrokers.join(','), topic, 'zstd', records, true);
    expect(sent).toEqual({ committed: 320, aborted: 80 });
    const results = await landTopic('txn', topic);
    const committedIds = events.filter((_, i) => !records[i]!.abort).map((e) => e.id);
    expect(await landedIds('txn')).toEqual(committedIds);
    expect(results.reduce((s, r) => s + r.rejected, 0)).toBe(0);
    // 400 data records and 5 commit/abort markers occupy offsets; only the 320 committed are events.
    expect(results.reduce((s, r) => s + r.valid + r.missing, 0)).toBe(405);
    expect(await expectRawReaderAgrees(topic, 405)).toBe(320);
  });
});
