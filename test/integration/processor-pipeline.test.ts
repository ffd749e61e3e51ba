/**
 * Processors on the real stack (Kafka, Temporal, ClickHouse, one worker): the demo processor
 * switched from v1 to v2 mid-stream with `setProcessor` (exact rows per version, no offset twice or
 * missing, the switch at a batch boundary of every partition, its audit and lineage rows, the added
 * columns in DESCRIBE, the same pseudonyms from the TypeScript and WebAssembly stages); a stage that
 * throws on some events (a catalogue row without a team) dead-letters exactly those with the stage
 * name while the partition flows on, after the enrichment picked up the catalogue change; and a
 * processor failing every event trips the breaker: the pipeline pauses itself, says why, and opens
 * an alert, without dead-lettering the whole topic.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processorBreakerDetector } from '../../activities/processing/activities.js';
import { demoServiceCatalog } from '../../activities/processing/service-catalog.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { alertFingerprint, alertWorkflowId } from '../../schemas/alerting/alert.js';
import { partitionWorkflowId, pipelineWorkflowId, type PartitionProgress, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import type { ProcessorStatus } from '../../workflows/ingest/processor-control.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const config = { ...testConfig(), LOG_LEVEL: 'warn' as const };
const id = uniqueId('t');
const taskQueue = `proc-${id}`;
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let worker: RunningWorker;
const started: string[] = [];
/** The demo processor's enrichment reloads its reference table at most every 10 s. */
const refreshMs = 10_000;

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 150_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last error: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function count(query: string, params: Record<string, unknown>): Promise<number> {
  const [r] = await rows<{ n: string }>(query, params);
  return Number(r?.n ?? 0);
}

async function startPipeline(input: PipelineInputRaw): Promise<void> {
  const workflowId = pipelineWorkflowId(input.pipelineId);
  await temporal.workflow.start('pipeline', { taskQueue, workflowId, args: [input] });
  started.push(workflowId);
}

async function setCatalog(team: (service: string) => string): Promise<void> {
  await warehouse.insert({ table: 'service_catalog', values: demoServiceCatalog.map((r) => ({ ...r, team: team(r.service) })), format: 'JSONEachRow' });
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  await setCatalog((s) => demoServiceCatalog.find((r) => r.service === s)!.team);
  worker = await startWorker({ config, endpoints, database: id, taskQueue, skipMigrations: true });
}, 300_000);

afterAll(async () => {
  for (const workflowId of started) await temporal?.workflow.getHandle(workflowId).cancel().catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await worker?.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('processors in a running pipeline', () => {
  it('switches v1 -> v2 mid-stream at a batch boundary of every partition, exactly once, audited', { timeout: 300_000 }, async () => {
    const pipelineId = `switch-${id.slice(-6)}`;
    const topic = `switch-${id}`;
    const first = await produceEvents(kafka, { topic, partitions: 2, count: 800, rate: 1000, seed: 11, startTime: recentStart() });
    await startPipeline({ pipelineId, topic, partitions: 2, batchMaxEvents: 100, pollIntervalMs: 200, detector: { enabled: false }, processor: { name: 'request-enriched', version: 1 } });
    await waitFor('some v1 rows', async () => ((await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String}', { p: pipelineId })) >= 100 ? true : undefined));
    const status = await temporal.workflow
      .getHandle(pipelineWorkflowId(pipelineId))
      .executeUpdate<ProcessorStatus, [unknown]>('setProcessor', { args: [{ name: 'request-enriched', version: 2, requestedBy: 'test', reason: 'protocol column' }] });
    expect(status.processor).toEqual({ name: 'request-enriched', version: 2, flags: {} });
    const second = await produceEvents(kafka, { topic, partitions: 2, count: 400, rate: 1000, seed: 12, startTime: recentStart() + 60_000 });
    const total = first.valid + second.valid;
    await waitFor('every valid event processed', async () => ((await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String}', { p: pipelineId })) >= total ? true : undefined));

    // Exactly once: one row per valid offset, the same offsets as `events`, none twice.
    const [agg] = await rows<{ n: string; u: string; missing: string }>(
      `SELECT count() AS n, uniqExact(partition, offset) AS u,
              (SELECT count() FROM events WHERE pipeline = {p:String} AND (partition, offset) NOT IN (SELECT partition, offset FROM request_enriched_requests WHERE pipeline = {p:String})) AS missing
       FROM request_enriched_requests WHERE pipeline = {p:String}`,
      { p: pipelineId },
    );
    expect([Number(agg!.n), Number(agg!.u), Number(agg!.missing)]).toEqual([total, total, 0]);

    // The switch sits at a batch boundary of each partition and is what the audit row says.
    const perPartition = await rows<{ partition: number; v1: string; v2: string; max1: string; min2: string }>(
      `SELECT partition, countIf(processor_version = 1) AS v1, countIf(processor_version = 2) AS v2,
              maxIf(offset, processor_version = 1) AS max1, minIf(offset, processor_version = 2) AS min2
       FROM request_enriched_requests WHERE pipeline = {p:String} GROUP BY partition ORDER BY partition`,
      { p: pipelineId },
    );
    const switches = await rows<{ partition: number; change: string; from_processor: string; to_processor: string; first_batch_id: string; first_offset: string; requested_by: string; reason: string }>(
      'SELECT partition, change, from_processor, to_processor, first_batch_id, first_offset, requested_by, reason FROM processor_switches WHERE pipeline = {p:String} ORDER BY partition',
      { p: pipelineId },
    );
    expect(switches).toHaveLength(2);
    for (const p of perPartition) {
      const sw = switches.find((s) => Number(s.partition) === Number(p.partition))!;
      expect(sw).toMatchObject({ change: 'processor', from_processor: 'request-enriched@1', to_processor: 'request-enriched@2', requested_by: 'test', reason: 'protocol column' });
      expect(Number(p.max1)).toBeLessThan(Number(sw.first_offset));
      expect(Number(p.min2)).toBeGreaterThanOrEqual(Number(sw.first_offset));
      // Exact counts per version: every event below the switch offset under v1, the rest under v2.
      const below = await count('SELECT count() AS n FROM events WHERE pipeline = {p:String} AND partition = {n:UInt32} AND offset < {o:UInt64}', { p: pipelineId, n: p.partition, o: sw.first_offset });
      expect(Number(p.v1)).toBe(below);
      const [batch] = await rows<{ processor: string; from_offset: string }>('SELECT processor, from_offset FROM lineage_batches WHERE batch_id = {b:String}', { b: sw.first_batch_id });
      expect(batch).toEqual({ processor: 'request-enriched@2', from_offset: sw.first_offset });
      const before = await rows<{ processor: string }>('SELECT processor FROM lineage_batches WHERE pipeline = {p:String} AND partition = {n:UInt32} AND to_offset = {o:UInt64}', { p: pipelineId, n: p.partition, o: sw.first_offset });
      if (before.length > 0) expect(before[0]!.processor).toBe('request-enriched@1');
    }
    expect(perPartition.reduce((s, p) => s + Number(p.v2), 0)).toBeGreaterThanOrEqual(second.valid);

    // DESCRIBE shows v2's columns; v2 rows fill them.
    const described = await rows<{ name: string; type: string }>('DESCRIBE TABLE request_enriched_requests');
    expect(described).toContainEqual(expect.objectContaining({ name: 'protocol', type: 'LowCardinality(String)' }));
    expect(described).toContainEqual(expect.objectContaining({ name: 'upstream_ms', type: 'Nullable(Float64)' }));
    expect(await count("SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND processor_version = 2 AND protocol = ''", { p: pipelineId })).toBe(0);

    // Errors output: exactly the failed requests. Team from the catalogue; inventory is a miss (null).
    expect(await count('SELECT count() AS n FROM request_enriched_errors WHERE pipeline = {p:String}', { p: pipelineId })).toBe(
      await count("SELECT count() AS n FROM events WHERE pipeline = {p:String} AND JSONExtractUInt(data, 'status') >= 500", { p: pipelineId }),
    );
    expect(await count("SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND service = 'checkout' AND team != 'commerce'", { p: pipelineId })).toBe(0);
    expect(await count("SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND service = 'inventory' AND team IS NOT NULL", { p: pipelineId })).toBe(0);

    // TypeScript (v1) and WebAssembly (v2) pseudonymise a tenant to the same key.
    const keysPerTenant = await rows<{ tenant: string; keys: string; versions: string }>(
      `SELECT JSONExtractString(e.data, 'tenant_id') AS tenant, uniqExact(r.tenant_key) AS keys, uniqExact(r.processor_version) AS versions
       FROM request_enriched_requests AS r INNER JOIN events AS e ON e.pipeline = r.pipeline AND e.partition = r.partition AND e.offset = r.offset
       WHERE r.pipeline = {p:String} GROUP BY tenant HAVING versions = 2`,
      { p: pipelineId },
    );
    expect(keysPerTenant.length).toBeGreaterThan(0);
    for (const t of keysPerTenant) expect(Number(t.keys)).toBe(1);
  });

  it('setFlags changes flags at a batch boundary (audited, every batch records its flags); the validators refuse bad input naming the field', { timeout: 240_000 }, async () => {
    const pipelineId = `flags-${id.slice(-6)}`;
    const topic = `flags-${id}`;
    await produceEvents(kafka, { topic, partitions: 1, count: 300, rate: 1000, seed: 41, startTime: recentStart() });
    await startPipeline({ pipelineId, topic, partitions: 1, batchMaxEvents: 100, pollIntervalMs: 200, detector: { enabled: false }, processor: { name: 'request-enriched', version: 2 } });
    const handle = temporal.workflow.getHandle(pipelineWorkflowId(pipelineId));
    await waitFor('the first events processed', async () => ((await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String}', { p: pipelineId })) >= 300 ? true : undefined));
    const refusal = async (name: string, arg: unknown): Promise<string> => {
      try {
        await handle.executeUpdate(name, { args: [arg] });
        return 'accepted';
      } catch (err) {
        return String((err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message);
      }
    };
    expect(await refusal('setProcessor', { name: 'request-enriched', version: 7, reason: 'x' })).toContain('processor request-enriched has versions 1, 2, 3, not 7');
    expect(await refusal('setProcessor', { name: 'request-enriched', version: 2 })).toContain('reason: expected a reason');
    expect(await refusal('setFlags', { flags: { errorStatusFrom: 42 }, reason: 'x' })).toContain('flags.errorStatusFrom');
    await handle.executeUpdate('setFlags', { args: [{ flags: { excludeServices: ['search'] }, requestedBy: 'test', reason: 'search is noisy' }] });
    await produceEvents(kafka, { topic, partitions: 1, count: 300, rate: 1000, seed: 42, startTime: recentStart() + 60_000 });
    await waitFor('the partition at the end of the topic', async () => {
      const p = await temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0)).query<PartitionProgress>('progress');
      return p.cursor === 600 ? p : undefined;
    });
    const [sw] = await rows<{ change: string; to_flags: string; first_offset: string }>('SELECT change, to_flags, first_offset FROM processor_switches WHERE pipeline = {p:String}', { p: pipelineId });
    expect(sw!.change).toBe('flags');
    expect(JSON.parse(sw!.to_flags)).toEqual({ dropHealthChecks: true, excludeServices: ['search'], errorStatusFrom: 500 });
    const flagsByBatch = await rows<{ from_offset: string; flags: string }>('SELECT from_offset, flags FROM lineage_batches WHERE pipeline = {p:String} ORDER BY from_offset', { p: pipelineId });
    for (const b of flagsByBatch) {
      expect(JSON.parse(b.flags)).toEqual({ dropHealthChecks: true, excludeServices: Number(b.from_offset) >= Number(sw!.first_offset) ? ['search'] : [], errorStatusFrom: 500 });
    }
    // Before the boundary search requests landed; from it on, none did.
    expect(await count("SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND service = 'search' AND offset >= {o:UInt64}", { p: pipelineId, o: sw!.first_offset })).toBe(0);
    expect(await count("SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND service = 'search'", { p: pipelineId })).toBeGreaterThan(0);
  });

  it('a throwing stage dead-letters its events with the stage name and the partition flows on, once the enrichment sees the new catalogue', { timeout: 240_000 }, async () => {
    await setCatalog((s) => (s === 'auth' ? '' : demoServiceCatalog.find((r) => r.service === s)!.team));
    await new Promise((resolve) => setTimeout(resolve, refreshMs + 1000));
    const pipelineId = `throwing-${id.slice(-6)}`;
    const topic = `throwing-${id}`;
    const produced = await produceEvents(kafka, { topic, partitions: 1, count: 400, rate: 1000, seed: 21, startTime: recentStart() });
    await startPipeline({ pipelineId, topic, partitions: 1, batchMaxEvents: 100, pollIntervalMs: 200, detector: { enabled: false }, processor: { name: 'request-enriched', version: 2 } });
    const progress = await waitFor('the partition at the end of the topic', async () => {
      const p = await temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0)).query<PartitionProgress>('progress');
      return p.cursor === produced.total ? p : undefined;
    });
    expect(progress.paused).toBe(false);
    const auth = await count("SELECT count() AS n FROM events WHERE pipeline = {p:String} AND JSONExtractString(data, 'service') = 'auth'", { p: pipelineId });
    expect(auth).toBeGreaterThan(0);
    const letters = await rows<{ reason_code: string; reason_message: string; stage: string; n: string }>(
      "SELECT reason_code, reason_message, JSONExtractString(reason_detail, 'stage') AS stage, count() AS n FROM dead_letters WHERE pipeline = {p:String} AND reason_code = 'processing_error' GROUP BY reason_code, reason_message, stage",
      { p: pipelineId },
    );
    expect(letters.map((l) => ({ ...l, n: Number(l.n) }))).toEqual([{ reason_code: 'processing_error', reason_message: 'service-catalog: service_catalog row of auth has no team', stage: 'service-catalog', n: auth }]);
    expect(await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String}', { p: pipelineId })).toBe(produced.valid - auth);
  });

  it('a processor failing every event trips the breaker: the pipeline pauses, says why, and opens an alert', { timeout: 240_000 }, async () => {
    await setCatalog(() => '');
    await new Promise((resolve) => setTimeout(resolve, refreshMs + 1000));
    const pipelineId = `breaker-${id.slice(-6)}`;
    const topic = `breaker-${id}`;
    const produced = await produceEvents(kafka, { topic, partitions: 1, count: 1000, rate: 1000, seed: 31, startTime: recentStart() });
    await startPipeline({ pipelineId, topic, partitions: 1, batchMaxEvents: 50, pollIntervalMs: 200, detector: { enabled: false }, processor: { name: 'request-enriched', version: 2 } });
    const handle = temporal.workflow.getHandle(pipelineWorkflowId(pipelineId));
    const status = await waitFor('the breaker state on the pipeline', async () => {
      const s = await handle.query<ProcessorStatus>('processor');
      return s.breaker?.alertWorkflowId ? s : undefined;
    });
    // Every catalogued service fails (inventory is a catalogue miss, kept with nulls): ratio > 0.5.
    expect(status.breaker!.reason).toMatch(/request-enriched v2 failed \d+% of the events of 3 batches in a row \(threshold 50%/);
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain('PAUSED by the processor breaker');
    const partition = await temporal.workflow.getHandle(partitionWorkflowId(pipelineId, topic, 0)).query<PartitionProgress>('progress');
    expect(partition.paused).toBe(true);
    // The alert workflow is open for this pipeline and processor.
    const alertId = alertWorkflowId(alertFingerprint(processorBreakerDetector, { pipeline: pipelineId, processor: 'request-enriched@2' }));
    expect(status.breaker!.alertWorkflowId).toBe(alertId);
    started.push(alertId);
    const alert = await temporal.workflow.getHandle(alertId).describe();
    expect(alert.status.name).toBe('RUNNING');
    // It stopped after a few batches instead of dead-lettering the whole topic.
    const deadLettered = await count("SELECT count() AS n FROM dead_letters WHERE pipeline = {p:String} AND reason_code = 'processing_error'", { p: pipelineId });
    expect(await count('SELECT count() AS n FROM lineage_batches WHERE pipeline = {p:String}', { p: pipelineId })).toBe(3);
    expect(deadLettered).toBeGreaterThan(3 * 50 * 0.5);
    expect(deadLettered).toBeLessThanOrEqual(3 * 50);
    expect(produced.valid).toBeGreaterThan(900);
  });
});
