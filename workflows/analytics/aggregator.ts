/**
 * The aggregator of one pipeline (type `aggregator`, id `aggregator-<pipeline>`): owns the
 * pipeline's event-time watermarks and its detector state, in workflow state (times, offsets and
 * numbers only; continue-as-new carries them). Each iteration reads the batches landed since its
 * cursor (lineage_batches), advances the per-partition watermarks (bounded out-of-orderness, idle
 * partitions released after the idleness timeout), runs one aggregation step (late rows to
 * late_events, revised and newly final windows recomputed, provisional ones at most every
 * `provisionalRefresh` and not in a step that moves the watermark unless overdue), judges the windows that became final
 * with the window detectors, judges absence detectors on processing time, and hands fire /
 * upgrade / resolve transitions to the alert workflows.
 *
 * The `pipeline` supervisor starts it on the analytics task queue (`<queue>-analytics`, see
 * schemas/analytics/task-queue.ts), which every platform worker polls with a Worker of its own.
 * Start from the CLI:
 * `temporal workflow start --type aggregator --task-queue streamwarden-analytics --workflow-id aggregator-demo --input '{"pipeline":"demo"}'`
 */
import { allHandlersFinished, condition, continueAsNew, defineQuery, defineSignal, log, patched, proxyActivities, proxyLocalActivities, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { AggregateStepResult, AggregationActivities, FinalWindow, ProvisionalState } from '../../activities/analytics/aggregate.js';
import { mergeSpans } from '../../schemas/analytics/step-windows.js';
import type { DetectionActivities } from '../../activities/analytics/detect.js';
import { evaluateAbsence, evaluateWindows, type DetectorStates, type DetectorTransition } from '../../schemas/analytics/evaluate.js';
import { advanceWatermark, emptyWatermarkState, idlePartitions, observeBatches, type WatermarkState } from '../../schemas/analytics/watermark.js';
import { parseOrFail } from '../boundary.js';
import { pipelineIdSchema } from '../../schemas/ingest/pipeline.js';
import { aggregatorWorkflowId, batchLandedSchema, batchLandedSignalName, type BatchLanded } from '../../schemas/analytics/landing-report.js';

export { aggregatorWorkflowId, batchLandedSchema, type BatchLanded };

/** Input of the aggregator. `state` is what continue-as-new carries; people pass only `pipeline`. */
export const aggregatorInputSchema = z
  .object({
    pipeline: pipelineIdSchema,
    /** Iterations per run before continue-as-new. @default 500 */
    iterationsPerRun: z.number().int().min(1).max(100_000).default(500),
    state: z
      .object({
        watermark: z.custom<WatermarkState>((v) => typeof v === 'object' && v !== null),
        detectors: z.custom<DetectorStates>((v) => typeof v === 'object' && v !== null),
        lastSeen: z.custom<LastSeen>((v) => typeof v === 'object' && v !== null),
        finalWindows: z.number().int().min(0),
        transitions: z.number().int().min(0),
        /** The provisional refresh: when the last one ran (ms, workflow time) and the event-time spans steps since left stale. Absent before session 11. */
        provisional: z.object({ refreshedAtMs: z.number().nullable(), pending: z.array(z.tuple([z.number(), z.number()])) }).optional(),
      })
      .optional(),
  })
  .strict();
/**
 * `batchLanded` (signal): a partition landed a first-generation batch with valid events (the
 * landing activity reports it once the lineage row is written, with the row's facts; the partition
 * consumer, without them, when that failed; replays send none). Wakes the aggregator at once
 * instead of at its next poll, so a window is judged as soon as the landing that makes it final is
 * reported. The iteration takes its batches from the reports when they tile its cursor
 * (`batchesFromReports`) and reads lineage_batches otherwise, so a lost or repeated signal changes
 * nothing but timing: a lost one is made up by the next lineage read (on the next gap, poll, or
 * within `lineageReadEveryMs`, or half the idleness timeout when that is shorter).
 */
export const batchLandedSignal = defineSignal<[BatchLanded]>(batchLandedSignalName);

/** Most landing reports kept between iterations (the lineage read's own limit); beyond, the next iteration reads lineage_batches instead. */
const maxPendingReports = 500;
/** Iterations woken by reports still read lineage_batches at least this often (ms). */
const lineageReadEveryMs = 5_000;

/** Aggregator input as written. */
export type AggregatorInput = z.input<typeof aggregatorInputSchema>;

type LastSeen = Record<string, Record<string, { atMs: number; keys: Record<string, string> }>>;

/** What the `watermarks` query returns. */
export interface AggregatorProgress {
  pipeline: string;
  watermarkMs: number | null;
  watermark: string | null;
  partitions: Record<string, { maxEventTime: string; watermark: string; idle: boolean; nextOffset: number }>;
  finalWindows: number;
  transitions: number;
  /**
   * Milliseconds (workflow time) from the iteration that saw windows become final to the alert
   * workflows being signalled, over the last 200 iterations that signalled: p50 and p99. The
   * poll interval adds up to one `pollInterval` before the iteration starts.
   */
  signalLatencyMs: { count: number; p50: number | null; p99: number | null };
  /** Open detector incidents: detector -> key -> level. */
  open: Record<string, Record<string, string>>;
  /** When the provisional windows were last refreshed (ISO, null = not in this run), and the event-time spans whose provisional windows wait for the next refresh. */
  provisional: { refreshedAt: string | null; pending: [string, string][] };
  lastError: string | null;
}

/** `progress` (query): watermarks per partition and combined, final windows judged, open detector levels. */
export const aggregatorProgressQuery = defineQuery<AggregatorProgress>('progress');

/**
 * `detectors` (query): the full detector state, per detector and series key: recent final windows
 * (the baseline), the EWMA mean and variance, the `for` and clear counters, the open level. This
 * is what continue-as-new carries; the answer to "why did (or didn't) this rule fire".
 */
export const aggregatorDetectorsQuery = defineQuery<DetectorStates>('detectors');

const acts = proxyActivities<AggregationActivities & DetectionActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['invalid_input'] },
});

// signalDetections as a local activity: it runs inside the workflow task that judged the windows,
// which saves a dispatch through the task queue and the workflow task that would handle its
// completion (two round trips per signalling iteration, each 50-400 ms on a worker whose main
// thread also lands batches). Short (one signal-with-start per transition), so the workflow task
// is not held long; retried by the worker with the same policy.
const local = proxyLocalActivities<DetectionActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['invalid_input'] },
});

const iso = (ms: number) => new Date(ms).toISOString();

/** Runs the pipeline's aggregations and detectors, forever (continue-as-new keeps history short). */
export async function aggregator(raw: AggregatorInput): Promise<{ pipeline: string; declared: boolean }> {
  const input = parseOrFail(aggregatorInputSchema, raw, 'aggregator input');
  const { spec } = await acts.describePipelineAnalytics({ pipeline: input.pipeline });
  if (!spec) {
    setCurrentDetails(`Pipeline ${input.pipeline} declares no analytics; nothing to aggregate.`);
    return { pipeline: input.pipeline, declared: false };
  }
  // The last window earlier runs made final, per aggregation (absent in histories before session 11).
  const { finalUptoMs } = await acts.ensureAggregationTables({ pipeline: spec.pipeline });
  const policy = { outOfOrdernessMs: spec.watermark.outOfOrderness, idlenessMs: spec.watermark.idleness };
  let watermark: WatermarkState = input.state?.watermark ?? emptyWatermarkState();
  let detectors: DetectorStates = input.state?.detectors ?? {};
  let lastSeen: LastSeen = input.state?.lastSeen ?? {};
  let finalWindows = input.state?.finalWindows ?? 0;
  let transitions = input.state?.transitions ?? 0;
  // Provisional windows are refreshed at most every `provisionalRefresh` (a spec recorded before
  // session 11 has none: every step refreshes the windows it touched, as then).
  const refreshMs = spec.provisionalRefresh;
  let provisional: ProvisionalState = input.state?.provisional ?? { refreshedAtMs: null, pending: [] };
  let lastError: string | null = null;
  const latencies: number[] = [];
  const pct = (q: number) => {
    if (latencies.length === 0) return null;
    const sorted = [...latencies].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  };

  setHandler(
    aggregatorProgressQuery,
    () => {
      const idle = new Set(idlePartitions(watermark, policy, Date.now()));
      const open: AggregatorProgress['open'] = {};
      for (const [d, keys] of Object.entries(detectors)) {
        for (const [k, st] of Object.entries(keys)) if (st.open) (open[d] ??= {})[k] = st.open;
      }
      return {
        pipeline: spec.pipeline,
        watermarkMs: watermark.watermarkMs,
        watermark: watermark.watermarkMs === null ? null : iso(watermark.watermarkMs),
        partitions: Object.fromEntries(
          Object.entries(watermark.partitions).map(([p, m]) => [p, { maxEventTime: iso(m.maxEventTimeMs), watermark: iso(m.maxEventTimeMs - policy.outOfOrdernessMs), idle: idle.has(p), nextOffset: m.nextOffset }]),
        ),
        finalWindows,
        transitions,
        signalLatencyMs: { count: latencies.length, p50: pct(0.5), p99: pct(0.99) },
        open,
        provisional: { refreshedAt: provisional.refreshedAtMs === null ? null : iso(provisional.refreshedAtMs), pending: provisional.pending.map(([a, b]) => [iso(a), iso(b)]) },
        lastError,
      };
    },
    { description: 'Watermark per partition and combined, windows judged, open detector levels, last error.' },
  );

  let landedSince = false;
  // Reports received since the iteration last took them (their lineage facts let it skip reading
  // lineage_batches); `reportsLost` when some could not be kept (malformed, too many, or taken by an
  // iteration that failed), so the next iteration reads lineage_batches.
  let reports: BatchLanded[] = [];
  let reportsLost = false;
  let lineageReadAtMs = -Infinity;
  setHandler(
    batchLandedSignal,
    (arg) => {
      const parsed = batchLandedSchema.safeParse(arg);
      if (!parsed.success) {
        log.warn('batchLanded: ignored a malformed argument (expected {partition, from, to})', { arg });
        reportsLost = true;
      } else if (reports.length >= maxPendingReports) reportsLost = true;
      else reports.push(parsed.data);
      landedSince = true;
    },
    { description: 'A partition landed a batch: run the next iteration now instead of at the next poll. Argument {"partition": 0, "from": 100, "to": 200}; the landing activity adds its lineage row\'s minEventTimeMs, maxEventTimeMs and finishedAtMs, which spare the iteration a read of lineage_batches.' },
  );

  setHandler(aggregatorDetectorsQuery, () => detectors, { description: 'Detector state per detector and series: baseline windows, EWMA, for/clear counters, open level.' });

  // Since the patch the transitions are delivered by a local activity; runs started before replay
  // the task-queue activity. Either way the iteration awaits the delivery before it commits the
  // detector state, so state advances only once its signals went out.
  const signalDetections = patched('aggregator-signals-from-local-activity') ? local.signalDetections : acts.signalDetections;

  for (let iteration = 0; ; iteration++) {
    if (iteration >= input.iterationsPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof aggregator>({ pipeline: spec.pipeline, iterationsPerRun: input.iterationsPerRun, state: { watermark, detectors, lastSeen, finalWindows, transitions, ...(refreshMs !== undefined ? { provisional } : {}) } });
    }
    // Landings reported from here on need another iteration; those before are read now.
    landedSince = false;
    // The batches come from the reports when they tile the cursor; lineage_batches is read when
    // they do not, when some were lost, when none came (a poll), and at least every
    // lineageReadEveryMs, so a batch whose report never arrived waits at most that long while
    // others report (or the poll interval when nothing else wakes the aggregator).
    const taken = reports;
    // Half the idleness timeout at most: a partition whose report is late must be read before the
    // others' reports could make it look idle.
    const useReports = taken.length > 0 && !reportsLost && Date.now() - lineageReadAtMs < Math.min(lineageReadEveryMs, spec.watermark.idleness / 2);
    reports = [];
    reportsLost = false;
    try {
      const before = watermark.watermarkMs;
      let now: number;
      let advanced: WatermarkState;
      // Everything below is computed into locals and committed only when the iteration succeeded,
      // so a failed iteration is redone from the same cursor, watermark and detector state.
      const found: DetectorTransition[] = [];
      let nextDetectors = detectors;
      let nextSeen = lastSeen;
      let judgedWindows = 0;
      let step: AggregateStepResult | null = null;
      let nextProvisional = provisional;
      let readFinal: ((agg: string) => Promise<FinalWindow[]>) | null = null;
      if (patched('aggregator-one-activity-per-step')) {
        // One activity per iteration: reading the landed batches, advancing the watermark (the
        // same pure code, run with the workflow's clock) and the step, which returns the windows
        // that became final. Each activity costs a dispatch round trip on a loaded worker.
        now = Date.now();
        const done = await acts.aggregateLanded({ pipeline: spec.pipeline, watermark, nowMs: now, ...(useReports ? { reported: taken } : {}), ...(refreshMs !== undefined ? { provisional: { ...provisional, refreshMs } } : {}), ...(finalUptoMs && Object.keys(finalUptoMs).length > 0 ? { finalFloorMs: finalUptoMs } : {}) });
        if (done.batchesFrom !== 'reports') lineageReadAtMs = now;
        advanced = done.watermark;
        step = done.step;
        const outcome = step?.provisional;
        if (outcome === 'refreshed') nextProvisional = { refreshedAtMs: now, pending: [] };
        // A worker from before session 11 answers without an outcome (it refreshed what it touched):
        // the pending spans stay, and the timer below waits at least 50 ms instead of spinning.
        else if (outcome === 'deferred') nextProvisional = { ...provisional, pending: mergeSpans(provisional.pending, step?.deferredSpans ?? []) };
      } else {
        const nextOffsets = Object.fromEntries(Object.entries(watermark.partitions).map(([p, m]) => [p, m.nextOffset]));
        const { batches } = await acts.readLandedBatches({ pipeline: spec.pipeline, nextOffsets });
        now = Date.now();
        const observed = observeBatches(watermark, batches.map((b) => ({ partition: b.partition, toOffset: b.toOffset, maxEventTimeMs: b.maxEventTimeMs, finishedAtMs: b.finishedAtMs })));
        advanced = advanceWatermark(observed, policy, now);
        if (batches.length > 0 || advanced.watermarkMs !== before) {
          // The event-time bounds let the step derive its windows without a query (activity input
          // only: no command changes). Since the patch, the step also returns the windows that
          // became final, so the iteration no longer schedules readFinalWindows per aggregation.
          const fused = patched('aggregator-step-returns-final-windows');
          const ranges = batches.map((b) => ({ partition: b.partition, from: b.fromOffset, to: b.toOffset, minEventTimeMs: b.minEventTimeMs ?? null, maxEventTimeMs: b.maxEventTimeMs }));
          step = await acts.aggregateStep({ pipeline: spec.pipeline, ranges, watermarkBeforeMs: before, watermarkAfterMs: advanced.watermarkMs, stepMs: now, returnFinalWindows: fused });
          const upto = advanced.watermarkMs;
          if (!fused && upto !== null) readFinal = async (agg) => (await acts.readFinalWindows({ pipeline: spec.pipeline, aggregation: agg, afterWatermarkMs: before, uptoWatermarkMs: upto })).windows;
        }
      }
      if (step) {
        for (const [agg, keys] of Object.entries(step.seen)) {
          const perAgg = { ...(nextSeen[agg] ?? {}) };
          for (const k of keys) perAgg[k.key] = { atMs: now, keys: k.keys };
          nextSeen = { ...nextSeen, [agg]: perAgg };
        }
        if (advanced.watermarkMs !== null && advanced.watermarkMs !== before) {
          for (const agg of new Set(spec.detectors.filter((d) => d.method.kind !== 'absence').map((d) => d.aggregation))) {
            const windows = readFinal ? await readFinal(agg) : (step.finalWindows?.[agg] ?? []);
            judgedWindows += windows.length;
            const judged = evaluateWindows(spec, agg, windows, nextDetectors);
            nextDetectors = judged.states;
            found.push(...judged.transitions);
          }
        }
      }
      const absent = evaluateAbsence(spec, nextSeen, nextDetectors, now);
      nextDetectors = absent.states;
      found.push(...absent.transitions);
      if (found.length > 0) {
        await signalDetections({ pipeline: spec.pipeline, events: found.map((t) => ({ ...t, observedAtMs: now })) });
        latencies.push(Date.now() - now);
        if (latencies.length > 200) latencies.shift();
      }
      watermark = advanced;
      provisional = nextProvisional;
      detectors = nextDetectors;
      lastSeen = nextSeen;
      finalWindows += judgedWindows;
      transitions += found.length;
      lastError = null;
    } catch (err) {
      // A failed step is retried next iteration from the same cursor and watermark (state is only
      // advanced after the step succeeded), so nothing is skipped.
      lastError = err instanceof Error ? err.message : String(err);
      // The reports this iteration took are gone with it: the next one reads lineage_batches.
      reportsLost = true;
      log.warn('aggregation step failed; retrying next iteration', { error: lastError });
    }
    setCurrentDetails(`Pipeline ${spec.pipeline}: watermark ${watermark.watermarkMs === null ? 'none yet' : iso(watermark.watermarkMs)}, ${finalWindows} final windows judged, ${transitions} detector transitions.`);
    // Since the patch the loop wakes on a landing report (batchLanded) and polls only as a
    // fallback; runs started before it replay the plain poll.
    // A pending provisional refresh wakes it when the refresh is due, if that comes before the poll.
    // At least 50 ms (or the interval, if shorter) between such wake-ups, so that a worker that
    // cannot refresh (one from before session 11, during a rolling upgrade) is not asked in a loop.
    const untilRefresh = provisional.pending.length > 0 && refreshMs !== undefined ? Math.max(Math.min(50, refreshMs), 1, (provisional.refreshedAtMs ?? -Infinity) + refreshMs - Date.now()) : Infinity;
    if (patched('aggregator-wakes-on-batch-landed')) await condition(() => landedSince, Math.min(spec.pollInterval, untilRefresh));
    else await condition(() => false, spec.pollInterval);
  }
}
