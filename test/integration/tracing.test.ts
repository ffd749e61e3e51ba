/**
 * Traces: a worker with tracing on (the OpenTelemetry SDK with an in-memory exporter, Temporal's
 * OpenTelemetry interceptors on the client, workflow and activities) lands one batch from the real
 * broker into ClickHouse. That batch must be one connected trace: StartWorkflow (client) ->
 * RunWorkflow -> StartActivity:landBatch -> RunActivity:landBatch -> fetch / validate / insert
 * into `events`, every span reachable from the root through its parent ids, and the JSON log line
 * written inside the landing must carry the same trace id.
 */
import { Writable } from 'node:stream';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonLogger } from '../../activities/observability/json-logger.js';
import { partitionWorkflowId } from '../../schemas/ingest/pipeline.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { startTracing, type Tracing } from '../../workers/observability/tracing.js';
import { bundlePlatformWorkflows, startWorker, type RunningWorker } from '../../workers/worker.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = testConfig();
const id = uniqueId('tr');
const pipelineId = id.replace(/_/g, '-').slice(3);
const topic = `traces-${id}`;
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let worker: RunningWorker;
let client: Client;
let kafka: Kafka;
let logText = '';

beforeAll(async () => {
  const endpoints = stackEndpoints();
  tracing = startTracing(new SimpleSpanProcessor(exporter), 'streamwarden-test');
  kafka = createKafka(config, endpoints, `-${id}`);
  const log = createJsonLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _enc, done) {
        logText += chunk.toString();
        done();
      },
    }),
  });
  worker = await startWorker({ config, endpoints, database: id, taskQueue: id, log, workflowBundle: await bundlePlatformWorkflows({ tracing: true }), observability: { tracing } });
  const connection = await Connection.connect({ address: endpoints.temporalAddress });
  client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, interceptors: { workflow: [tracing.clientInterceptor] } });
});

afterAll(async () => {
  await worker?.shutdown();
  const admin = createWarehouse(config, stackEndpoints(), 'default');
  await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await admin.close();
  await client?.connection.close();
  await tracing?.shutdown();
});

function chainToRoot(span: ReadableSpan, byId: Map<string, ReadableSpan>): ReadableSpan[] {
  const chain = [span];
  for (let s = span; s.parentSpanId; ) {
    const parent = byId.get(s.parentSpanId);
    if (!parent) throw new Error(`span ${s.name} has parent ${s.parentSpanId}, which was not exported: the trace is broken`);
    chain.push(parent);
    s = parent;
  }
  return chain;
}

describe('tracing', () => {
  it('one batch is one connected trace from the workflow start to the ClickHouse insert; its log lines carry the trace id', { timeout: 180_000 }, async () => {
    await produceEvents(kafka, { topic, partitions: 1, count: 40, rate: 1000, invalid: 0.1, seed: 3 });
    const workflowId = partitionWorkflowId(pipelineId, topic, 0);
    const handle = await client.workflow.start('partitionConsumer', {
      taskQueue: id,
      workflowId,
      args: [{ pipelineId, topic, partition: 0, batchMaxEvents: 1000, pollIntervalMs: 500, startFrom: 'earliest' }],
    });
    const warehouse = createWarehouse(config, stackEndpoints(), id);
    try {
      for (let i = 0; ; i++) {
        const n = await warehouse
          .query({ query: 'SELECT count() AS n FROM lineage_batches', format: 'JSONEachRow' })
          .then((r) => r.json<{ n: string }>())
          .then((r) => Number(r[0]!.n))
          .catch(() => 0);
        if (n >= 1) break;
        if (i > 240) throw new Error('no batch landed');
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await warehouse.close();
    }
    // Cancelling ends the workflow, which ends (and exports) its RunWorkflow span.
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    await tracing.provider.forceFlush();

    const spans = exporter.getFinishedSpans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const insert = spans.find((s) => s.name === 'insert' && s.attributes['db.collection.name'] === 'events');
    expect(insert, `spans: ${spans.map((s) => s.name).join(', ')}`).toBeDefined();
    const chain = chainToRoot(insert!, byId).map((s) => s.name);
    expect(chain).toEqual(['insert', 'RunActivity:landBatch', 'StartActivity:landBatch', 'RunWorkflow:partitionConsumer', 'StartWorkflow:partitionConsumer']);
    const traceId = insert!.spanContext().traceId;
    const runActivity = byId.get(insert!.parentSpanId!)!;
    const siblings = spans.filter((s) => s.parentSpanId === runActivity.spanContext().spanId).map((s) => s.name);
    expect(siblings).toEqual(expect.arrayContaining(['fetch', 'validate', 'insert']));
    // event_id_claims (the duplicate-id claims of the step), events, dead_letters, lineage_batches.
    expect(siblings.filter((n) => n === 'insert').length).toBe(4);
    expect(spans.filter((s) => s.name === 'fetch').every((s) => s.spanContext().traceId === traceId)).toBe(true);

    const lines = logText.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    const landed = lines.find((l) => l.msg === 'batch landed');
    expect(landed).toMatchObject({ traceId, pipeline: pipelineId, workflowId, activity: 'landBatch' });
  });
});
