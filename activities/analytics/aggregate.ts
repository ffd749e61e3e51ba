/**
 * Aggregation activities over ClickHouse for the declared analytics (schemas/analytics): create
 * each aggregation's table, read which batches landed since the aggregator's cursor (times and
 * offsets from lineage_batches, never payloads), run one aggregation step (side output of
 * too-late events, then recomputation of every touched or newly final window), and read final
 * windows for the detectors.
 *
 * Recomputation, not AggregatingMergeTree states: a window is recomputed from the landed rows
 * whenever data for it lands or it becomes final, and the new row replaces the old
 * (ReplacingMergeTree(version)). Reasons: (1) idempotence is structural: recomputing from the same
 * rows gives the same measures, and re-landed rows (same topic/partition/offset) are de-duplicated
 * before aggregating, so nothing double-counts, while merging partial states would count a
 * re-landed batch twice unless every insert were perfectly de-duplicated; (2) exact quantiles and
 * exact distinct counts (quantileExact, uniqExact) instead of sketches; (3) lateness needs to
 * exclude events per window (the side output), which states cannot un-merge. The cost is reading a
 * window's rows again on each revision, bounded by the touched windows of each step.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { ApplicationFailure } from '@temporalio/common';
import { aggregationTable, type AnalyticsFile, type PipelineAnalytics } from '../../schemas/analytics/declarations.js';
import { silentLogger, type Logger } from '../logger.js';
import { stepWindows, unionWindows, type OpenWindows, type TimeSpan } from '../../schemas/analytics/step-windows.js';
import { advanceWatermark, observeBatches, type WatermarkState } from '../../schemas/analytics/watermark.js';
import { sessionStep } from './session-step.js';
import { batchesFromReports, type BatchLanded, type ReportedBatch } from '../../schemas/analytics/landing-report.js';
import { judgeableSessionsQuery, sessionTableDdl } from './session-sql.js';
import { toClickHouseTime } from '../ingest/ingest.js';
import { affectedListLimit, affectedWindowsQuery, aggregationTableDdl, computeWindowsQuery, landedBatchesQuery, lateEventsInsert, seenKeysQuery, type AffectedWindows, type ComputedWindowRow, type OffsetRange } from './aggregate-sql.js';

/** Dependencies of {@link createAggregationActivities}. */
export interface AggregationDeps {
  warehouse: ClickHouseClient;
  /** The validated declarations (loaded at worker start). */
  analytics: AnalyticsFile;
  log?: Logger;
}

/** A landed batch as the aggregator sees it (read from lineage_batches or taken from landing reports). */
export type LandedBatch = ReportedBatch;

/** Input of `readLandedBatches`. */
export interface ReadLandedBatchesInput {
  pipeline: string;
  /** Next offset per partition already read (`"0": 1200`); partitions not listed start at 0. */
  nextOffsets: Record<string, number>;
  /** At most this many batches. @default 500 */
  limit?: number;
}

/** Input of `aggregateStep`. */
export interface AggregateStepInput {
  pipeline: string;
  ranges: OffsetRange[];
  watermarkBeforeMs: number | null;
  watermarkAfterMs: number | null;
  /** Processing time of the step, from the workflow (stamps finalisation and versions). */
  stepMs: number;
  /**
   * Return the windows that became final in this step for every aggregation a window detector
   * reads (`finalWindows`), so the workflow needs no `readFinalWindows`. @default false
   */
  returnFinalWindows?: boolean;
  /**
   * Which provisional windows (still open after the step) to recompute: those the ranges touch
   * (`'touched'`), none (`'none'`, left for a later refresh), or those the ranges touch and every
   * open window overlapping the event-time spans earlier steps left (`{ spans }`, the refresh).
   * Final, revised and newly final windows are recomputed in every mode; session aggregations
   * ignore it. See stepWindows. @default 'touched'
   */
  openWindows?: OpenWindows;
  /**
   * Per aggregation, the latest `end - 1` (ms) of a window an earlier run made final (from
   * `ensureAggregationTables`): windows up to it may be final although the watermark before this
   * step is below them, so their first-final time and revisions are read from the stored rows.
   * @default none
   */
  finalFloorMs?: Record<string, number>;
}

/**
 * What a step did to the provisional windows: `refreshed` every open window (nothing left stale),
 * `deferred` some that new data touched (a refresh is pending), or `unchanged` (neither: a pending
 * refresh stays pending).
 */
export type ProvisionalOutcome = 'refreshed' | 'deferred' | 'unchanged';

/** One final window of one group, with its measures. */
export interface FinalWindow {
  aggregation: string;
  key: string;
  keys: Record<string, string>;
  startMs: number;
  endMs: number;
  measures: Record<string, number>;
  revision: number;
}

/** Result of `aggregateStep`. */
export interface AggregateStepResult {
  /** Late rows written to late_events by this step, per aggregation. */
  late: Record<string, number>;
  /** Windows that became final in this step, per aggregation (window starts, ms). */
  finalized: Record<string, number[]>;
  /**
   * With `returnFinalWindows`: per aggregation read by a window detector, the windows whose
   * `end - 1` lies in (watermark before, watermark after], every group, by start then key: what
   * `readFinalWindows` returns for the same watermarks, taken from the recomputed rows.
   */
  finalWindows?: Record<string, FinalWindow[]>;
  /** Group keys present in the new ranges, per aggregation read by an absence detector (only those). */
  seen: Record<string, { key: string; keys: Record<string, string> }[]>;
  /**
   * Milliseconds spent per kind of statement in this step, summed over the aggregations:
   * `lateInsert` (the side output), `lateCount` (counting it; both only when the ranges may hold
   * late rows), `seenKeys`, `affected` (which windows to recompute, only when the ranges carry no
   * event-time bounds), `recompute` (the SELECT), `insert` (writing its rows); from
   * `aggregateLanded` also `readBatches` (reading lineage_batches after the cursor). A few numbers in the activity result, so the history shows where a slow step
   * spent its time (the latency bench reads them).
   */
  timingsMs: Record<string, number>;
  /** With `openWindows` other than `'touched'`: what the step did to the provisional windows. */
  provisional?: ProvisionalOutcome;
  /** With `provisional: 'deferred'`: the event-time spans of the ranges whose provisional windows were left (ms, inclusive). */
  deferredSpans?: TimeSpan[];
}

/** Input of `aggregateLanded`. */
export interface AggregateLandedInput {
  pipeline: string;
  /** The aggregator's watermark state before this iteration (its cursor is `nextOffset` per partition). */
  watermark: WatermarkState;
  /** Processing time of the iteration, from the workflow (idleness, finalisation stamps). */
  nowMs: number;
  /**
   * Landing reports received since the last iteration. When given, the batches come from them if
   * they tile the cursor ({@link batchesFromReports}), and `lineage_batches` is read only when they
   * do not; absent, it is read. @default absent
   */
  reported?: BatchLanded[];
  /**
   * The aggregator's provisional refresh state: when it last refreshed the provisional windows
   * (processing time, ms; null = never in this run) and the event-time spans of the ranges whose
   * provisional windows steps have left since (`pending`, ms, inclusive; empty = none). When
   * given, the step refreshes provisional windows only once the pipeline's `provisionalRefresh` has
   * passed (twice that when the step also moves the watermark, so the windows it makes final are judged first),
   * and runs for a pending refresh even when nothing landed. Absent, every step recomputes the
   * provisional windows its data touched (the behaviour before session 11). @default absent
   */
  provisional?: ProvisionalState;
  /** See {@link AggregateStepInput.finalFloorMs}. @default none */
  finalFloorMs?: Record<string, number>;
}

/** See {@link AggregateLandedInput.provisional}. */
export interface ProvisionalState {
  refreshedAtMs: number | null;
  pending: TimeSpan[];
  /**
   * The refresh interval the workflow runs with (ms; its recorded spec's `provisionalRefresh`),
   * so that the activity and the workflow's wake-up timer agree even if the declarations file
   * changed since the run started. @default the worker's declaration
   */
  refreshMs?: number;
}

/** Result of `aggregateLanded`. */
export interface AggregateLandedResult {
  /** Batches read after the cursor. */
  batches: number;
  /** Where they came from: the landing reports, or a read of lineage_batches. Absent before session 10. */
  batchesFrom?: 'reports' | 'lineage';
  /** The watermark state after them (cursor advanced). */
  watermark: WatermarkState;
  /** The step (with `finalWindows`), or null when nothing landed and the watermark did not move. */
  step: AggregateStepResult | null;
}

/** Finds a pipeline's declarations or fails non-retryably naming it. */
export function pipelineSpec(analytics: AnalyticsFile, pipeline: string): PipelineAnalytics {
  const spec = analytics.pipelines.find((p) => p.pipeline === pipeline);
  if (!spec) {
    throw ApplicationFailure.create({
      type: 'invalid_input',
      nonRetryable: true,
      message: `pipeline "${pipeline}" has no analytics declared (declared: ${analytics.pipelines.map((p) => p.pipeline).join(', ') || 'none'})`,
    });
  }
  return spec;
}

const ms = (v: string | number | null): number | null => (v === null ? null : Number(v));
const noWatermarkMs = -9_000_000_000_000_000;

/**
 * Which provisional windows an `aggregateLanded` step recomputes (see {@link AggregateLandedInput}):
 * without `provisional`, those touched (as before); with it, the touched ones and those of the
 * pending spans once `provisionalRefresh` has passed since the last refresh (twice that when the
 * watermark moves in this step, so the windows becoming final are judged without waiting for the
 * refresh), else none.
 */
export function provisionalPlan(spec: PipelineAnalytics, input: Pick<AggregateLandedInput, 'provisional' | 'nowMs'>, beforeMs: number | null, after: WatermarkState): OpenWindows {
  if (!input.provisional) return 'touched';
  const refreshMs = input.provisional.refreshMs ?? spec.provisionalRefresh ?? 0;
  const since = input.provisional.refreshedAtMs === null ? Infinity : input.nowMs - input.provisional.refreshedAtMs;
  const finalizing = after.watermarkMs !== null && after.watermarkMs !== beforeMs;
  return since >= refreshMs && (!finalizing || since >= 2 * refreshMs) ? { spans: input.provisional.pending } : 'none';
}

/** Builds the aggregation activities. */
export function createAggregationActivities(deps: AggregationDeps) {
  const log = deps.log ?? silentLogger;
  async function rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    return (await deps.warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
  }

  const activities = {
    /** The pipeline's validated declarations (durations in ms), or null when it declares none. */
    async describePipelineAnalytics(input: { pipeline: string }): Promise<{ spec: PipelineAnalytics | null }> {
      return { spec: deps.analytics.pipelines.find((p) => p.pipeline === input.pipeline) ?? null };
    },

    /**
     * Whether the pipeline declares analytics (windows or detectors) in this worker's declarations
     * file. The supervisor asks once per run, so that partition consumers of a pipeline without
     * analytics never signal an aggregator that does not exist. Returns a boolean, not the spec,
     * to keep the supervisor's history small.
     */
    async pipelineDeclaresAnalytics(input: { pipeline: string }): Promise<{ declared: boolean }> {
      return { declared: deps.analytics.pipelines.some((p) => p.pipeline === input.pipeline) };
    },

    /**
     * Creates the table of every aggregation of the pipeline (idempotent), and returns, per
     * tumbling or hopping aggregation with a final window stored, the latest final window's
     * `end - 1` (ms, `finalUptoMs`). The aggregator passes it to its steps as `finalFloorMs`: an
     * aggregator that starts again from an empty state (after `pipeline stop`) rebuilds its
     * watermark from the first batch, below windows that an earlier run already made final.
     */
    async ensureAggregationTables(input: { pipeline: string }): Promise<{ tables: string[]; finalUptoMs: Record<string, number> }> {
      const spec = pipelineSpec(deps.analytics, input.pipeline);
      const tables: string[] = [];
      const finalUptoMs: Record<string, number> = {};
      for (const a of spec.aggregations) {
        const table = aggregationTable(spec.pipeline, a);
        const ddl = a.window.type === 'session' ? sessionTableDdl(table) : aggregationTableDdl(table);
        await deps.warehouse.command({ query: ddl.query, query_params: ddl.params });
        tables.push(table);
        if (a.window.type === 'session') continue;
        // A window once final stays final in every later version, so no FINAL is needed.
        const [last] = await rows<{ e: string }>(
          `SELECT toString(toUnixTimestamp64Milli(window_end) - 1) AS e FROM {table:Identifier}
           WHERE pipeline = {p:String} AND aggregation = {a:String} AND final = 1 ORDER BY window_start DESC LIMIT 1`,
          { table, p: spec.pipeline, a: a.name },
        );
        if (last) finalUptoMs[a.name] = Number(last.e);
      }
      return { tables, finalUptoMs };
    },

    /** Batches landed after the cursor, oldest first per partition: offsets and event-time bounds only. */
    async readLandedBatches(input: ReadLandedBatchesInput): Promise<{ batches: LandedBatch[] }> {
      const q = landedBatchesQuery(input.pipeline, input.nextOffsets, input.limit ?? 500);
      const found = await rows<{ partition: number; from_offset: string; to_offset: string; max_t: string | null; min_t: string | null; fin: string }>(q.query, q.params);
      return {
        batches: found.map((b) => ({ partition: Number(b.partition), fromOffset: Number(b.from_offset), toOffset: Number(b.to_offset), minEventTimeMs: ms(b.min_t), maxEventTimeMs: ms(b.max_t), finishedAtMs: Number(b.fin) })),
      };
    },

    /**
     * One aggregation step for every aggregation of the pipeline: too-late rows of the new ranges
     * to late_events (judged against the watermark before the step), then recomputation of the
     * revised and newly final windows, and of the provisional windows that `openWindows` asks
     * for (by default those touched). Safe to retry: the side output insert carries a
     * de-duplication token of the step, and a recomputation replaces its rows.
     *
     * Statements per aggregation in the common case (every range carries its event-time bounds,
     * none old enough to be late): one SELECT that recomputes the windows and one INSERT of its
     * rows. The side output runs only when a range's smallest event time is at or before
     * `watermark before - allowed lateness` (otherwise no row of it can be late); the windows come
     * from the bounds (schemas/analytics/step-windows.ts) unless a range lacks them.
     */
    async aggregateStep(input: AggregateStepInput): Promise<AggregateStepResult> {
      const spec = pipelineSpec(deps.analytics, input.pipeline);
      const late: Record<string, number> = {};
      const finalized: Record<string, number[]> = {};
      const finalWindows: Record<string, FinalWindow[]> = {};
      const seen: AggregateStepResult['seen'] = {};
      const timingsMs: Record<string, number> = {};
      const timed = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
        const t = performance.now();
        try {
          return await run();
        } finally {
          timingsMs[what] = Math.round((timingsMs[what] ?? 0) + performance.now() - t);
        }
      };
      const rangeKey = input.ranges.map((r) => `${r.partition}:${r.from}-${r.to}`).join(',');
      const bounded = input.ranges.every((r) => r.minEventTimeMs !== undefined && r.maxEventTimeMs !== undefined);
      // Only the landing table's event time is what lineage_batches bounds.
      const lineageBounds = bounded && spec.source.table === 'events' && spec.source.eventTimeColumn === 'event_time';
      const judged = new Set(spec.detectors.filter((d) => d.method.kind !== 'absence').map((d) => d.aggregation));
      const openWindows = input.openWindows ?? 'touched';
      // Per windowed aggregation: whether it refreshed every open window, or deferred some.
      let refreshedAll = true;
      let deferred = false;
      for (const a of spec.aggregations) {
        const table = aggregationTable(spec.pipeline, a);
        const step = { pipeline: spec.pipeline, aggregation: a, table, ranges: input.ranges, watermarkBeforeMs: input.watermarkBeforeMs, watermarkAfterMs: input.watermarkAfterMs, allowedLatenessMs: spec.watermark.allowedLateness, stepMs: input.stepMs, finalFloorMs: input.finalFloorMs?.[a.name] ?? null };
        if (input.ranges.length > 0) {
          // A row can be late only if its event time is at or before watermark - allowed lateness
          // (its window ends after it); a range whose smallest event time is later holds none.
          const mayBeLate = input.watermarkBeforeMs !== null
            && (!lineageBounds || input.ranges.some((r) => r.minEventTimeMs !== null && r.minEventTimeMs! <= input.watermarkBeforeMs! - spec.watermark.allowedLateness));
          late[a.name] = 0;
          if (mayBeLate) {
            const lateQuery = lateEventsInsert(spec, step);
            const lateCount = () => timed('lateCount', () => rows<{ n: string }>('SELECT count() AS n FROM late_events WHERE pipeline = {p:String} AND aggregation = {a:String}', { p: spec.pipeline, a: a.name }));
            const [before] = await lateCount();
            await timed('lateInsert', () => deps.warehouse.command({
              query: lateQuery.query,
              query_params: lateQuery.params,
              clickhouse_settings: { insert_deduplication_token: `late/${spec.pipeline}/${a.name}/${input.watermarkBeforeMs ?? 'none'}/${rangeKey}` },
            }));
            const [after] = await lateCount();
            late[a.name] = Number(after?.n ?? 0) - Number(before?.n ?? 0);
          }
          // Only absence detectors read the keys seen; without one on this aggregation, skip the query.
          if (spec.detectors.some((d) => d.method.kind === 'absence' && d.aggregation === a.name)) {
            const keys = seenKeysQuery(spec, step);
            seen[a.name] = (await timed('seenKeys', () => rows<{ key_id: string; keys: Record<string, string> }>(keys.query, keys.params))).map((k) => ({ key: k.key_id, keys: k.keys }));
          }
        }
        if (a.window.type === 'session') {
          const done = await sessionStep({ warehouse: deps.warehouse, rows, timed }, spec, step);
          finalized[a.name] = done.finalized;
          if (input.returnFinalWindows && judged.has(a.name) && input.watermarkAfterMs !== null) {
            // One more statement, only for session aggregations that a window detector reads.
            const q = judgeableSessionsQuery(spec, step);
            const found = await timed('sessionsJudged', () => rows<{ key_id: string; keys: Record<string, string>; ws: string; we: string; measures: Record<string, number | string>; revision: number }>(q.query, q.params));
            finalWindows[a.name] = found.map((r) => ({ aggregation: a.name, key: r.key_id, keys: r.keys, startMs: Number(r.ws), endMs: Number(r.we), measures: Object.fromEntries(Object.entries(r.measures).map(([k, v]) => [k, Number(v)])), revision: Number(r.revision) }));
          }
          continue;
        }
        let affected: AffectedWindows | null = null;
        if (lineageBounds && input.watermarkBeforeMs !== null) {
          const derived = stepWindows({
            sizeMs: a.window.size,
            slideMs: a.window.type === 'hopping' ? a.window.slide : a.window.size,
            ranges: input.ranges.map((r) => ({ minEventTimeMs: r.minEventTimeMs ?? null, maxEventTimeMs: r.maxEventTimeMs ?? null })),
            watermarkBeforeMs: input.watermarkBeforeMs,
            watermarkAfterMs: input.watermarkAfterMs,
            allowedLatenessMs: spec.watermark.allowedLateness,
            limit: affectedListLimit,
            openWindows,
          });
          if (derived?.deferredOpen) deferred = true;
          affected = derived;
        }
        if (!affected) {
          // The touched windows from the rows themselves (every touched window, open ones too).
          const affectedQuery = affectedWindowsQuery(spec, step);
          const [found] = await timed('affected', () => rows<{ n: string; lo: string; hi: string; list: string[] }>(affectedQuery.query, affectedQuery.params));
          const count = Number(found?.n ?? 0);
          affected = count > 0 ? { count, lo: Number(found!.lo), hi: Number(found!.hi), list: count <= affectedListLimit ? found!.list.map(Number) : null } : { count: 0, lo: 0, hi: 0, list: [] };
          const slide = a.window.type === 'hopping' ? a.window.slide : a.window.size;
          if (typeof openWindows === 'object' && input.watermarkAfterMs !== null) {
            // The refresh: the open windows of the pending spans as well.
            const open = stepWindows({ sizeMs: a.window.size, slideMs: slide, ranges: [], watermarkBeforeMs: input.watermarkAfterMs, watermarkAfterMs: input.watermarkAfterMs, allowedLatenessMs: 0, limit: affectedListLimit, openWindows });
            affected = unionWindows(affected, open!, slide, affectedListLimit);
          } else refreshedAll = false;
        } else if (typeof openWindows !== 'object') refreshedAll = false;
        let computed: ComputedWindowRow[] = [];
        if (affected.count > 0) {
          const q = computeWindowsQuery(spec, step, affected);
          computed = await timed('recompute', () => rows<ComputedWindowRow>(q.query, q.params));
          if (computed.length > 0) {
            const size = a.window.size;
            await timed('insert', () => deps.warehouse.insert({
              table,
              format: 'JSONEachRow',
              values: computed.map((w) => ({
                pipeline: spec.pipeline,
                aggregation: a.name,
                window_start: toClickHouseTime(Number(w.ws_ms)),
                window_end: toClickHouseTime(Number(w.ws_ms) + size),
                key_id: w.k,
                keys: w.keys_map,
                measures: w.measures,
                events: w.events,
                final: Number(w.is_final),
                revision: Number(w.revision),
                finalized_at_ms: w.fin_ms,
                version: input.stepMs,
              })),
            }));
          }
        }
        finalized[a.name] = [...new Set(computed.filter((w) => Number(w.is_final) === 1 && Number(w.fin_ms) === input.stepMs).map((w) => Number(w.ws_ms)))].sort((x, y) => x - y);
        if (input.returnFinalWindows && judged.has(a.name) && input.watermarkAfterMs !== null) {
          const after = input.watermarkBeforeMs ?? noWatermarkMs;
          const upto = input.watermarkAfterMs;
          const size = a.window.size;
          finalWindows[a.name] = computed
            .filter((w) => Number(w.is_final) === 1 && Number(w.ws_ms) + size - 1 > after && Number(w.ws_ms) + size - 1 <= upto)
            .map((w) => ({ aggregation: a.name, key: w.k, keys: w.keys_map, startMs: Number(w.ws_ms), endMs: Number(w.ws_ms) + size, measures: Object.fromEntries(Object.entries(w.measures).map(([k, v]) => [k, Number(v)])), revision: Number(w.revision) }))
            .sort((x, y) => x.startMs - y.startMs || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
        }
      }
      const provisional: ProvisionalOutcome = deferred ? 'deferred' : refreshedAll ? 'refreshed' : 'unchanged';
      // The ranges' own bounds: the refresh recomputes the open windows overlapping them.
      const deferredSpans = deferred ? input.ranges.filter((r) => r.minEventTimeMs != null && r.maxEventTimeMs != null).map((r): TimeSpan => [r.minEventTimeMs!, r.maxEventTimeMs!]) : undefined;
      log.debug('aggregation step', { pipeline: input.pipeline, ranges: input.ranges.length, late, finalized, timingsMs, provisional });
      return { late, finalized, seen, timingsMs, ...(input.returnFinalWindows ? { finalWindows } : {}), ...(openWindows === 'touched' ? {} : { provisional }), ...(deferredSpans ? { deferredSpans } : {}) };
    },

    /**
     * One aggregator iteration's work in one activity: the batches landed after the cursor (from
     * the landing reports in the input when they tile it, else `readLandedBatches`), the watermark advanced over them with the pure code of
     * schemas/analytics/watermark.ts at the workflow's `nowMs`, and, when anything landed or the
     * watermark moved, `aggregateStep` with the final windows returned. Deterministic for its
     * input and the landed data, so a retry (or a redone iteration) gives the same answer.
     */
    async aggregateLanded(input: AggregateLandedInput): Promise<AggregateLandedResult> {
      const spec = pipelineSpec(deps.analytics, input.pipeline);
      const nextOffsets = Object.fromEntries(Object.entries(input.watermark.partitions).map(([p, m]) => [p, m.nextOffset]));
      const t0 = performance.now();
      const fromReports = input.reported ? batchesFromReports(input.reported, nextOffsets) : null;
      const batches = fromReports ?? (await activities.readLandedBatches({ pipeline: spec.pipeline, nextOffsets })).batches;
      const readMs = Math.round(performance.now() - t0);
      const before = input.watermark.watermarkMs;
      const policy = { outOfOrdernessMs: spec.watermark.outOfOrderness, idlenessMs: spec.watermark.idleness };
      const observed = observeBatches(input.watermark, batches.map((b) => ({ partition: b.partition, toOffset: b.toOffset, maxEventTimeMs: b.maxEventTimeMs, finishedAtMs: b.finishedAtMs })), policy);
      const watermark = advanceWatermark(observed, policy, input.nowMs);
      const openWindows = provisionalPlan(spec, input, before, watermark);
      const pendingRefresh = (input.provisional?.pending.length ?? 0) > 0 && typeof openWindows === 'object';
      if (batches.length === 0 && watermark.watermarkMs === before && !pendingRefresh) return { batches: 0, batchesFrom: fromReports ? 'reports' : 'lineage', watermark, step: null };
      const ranges = batches.map((b) => ({ partition: b.partition, from: b.fromOffset, to: b.toOffset, minEventTimeMs: b.minEventTimeMs, maxEventTimeMs: b.maxEventTimeMs }));
      const step = await activities.aggregateStep({ pipeline: spec.pipeline, ranges, watermarkBeforeMs: before, watermarkAfterMs: watermark.watermarkMs, stepMs: input.nowMs, returnFinalWindows: true, openWindows, ...(input.finalFloorMs ? { finalFloorMs: input.finalFloorMs } : {}) });
      return { batches: batches.length, batchesFrom: fromReports ? 'reports' : 'lineage', watermark, step: { ...step, timingsMs: { ...(fromReports ? {} : { readBatches: readMs }), ...step.timingsMs } } };
    },

    /**
     * Final windows of an aggregation that became final when the watermark moved from
     * `afterWatermarkMs` (exclusive; null = from the beginning) to `uptoWatermarkMs` (inclusive):
     * `end - 1` in that interval, every group, oldest first. Deterministic for a given pair, so a
     * retried iteration judges the same windows.
     */
    async readFinalWindows(input: { pipeline: string; aggregation: string; afterWatermarkMs: number | null; uptoWatermarkMs: number }): Promise<{ windows: FinalWindow[] }> {
      const spec = pipelineSpec(deps.analytics, input.pipeline);
      const a = spec.aggregations.find((x) => x.name === input.aggregation);
      if (!a) throw ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `aggregation "${input.aggregation}" is not declared for pipeline ${input.pipeline}` });
      const found = await rows<{ key_id: string; keys: Record<string, string>; ws: string; we: string; measures: Record<string, number>; revision: number }>(
        `SELECT key_id, keys, toUnixTimestamp64Milli(window_start) AS ws, toUnixTimestamp64Milli(window_end) AS we, measures, revision
         FROM {table:Identifier} FINAL
         WHERE pipeline = {p:String} AND aggregation = {a:String} AND final = 1
           AND toUnixTimestamp64Milli(window_end) - 1 > {after:Int64} AND toUnixTimestamp64Milli(window_end) - 1 <= {upto:Int64}
         ORDER BY window_start, key_id`,
        { table: aggregationTable(spec.pipeline, a), p: spec.pipeline, a: a.name, after: input.afterWatermarkMs ?? -9_000_000_000_000_000, upto: input.uptoWatermarkMs },
      );
      return {
        windows: found.map((w) => ({ aggregation: a.name, key: w.key_id, keys: w.keys, startMs: Number(w.ws), endMs: Number(w.we), measures: Object.fromEntries(Object.entries(w.measures).map(([k, v]) => [k, Number(v)])), revision: Number(w.revision) })),
      };
    },
  };
  return activities;
}

/** The aggregation activities. */
export type AggregationActivities = ReturnType<typeof createAggregationActivities>;
