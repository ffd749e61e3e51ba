/**
 * No input and no fetch error crashes the process that lands: a record batch this process cannot
 * decode (the zstd codec removed from KafkaJS for the test, as on a worker without it) makes the
 * landing fail at once with a retriable `undecodable_batch` error naming the offset, instead of
 * an uncaught exception from a timer; once the codec is back, a retry lands the range exactly.
 * Record-level poison (malformed, not UTF-8, oversized, tombstone, empty, wrong shape) in a
 * compressed batch becomes dead letters with reasons in the same process.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import { createRequire } from 'node:module';
import { CompressionTypes, type Kafka } from 'kafkajs';
import type * as KafkaJS from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { generateEvents } from '../../workers/generator.js';
import { produceWithJava } from '../support/java-producer.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
let kafka: Kafka;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;
let activities: ReturnType<typeof createIngestActivities>;
const pid = process.pid;
// Through require, as in activities/ingest/kafka-codecs.ts (not among kafkajs's ESM-visible exports).
const { CompressionCodecs } = createRequire(import.meta.url)('kafkajs') as typeof KafkaJS;

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  resources = new KafkaResources(kafka);
  activities = createIngestActivities({ kafka, warehouse, processorVersion: 'poison', resources, fetchTimeoutMs: 60_000 });
}, 600_000);

afterAll(async () => {
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

describe('poison input', () => {
  it('an undecodable batch fails the landing fast and retriably, the process lives, a retry lands it', { timeout: 180_000 }, async () => {
    const topic = `undecodable-${id}`;
    await run(activities.ensureTopic, { topic, partitions: 1 });
    const events = [...generateEvents({ count: 50, seed: 3, startTime: recentStart() })].map((r) => ({ value: r.value }));
    await produceWithJava(config, stackEndpoints().kafkaBrokers.join(','), topic, 'zstd', events);
    const codecs = CompressionCodecs as unknown as Record<number, unknown>;
    const zstd = codecs[CompressionTypes.ZSTD];
    Reflect.deleteProperty(codecs, CompressionTypes.ZSTD);
    const began = Date.now();
    try {
      await expect(run(activities.landBatch, { plan: planRange('undecodable', topic, 0, 0, 50, 0, 100), maxEventBytes: 1 << 20 })).rejects.toMatchObject({
        code: 'undecodable_batch',
        retriable: true,
        offset: 0,
      });
    } finally {
      codecs[CompressionTypes.ZSTD] = zstd;
    }
    // Failed on the crash, not at the 60 s fetch deadline.
    expect(Date.now() - began).toBeLessThan(20_000);
    // Timers of the failed fetch (watchdog, seek, pause) must not throw later either.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect(process.pid).toBe(pid);
    const landed = await run(activities.landBatch, { plan: planRange('undecodable', topic, 0, 0, 50, 0, 100), maxEventBytes: 1 << 20 });
    expect(landed).toMatchObject({ valid: 50, rejected: 0 });
  });

  it('record-level poison in a compressed batch becomes dead letters with reasons', { timeout: 120_000 }, async () => {
    const topic = `poison-${id}`;
    await run(activities.ensureTopic, { topic, partitions: 1, maxEventBytes: 4096 });
    const producer = kafka.producer();
    await producer.connect();
    const good = (seed: number): string[] => [...generateEvents({ count: 3, seed, startTime: recentStart() })].map((r) => r.value);
    const poison: { value: Buffer | string | null; reason: string }[] = [
      { value: '{"id": ', reason: 'malformed_json' },
      { value: Buffer.from([0xc3, 0x28, 0xff]), reason: 'malformed_json' },
      { value: 'x'.repeat(6000), reason: 'oversized' },
      { value: null, reason: 'tombstone' },
      { value: '', reason: 'malformed_json' },
      { value: '[1,2,3]', reason: 'not_an_object' },
      { value: '{"id":"nope","subject":"request-telemetry","version":1}', reason: 'contract_violation' },
      { value: '{"id":"3b241101-e2bb-4255-8caf-4136c566a962","subject":"no-such-subject","version":1,"time":"2026-01-01T00:00:00Z","key":"k","data":{}}', reason: 'unknown_subject' },
    ];
    for (const [i, compression] of [CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD].entries()) {
      await producer.send({ topic, compression, messages: [...good(10 + i).map((value) => ({ value })), ...poison.map((p) => ({ value: p.value }))] });
    }
    await producer.disconnect();
    const per = 3 + poison.length;
    const landed = await run(activities.landBatch, { plan: planRange('poison', topic, 0, 0, 3 * per, 0, 5), maxEventBytes: 4096 });
    expect(landed.valid).toBe(9);
    const result = await warehouse.query({ query: "SELECT offset, reason_code FROM dead_letters WHERE pipeline = 'poison' ORDER BY offset", format: 'JSONEachRow' });
    const reasons = (await result.json<{ offset: string; reason_code: string }>()).map((r) => [Number(r.offset), r.reason_code]);
    const expected: [number, string][] = [];
    for (let b = 0; b < 3; b++) poison.forEach((p, i) => expected.push([b * per + 3 + i, p.reason]));
    expect(reasons).toEqual(expected);
    expect(process.pid).toBe(pid);
  });
});
