/**
 * A replay resolves processor-failure dead letters too (issue 7, replay). A processor version
 * whose stage throws on some events dead-letters them (`processing_error`) while their events land
 * in `events`; a replay under the fixed version processes those offsets without failure, and
 * `resolveDeadLetters` marks exactly them resolved (before, only contract failures were: the
 * events were not landed again, so the join on the replay's landed events found nothing). A second
 * identical resolve adds nothing; events never double. Real landing activities on the shared stack.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestActivities, KafkaResources } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import type { ValidEvent } from '../../schemas/contracts/envelope.js';
import { planRange } from '../../schemas/ingest/batch-plan.js';
import { defineCatalogue, defineProcessor } from '../../schemas/processing/define.js';
import { emit, stage } from '../../schemas/processing/index.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { generateEvents } from '../../workers/generator.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('t');
let kafka: Kafka;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let resources: KafkaResources;

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment().run(fn, ...args) as Promise<R>;
}

async function rows<T>(query: string): Promise<T[]> {
  return (await warehouse.query({ query, format: 'JSONEachRow' })).json<T>();
}

/** Version 1 throws on about a quarter of the events, those whose id starts with 0-3 (the bug); version 2 is the fix. */
const statusOf = (e: ValidEvent): number => (e.data as { status: number }).status;
const buggy = (eventId: string): boolean => /^[0-3]/.test(eventId);
const version = (v: number) =>
  defineProcessor({
    name: 'status-classes',
    version: v,
    description: 'the status class of each request',
    input: { subject: 'request-telemetry', versions: [1, 2] },
    stages: [
      stage<ValidEvent, { status_class: string }>('classify', (e) => {
        if (v === 1 && buggy(e.id)) throw new Error(`no class for ${statusOf(e)}`);
        return emit({ status_class: `${Math.floor(statusOf(e) / 100)}xx` });
      }),
    ],
    outputs: { main: { schema: z.object({ status_class: z.string() }), table: `status_classes_${id.slice(-6)}` } },
  });
const catalogue = defineCatalogue([version(1), version(2)]);

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  for (const table of ['events', 'dead_letters', 'dead_letter_resolutions']) await warehouse.command({ query: `SYSTEM STOP MERGES ${table}` });
  resources = new KafkaResources(kafka);
}, 120_000);

afterAll(async () => {
  await resources?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

describe('replay after a processor fix', () => {
  it('marks the processor-failure dead letters it now processes resolved, once', { timeout: 120_000 }, async () => {
    const topic = `replay-processing-${id}`;
    const activities = createIngestActivities({ kafka, warehouse, processorVersion: 'test', resources, catalogue });
    await run(activities.ensureTopic, { topic, partitions: 1 });
    const values = [...generateEvents({ count: 60, seed: 11, startTime: recentStart() })].map((r) => r.value);
    const failing = values.flatMap((v, offset) => (buggy((JSON.parse(v) as { id: string }).id) ? [offset] : []));
    expect(failing.length).toBeGreaterThan(0);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: values.map((value) => ({ value })) });
    await producer.disconnect();

    const first = await run(activities.landBatch, { plan: { ...planRange('p', topic, 0, 0, 60, 0, 25), processor: { name: 'status-classes', version: 1, flags: {} } }, maxEventBytes: 1 << 20 });
    const sample = await rows(`SELECT reason_code, reason_message FROM dead_letters LIMIT 2`);
    expect(first, JSON.stringify(sample)).toMatchObject({ valid: 60, rejected: 0, processing: { deadLetters: failing.length } });
    const dead = await rows<{ at: string; reason_code: string }>(`SELECT toString(offset) AS at, reason_code FROM dead_letters ORDER BY offset`);
    expect(dead.map((d) => [Number(d.at), d.reason_code])).toEqual(failing.map((o) => [o, 'processing_error']));

    // The replay: generation 1, the fixed version, then resolveDeadLetters as the replay workflow runs them.
    const plan = { ...planRange('p', topic, 0, 0, 60, 1, 25), processor: { name: 'status-classes', version: 2, flags: {} } };
    const replayed = await run(activities.landBatch, { plan, maxEventBytes: 1 << 20 });
    expect(replayed).toMatchObject({ valid: 60, insertedEvents: 0, processing: { deadLetters: 0 } });
    const who = { pipelineId: 'p', topic, partition: 0, batchId: plan.batchId, generation: 1, by: 'ann', reason: 'v2 classifies 5xx' };
    expect(await run(activities.resolveDeadLetters, who)).toEqual({ resolved: failing.length });
    expect(await run(activities.resolveDeadLetters, who)).toEqual({ resolved: 0 });

    const resolved = await rows<{ at: string; reason_code: string; resolved_by: string }>(`SELECT toString(offset) AS at, reason_code, resolved_by FROM dead_letter_resolutions ORDER BY offset`);
    expect(resolved.map((r) => [Number(r.at), r.reason_code, r.resolved_by])).toEqual(failing.map((o) => [o, 'processing_error', 'ann']));
    expect(await rows(`SELECT offset FROM open_dead_letters`)).toEqual([]);
    const [events] = await rows<{ n: string }>(`SELECT count() AS n FROM events`);
    expect(Number(events!.n)).toBe(60);
  });
});
