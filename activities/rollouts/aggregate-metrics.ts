/**
 * Aggregate values and detector firings of a rollout step, canary against baseline on the same
 * input: the pipeline's declared aggregations (`infra/analytics/pipelines.json`) whose source is an
 * output table of the processor rolling out, computed per window over each side's rows of the step,
 * and the declared window detectors run over both series.
 *
 * Which rows are whose (the step is one routing epoch of the rollout; its batches are the rows of
 * `lineage_batches` with that `rollout_id` and `routing_epoch`):
 * - shadow step: the baseline's rows are the live output rows of those batches, the canary's the rows
 *   of the shadow table (`<table>_shadow`) of the same batches: the same events on both sides;
 * - weight step: the live output rows of those batches, split by the version that wrote them
 *   (`processor`, `processor_version`). Extensive measures (`count`, `sum`, `uniq`) are divided by
 *   the side's share of the step's events (events handed to it, from the `reject_rate`
 *   observations), so a side with 10 % of the keys is compared at full-traffic scale; `uniq` scales
 *   only approximately (exactly when the counted field is spread evenly over keys).
 *
 * Samples (`aggregate:<aggregation>.<measure>`, continuous): one value per window and group key of
 * the side, judged with the Mann–Whitney U test and the Hodges–Lehmann shift like every continuous
 * metric. Windows the step only partly covers (the first and last, where the step began and ended)
 * are left out on both sides, and so are windows where a measure is undefined (an `avg` of no row).
 *
 * Detector firings (`detector:<name>`, proportion): each side's series runs through the declared
 * detector ({@link judgeWindow}, the same code as the aggregator), after the same history: the live
 * windows before the step (every version's rows, at most {@link historyWindows} windows), so
 * detectors that need history (EWMA, MAD, seasonal) are warm when the step's windows arrive. Hits =
 * windows of the step in which the detector's alert is firing (a level is open after the window),
 * events = windows judged (not skipped for `minCount`, not warming up). Judged with Fisher's exact
 * test like every proportion.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Params, alias, measuresMap, sourceRows, windowJoin } from '../analytics/aggregate-sql.js';
import type { Aggregation, PipelineAnalytics } from '../../schemas/analytics/declarations.js';
import { windowStepMs } from '../../schemas/analytics/declarations.js';
import { emptySeriesState, judgeWindow, type Detector, type SeriesState } from '../../schemas/analytics/detectors.js';
import { detectorValue } from '../../schemas/analytics/evaluate.js';
import type { ProcessorDefinition } from '../../schemas/processing/define.js';
import { aggregateMetricPrefix, detectorMetricPrefix, parseAggregateMetric, parseDetectorMetric } from '../../schemas/rollouts/rollout.js';
import { shadowTableSuffix } from '../../schemas/rollouts/routing.js';
import type { MetricSamples, SideSample } from './judge.js';

/** Most live windows per group read as detector history before the step. */
export const historyWindows = 200;

/** The batches of one routing epoch of a rollout, and what routed them. */
export interface StepBatches {
  batchIds: string[];
  mode: 'shadow' | 'weight';
  /** The canary processor the batches ran (`lineage_batches.canary_processor`). */
  canary: { name: string; version: number };
}

/** Measure kinds whose value grows with the traffic a side gets (scaled by the side's share in weight steps). */
const extensive = new Set(['count', 'sum', 'uniq']);

/**
 * The declared aggregations a rollout of `processor` can judge: those of `spec` whose source table
 * is one of the processor's output tables (rows the version wrote), with tumbling or hopping
 * windows. An aggregation over another table (e.g. `events`, landed before processing) would be the
 * same for both versions.
 */
export function judgeableAggregations(spec: PipelineAnalytics | undefined, processor: ProcessorDefinition): Aggregation[] {
  if (!spec) return [];
  const tables = new Set(Object.values(processor.outputs).map((o) => o.table));
  if (!tables.has(spec.source.table)) return [];
  return spec.aggregations.filter((a) => a.window.type !== 'session');
}

/** Metric names of every measure of `aggregations` and every window detector of `spec` on them. */
export function declaredAggregateMetrics(spec: PipelineAnalytics | undefined, aggregations: readonly Aggregation[]): string[] {
  if (!spec) return [];
  const names = new Set(aggregations.map((a) => a.name));
  return [
    ...aggregations.flatMap((a) => a.measures.map((m) => `${aggregateMetricPrefix}${a.name}.${m.name}`)),
    ...spec.detectors.filter((d) => names.has(d.aggregation) && d.method.kind !== 'absence').map((d) => `${detectorMetricPrefix}${d.name}`),
  ];
}

/**
 * Why a metric named in a rollout's `analysis.metrics` cannot be judged for this pipeline and
 * processor, or null when it can (or is no aggregate/detector metric). The message says what is
 * expected: a declared aggregation over one of the processor's output tables.
 */
export function aggregateMetricRefusal(name: string, pipeline: string, spec: PipelineAnalytics | undefined, processor: ProcessorDefinition): string | null {
  const agg = parseAggregateMetric(name);
  const det = parseDetectorMetric(name);
  if (!agg && det === null) return null;
  const outputs = Object.values(processor.outputs).map((o) => o.table).join(', ');
  if (!spec) return `pipeline ${pipeline} declares no analytics (infra/analytics/pipelines.json): expected a declared aggregation over an output of ${processor.name} (${outputs})`;
  if (!judgeableAggregations(spec, processor).length) {
    return `the aggregations of pipeline ${pipeline} read ${spec.source.table}, which ${processor.name} v${processor.version} does not write (its outputs: ${outputs}): both versions would show the same values`;
  }
  const judgeable = new Map(judgeableAggregations(spec, processor).map((a) => [a.name, a]));
  if (agg) {
    const a = judgeable.get(agg.aggregation);
    if (!a) return `no tumbling or hopping aggregation "${agg.aggregation}" declared for pipeline ${pipeline} (declared: ${[...judgeable.keys()].join(', ') || 'none'})`;
    if (!a.measures.some((m) => m.name === agg.measure)) return `aggregation ${a.name} has no measure "${agg.measure}" (measures: ${a.measures.map((m) => m.name).join(', ')})`;
    return null;
  }
  const d = spec.detectors.find((x) => x.name === det);
  if (!d) return `no detector "${det}" declared for pipeline ${pipeline} (declared: ${spec.detectors.map((x) => x.name).join(', ') || 'none'})`;
  if (d.method.kind === 'absence') return `detector ${d.name} is an absence detector (processing time, not windows): it cannot be judged per window`;
  if (!judgeable.has(d.aggregation)) return `detector ${d.name} judges aggregation ${d.aggregation}, which is not a tumbling or hopping aggregation over ${processor.name}'s outputs`;
  return null;
}

/** One window of one group on one side. */
interface SideWindow {
  ws: number;
  key: string;
  measures: Record<string, number>;
  tmin: number;
  tmax: number;
}

/** A side of a step: which table and which of its rows. */
interface SideRows {
  table: string;
  /** SQL predicate on the source row (parameters added to `p`). */
  where: (p: Params) => string;
}

function sides(spec: PipelineAnalytics, step: StepBatches): { baseline: SideRows; canary: SideRows } {
  const live = spec.source.table;
  const inStep = (p: Params) => `${p.add('Identifier', spec.source.batchColumn)} IN ${p.add('Array(String)', step.batchIds)}`;
  if (step.mode === 'shadow') {
    return { baseline: { table: live, where: inStep }, canary: { table: `${live}${shadowTableSuffix}`, where: inStep } };
  }
  const isCanary = (p: Params) => `(processor = ${p.add('String', step.canary.name)} AND processor_version = ${p.add('UInt32', step.canary.version)})`;
  return {
    baseline: { table: live, where: (p) => `${inStep(p)} AND NOT ${isCanary(p)}` },
    canary: { table: live, where: (p) => `${inStep(p)} AND ${isCanary(p)}` },
  };
}

/** Per window and group of `a` over the rows of `rows`: measures and the event-time span (ms) of its rows. */
async function windows(warehouse: ClickHouseClient, spec: PipelineAnalytics, a: Aggregation, rows: SideRows): Promise<SideWindow[]> {
  const p = new Params();
  const source = { ...spec, source: { ...spec.source, table: rows.table } };
  const keyId = a.groupBy.length === 0 ? `''` : `arrayStringConcat([${a.groupBy.map(alias).join(', ')}], '/')`;
  const measures = measuresMap(spec, a, p);
  const fields = [...new Set([...a.groupBy, ...a.measures.flatMap((m) => [...(m.field ? [m.field] : []), ...m.where.map((c) => c.field)])])];
  const inner = `SELECT ${['t', ...fields.map(alias)].join(', ')}, ws, ${keyId} AS k
    FROM (${sourceRows(source, a, p, rows.where(p))}) ${windowJoin(a, p)}`;
  const query = `SELECT toString(ws) AS ws_ms, k, ${measures} AS measures, toString(min(t)) AS tmin, toString(max(t)) AS tmax
    FROM (${inner}) GROUP BY ws, k ORDER BY ws, k`;
  const result = await warehouse.query({ query, query_params: { ...p.values, pipeline: spec.pipeline }, format: 'JSONEachRow' });
  const out = await result.json<{ ws_ms: string; k: string; measures: Record<string, number | null>; tmin: string; tmax: string }>();
  return out.map((r) => ({
    ws: Number(r.ws_ms),
    key: r.k,
    // ClickHouse's JSON writes NaN (a measure of no row) as null: it stays undefined, never 0.
    measures: Object.fromEntries(Object.entries(r.measures).map(([k, v]) => [k, v === null ? Number.NaN : Number(v)])),
    tmin: Number(r.tmin),
    tmax: Number(r.tmax),
  }));
}

/** Live windows of `a` before the step (every version), the detectors' history. */
async function historyOf(warehouse: ClickHouseClient, spec: PipelineAnalytics, a: Aggregation, step: StepBatches, beforeMs: number): Promise<SideWindow[]> {
  const span = historyWindows * windowStepMs(a.window) + (a.window.type === 'hopping' ? a.window.size : 0);
  const et = spec.source.eventTimeColumn;
  return windows(warehouse, spec, a, {
    table: spec.source.table,
    where: (p) =>
      `${p.add('Identifier', et)} >= fromUnixTimestamp64Milli(${p.add('Int64', beforeMs - span)}, 'UTC') AND ${p.add('Identifier', et)} < fromUnixTimestamp64Milli(${p.add('Int64', beforeMs)}, 'UTC')
       AND ${p.add('Identifier', spec.source.batchColumn)} NOT IN ${p.add('Array(String)', step.batchIds)}`,
  }).then((ws) => ws.filter((w) => w.ws + (a.window.type === 'hopping' ? a.window.size : windowStepMs(a.window)) <= beforeMs));
}

/** A detector over one side's series after the shared history: windows judged and windows firing. */
export function detectorFirings(d: Detector, history: readonly { ws: number; key: string; measures: Record<string, number> }[], step: readonly { ws: number; key: string; measures: Record<string, number> }[], windowSizeMs: number, stepMs: number): { judged: number; firing: number } {
  const states = new Map<string, SeriesState>();
  const feed = (w: { ws: number; key: string; measures: Record<string, number> }) => {
    const value = detectorValue(d, w.measures);
    const count = d.minCountMeasure ? (w.measures[d.minCountMeasure] ?? 0) : value;
    const j = judgeWindow(d, states.get(w.key) ?? emptySeriesState(), { startMs: w.ws, endMs: w.ws + windowSizeMs, value, count }, stepMs);
    states.set(w.key, j.state);
    return j;
  };
  const ordered = <T extends { ws: number; key: string }>(xs: readonly T[]) => [...xs].sort((x, y) => x.ws - y.ws || x.key.localeCompare(y.key));
  for (const w of ordered(history)) feed(w);
  let judged = 0;
  let firing = 0;
  for (const w of ordered(step)) {
    const j = feed(w);
    if (j.transition === 'skipped' || j.transition === 'warming_up') continue;
    judged++;
    if (j.level !== null) firing++;
  }
  return { judged, firing };
}

/** Events each side processed in the step (weight steps scale extensive measures by them). */
export interface SideEvents {
  baseline: number;
  canary: number;
}

/**
 * Samples of the aggregate and detector metrics `wanted` (names) for one step. Metrics whose
 * aggregation is not among `aggregations` are left out (the judge then finds them without samples:
 * inconclusive).
 */
export async function aggregateSamples(
  warehouse: ClickHouseClient,
  spec: PipelineAnalytics,
  aggregations: readonly Aggregation[],
  wanted: readonly string[],
  step: StepBatches,
  events: SideEvents,
): Promise<Map<string, MetricSamples>> {
  const out = new Map<string, MetricSamples>();
  if (step.batchIds.length === 0) return out;
  const rows = sides(spec, step);
  const total = events.baseline + events.canary;
  for (const a of aggregations) {
    const measures = a.measures.filter((m) => wanted.includes(`${aggregateMetricPrefix}${a.name}.${m.name}`));
    const detectors = spec.detectors.filter((d) => d.aggregation === a.name && d.method.kind !== 'absence' && wanted.includes(`${detectorMetricPrefix}${d.name}`));
    if (measures.length === 0 && detectors.length === 0) continue;
    const [baseline, canary] = await Promise.all([windows(warehouse, spec, a, rows.baseline), windows(warehouse, spec, a, rows.canary)]);
    // Weight steps: extensive measures at full-traffic scale (each side divided by its share of the events).
    if (step.mode === 'weight' && total > 0) {
      for (const [side, n] of [[baseline, events.baseline], [canary, events.canary]] as const) {
        const share = n / total;
        if (share <= 0) continue;
        for (const w of side) for (const m of a.measures) if (extensive.has(m.kind) && m.name in w.measures) w.measures[m.name] = w.measures[m.name]! / share;
      }
    }
    // Windows the step fully covers: the step's rows span [lo, hi] of event time.
    const all = [...baseline, ...canary];
    const size = a.window.type === 'hopping' ? a.window.size : windowStepMs(a.window);
    const lo = Math.min(...all.map((w) => w.tmin));
    const hi = Math.max(...all.map((w) => w.tmax));
    const inside = (w: SideWindow) => w.ws >= lo && w.ws + size - 1 <= hi;
    const b = baseline.filter(inside);
    const c = canary.filter(inside);
    for (const m of measures) {
      const values = (ws: SideWindow[]) => ws.map((w) => w.measures[m.name] ?? Number.NaN).filter((v) => !Number.isNaN(v));
      const side = (vs: number[]): SideSample => ({ values: vs, events: vs.length, hits: 0 });
      out.set(`${aggregateMetricPrefix}${a.name}.${m.name}`, { baseline: side(values(b)), canary: side(values(c)) });
    }
    if (detectors.length > 0 && all.length > 0) {
      const history = await historyOf(warehouse, spec, a, step, lo);
      for (const d of detectors) {
        const fb = detectorFirings(d, history, b, size, windowStepMs(a.window));
        const fc = detectorFirings(d, history, c, size, windowStepMs(a.window));
        out.set(`${detectorMetricPrefix}${d.name}`, {
          baseline: { values: [], events: fb.judged, hits: fb.firing },
          canary: { values: [], events: fc.judged, hits: fc.firing },
        });
      }
    }
  }
  return out;
}

/** The batches of a rollout's routing epoch on its pipeline, or null when none landed. */
export async function stepBatches(warehouse: ClickHouseClient, input: { pipeline: string; rolloutId: string; epoch: number }): Promise<StepBatches | null> {
  const result = await warehouse.query({
    query: `SELECT batch_id, routing_mode, canary_processor FROM lineage_batches FINAL
            WHERE pipeline = {pipeline:String} AND rollout_id = {rollout:String} AND routing_epoch = {epoch:UInt32}`,
    query_params: { pipeline: input.pipeline, rollout: input.rolloutId, epoch: input.epoch },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ batch_id: string; routing_mode: string; canary_processor: string }>();
  const first = rows.find((r) => r.routing_mode === 'shadow' || r.routing_mode === 'weight');
  const named = first ? /^([a-z][a-z0-9-]{0,62})@(\d+)$/.exec(first.canary_processor) : null;
  if (!first || !named) return null;
  return { batchIds: rows.map((r) => r.batch_id), mode: first.routing_mode as 'shadow' | 'weight', canary: { name: named[1]!, version: Number(named[2]) } };
}
