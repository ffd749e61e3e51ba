/**
 * Canary rollouts through a running pipeline on the real stack (Kafka, Temporal, ClickHouse, one
 * worker whose catalogue also holds a regressed request-enriched v3):
 * - a good version (v1 -> v2) goes through shadow, a 50 % weight step and an analysis, and is
 *   promoted: the pipeline then runs v2 for every key (handed over with setProcessor);
 * - a regressed version (v3 fails the requests of one route, ~3 %) is caught by the judgement of
 *   the shadow step and rolled back, without a single v3 row or dead letter in the live outputs;
 * - a version that only shifts one output field (v4: `duration_ms` 25 % larger; no failure, same
 *   counts) is caught by the Mann–Whitney judgement of that field, not by counts, and rolled back;
 * - in both, the live outputs hold every processed event exactly once (no duplicate, no gap), and
 *   each row's processor version is exactly the one the batch plan's routing gives its key.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoServiceCatalog } from '../../activities/processing/service-catalog.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { silentLogger } from '../../activities/logger.js';
import type { RunEvent } from '../../activities/observability/openlineage.js';
import { lineageFromConfig } from '../../workers/observability/lineage.js';
import { openLineageValidator } from '../support/openlineage-validator.js';
import { analyticsFileSchema, type AnalyticsFileInput } from '../../schemas/analytics/declarations.js';
import { pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { onCanary } from '../../schemas/rollouts/routing.js';
import { rolloutWorkflowId, type RolloutInputJson } from '../../schemas/rollouts/rollout.js';
import type { RolloutState } from '../../schemas/rollouts/rollout-state.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { processors as regressedCatalogue } from '../fixtures/processors/regressed.js';
import { recentStart, stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const lineageDir = mkdtempSync(join(tmpdir(), 'rollout-lineage-'));
const lineageFile = join(lineageDir, 'openlineage.jsonl');
const config = { ...testConfig(), LOG_LEVEL: 'warn' as const, OPENLINEAGE_FILE: lineageFile };

/** The OpenLineage run events the worker appended to OPENLINEAGE_FILE for one rollout (by job and facet). */
function rolloutLineage(pipelineId: string): RunEvent[] {
  const lines = readFileSync(lineageFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunEvent);
  return lines.filter((e) => (e.job as { name: string }).name === `${pipelineId}.canaryRollout`);
}
const id = uniqueId('t');
const suffix = id.slice(-6);
const taskQueue = `canary-${id}`;
let kafka: Kafka;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let worker: RunningWorker;
const started: string[] = [];

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<T>();
}

async function count(query: string, params: Record<string, unknown>): Promise<number> {
  const [r] = await rows<{ n: number }>(query, params);
  return Number(r?.n ?? 0);
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

async function startPipeline(input: PipelineInputRaw): Promise<void> {
  const workflowId = pipelineWorkflowId(input.pipelineId);
  await temporal.workflow.start('pipeline', { taskQueue, workflowId, args: [input] });
  started.push(workflowId);
}

/**
 * The judgement of every rollout here: the default proportions, processing time with room for
 * timer noise, and the distribution of the output field `duration_ms` (critical, 5 % tolerance).
 */
const analysis: RolloutInputJson['analysis'] = {
  minSamples: 20,
  metrics: [
    { name: 'reject_rate', kind: 'proportion', critical: true, tolerance: 0.001 },
    { name: 'processing_error_rate', kind: 'proportion', critical: true, tolerance: 0.001 },
    { name: 'processing_time_ms', kind: 'continuous', direction: 'increase', tolerance: 0.05, relativeTolerance: 2 },
    { name: 'field:duration_ms', kind: 'continuous', direction: 'either', relativeTolerance: 0.05, critical: true },
  ],
};

/**
 * Analytics declared over the processor's output table (`request_enriched_requests`): per second of
 * event time, the request count and the median `duration_ms`, and a threshold detector on that
 * median. A rollout judges them as aggregate metrics (`aggregate:requests_1s.p50`, ...) and detector
 * firings (`detector:slow_p50`): the same aggregation over the baseline's rows and the canary's.
 */
function outputAnalytics(pipeline: string): AnalyticsFileInput['pipelines'][number] {
  return {
    pipeline,
    source: { table: 'request_enriched_requests' },
    fields: { service: { column: 'service' }, duration: { column: 'duration_ms', type: 'number' } },
    aggregations: [
      { name: 'requests_1s', window: { type: 'tumbling', size: '1s' }, measures: [{ name: 'requests', kind: 'count' }, { name: 'p50', kind: 'p50', field: 'duration' }] },
    ],
    detectors: [{ name: 'slow_p50', aggregation: 'requests_1s', measure: 'p50', method: { kind: 'threshold' }, levels: { warning: 30 }, clear: { below: 30 } }],
  };
}

/**
 * Starts a pipeline on v1 with a backlog, keeps events flowing (paced) while `rollout` runs, and
 * returns the rollout's final state, its duration and what was produced.
 */
async function rolloutThroughPipeline(pipelineId: string, seed: number, rollout: Omit<RolloutInputJson, 'pipeline'>): Promise<{ state: RolloutState; seconds: number; produced: GeneratorSummary[] }> {
  const topic = `${pipelineId}-${id}`;
  const backlog = await produceEvents(kafka, { topic, partitions: 2, count: 600, rate: 1000, seed, startTime: recentStart() });
  await startPipeline({ pipelineId, topic, partitions: 2, batchMaxEvents: 100, pollIntervalMs: 200, detector: { enabled: false }, processor: { name: 'request-enriched', version: 1 } });
  await waitFor('the backlog processed by v1', async () => ((await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String}', { p: pipelineId })) >= 300 ? true : undefined));
  // A steady stream for the whole rollout: every step sees traffic.
  const stream = produceEvents(kafka, { topic, partitions: 2, count: 2400, rate: 60, pace: true, seed: seed + 1, startTime: recentStart() + 60_000 });
  const workflowId = rolloutWorkflowId(pipelineId, rollout.version);
  const began = Date.now();
  const handle = await temporal.workflow.start('canaryRollout', { taskQueue, workflowId, args: [{ pipeline: pipelineId, ...rollout }] });
  started.push(workflowId);
  const state = (await handle.result()) as RolloutState;
  const seconds = Math.round((Date.now() - began) / 100) / 10;
  const produced = [backlog, await stream];
  const valid = produced.reduce((n, p) => n + p.valid, 0);
  await waitFor('every valid event landed', async () => ((await count('SELECT count() AS n FROM events WHERE pipeline = {p:String}', { p: pipelineId })) >= valid ? true : undefined), 120_000);
  // The processor outputs of the last batch follow its events row within the same landing.
  await waitFor('every landed batch in lineage', async () => {
    const [l] = await rows<{ valid: number }>('SELECT sum(valid_count) AS valid FROM lineage_batches WHERE pipeline = {p:String}', { p: pipelineId });
    return Number(l?.valid ?? 0) >= valid ? true : undefined;
  });
  console.log(`rollout ${workflowId}: ${state.status} after ${seconds} s; ${state.judgements.map((j) => `step ${j.stepNumber ?? j.step + 1}: ${j.outcome} (${j.metrics.join('; ')})`).join(' | ')}`);
  return { state, seconds, produced };
}

interface Landed {
  partition: number;
  offset: number;
  processor_version: number;
  batch_id: string;
}
interface BatchRouting {
  batch_id: string;
  partition: number;
  from_offset: number;
  to_offset: number;
  processor: string;
  routing_mode: string;
  routing_percent: number;
  canary_processor: string;
  canary_events: number;
}

/**
 * The live outputs of a pipeline against its events and its batches' routing: every valid event not
 * dead-lettered by the processor is in `request_enriched_requests` exactly once, the batches tile
 * each partition's offsets without gap or overlap, and each row's version is the one its batch's
 * routing gives its key. Returns the batches for further checks.
 */
async function checkLiveOutputs(pipelineId: string): Promise<BatchRouting[]> {
  const p = { p: pipelineId };
  const live = await rows<Landed>('SELECT partition, offset, processor_version, batch_id FROM request_enriched_requests WHERE pipeline = {p:String}', p);
  const events = await rows<{ partition: number; offset: number; event_key: string }>('SELECT partition, offset, event_key FROM events WHERE pipeline = {p:String}', p);
  const failed = await rows<{ partition: number; offset: number }>(
    "SELECT partition, offset FROM dead_letters WHERE pipeline = {p:String} AND reason_code IN ('processing_error', 'output_violation', 'processor_input_mismatch')",
    p,
  );
  const batches = await rows<BatchRouting>(
    'SELECT batch_id, partition, from_offset, to_offset, processor, routing_mode, routing_percent, canary_processor, canary_events FROM lineage_batches FINAL WHERE pipeline = {p:String} ORDER BY partition, from_offset',
    p,
  );
  const at = (partition: number, offset: number) => `${partition}/${offset}`;
  // No duplicates.
  const seen = new Set<string>();
  for (const r of live) {
    expect(seen.has(at(r.partition, r.offset)), `offset ${at(r.partition, r.offset)} landed twice`).toBe(false);
    seen.add(at(r.partition, r.offset));
  }
  // No gaps: exactly the valid events minus the processor's dead letters.
  const failedSet = new Set(failed.map((f) => at(f.partition, f.offset)));
  const expected = events.filter((e) => !failedSet.has(at(e.partition, e.offset))).map((e) => at(e.partition, e.offset)).sort();
  expect([...seen].sort()).toEqual(expected);
  // Batches tile each partition from 0, each planned once.
  for (const partition of new Set(batches.map((b) => b.partition))) {
    let next = 0;
    for (const b of batches.filter((x) => x.partition === partition)) {
      expect(Number(b.from_offset), `batch ${b.batch_id} starts where the previous ended`).toBe(next);
      next = Number(b.to_offset);
    }
  }
  // Versions exact: weight batches give the canary exactly the keys in its share, others the plan's processor.
  const keys = new Map(events.map((e) => [at(e.partition, e.offset), e.event_key]));
  const byBatch = new Map(batches.map((b) => [b.batch_id, b]));
  for (const r of live) {
    const b = byBatch.get(r.batch_id)!;
    const canary = b.routing_mode === 'weight' && onCanary(keys.get(at(r.partition, r.offset))!, Number(b.routing_percent));
    expect(`request-enriched@${r.processor_version}`, `version of ${at(r.partition, r.offset)} in ${b.batch_id}`).toBe(canary ? b.canary_processor : b.processor);
  }
  return batches;
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  await warehouse.insert({ table: 'service_catalog', values: demoServiceCatalog, format: 'JSONEachRow' });
  const analytics = analyticsFileSchema.parse({ pipelines: [outputAnalytics(`good-${suffix}`), outputAnalytics(`agg-${suffix}`)] });
  const lineage = lineageFromConfig(config, endpoints, 'test', undefined, silentLogger)!;
  worker = await startWorker({ config, endpoints, database: id, taskQueue, skipMigrations: true, processorCatalogue: regressedCatalogue, analytics, observability: { lineage } });
}, 300_000);

afterAll(async () => {
  for (const workflowId of started) await temporal?.workflow.getHandle(workflowId).cancel().catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await worker?.shutdown();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([admin?.close(), warehouse?.close(), temporal?.connection.close()]);
  rmSync(lineageDir, { recursive: true, force: true });
});

/** The rollout's run events: valid against the pinned spec, one run, START first, then RUNNING ones, then `end`. */
async function checkRolloutLineage(pipelineId: string, end: 'COMPLETE' | 'FAIL', state: RolloutState): Promise<RunEvent[]> {
  const validate = openLineageValidator();
  const events = await waitFor('the rollout run events in OPENLINEAGE_FILE', async () => {
    const found = rolloutLineage(pipelineId);
    return found.some((e) => e.eventType === end) ? found : undefined;
  }, 30_000);
  for (const e of events) expect(validate(e), JSON.stringify(e)).toEqual([]);
  expect(new Set(events.map((e) => e.run.runId)).size).toBe(1);
  const facets = events.map((e) => e.run.facets!.rolloutStep as { seq: number; event: string; step: number; kind: string; weight: number; verdict?: string });
  const bySeq = events.map((e, i) => [facets[i]!.seq, e.eventType] as const).sort((a, b) => a[0] - b[0]);
  expect(bySeq[0]![1]).toBe('START');
  expect(bySeq.at(-1)![1]).toBe(end);
  expect(bySeq.slice(1, -1).every(([, t]) => t === 'RUNNING')).toBe(true);
  // One event per audit event, with the judgement verdicts the rollout recorded.
  expect(facets.map((f) => f.seq).sort((a, b) => a - b)).toEqual(state.events.map((e) => e.seq));
  expect(facets.filter((f) => f.event === 'judgement').map((f) => f.verdict)).toEqual(state.judgements.map((j) => j.outcome));
  return events;
}

describe('canary rollouts through a running pipeline', () => {
  it('a good version goes shadow -> 50 % -> analysis and is promoted to 100 %; live outputs exact, versions exact', { timeout: 400_000 }, async () => {
    const pipelineId = `good-${suffix}`;
    // No baselineVersion: the rollout records the version the pipeline runs at start.
    const { state } = await rolloutThroughPipeline(pipelineId, 101, {
      version: '2',
      steps: [{ shadow: '12s' }, { weight: 50 }, { pause: '12s' }, 'analysis'],
      // The declared aggregation and detector over the outputs are judged by default (include: declared).
      analysis: { ...analysis, aggregates: { measures: { minSamples: 8 }, detectors: { minSamples: 8 } } },
      requestedBy: 'test',
    });
    expect(state.status).toBe('promoted');
    expect(state.judgements.map((j) => j.outcome)).toEqual(['pass', 'pass']);
    expect(state.handover).toContain('switched to request-enriched@2');
    // The baseline is the version it is, as recorded at start, not the word `current` (the input's
    // default), in the state, the audit trail and every judgement row.
    expect(state.baselineVersion).toBe('request-enriched@1');
    expect(state.events.find((e) => e.type === 'started')?.reason).toMatch(/^request-enriched@1 -> 2: /);
    const baselines = await rows<{ b: string }>(
      "SELECT DISTINCT baseline_version AS b FROM rollout_events FINAL WHERE rollout_id = {id:String} UNION DISTINCT SELECT DISTINCT baseline_version AS b FROM canary_judgements FINAL WHERE rollout_id = {id:String}",
      { id: rolloutWorkflowId(pipelineId, '2') },
    );
    expect(baselines.map((r) => r.b)).toEqual(['request-enriched@1']);
    // Lineage: one OpenLineage run, START ... RUNNING (shadow, weight 50, judgements) ... COMPLETE.
    const lineage = await checkRolloutLineage(pipelineId, 'COMPLETE', state);
    const kinds = lineage.map((e) => e.run.facets!.rolloutStep as { event: string; kind: string; weight: number });
    expect(kinds.filter((k) => k.event === 'routing').map((k) => [k.kind, k.weight])).toEqual([['shadow', 0], ['weight', 50], ['canary', 100]]);

    const batches = await checkLiveOutputs(pipelineId);
    const modes = new Set(batches.map((b) => b.routing_mode));
    expect(modes).toEqual(new Set(['', 'shadow', 'weight']));
    // Shadow batches: v2 processed every event of the batch into the shadow table, once; nothing of v2 in their live rows.
    const shadow = batches.filter((b) => b.routing_mode === 'shadow');
    const shadowEvents = shadow.reduce((n, b) => n + Number(b.canary_events), 0);
    expect(shadowEvents).toBeGreaterThan(0);
    const [sh] = await rows<{ n: number; u: number; v: number[] }>(
      'SELECT count() AS n, uniqExact(partition, offset) AS u, groupUniqArray(processor_version) AS v FROM request_enriched_requests_shadow WHERE pipeline = {p:String}',
      { p: pipelineId },
    );
    expect([Number(sh!.n), Number(sh!.u), sh!.v]).toEqual([shadowEvents, shadowEvents, [2]]);
    // Weight batches put exactly the canary's share of keys on v2, and the rest on v1.
    const weighted = batches.filter((b) => b.routing_mode === 'weight');
    expect(weighted.length).toBeGreaterThan(0);
    for (const b of weighted) expect(Number(b.routing_percent)).toBe(50);
    // Promoted: handed over to the pipeline's own processor with setProcessor; later batches run v2 unrouted.
    const [sw] = await rows<{ to_processor: string; requested_by: string; first_offset: number; partition: number }>(
      'SELECT to_processor, requested_by, first_offset, partition FROM processor_switches WHERE pipeline = {p:String} ORDER BY first_offset DESC LIMIT 1',
      { p: pipelineId },
    );
    expect(sw).toMatchObject({ to_processor: 'request-enriched@2', requested_by: `rollout ${rolloutWorkflowId(pipelineId, '2')}` });
    const last = batches.filter((b) => b.partition === sw!.partition).at(-1)!;
    expect([last.processor, last.routing_mode]).toEqual(['request-enriched@2', '']);
    // Observations for both roles under each routing epoch, which the judgements read.
    const observed = await rows<{ epoch: number; role: string; events: number }>(
      "SELECT epoch, toString(role) AS role, sum(events) AS events FROM canary_observations FINAL WHERE pipeline = {p:String} AND metric = 'reject_rate' GROUP BY epoch, role ORDER BY epoch, role",
      { p: pipelineId },
    );
    expect(observed.map((o) => [Number(o.epoch), o.role])).toEqual([[1, 'baseline'], [1, 'canary'], [2, 'baseline'], [2, 'canary']]);
    const [judged] = await rows<{ n: number }>("SELECT count() AS n FROM canary_judgements FINAL WHERE pipeline = {p:String} AND outcome = 'pass'", { p: pipelineId });
    const declared = ['aggregate:requests_1s.requests', 'aggregate:requests_1s.p50', 'detector:slow_p50'];
    expect(Number(judged!.n)).toBe(2 * (analysis.metrics!.length + declared.length));
    // The declared aggregate metrics were judged on both steps, on enough windows, and passed.
    const aggregates = await rows<{ step: number; metric: string; verdict: string; baseline_n: number; canary_n: number }>(
      "SELECT step, metric, verdict, baseline_n, canary_n FROM canary_judgements FINAL WHERE pipeline = {p:String} AND (metric LIKE 'aggregate:%' OR metric LIKE 'detector:%') ORDER BY step, metric",
      { p: pipelineId },
    );
    expect(aggregates.map((a) => [Number(a.step), a.metric, a.verdict])).toEqual([0, 3].flatMap((step) => [...declared].sort().map((m) => [step, m, 'pass'])));
    for (const a of aggregates) expect(Math.min(Number(a.baseline_n), Number(a.canary_n)), `${a.metric} windows`).toBeGreaterThanOrEqual(8);
  });

  it('a version that raises the reject rate is rolled back at the shadow step; nothing of it reaches the live outputs', { timeout: 400_000 }, async () => {
    const pipelineId = `bad-${suffix}`;
    const { state } = await rolloutThroughPipeline(pipelineId, 202, {
      version: '3',
      baselineVersion: '1',
      steps: [{ shadow: '12s' }, { weight: 25 }, { pause: '12s' }, 'analysis'],
      analysis,
      requestedBy: 'test',
    });
    expect(state.status).toBe('rolled_back');
    expect(state.step).toBe(0);
    expect(state.judgements).toHaveLength(1);
    expect(state.judgements[0]!.outcome).toBe('fail');
    await checkRolloutLineage(pipelineId, 'FAIL', state);
    const metrics = await rows<{ metric: string; verdict: string; baseline_hits: number; canary_hits: number }>(
      'SELECT metric, verdict, baseline_hits, canary_hits FROM canary_judgements FINAL WHERE pipeline = {p:String} ORDER BY metric',
      { p: pipelineId },
    );
    const reject = metrics.find((m) => m.metric === 'reject_rate')!;
    expect(reject.verdict).toBe('fail');
    expect(Number(reject.baseline_hits)).toBe(0);
    expect(Number(reject.canary_hits)).toBeGreaterThan(0);

    const batches = await checkLiveOutputs(pipelineId);
    expect(new Set(batches.map((b) => b.routing_mode))).toEqual(new Set(['', 'shadow']));
    expect(await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND processor_version = 3', { p: pipelineId })).toBe(0);
    expect(await count("SELECT count() AS n FROM dead_letters WHERE pipeline = {p:String} AND reason_code = 'processing_error'", { p: pipelineId })).toBe(0);
    // The shadow table holds v3's rows of the shadow batches: every event but the failing route's.
    const shadowBatches = batches.filter((b) => b.routing_mode === 'shadow');
    const shadowEvents = shadowBatches.reduce((n, b) => n + Number(b.canary_events), 0);
    const failing = await count("SELECT count() AS n FROM events WHERE pipeline = {p:String} AND JSONExtractString(data, 'route') = '/payments/:id' AND batch_id IN {ids:Array(String)}", {
      p: pipelineId,
      ids: shadowBatches.map((b) => b.batch_id),
    });
    expect(failing).toBeGreaterThan(0);
    expect(await count('SELECT count() AS n FROM request_enriched_requests_shadow WHERE pipeline = {p:String}', { p: pipelineId })).toBe(shadowEvents - failing);
    expect(
      await count("SELECT count() AS n FROM request_enriched_requests_shadow WHERE pipeline = {p:String} AND route = '/payments/:id'", { p: pipelineId }),
    ).toBe(0);
    // Rolled back: the pipeline never switched processors, and batches after the rollback are unrouted v1.
    expect(await count('SELECT count() AS n FROM processor_switches WHERE pipeline = {p:String}', { p: pipelineId })).toBe(0);
    for (const partition of new Set(batches.map((b) => b.partition))) {
      const last = batches.filter((b) => b.partition === partition).at(-1)!;
      expect([last.processor, last.routing_mode]).toEqual(['request-enriched@1', '']);
    }
  });

  it('a version that shifts one output field by a small effect is caught by the judgement of that field, not by counts', { timeout: 400_000 }, async () => {
    const pipelineId = `shift-${suffix}`;
    const { state } = await rolloutThroughPipeline(pipelineId, 303, {
      version: '4',
      baselineVersion: '1',
      steps: [{ shadow: '12s' }, { weight: 25 }, { pause: '12s' }, 'analysis'],
      analysis,
      requestedBy: 'test',
    });
    expect(state.status).toBe('rolled_back');
    expect(state.step).toBe(0);
    const metrics = await rows<{ metric: string; verdict: string; test: string; p_value: number; effect: number; baseline_center: number }>(
      'SELECT metric, verdict, test, p_value, effect, baseline_center FROM canary_judgements FINAL WHERE pipeline = {p:String} ORDER BY metric',
      { p: pipelineId },
    );
    const verdicts = Object.fromEntries(metrics.map((m) => [m.metric, m.verdict]));
    expect(verdicts).toMatchObject({ reject_rate: 'pass', processing_error_rate: 'pass', 'field:duration_ms': 'fail' });
    const field = metrics.find((m) => m.metric === 'field:duration_ms')!;
    expect(field.test).toBe('mann-whitney-asymptotic');
    expect(Number(field.p_value)).toBeLessThan(0.02);
    expect(Number(field.effect)).toBeGreaterThan(0.05 * Number(field.baseline_center));
    const batches = await checkLiveOutputs(pipelineId);
    expect(await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND processor_version = 4', { p: pipelineId })).toBe(0);
    // The shadow rows are v4's: exactly one per event of the shadow batches (nothing failed).
    const shadowEvents = batches.filter((b) => b.routing_mode === 'shadow').reduce((n, b) => n + Number(b.canary_events), 0);
    expect(await count('SELECT count() AS n FROM request_enriched_requests_shadow WHERE pipeline = {p:String} AND processor_version = 4', { p: pipelineId })).toBe(shadowEvents);
  });

  it('a version whose regression shows in an aggregate is rolled back by the aggregate metric (no field metric, same counts)', { timeout: 400_000 }, async () => {
    const pipelineId = `agg-${suffix}`;
    // No field:duration_ms metric here: only the declared aggregation's per-window median can see v4.
    const { state } = await rolloutThroughPipeline(pipelineId, 505, {
      version: '4',
      baselineVersion: '1',
      steps: [{ shadow: '20s' }, { weight: 25 }, { pause: '12s' }, 'analysis'],
      analysis: {
        minSamples: 20,
        metrics: [
          ...analysis.metrics!.filter((m) => !m.name.startsWith('field:')),
          { name: 'aggregate:requests_1s.p50', kind: 'continuous', direction: 'either', relativeTolerance: 0.05, critical: true, minSamples: 8 },
          { name: 'aggregate:requests_1s.requests', kind: 'continuous', direction: 'either', relativeTolerance: 0.1, minSamples: 8 },
          { name: 'detector:slow_p50', kind: 'proportion', tolerance: 0.05, minSamples: 8 },
        ],
        aggregates: { include: 'named' },
      },
      requestedBy: 'test',
    });
    expect(state.status).toBe('rolled_back');
    expect(state.step).toBe(0);
    const metrics = await rows<{ metric: string; verdict: string; test: string; p_value: number; effect: number; baseline_center: number; baseline_n: number; canary_n: number; baseline_hits: number; canary_hits: number; baseline_samples: number[]; canary_samples: number[] }>(
      'SELECT metric, verdict, test, p_value, effect, baseline_center, baseline_n, canary_n, baseline_hits, canary_hits, baseline_samples, canary_samples FROM canary_judgements FINAL WHERE pipeline = {p:String} ORDER BY metric',
      { p: pipelineId },
    );
    const by = Object.fromEntries(metrics.map((m) => [m.metric, m]));
    expect(Object.fromEntries(metrics.map((m) => [m.metric, m.verdict]))).toEqual({
      reject_rate: 'pass',
      processing_error_rate: 'pass',
      processing_time_ms: 'pass',
      'aggregate:requests_1s.p50': 'fail',
      'aggregate:requests_1s.requests': 'pass',
      'detector:slow_p50': expect.stringMatching(/^(pass|fail)$/),
    });
    const p50 = by['aggregate:requests_1s.p50']!;
    expect(p50.test).toBe('mann-whitney-asymptotic');
    expect(Number(p50.p_value)).toBeLessThan(0.02);
    expect(Number(p50.effect)).toBeGreaterThan(0.05 * Number(p50.baseline_center));
    // Shadow: both sides are the same windows of the same events; v4's medians are 1.25 x v1's.
    expect(Number(p50.baseline_n)).toBeGreaterThanOrEqual(8);
    expect(Number(p50.canary_n)).toBe(Number(p50.baseline_n));
    const ratio = [...p50.canary_samples].sort((a, b) => a - b).map((c, i) => c / [...p50.baseline_samples].sort((a, b) => a - b)[i]!);
    for (const r of ratio) expect(r).toBeCloseTo(1.25, 1);
    // Counts per window are identical (the same events), so the count passes with p = 1.
    const requests = by['aggregate:requests_1s.requests']!;
    expect([...requests.canary_samples].sort()).toEqual([...requests.baseline_samples].sort());
    // The threshold detector on the median fires in at least as many windows for v4, and in more.
    const detector = by['detector:slow_p50']!;
    expect(Number(detector.canary_n)).toBe(Number(detector.baseline_n));
    expect(Number(detector.canary_hits)).toBeGreaterThan(Number(detector.baseline_hits));
    await checkLiveOutputs(pipelineId);
    expect(await count('SELECT count() AS n FROM request_enriched_requests WHERE pipeline = {p:String} AND processor_version = 4', { p: pipelineId })).toBe(0);
    // A metric naming a measure the declaration does not have is refused at start, naming the field.
    const refused = await temporal.workflow
      .execute('canaryRollout', { taskQueue, workflowId: rolloutWorkflowId(pipelineId, '2'), args: [{ pipeline: pipelineId, version: '2', analysis: { metrics: [{ name: 'aggregate:requests_1s.p99', kind: 'continuous' }] } }] })
      .catch((e: unknown) => e as Error & { cause?: Error });
    expect(String((refused as { cause?: Error }).cause?.message)).toBe('canaryRollout input: input.analysis.metrics.0.name: aggregation requests_1s has no measure "p99" (measures: requests, p50)');
  });

  it('a terminated rollout (no abort, no final routing row) stops routing at the next batch boundary; live outputs stay exact', { timeout: 300_000 }, async () => {
    const pipelineId = `term-${suffix}`;
    const topic = `${pipelineId}-${id}`;
    const backlog = await produceEvents(kafka, { topic, partitions: 2, count: 200, rate: 1000, seed: 404, startTime: recentStart() });
    await startPipeline({ pipelineId, topic, partitions: 2, batchMaxEvents: 50, pollIntervalMs: 200, detector: { enabled: false }, processor: { name: 'request-enriched', version: 1 } });
    const stream = produceEvents(kafka, { topic, partitions: 2, count: 1500, rate: 50, pace: true, seed: 405, startTime: recentStart() + 60_000 });
    const workflowId = rolloutWorkflowId(pipelineId, '2');
    const handle = await temporal.workflow.start('canaryRollout', { taskQueue, workflowId, args: [{ pipeline: pipelineId, version: '2', baselineVersion: '1', steps: [{ weight: 50 }, { pause: {} }], requestedBy: 'test' }] });
    started.push(workflowId, `rollout-lock-${pipelineId}`);
    const weighted = 'SELECT count() AS n FROM lineage_batches FINAL WHERE pipeline = {p:String} AND routing_mode = {m:String}';
    await waitFor('batches routed 50 % to v2', async () => ((await count(weighted, { p: pipelineId, m: 'weight' })) >= 4 ? true : undefined));
    // Terminated: the workflow publishes nothing more, so its last row (weight 50 %) stays the latest.
    await handle.terminate('operator terminated the rollout');
    const [row] = await rows<{ mode: string; final: number }>('SELECT mode, final FROM rollout_routing WHERE pipeline = {p:String} ORDER BY published_at DESC, epoch DESC LIMIT 1', { p: pipelineId });
    expect(row).toEqual({ mode: 'weight', final: 0 });
    // Planned after the liveness answer has expired (5 s) and the batch in flight has landed.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const cut = new Map((await rows<{ partition: number; to: number }>('SELECT partition, max(to_offset) AS to FROM lineage_batches FINAL WHERE pipeline = {p:String} GROUP BY partition', { p: pipelineId })).map((r) => [Number(r.partition), Number(r.to)]));
    const later = 'SELECT count() AS n FROM lineage_batches FINAL WHERE pipeline = {p:String} AND from_offset >= {cut:UInt64} AND partition = {part:UInt32}';
    await waitFor('batches planned after the termination on every partition', async () => {
      for (const [part, to] of cut) if ((await count(later, { p: pipelineId, cut: to, part })) < 3) return undefined;
      return true;
    });
    const valid = backlog.valid + (await stream).valid;
    await waitFor('every landed batch in lineage', async () => {
      const [l] = await rows<{ valid: number }>('SELECT sum(valid_count) AS valid FROM lineage_batches WHERE pipeline = {p:String}', { p: pipelineId });
      return Number(l?.valid ?? 0) >= valid ? true : undefined;
    });
    const batches = await checkLiveOutputs(pipelineId);
    for (const b of batches.filter((x) => Number(x.from_offset) >= cut.get(Number(x.partition))!)) {
      expect([b.batch_id, b.processor, b.routing_mode, Number(b.canary_events)]).toEqual([b.batch_id, 'request-enriched@1', '', 0]);
    }
    // Before the termination the canary really had its share: the routing was live, then it stopped.
    expect(batches.some((b) => b.routing_mode === 'weight' && Number(b.canary_events) > 0)).toBe(true);
  });
});
