/**
 * Measurement (l): detection latency, from a window becoming final to its alert workflow being
 * signalled, through the real pipeline at a steady event rate (default 5,000 events/s).
 *
 * Shape: a landing worker child and an analytics worker child (the analytics task queue in a
 * process of its own, as docker-compose.yml deploys it; `analyticsProcess: false` serves it from
 * the landing process, as `npm start` does) with their own analytics declarations (1 s tumbling windows per service, a
 * threshold detector on the error rate with `for` 1 and clear after 1 window), the `pipeline`
 * workflow on a fresh topic (it starts the `aggregator`), and the generator paced at `rate` with
 * `errors` shapes that flap four services between 50% and ~0% errors every other second: each
 * flapping window fires its service's incident (signal-with-start) and the next one resolves it.
 *
 * What is measured, only from records of the real components (no clock inside the code under test):
 * - final at: the moment the landed data moved the pipeline watermark past the window's end, from
 *   `lineage_batches`: for each partition, the `finished_at` of its first batch whose
 *   `max_event_time` reached `end - 1 + outOfOrderness`; the latest of those over the partitions
 *   (every partition is active under steady load, so idleness plays no part).
 * - signalled at: the event time of the `fire` signal (WorkflowExecutionSignaled) carrying that
 *   window in the alert workflow's history, as the Temporal server recorded it.
 * - where the time goes: the aggregator's own history (scheduled / completed times of the
 *   aggregateLanded (formerly readLandedBatches, aggregateStep, readFinalWindows) and signalDetections activities of the
 *   iteration that signalled), so the latency splits into waiting for the poll, aggregating in
 *   ClickHouse, reading the final windows, and signalling.
 * - baseline (same run): the raw ClickHouse aggregation of one window (GROUP BY service over the
 *   landed `events`, JSON extraction included), timed from this process for each sampled window,
 *   i.e. the least any design pays to learn a window's value once its data has landed.
 *
 * A measurement, not a test: nothing here asserts a speed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../infra/clickhouse/migrate.js';
import type { StackEndpoints } from '../../infra/local/endpoints.js';
import { alertFingerprint, alertWorkflowId, fireSignalName, type AlertFiring } from '../../schemas/alerting/alert.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { defaultConsumerGroup, partitionWorkflowId, pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { aggregatorWorkflowId } from '../../workflows/analytics/aggregator.js';
import { produceEvents, type IncidentShape } from '../../workers/generator.js';
import type { Deadline } from './deadline.js';
import { deleteGroups } from './kafka-util.js';
import { dropDatabase, rows } from './warehouse-util.js';
import { WorkerProcess } from './worker-process.js';

/** Options of (l). */
export interface LatencyOptions {
  /** Events per second produced, paced on the wall clock. @default 5000 */
  rate: number;
  /** Seconds of steady production. @default 60 */
  seconds: number;
  /** The aggregator's poll interval (declared `pollInterval`), ms. @default 250 */
  pollMs: number;
  /**
   * Serve the analytics task queue from a second worker process (WORKER_TASK_QUEUES=platform in
   * the first, analytics in the second, as docker-compose.yml deploys them) instead of a second
   * Worker in the landing process (`all`, as `npm start` runs it). @default true
   */
  analyticsProcess?: boolean;
}

/** p50 / p99 / max of a sample, ms. */
export interface Percentiles {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** What (l) measured. */
export interface LatencyResult {
  rate: number;
  seconds: number;
  pollMs: number;
  /** Whether the analytics queue had a worker process of its own. */
  analyticsProcess: boolean;
  windowMs: number;
  outOfOrdernessMs: number;
  /** Events produced, and landed in `events` when the measurement ended. */
  produced: number;
  landed: number;
  /** Window final -> alert workflow signalled. */
  latency: Percentiles;
  /** The split of the same samples: final -> the iteration's first activity (poll wait and lag); `reported`: final -> the batchLanded signal of the batch that made the window final, as the aggregator's history recorded it. */
  breakdown: { reported: Percentiles; waitForIteration: Percentiles; readBatches: Percentiles; aggregateStep: Percentiles; aggregateDispatch: Percentiles; readFinalWindows: Percentiles; signal: Percentiles };
  /** Inside aggregateStep: ms per kind of statement (lateCount, lateInsert, seenKeys, affected, recompute, insert), from its result. */
  aggregateStatements: Record<string, Percentiles>;
  /** Baseline: the raw ClickHouse GROUP BY of one window, timed from the bench. */
  baselineQuery: Percentiles;
  /** latency / baseline, at p50 and p99. */
  ratios: { p50: number | null; p99: number | null };
  /** Fire signals found whose window could not be matched to a final time (not in the sample). */
  unmatched: number;
}

const windowMs = 1000;
const outOfOrdernessMs = 200;
const flapping = ['api-gateway', 'checkout', 'search', 'catalog'];
const detector = 'bench_error_rate';

/** Nearest-rank percentiles (the sample sorted, value at ceil(q·n)). */
export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50: null, p99: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

const tsMs = (ts: { seconds?: unknown; nanos?: number | null } | null | undefined): number => (ts ? Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6) : NaN);

/** The declarations the worker child runs with, as written in a file (validated here first). */
function declarations(pipeline: string, pollMs: number): unknown {
  const raw = {
    pipelines: [{
      pipeline,
      fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' } },
      watermark: { outOfOrderness: `${outOfOrdernessMs}ms`, idleness: '30s', allowedLateness: '5s' },
      pollInterval: `${pollMs}ms`,
      aggregations: [{
        name: 'svc_1s', window: { type: 'tumbling', size: '1s' }, groupBy: ['service'],
        measures: [{ name: 'requests', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }],
      }],
      detectors: [{
        name: detector, aggregation: 'svc_1s', measure: 'errors', ratioOf: 'requests', method: { kind: 'threshold' },
        levels: { warning: 0.2 }, for: 1, clear: { below: 0.1, windows: 1 }, minCount: 20, minCountMeasure: 'requests',
      }],
    }],
  };
  analyticsFileSchema.parse(raw);
  return raw;
}

/** Everything (l) needs from the run that hosts it. */
export interface LatencyContext {
  temporal: Client;
  kafka: Kafka;
  chAdmin: ClickHouseClient;
  createWarehouse: (database: string) => ClickHouseClient;
  endpoints: StackEndpoints;
  workflowBundlePath: string;
  stateDir: string;
  deadline: Deadline;
  log: (line: string) => void;
  keep: boolean;
}

/** Runs (l); always stops its worker and terminates what it started before returning. */
export async function measureDetectionLatency(ctx: LatencyContext, options: LatencyOptions): Promise<LatencyResult> {
  const id = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const pipeline = `lat-${id}`;
  const topic = `bench-lat-${id}`;
  const database = `bench_lat_${id}`;
  const taskQueue = `bench-lat-${id}`;
  const dir = join(resolve(ctx.stateDir), 'bench');
  await mkdir(dir, { recursive: true });
  const analyticsPath = join(dir, `${id}-analytics.json`);
  await writeFile(analyticsPath, JSON.stringify(declarations(pipeline, options.pollMs), null, 2));
  const warehouse = ctx.createWarehouse(database);
  await migrate(warehouse, database, { admin: ctx.chAdmin });
  const admin = ctx.kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  const workerLog = join(dir, `${id}-worker-latency.log`);
  const split = options.analyticsProcess !== false;
  const worker = WorkerProcess.start(ctx.endpoints, { database, taskQueue, workflowBundlePath: ctx.workflowBundlePath, extraEnv: { ANALYTICS_FILE: analyticsPath, WORKER_TASK_QUEUES: split ? 'platform' : 'all' } }, workerLog);
  const analyticsLog = join(dir, `${id}-worker-latency-analytics.log`);
  const analyticsWorker = split ? WorkerProcess.start(ctx.endpoints, { database, taskQueue, workflowBundlePath: ctx.workflowBundlePath, extraEnv: { ANALYTICS_FILE: analyticsPath, WORKER_TASK_QUEUES: 'analytics' } }, analyticsLog) : null;
  const alertIds = flapping.map((service) => alertWorkflowId(alertFingerprint(detector, { pipeline, service })));
  let started = false;
  try {
    await Promise.all([worker, analyticsWorker].map((w) => w?.ready(Math.min(120_000, ctx.deadline.remainingMs()))));
    const input: PipelineInputRaw = { pipelineId: pipeline, topic, partitions: 3, startFrom: 'earliest', detector: { enabled: false } };
    await ctx.temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipeline), args: [input] });
    started = true;
    ctx.log(`(l) worker child on ${taskQueue}${split ? ` and an analytics worker child on ${taskQueue}-analytics (log ${analyticsLog})` : ' and its analytics queue'} (log ${workerLog}); producing ${options.rate}/s for ${options.seconds} s to ${topic}, windows ${windowMs} ms, poll ${options.pollMs} ms`);
    // Start on a whole second so the flapping bursts cover whole windows.
    const startTime = Math.ceil((Date.now() + 1000) / 1000) * 1000;
    await new Promise((r) => setTimeout(r, startTime - Date.now()));
    const shapes: IncidentShape[] = flapping.map((service) => ({ kind: 'errors', service, at: 0, duration: 1, every: 2, rate: 0.5 }));
    const summary = await produceEvents(ctx.kafka, { topic, count: options.rate * options.seconds, rate: options.rate, pace: true, startTime, shapes, seed: 11, signal: ctx.deadline.signal });
    ctx.deadline.check('(l) produce');
    // Let the last windows become final and be judged.
    const lastWindowEnd = Math.floor((summary.lastTime - outOfOrdernessMs) / windowMs) * windowMs;
    await ctx.deadline.waitFor(
      '(l) last windows judged',
      async () => {
        const [n] = await rows<{ n: string }>(warehouse, 'SELECT count() AS n FROM events');
        if (Number(n?.n ?? 0) < summary.valid) return undefined;
        const p = await ctx.temporal.workflow.getHandle(aggregatorWorkflowId(pipeline)).query<{ watermarkMs: number | null }>('progress').catch(() => null);
        return p?.watermarkMs !== null && p !== null && p.watermarkMs >= lastWindowEnd - windowMs ? true : undefined;
      },
      500,
      () => `landed or watermark behind; worker log ${workerLog}`,
    );
    await new Promise((r) => setTimeout(r, 3 * options.pollMs + 1000));
    const [landedRow] = await rows<{ n: string }>(warehouse, 'SELECT count() AS n FROM events');

    // Final-at per window end, from lineage_batches.
    const batches = await rows<{ partition: number; from_offset: string; max_t: string | null; fin: string }>(
      warehouse,
      `SELECT partition, toString(from_offset) AS from_offset, toUnixTimestamp64Milli(assumeNotNull(max_event_time)) AS max_t, toUnixTimestamp64Milli(finished_at) AS fin
       FROM lineage_batches FINAL WHERE pipeline = {pipeline:String} AND max_event_time IS NOT NULL ORDER BY fin`,
      { pipeline },
    );
    const partitions = [...new Set(batches.map((b) => Number(b.partition)))];
    // Also the batch that made it final (the latest of those firsts), to find its batchLanded signal.
    const finalBatch = (endMs: number): { at: number; key: string } | null => {
      let latest: { at: number; key: string } | null = null;
      for (const p of partitions) {
        const first = batches.find((b) => Number(b.partition) === p && Number(b.max_t) >= endMs - 1 + outOfOrdernessMs);
        if (!first) return null;
        if (latest === null || Number(first.fin) > latest.at) latest = { at: Number(first.fin), key: `${p}/${first.from_offset}` };
      }
      return latest;
    };
    const finalAt = (endMs: number): number | null => finalBatch(endMs)?.at ?? null;

    // Signalled-at per fired window, from the alert workflows' histories (every run).
    const signals: { windowStartMs: number; windowEndMs: number; atMs: number; alertId: string }[] = [];
    for (const wid of alertIds) {
      for await (const run of ctx.temporal.workflow.list({ query: `WorkflowId = '${wid}'` })) {
        const history = await ctx.temporal.workflow.getHandle(wid, run.runId).fetchHistory();
        for (const e of history.events ?? []) {
          const s = e.workflowExecutionSignaledEventAttributes;
          if (!s || s.signalName !== fireSignalName) continue;
          const payload = s.input?.payloads?.[0];
          if (!payload) continue;
          const firing = defaultPayloadConverter.fromPayload<AlertFiring>(payload);
          signals.push({ windowStartMs: Date.parse(firing.windowStart), windowEndMs: Date.parse(firing.windowEnd), atMs: tsMs(e.eventTime), alertId: wid });
        }
      }
    }

    // The aggregator's activities, per iteration, from its history (every run).
    // A local activity (signalDetections since aggregator-signals-from-local-activity) leaves one
    // marker, recorded when the workflow task that ran it completed: `local` with the alert
    // workflows it signalled (its result); its input (the windows) is not in history.
    interface Act { name: string; scheduledMs: number; startedMs: number; completedMs: number; windowEnds: number[]; timingsMs: Record<string, number>; local?: string[] }
    const acts: Act[] = [];
    // batchLanded signals as the aggregator's history recorded them, by `partition/from`.
    const landedSignalAt = new Map<string, number>();
    for await (const run of ctx.temporal.workflow.list({ query: `WorkflowId = '${aggregatorWorkflowId(pipeline)}'` })) {
      const history = await ctx.temporal.workflow.getHandle(aggregatorWorkflowId(pipeline), run.runId).fetchHistory();
      const byId = new Map<string, Act>();
      for (const e of history.events ?? []) {
        const sig = e.workflowExecutionSignaledEventAttributes;
        if (sig?.signalName === 'batchLanded' && sig.input?.payloads?.[0]) {
          const arg = defaultPayloadConverter.fromPayload<{ partition?: number; from?: number }>(sig.input.payloads[0]);
          const key = `${arg.partition}/${arg.from}`;
          if (!landedSignalAt.has(key)) landedSignalAt.set(key, tsMs(e.eventTime));
        }
        const sch = e.activityTaskScheduledEventAttributes;
        if (sch) {
          let windowEnds: number[] = [];
          if (sch.activityType?.name === 'signalDetections' && sch.input?.payloads?.[0]) {
            const arg = defaultPayloadConverter.fromPayload<{ events: { transition: string; windowEndMs: number }[] }>(sch.input.payloads[0]);
            windowEnds = arg.events.filter((x) => x.transition !== 'resolve').map((x) => x.windowEndMs);
          }
          const act: Act = { name: sch.activityType?.name ?? '', scheduledMs: tsMs(e.eventTime), startedMs: NaN, completedMs: NaN, windowEnds, timingsMs: {} };
          byId.set(String(e.eventId), act);
          acts.push(act);
        }
        const marker = e.markerRecordedEventAttributes;
        if (marker?.markerName === 'core_local_activity' && marker.details?.data?.payloads?.[0]) {
          const data = defaultPayloadConverter.fromPayload<{ activity_type?: string }>(marker.details.data.payloads[0]);
          const result = marker.details.result?.payloads?.[0];
          const ids = result ? defaultPayloadConverter.fromPayload<{ workflowIds?: string[] }>(result).workflowIds ?? [] : [];
          acts.push({ name: data.activity_type ?? '', scheduledMs: tsMs(e.eventTime), startedMs: tsMs(e.eventTime), completedMs: tsMs(e.eventTime), windowEnds: [], timingsMs: {}, local: ids });
        }
        // The started event is written at completion, stamped with the time a worker picked the task up.
        const picked = e.activityTaskStartedEventAttributes;
        if (picked) {
          const act = byId.get(String(picked.scheduledEventId));
          if (act) act.startedMs = tsMs(e.eventTime);
        }
        const done = e.activityTaskCompletedEventAttributes;
        if (done) {
          const act = byId.get(String(done.scheduledEventId));
          if (act) {
            act.completedMs = tsMs(e.eventTime);
            const result = done.result?.payloads?.[0];
            if (act.name === 'aggregateStep' && result) act.timingsMs = defaultPayloadConverter.fromPayload<{ timingsMs?: Record<string, number> }>(result).timingsMs ?? {};
            if (act.name === 'aggregateLanded' && result) act.timingsMs = defaultPayloadConverter.fromPayload<{ step?: { timingsMs?: Record<string, number> } | null }>(result).step?.timingsMs ?? {};
          }
        }
      }
    }
    acts.sort((a, b) => a.scheduledMs - b.scheduledMs);

    const latency: number[] = [];
    const wait: number[] = [];
    const reported: number[] = [];
    const read: number[] = [];
    const agg: number[] = [];
    const dispatch: number[] = [];
    const finals: number[] = [];
    const signal: number[] = [];
    const statements: Record<string, number[]> = {};
    let unmatched = 0;
    const sampledWindows = new Set<number>();
    for (const s of signals) {
      const f = finalAt(s.windowEndMs);
      if (f === null) {
        unmatched++;
        continue;
      }
      latency.push(s.atMs - f);
      const decisive = finalBatch(s.windowEndMs);
      const reportedAt = decisive ? landedSignalAt.get(decisive.key) : undefined;
      if (reportedAt !== undefined) reported.push(reportedAt - f);
      sampledWindows.add(s.windowStartMs);
      let sigIdx = acts.findIndex((a) => a.name === 'signalDetections' && !a.local && a.windowEnds.includes(s.windowEndMs));
      // Local signalling: the first marker at or after the signal that signalled this alert.
      const local = sigIdx < 0;
      if (local) sigIdx = acts.findIndex((a) => a.name === 'signalDetections' && a.local?.includes(s.alertId) && a.scheduledMs >= s.atMs);
      if (sigIdx < 0) continue;
      const sig = acts[sigIdx]!;
      const before = acts.slice(0, sigIdx).reverse();
      // Since the aggregator runs one activity per iteration (aggregateLanded), it is both the
      // iteration's first activity and its step; before, readLandedBatches then aggregateStep.
      const readAct = before.find((a) => a.name === 'readLandedBatches' || a.name === 'aggregateLanded');
      const aggAct = before.find((a) => a.name === 'aggregateStep' || a.name === 'aggregateLanded');
      const finAct = before.find((a) => a.name === 'readFinalWindows');
      if (readAct) {
        wait.push(readAct.scheduledMs - f);
        if (readAct.name === 'readLandedBatches') read.push(readAct.completedMs - readAct.scheduledMs);
      }
      if (aggAct) {
        agg.push(aggAct.completedMs - aggAct.scheduledMs);
        if (Number.isFinite(aggAct.startedMs)) dispatch.push(aggAct.startedMs - aggAct.scheduledMs);
        for (const [k, v] of Object.entries(aggAct.timingsMs)) (statements[k] ??= []).push(v);
      }
      if (finAct) finals.push(finAct.completedMs - finAct.scheduledMs);
      // Task-queue activity: from its scheduling; local: from the step's completion (the workflow
      // task that judges the windows and runs the local activity).
      if (!local) signal.push(s.atMs - sig.scheduledMs);
      else if (aggAct) signal.push(s.atMs - aggAct.completedMs);
    }

    // Baseline: the raw GROUP BY of each sampled window, from here.
    const baseline: number[] = [];
    for (const ws of [...sampledWindows].sort((a, b) => a - b)) {
      const t0 = performance.now();
      await rows(
        warehouse,
        `SELECT JSONExtractString(data, 'service') AS service, count() AS requests, countIf(JSONExtractInt(data, 'status') >= 500) AS errors
         FROM events WHERE pipeline = {pipeline:String} AND event_time >= fromUnixTimestamp64Milli({from:Int64}) AND event_time < fromUnixTimestamp64Milli({to:Int64})
         GROUP BY service`,
        { pipeline, from: ws, to: ws + windowMs },
      );
      baseline.push(performance.now() - t0);
    }
    const lat = percentiles(latency);
    const base = percentiles(baseline);
    return {
      rate: options.rate,
      seconds: options.seconds,
      pollMs: options.pollMs,
      analyticsProcess: split,
      windowMs,
      outOfOrdernessMs,
      produced: summary.total,
      landed: Number(landedRow?.n ?? 0),
      latency: lat,
      breakdown: { reported: percentiles(reported), waitForIteration: percentiles(wait), readBatches: percentiles(read), aggregateStep: percentiles(agg), aggregateDispatch: percentiles(dispatch), readFinalWindows: percentiles(finals), signal: percentiles(signal) },
      aggregateStatements: Object.fromEntries(Object.entries(statements).map(([k, v]) => [k, percentiles(v)])),
      baselineQuery: base,
      ratios: {
        p50: lat.p50 !== null && base.p50 ? lat.p50 / base.p50 : null,
        p99: lat.p99 !== null && base.p99 ? lat.p99 / base.p99 : null,
      },
      unmatched,
    };
  } finally {
    if (started) {
      for (const wid of [pipelineWorkflowId(pipeline), aggregatorWorkflowId(pipeline), ...[0, 1, 2].map((p) => partitionWorkflowId(pipeline, topic, p)), ...alertIds]) {
        await ctx.temporal.workflow.getHandle(wid).terminate('bench finished').catch(() => undefined);
      }
    }
    await Promise.all([worker, analyticsWorker].map((w) => w?.stop(60_000).catch(() => w.kill())));
    if (!ctx.keep) {
      await admin.deleteTopics({ topics: [topic] }).catch((err: unknown) => ctx.log(`cleanup of topic ${topic} failed: ${(err as Error).message}`));
      await deleteGroups(admin, [defaultConsumerGroup(pipeline)]).catch(() => undefined);
      await dropDatabase(ctx.chAdmin, database).catch((err: unknown) => ctx.log(`cleanup of database ${database} failed: ${(err as Error).message}`));
    }
    await rm(analyticsPath, { force: true });
    await admin.disconnect().catch(() => undefined);
    await warehouse.close().catch(() => undefined);
  }
}

const fmt = (n: number | null): string => (n === null ? '-' : n.toFixed(0));

/** The printed table of (l). */
export function formatLatency(r: LatencyResult): string {
  const row = (name: string, p: Percentiles) => `${name.padEnd(52)} ${String(p.count).padStart(6)} ${fmt(p.p50).padStart(7)} ${fmt(p.p99).padStart(7)} ${fmt(p.max).padStart(7)}`;
  return [
    `(l) detection latency at ${r.rate} events/s for ${r.seconds} s (${r.produced} produced, ${r.landed} landed), ${r.windowMs} ms windows, out-of-orderness ${r.outOfOrdernessMs} ms, poll ${r.pollMs} ms, analytics queue ${r.analyticsProcess ? 'in a worker process of its own' : 'in the landing worker process'}`,
    `${'ms'.padEnd(52)} ${'n'.padStart(6)} ${'p50'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}`,
    row('window final -> alert workflow signalled', r.latency),
    row('  of which: final -> aggregator iteration starts', r.breakdown.waitForIteration),
    row('            final -> batchLanded recorded by the aggregator', r.breakdown.reported),
    row('            readLandedBatches (before aggregateLanded)', r.breakdown.readBatches),
    row('            aggregateLanded (batches, watermark, step)', r.breakdown.aggregateStep),
    row('              scheduled -> picked up by a worker', r.breakdown.aggregateDispatch),
    ...Object.entries(r.aggregateStatements).map(([k, p]) => row(`              ${k}`, p)),
    row('            readFinalWindows (none since the step returns them)', r.breakdown.readFinalWindows),
    row('            signalDetections scheduled (local: step done) -> signal', r.breakdown.signal),
    row('baseline: raw ClickHouse GROUP BY of one window', r.baselineQuery),
    `ratio latency / baseline query: p50 ${r.ratios.p50 === null ? '-' : r.ratios.p50.toFixed(1)}, p99 ${r.ratios.p99 === null ? '-' : r.ratios.p99.toFixed(1)}${r.unmatched ? `; ${r.unmatched} fire signals without a final time` : ''}`,
  ].join('\n');
}
