/**
 * OpenLineage run events from a real worker landing real batches (Kafka -> ClickHouse), received
 * by a local HTTP endpoint speaking Marquez's `POST /api/v1/lineage` and written to a file. Every
 * event is validated strictly against the pinned spec (formats on, each facet against its own
 * schema); each batch is one run with START then COMPLETE sharing its run id, the parent facet under
 * the standard `parent` key naming the workflow run, the offsets matching `lineage_batches`, and
 * column lineage naming real `events` columns. Then the same landing with an endpoint that accepts
 * connections and never answers: every event still lands, while the lineage requests hang.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowBundle } from '@temporalio/worker';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../activities/logger.js';
import { eventsColumnSources, OpenLineageEmitter, type RunEvent } from '../../activities/observability/openlineage.js';
import { partitionWorkflowId } from '../../schemas/ingest/pipeline.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { lineageProducer } from '../../workers/observability/lineage.js';
import { bundlePlatformWorkflows, startWorker, type RunningWorker } from '../../workers/worker.js';
import { openLineageValidator } from '../support/openlineage-validator.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('ol');
const pipelineId = id.replace(/_/g, '-').slice(3);
const validate = openLineageValidator();
let kafka: Kafka;
let client: Client;
let warehouse: ClickHouseClient;
let bundle: WorkflowBundle;
const servers: Server[] = [];
const workers: RunningWorker[] = [];
const started: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'openlineage-'));

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Starts a worker whose landings report to `emitter`, lands `topic` partition 0 to its end, returns the workflow run id. */
async function landTopic(topic: string, emitter: OpenLineageEmitter, produced: GeneratorSummary): Promise<{ workflowId: string; runId: string }> {
  const taskQueue = `${id}-${topic}`;
  workers.push(await startWorker({ config, endpoints: stackEndpoints(), database: id, taskQueue, log: silentLogger, workflowBundle: bundle, observability: { lineage: emitter } }));
  const workflowId = partitionWorkflowId(pipelineId, topic, 0);
  const handle = await client.workflow.start('partitionConsumer', { taskQueue, workflowId, args: [{ pipelineId, topic, partition: 0, batchMaxEvents: 100, pollIntervalMs: 300, startFrom: 'earliest' }] });
  started.push(workflowId);
  await until('every offset landed', async () => {
    const [r] = await rows<{ n: string }>('SELECT sum(to_offset - from_offset) AS n FROM lineage_batches WHERE topic = {topic:String}', { topic });
    return Number(r!.n) === produced.total ? true : undefined;
  });
  return { workflowId, runId: handle.firstExecutionRunId };
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  bundle = await bundlePlatformWorkflows();
  client = new Client({ connection: await Connection.connect({ address: endpoints.temporalAddress }), namespace: config.TEMPORAL_NAMESPACE });
  warehouse = createWarehouse(config, endpoints, id);
});

afterAll(async () => {
  for (const w of started) await client?.workflow.getHandle(w).terminate('test over').catch(() => undefined);
  await Promise.allSettled(workers.map((w) => w.shutdown()));
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  const admin = createWarehouse(config, stackEndpoints(), 'default');
  await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin.close(), warehouse?.close(), client?.connection.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('OpenLineage run events', () => {
  it('START and COMPLETE per batch, valid against the pinned spec, with parent, offsets, schema and column lineage', { timeout: 240_000 }, async () => {
    const topic = `ol-${id}`;
    const received: RunEvent[] = [];
    const paths: string[] = [];
    const url = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        paths.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
        received.push(JSON.parse(body) as RunEvent);
        res.writeHead(201).end();
      });
    });
    const file = join(dir, 'events.ndjson');
    const location = { namespace: 'streamwarden', kafkaBrokers: stackEndpoints().kafkaBrokers, clickhouseUrl: stackEndpoints().clickhouseUrl, database: id, producer: lineageProducer('test-1') };
    const emitter = new OpenLineageEmitter({ transport: { url, apiKey: 'ol-test-key', file }, location });
    const produced = await produceEvents(kafka, { topic, partitions: 1, count: 350, rate: 2000, invalid: 0.05, malformed: 0.03, seed: 5 });
    const run = await landTopic(topic, emitter, produced);
    const batches = await rows<{ batch_id: string; from_offset: string; to_offset: string; valid_count: number; rejected_count: number }>(
      'SELECT batch_id, from_offset, to_offset, valid_count, rejected_count FROM lineage_batches WHERE topic = {topic:String} ORDER BY from_offset',
      { topic },
    );
    expect(batches).toHaveLength(4);
    await until('every event delivered', async () => (received.length >= batches.length * 2 ? true : undefined));
    await emitter.close();

    expect(emitter.stats).toMatchObject({ failed: 0, dropped: 0 });
    expect(new Set(paths)).toEqual(new Set(['POST /api/v1/lineage Bearer ol-test-key']));
    for (const e of received) expect(validate(e), JSON.stringify(e)).toEqual([]);
    // The file transport wrote the same events.
    const fromFile = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RunEvent);
    expect(fromFile).toEqual(received);

    const columns = new Set((await rows<{ name: string }>('DESCRIBE TABLE events')).map((c) => c.name));
    const runIds = new Set<string>();
    for (const b of batches) {
      const mine = received.filter((e) => (e.inputs as { inputFacets: { kafkaOffsets: { fromOffset: number } } }[])[0]!.inputFacets.kafkaOffsets.fromOffset === Number(b.from_offset));
      expect(mine.map((e) => e.eventType)).toEqual(['START', 'COMPLETE']);
      const [start, complete] = mine as [RunEvent, RunEvent];
      expect(start.run.runId).toBe(complete.run.runId);
      runIds.add(start.run.runId);
      expect(Date.parse(String(start.eventTime))).toBeLessThanOrEqual(Date.parse(String(complete.eventTime)));
      for (const e of mine) expect(e.run.facets?.parent).toMatchObject({ run: { runId: run.runId }, job: { namespace: 'streamwarden', name: run.workflowId } });
      const input = (complete.inputs as Record<string, unknown>[])[0]!;
      expect(input).toMatchObject({ namespace: `kafka://${stackEndpoints().kafkaBrokers[0]}`, name: topic, inputFacets: { kafkaOffsets: { partition: 0, fromOffset: Number(b.from_offset), toOffset: Number(b.to_offset) } } });
      const fields = (input.facets as { schema: { fields: { name: string; fields?: { name: string }[] }[] } }).schema.fields;
      expect(fields.find((f) => f.name === 'data')?.fields?.map((f) => f.name)).toEqual(expect.arrayContaining(['service', 'route', 'status']));
      const outputs = complete.outputs as { name: string; outputFacets?: { outputStatistics: { rowCount: number } }; facets?: { columnLineage?: { fields: Record<string, { inputFields: { field: string }[] }> } } }[];
      expect(outputs.map((o) => o.name)).toEqual([`${id}.events`, `${id}.dead_letters`, `${id}.lineage_batches`]);
      expect(outputs[0]!.outputFacets!.outputStatistics.rowCount).toBe(b.valid_count);
      expect(outputs[1]!.outputFacets!.outputStatistics.rowCount).toBe(b.rejected_count);
      const lineage = outputs[0]!.facets!.columnLineage!.fields;
      expect(Object.keys(lineage).sort()).toEqual(Object.keys(eventsColumnSources).sort());
      for (const column of Object.keys(lineage)) expect(columns.has(column), `events has no column ${column}`).toBe(true);
      expect(lineage.data!.inputFields.map((f) => f.field)).toEqual(expect.arrayContaining(['data.service', 'data.status']));
    }
    expect(runIds.size).toBe(batches.length);
  });

  it('the validator is strict: a bad run id, time or producer URI, or a facet off its schema, is reported', () => {
    const base = {
      eventType: 'START',
      eventTime: '2026-01-01T00:00:00Z',
      producer: 'https://example.com/p',
      schemaURL: 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent',
      run: { runId: '0190c0a2-5a4e-7d1e-9c3b-1234567890ab' },
      job: { namespace: 'n', name: 'j' },
    };
    expect(validate(base)).toEqual([]);
    expect(validate({ ...base, run: { runId: 'batch-1' } }).join()).toMatch(/uuid/);
    expect(validate({ ...base, eventTime: '2026-01-01 00:00:00' }).join()).toMatch(/date-time/);
    expect(validate({ ...base, producer: 'streamwarden' }).join()).toMatch(/uri/);
    const badParent = { ...base, run: { ...base.run, facets: { parent: { _producer: base.producer, _schemaURL: 'https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet', run: { runId: 'x' } } } } };
    expect(validate(badParent).join()).toMatch(/ParentRunFacet/);
  });

  it('an endpoint that hangs changes neither what lands nor whether it lands; events wait off the landing path', { timeout: 240_000 }, async () => {
    const topic = `ol-hang-${id}`;
    const hanging: IncomingMessage[] = [];
    const url = await listen((req) => void hanging.push(req)); // never answers
    const location = { namespace: 'streamwarden', kafkaBrokers: stackEndpoints().kafkaBrokers, clickhouseUrl: stackEndpoints().clickhouseUrl, database: id, producer: lineageProducer('test-1') };
    const emitter = new OpenLineageEmitter({ transport: { url, timeoutMs: 60_000 }, location, maxQueue: 3 });
    const produced = await produceEvents(kafka, { topic, partitions: 1, count: 600, rate: 5000, invalid: 0.05, seed: 9 });
    await landTopic(topic, emitter, produced);

    const [landed] = await rows<{ events: string; dead: string }>(
      'SELECT (SELECT count() FROM events WHERE topic = {topic:String}) AS events, (SELECT count() FROM dead_letters WHERE topic = {topic:String}) AS dead',
      { topic },
    );
    expect(Number(landed!.events)).toBe(produced.valid);
    expect(Number(landed!.dead)).toBe(produced.rejected);
    // All six batches landed while the first lineage request was still hanging and the bounded queue overflowed.
    expect(hanging.length).toBe(1);
    expect(emitter.stats.sent).toBe(0);
    expect(emitter.stats.dropped).toBeGreaterThan(0);
    expect(emitter.stats.queued + emitter.stats.dropped).toBe(12);
  });
});
