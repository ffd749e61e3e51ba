/**
 * Contracts through the real pipeline: hand-written records on a real topic are landed by the
 * ingest activities into a real ClickHouse database. Every dead-letter reason code comes out with
 * its details next to the raw bytes, topic, partition and offset; older versions land upcast to
 * the latest declared version; other subjects land as written; subject/version may come from the
 * Kafka headers when the envelope lacks them.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources, type BatchPlan } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
const topic = `contracts-${id}`;
const maxEventBytes = 2048;
let kafka: Kafka;
let producer: Producer;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;
let activities: ReturnType<typeof createIngestActivities>;
const mock = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000 });

const telemetry = {
  service: 'checkout',
  route: '/orders/:id',
  method: 'GET',
  status: 502,
  duration_ms: 40,
  region: 'eu-west-1',
  tenant_id: 'acme',
  error_code: 'UPSTREAM_DOWN',
};
let n = 0;
/** A fresh event id per record (the 12 hex digits count up). */
const eventId = () => `6f1c1f4e-8a39-4b8e-9d55-${String(++n).padStart(12, '0')}`;
const envelope = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ id: eventId(), subject: 'request-telemetry', version: 1, time: '2026-11-27T06:00:00.000Z', key: 'acme', data: telemetry, ...over });

/** The records, in offset order, with what each must become. */
const dupId = '0d9c6a3e-2b1f-4c5d-8e7f-a1b2c3d4e5f6';
const deploy = { deploy_id: 'd-10', service: 'search', environment: 'staging', state: 'started', version: '7', actor: 'ci' };
/** An envelope without subject/version: they travel in the Kafka headers (or nowhere). */
const bare = () => JSON.stringify({ id: eventId(), time: '2026-11-27T06:00:00.000Z', key: 'acme', data: deploy });
const cases: { name: string; value: string | Buffer; headers?: Record<string, string> }[] = [
  { name: 'v1 upcast', value: envelope() },
  { name: 'v2 as written', value: envelope({ version: 2, data: { ...telemetry, error_code: undefined, error: { code: 'X', retryable: true }, protocol: 'h2' } }) },
  {
    name: 'deploy-events v1',
    value: envelope({ subject: 'deploy-events', data: { deploy_id: 'd-9', service: 'checkout', environment: 'production', state: 'failed', version: '2.0.1', actor: 'ci' } }),
  },
  { name: 'malformed_json', value: '{"id": "x", ' },
  { name: 'not_an_object', value: '[1, 2, 3]' },
  { name: 'unknown_subject', value: envelope({ subject: 'shipping-labels' }) },
  { name: 'unknown_version', value: envelope({ version: 9 }) },
  { name: 'contract_violation', value: envelope({ data: { ...telemetry, status: 42, method: 'FETCH' } }) },
  { name: 'oversized', value: envelope({ data: { ...telemetry, route: `/${'x'.repeat(3000)}` } }) },
  { name: 'first of a duplicate', value: envelope({ id: dupId }) },
  { name: 'duplicate_id', value: envelope({ id: dupId }) },
  { name: 'invalid utf-8', value: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]) },
  { name: 'subject/version from headers', value: bare(), headers: { subject: 'deploy-events', version: '1' } },
  { name: 'subject/version nowhere', value: bare() },
];

async function rows<T>(query: string): Promise<T[]> {
  return (await warehouse.query({ query, format: 'JSONEachRow' })).json<T>();
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  resources = new KafkaResources(kafka);
  activities = createIngestActivities({ kafka, warehouse, processorVersion: 'contracts-test', resources });
  await mock.run(activities.ensureTopic, { topic, partitions: 1 });
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({ topic, messages: cases.map((c) => ({ key: 'acme', value: c.value, partition: 0, ...(c.headers ? { headers: c.headers } : {}) })) });
  const plan: BatchPlan = await mock.run(activities.planBatch, { pipelineId: 'contracts', topic, partition: 0, cursor: null, maxEvents: 100, consumerGroup: `g-${id}`, startFrom: 'earliest' as const });
  expect(plan.to - plan.from).toBe(cases.length);
  await mock.run(activities.landBatch, { plan, maxEventBytes });
});

afterAll(async () => {
  await producer?.disconnect();
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

describe('contracts in ingestion', () => {
  it('lands valid events at the latest declared version, other subjects as written', async () => {
    const events = await rows<{ offset: string; subject: string; contract_version: number; data: string }>(
      'SELECT offset, subject, contract_version, data FROM events ORDER BY offset',
    );
    expect(events.map((e) => [Number(e.offset), e.subject, Number(e.contract_version)])).toEqual([
      [0, 'request-telemetry', 2],
      [1, 'request-telemetry', 2],
      [2, 'deploy-events', 1],
      [9, 'request-telemetry', 2],
      [12, 'deploy-events', 1],
    ]);
    const upcast = JSON.parse(events[0]!.data) as Record<string, unknown>;
    expect(upcast).toMatchObject({ error_code: 'UPSTREAM_DOWN', error: { code: 'UPSTREAM_DOWN', retryable: false }, protocol: 'http/1.1' });
    expect(JSON.parse(events[1]!.data)).toMatchObject({ error: { code: 'X', retryable: true }, protocol: 'h2' });
    expect(JSON.parse(events[2]!.data)).toMatchObject({ state: 'failed', traffic_percent: 100 });
  });

  it('dead-letters every other record with its reason code, details, raw bytes and source position', async () => {
    const dead = await rows<{
      topic: string;
      partition: number;
      offset: string;
      reason_code: string;
      reason_detail: string;
      raw: string;
      raw_encoding: string;
      raw_bytes: number;
      subject: string;
      contract_version: number;
    }>('SELECT topic, partition, offset, reason_code, reason_detail, raw, raw_encoding, raw_bytes, subject, contract_version FROM dead_letters ORDER BY offset');
    expect(dead.map((d) => [Number(d.offset), d.reason_code])).toEqual([
      [3, 'malformed_json'],
      [4, 'not_an_object'],
      [5, 'unknown_subject'],
      [6, 'unknown_version'],
      [7, 'contract_violation'],
      [8, 'oversized'],
      [10, 'duplicate_id'],
      [11, 'malformed_json'],
      [13, 'contract_violation'],
    ]);
    for (const d of dead) {
      expect(d.topic).toBe(topic);
      expect(Number(d.partition)).toBe(0);
      const original = cases[Number(d.offset)]!.value;
      const bytes = typeof original === 'string' ? Buffer.from(original) : original;
      expect(Number(d.raw_bytes)).toBe(bytes.byteLength);
      expect(Buffer.from(d.raw, d.raw_encoding === 'base64' ? 'base64' : 'utf8').equals(bytes)).toBe(true);
    }
    const detail = (offset: number) => JSON.parse(dead.find((d) => Number(d.offset) === offset)!.reason_detail) as Record<string, unknown>;
    expect(detail(5)).toMatchObject({ subject: 'shipping-labels', version: 1 });
    expect(detail(6)).toMatchObject({ subject: 'request-telemetry', version: 9, knownVersions: [1, 2] });
    const violation = detail(7) as { issues: { path: string; message: string }[] };
    expect(violation.issues.map((i) => i.path).sort()).toEqual(['data.method', 'data.status']);
    expect(violation.issues.find((i) => i.path === 'data.status')!.message).toBe('expected an HTTP status 100-599');
    expect(detail(8)).toMatchObject({ maxBytes: maxEventBytes });
    expect(Number(detail(8).bytes)).toBeGreaterThan(maxEventBytes);
    expect(detail(10)).toMatchObject({ id: dupId, firstOffset: '9' });
    const nowhere = detail(13) as { issues: { path: string }[] };
    expect(nowhere.issues.map((i) => i.path).sort()).toEqual(['subject', 'version']);
    const unknown = dead.find((d) => Number(d.offset) === 6)!;
    expect([unknown.subject, Number(unknown.contract_version)]).toEqual(['request-telemetry', 9]);
  });
});
