/**
 * SQL of the declared aggregations, built from a parsed {@link PipelineAnalytics}: every column
 * name travels as an `Identifier` parameter and every value (JSON paths, filter values, measure
 * names, times) as a typed parameter; the only text spliced in comes from closed enums (operators,
 * aggregate function names). Generic over the source table: nothing here knows a contract.
 *
 * Window assignment in SQL is the same floor arithmetic as schemas/analytics/windows.ts (Flink's
 * `getWindowStartWithOffset`), over `toUnixTimestamp64Milli(event time)`: the latest window start
 * `t - ((t % slide) + slide) % slide`, then `ceil(size / slide)` starts going back by the slide, kept
 * when `t < start + size` (a tumbling window is a hopping one whose slide equals its size). Session
 * windows are split with windows.ts's `sessionize` and measured by session-sql.ts (see
 * session-step.ts).
 *
 * Duplicated source rows (re-landed data under a second guard, or a source without one) never
 * double-count: rows are de-duplicated by (topic, partition, offset) with `LIMIT 1 BY` before
 * aggregating.
 */
import type { Aggregation, Condition, Field, Measure, PipelineAnalytics } from '../../schemas/analytics/declarations.js';

/** A query with its parameters. */
export interface BuiltQuery {
  query: string;
  params: Record<string, unknown>;
}

const ops: Record<Condition['op'], string> = { '=': '=', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
const fn: Record<Measure['kind'], string> = {
  count: 'countIf',
  sum: 'sumIf',
  min: 'minIf',
  max: 'maxIf',
  avg: 'avgIf',
  uniq: 'uniqExactIf',
  p50: 'quantileExactIf(0.5)',
  p90: 'quantileExactIf(0.9)',
  p95: 'quantileExactIf(0.95)',
  p99: 'quantileExactIf(0.99)',
};

/** Collects parameters under unique names (`{p0:Type}`, `{p1:Type}`, …). */
export class Params {
  readonly values: Record<string, unknown> = {};
  private n = 0;
  add(type: string, value: unknown): string {
    const name = `p${this.n++}`;
    this.values[name] = value;
    return `{${name}:${type}}`;
  }
}

/** SQL expression of a declared field, reading the raw source row. */
function fieldExpr(spec: PipelineAnalytics, field: Field, p: Params): string {
  if ('column' in field) {
    const col = p.add('Identifier', field.column);
    return field.type === 'number' ? `toFloat64(${col})` : `toString(${col})`;
  }
  const json = p.add('Identifier', spec.source.jsonColumn);
  const path = p.add('String', field.json);
  return field.type === 'number' ? `JSONExtractFloat(${json}, ${path})` : `JSONExtractString(${json}, ${path})`;
}

function conditionExpr(spec: PipelineAnalytics, c: Condition, p: Params): string {
  const field = spec.fields[c.field]!;
  const numeric = field.type === 'number';
  const value = numeric ? p.add('Float64', Number(c.value)) : p.add('String', String(c.value));
  return `(${fieldExpr(spec, field, p)} ${ops[c.op]} ${value})`;
}

function allOf(spec: PipelineAnalytics, cs: readonly Condition[], p: Params): string {
  return cs.length === 0 ? '1' : cs.map((c) => conditionExpr(spec, c, p)).join(' AND ');
}

/** Names the alias columns of the inner query: f_<field>. */
export const alias = (field: string) => `f_${field}`;

/** Fields an aggregation reads (group keys, measure inputs, measure filters). */
function usedFields(a: Aggregation): string[] {
  const set = new Set<string>(a.groupBy);
  for (const m of a.measures) {
    if (m.field) set.add(m.field);
    for (const c of m.where) set.add(c.field);
  }
  return [...set];
}

/**
 * The inner query: source rows of the pipeline (filtered, de-duplicated by source position), with
 * `t` (event time ms), the lineage columns and the used fields as `f_<name>`, for event times in
 * `[{lo}, {hi})` or, when `ranges` is given, only the rows of those offset ranges.
 */
export function sourceRows(spec: PipelineAnalytics, a: Aggregation, p: Params, where: string): string {
  const s = spec.source;
  const cols = [
    `toUnixTimestamp64Milli(${p.add('Identifier', s.eventTimeColumn)}) AS t`,
    `toString(${p.add('Identifier', s.topicColumn)}) AS src_topic`,
    `toUInt32(${p.add('Identifier', s.partitionColumn)}) AS src_partition`,
    `toUInt64(${p.add('Identifier', s.offsetColumn)}) AS src_offset`,
    `toString(${p.add('Identifier', s.batchColumn)}) AS src_batch`,
    `toUnixTimestamp64Milli(${p.add('Identifier', s.ingestedAtColumn)}) AS src_ingested`,
    ...usedFields(a).map((f) => `${fieldExpr(spec, spec.fields[f]!, p)} AS ${alias(f)}`),
  ];
  return `SELECT ${cols.join(', ')}
    FROM ${p.add('Identifier', s.table)}
    WHERE ${p.add('Identifier', s.pipelineColumn)} = {pipeline:String} AND ${allOf(spec, s.where, p)} AND (${where})
    LIMIT 1 BY src_topic, src_partition, src_offset`;
}

/**
 * `ws` (window start ms) per row, one row per window containing `t` (tumbling or hopping). For a
 * session aggregation, the event's own window `[t, t + gap)` (what lateness is judged on).
 */
export function windowJoin(a: Aggregation, p: Params): string {
  if (a.window.type === 'session') return 'ARRAY JOIN [t] AS ws';
  const size = a.window.size;
  const slide = a.window.type === 'hopping' ? a.window.slide : a.window.size;
  const sz = p.add('Int64', size);
  const sl = p.add('Int64', slide);
  const n = p.add('UInt32', Math.ceil(size / slide));
  return `ARRAY JOIN arrayFilter(s -> t < s + ${sz}, arrayMap(i -> (t - (((t % ${sl}) + ${sl}) % ${sl})) - toInt64(i) * ${sl}, range(${n}))) AS ws`;
}

/** Offset ranges as a SQL predicate on the source row columns, with parameters. */
export function rangesPredicate(spec: PipelineAnalytics, ranges: readonly OffsetRange[], p: Params): string {
  if (ranges.length === 0) return '0';
  const part = p.add('Identifier', spec.source.partitionColumn);
  const off = p.add('Identifier', spec.source.offsetColumn);
  return ranges.map((r) => `(${part} = ${p.add('UInt32', r.partition)} AND ${off} >= ${p.add('UInt64', r.from)} AND ${off} < ${p.add('UInt64', r.to)})`).join(' OR ');
}

/** A landed offset range `[from, to)` of a partition. */
export interface OffsetRange {
  partition: number;
  from: number;
  to: number;
  /**
   * Smallest and largest event time of the range's valid events (ms, from lineage_batches; both
   * null when it had none). When every range of a step carries them, the step derives the windows
   * to recompute from them instead of querying the landed rows (schemas/analytics/step-windows.ts).
   */
  minEventTimeMs?: number | null;
  maxEventTimeMs?: number | null;
}

/** DDL of an aggregation's table (one per aggregation; created if missing). */
export function aggregationTableDdl(table: string): BuiltQuery {
  return {
    query: `CREATE TABLE IF NOT EXISTS {table:Identifier}
(
    pipeline LowCardinality(String),
    aggregation LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC') COMMENT 'exclusive',
    key_id String COMMENT 'group key values joined with /',
    keys Map(String, String),
    measures Map(String, Float64),
    events UInt64 COMMENT 'source rows in the window and group',
    final UInt8 COMMENT '0 = provisional: the watermark has not passed the window end yet',
    revision UInt32 COMMENT 'landed batches that changed the window after it became final (allowed lateness)',
    finalized_at_ms UInt64 COMMENT 'processing time the window first became final; 0 = never',
    version UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (pipeline, aggregation, window_start, window_end, key_id)`,
    params: { table },
  };
}

/** Input of {@link lateEventsInsert} and {@link recomputeWindows}. */
export interface StepInput {
  pipeline: string;
  aggregation: Aggregation;
  table: string;
  /** Offset ranges landed since the last step. */
  ranges: OffsetRange[];
  /** Watermark before these ranges were read (lateness is judged against it); null: none yet. */
  watermarkBeforeMs: number | null;
  /** Watermark after (windows whose end - 1 <= it are final). */
  watermarkAfterMs: number | null;
  allowedLatenessMs: number;
  /** Processing time of the step (ms), from the workflow: stamps first finalisation and the row version. */
  stepMs: number;
  /** Latest `end - 1` (ms) of a window an earlier aggregator run made final, if any (see AggregateStepInput.finalFloorMs). @default null */
  finalFloorMs?: number | null;
}

/** Stands for "no watermark yet" in SQL comparisons (far before any event time). */
export const noWatermark = -9_000_000_000_000_000;

/**
 * INSERT of the side output: rows of the new ranges whose window is past its allowed lateness
 * under the watermark before the step (one row per missed window).
 */
export function lateEventsInsert(spec: PipelineAnalytics, input: StepInput): BuiltQuery {
  const p = new Params();
  const a = input.aggregation;
  const wm = p.add('Int64', input.watermarkBeforeMs ?? noWatermark);
  const lateness = p.add('Int64', input.allowedLatenessMs);
  const size = p.add('Int64', a.window.type === 'session' ? a.window.gap : a.window.size);
  const query = `INSERT INTO late_events (pipeline, aggregation, topic, partition, offset, batch_id, event_time, window_start, window_end, watermark, late_by_ms, allowed_lateness_ms)
SELECT {pipeline:String}, {aggregation:String}, src_topic, src_partition, src_offset, src_batch,
       fromUnixTimestamp64Milli(t, 'UTC'), fromUnixTimestamp64Milli(ws, 'UTC'), fromUnixTimestamp64Milli(ws + ${size}, 'UTC'),
       fromUnixTimestamp64Milli(${wm}, 'UTC'), ${wm} - (ws + ${size} - 1), ${lateness}
FROM (${sourceRows(spec, a, p, rangesPredicate(spec, input.ranges, p))})
${windowJoin(a, p)}
WHERE ws + ${size} - 1 + ${lateness} <= ${wm}`;
  return { query, params: { ...p.values, pipeline: input.pipeline, aggregation: a.name } };
}

/** The windows a step recomputes (their starts, ms): see {@link affectedWindowsQuery}. */
export interface AffectedWindows {
  /** How many. */
  count: number;
  /** First and last window start; meaningless when `count` is 0. */
  lo: number;
  hi: number;
  /** Every start, ascending, or null when there are more than {@link affectedListLimit}. */
  list: number[] | null;
}

/** Above this many affected windows the recomputation takes the span `[lo, hi]` instead of the list. */
export const affectedListLimit = 1000;

/**
 * The windows one step must recompute: those touched by the new ranges and still open to revision,
 * plus those that become final in this step (`end - 1` in (watermark before, after]). Read once,
 * before the recomputation, which then takes them as a parameter (a CTE used several times in one
 * statement is evaluated each time it is used).
 */
export function affectedWindowsQuery(spec: PipelineAnalytics, input: StepInput): BuiltQuery {
  const p = new Params();
  const a = input.aggregation;
  if (a.window.type === 'session') throw new Error('affectedWindowsQuery: session windows go through session-step.ts');
  const size = p.add('Int64', a.window.size);
  const wmBefore = p.add('Int64', input.watermarkBeforeMs ?? noWatermark);
  const wmAfter = p.add('Int64', input.watermarkAfterMs ?? noWatermark);
  const lateness = p.add('Int64', input.allowedLatenessMs);
  const touched = `SELECT DISTINCT ws FROM (${sourceRows(spec, a, p, rangesPredicate(spec, input.ranges, p))}) ${windowJoin(a, p)} WHERE ws + ${size} - 1 + ${lateness} > ${wmBefore}`;
  const lo = p.add('Int64', (input.watermarkBeforeMs ?? noWatermark) + 1 - a.window.size);
  const hi = p.add('Int64', (input.watermarkAfterMs ?? noWatermark) + 1);
  const etime = p.add('Identifier', spec.source.eventTimeColumn);
  const finalizing = `SELECT DISTINCT ws FROM (${sourceRows(spec, a, p, `${etime} >= fromUnixTimestamp64Milli(greatest(${lo}, -2208988800000), 'UTC') AND ${etime} < fromUnixTimestamp64Milli(greatest(${hi}, -2208988800000), 'UTC')`)}) ${windowJoin(a, p)} WHERE ws + ${size} - 1 > ${wmBefore} AND ws + ${size} - 1 <= ${wmAfter}`;
  const limit = p.add('UInt32', affectedListLimit + 1);
  return {
    query: `SELECT count() AS n, min(ws) AS lo, max(ws) AS hi, arraySort(groupArray(${limit})(ws)) AS list FROM (${touched} UNION DISTINCT ${finalizing})`,
    params: { ...p.values, pipeline: input.pipeline },
  };
}

/** One recomputed window of one group, as {@link computeWindowsQuery} returns it. */
export interface ComputedWindowRow {
  ws_ms: string;
  k: string;
  keys_map: Record<string, string>;
  measures: Record<string, number>;
  events: string;
  is_final: number;
  revision: number;
  fin_ms: string;
}

/**
 * SELECT that recomputes, from the source, every window in `affected` (those touched by the new
 * ranges and not past their allowed lateness, plus those that become final in this step), one row
 * per window and group: `ws_ms` (start), `k` (key id), `keys_map`, `measures`, `events`, `is_final`,
 * `revision` (landed batches of the window ingested after it first became final, 0 in the step that first makes it final, a retry of that step included) and `fin_ms` (the
 * processing time it first became final, kept from the previous row; 0 = not final). The
 * activity inserts the rows as they are (a recomputed row replaces the previous one,
 * ReplacingMergeTree(version)) and judges the final ones without reading them back.
 * Rows recorded in late_events for a window are left out of it.
 */
export function computeWindowsQuery(spec: PipelineAnalytics, input: StepInput, affected: AffectedWindows): BuiltQuery {
  const p = new Params();
  const a = input.aggregation;
  if (a.window.type === 'session') throw new Error('computeWindowsQuery: session windows go through session-step.ts');
  const size = p.add('Int64', a.window.size);
  const wmAfter = p.add('Int64', input.watermarkAfterMs ?? noWatermark);
  const step = p.add('UInt64', input.stepMs);
  const etime = p.add('Identifier', spec.source.eventTimeColumn);
  // The windows to recompute: the list, or every window in [lo, hi] when the list was too long
  // (recomputing an unaffected window rewrites the same row, so that is only more work).
  const inAffected = (col: string) => (affected.list ? `${col} IN ${p.add('Array(Int64)', affected.list)}` : `${col} >= ${p.add('Int64', affected.lo)} AND ${col} <= ${p.add('Int64', affected.hi)}`);
  const lo = p.add('Int64', affected.lo);
  const hi = p.add('Int64', affected.hi);
  const groupKeys = a.groupBy.map((g) => alias(g));
  const keyId = groupKeys.length === 0 ? `''` : `arrayStringConcat([${groupKeys.join(', ')}], '/')`;
  // The key map is built once per group from one row's key values (any of a tuple), not per row.
  const keysMap = groupKeys.length === 0 ? 'map()' : `map(${a.groupBy.map((g, i) => `${p.add('String', g)}, tupleElement(any(tuple(${groupKeys.join(', ')})), ${i + 1})`).join(', ')})`;
  const measures = measuresMap(spec, a, p);
  const innerCols = ['t', 'src_topic', 'src_partition', 'src_offset', 'src_batch', 'src_ingested', ...usedFields(a).map(alias)].join(', ');
  // Rows of a window go to late_events only once `start + size - 1 + allowed lateness` is at or
  // before the watermark of that step (lateEventsInsert), and the watermark never moves back. So
  // when even the earliest window recomputed here is short of that against the watermark before
  // this step, none of them has late rows and the exclusion is left out: it costs a read of
  // late_events and a set lookup per row (about a third of the statement on a live pipeline,
  // whose steps recompute the newest windows). Without a watermark yet it stays (conservative).
  const noLateRows = input.watermarkBeforeMs !== null && affected.lo + a.window.size - 1 + input.allowedLatenessMs > input.watermarkBeforeMs;
  const late = noLateRows ? '1' : `(src_topic, src_partition, src_offset, ws) NOT IN (SELECT topic, partition, offset, toUnixTimestamp64Milli(window_start) FROM late_events
      WHERE pipeline = {pipeline:String} AND aggregation = {aggregation:String}
        AND window_start >= fromUnixTimestamp64Milli(greatest(${lo}, -2208988800000), 'UTC') AND window_start <= fromUnixTimestamp64Milli(greatest(${hi}, -2208988800000), 'UTC'))`;
  // Likewise a window can have been final before this step only if `start + size - 1` is at or
  // before the watermark before it, or before the last window an earlier run made final (an
  // aggregator started again from an empty state rebuilds its watermark below it). When even the
  // earliest window recomputed here is past both, none was final: its first-final time is this
  // step's (or 0), no revision is possible, and the previous rows need not be read or joined to
  // every source row (the join and the per-row revision count were about a third of the
  // statement). Without a watermark yet it stays.
  const neverFinal = input.watermarkBeforeMs !== null && affected.lo + a.window.size - 1 > Math.max(input.watermarkBeforeMs, input.finalFloorMs ?? -Infinity);
  const table = p.add('Identifier', input.table);
  const windowRows = `SELECT ${innerCols}, ws, ${keyId} AS k
    FROM (${sourceRows(spec, a, p, `${etime} >= fromUnixTimestamp64Milli(greatest(${lo}, -2208988800000), 'UTC') AND ${etime} < fromUnixTimestamp64Milli(greatest(${hi} + ${size}, -2208988800000), 'UTC')`)})
    ${windowJoin(a, p)}
    WHERE ${inAffected('ws')} AND ${late}`;
  const isFinal = `toUInt8(ws + ${size} - 1 <= ${wmAfter})`;
  const query = neverFinal
    ? `SELECT toString(ws) AS ws_ms, k, ${keysMap} AS keys_map, ${measures} AS measures, toString(count()) AS events,
       ${isFinal} AS is_final, toUInt32(0) AS revision, toString(if(is_final = 1, ${step}, 0)) AS fin_ms
FROM (${windowRows})
GROUP BY ws, k
ORDER BY ws, k`
    : `WITH previous AS (
       SELECT toUnixTimestamp64Milli(window_start) AS pws, key_id AS pkey, argMax(finalized_at_ms, version) AS pfin
       FROM ${table} WHERE pipeline = {pipeline:String} AND aggregation = {aggregation:String}
         AND ${inAffected('toUnixTimestamp64Milli(window_start)')}
       GROUP BY pws, pkey)
SELECT toString(ws) AS ws_ms, k, ${keysMap} AS keys_map, ${measures} AS measures, toString(count()) AS events,
       ${isFinal} AS is_final,
       toUInt32(uniqExactIf(src_batch, pf > 0 AND pf != ${step} AND src_ingested > pf)) AS revision,
       toString(any(fin)) AS fin_ms
FROM (
  SELECT r.*, pr.pfin AS pf, if(pr.pfin > 0, pr.pfin, if(r.ws + ${size} - 1 <= ${wmAfter}, ${step}, 0)) AS fin
  FROM (${windowRows}) AS r
  LEFT JOIN previous AS pr ON pr.pws = r.ws AND pr.pkey = r.k
)
GROUP BY ws, k
ORDER BY ws, k`;
  return { query, params: { ...p.values, pipeline: input.pipeline, aggregation: a.name } };
}

/** `map(name, value, …)` of an aggregation's measures over the aliased columns of {@link sourceRows}. */
export function measuresMap(spec: PipelineAnalytics, a: Aggregation, p: Params): string {
  const exprs = a.measures.map((m) => {
    const cond = m.where.length === 0 ? '1' : m.where.map((c) => {
      const numeric = spec.fields[c.field]!.type === 'number';
      return `(${alias(c.field)} ${ops[c.op]} ${numeric ? p.add('Float64', Number(c.value)) : p.add('String', String(c.value))})`;
    }).join(' AND ');
    const arg = m.kind === 'count' ? cond : `${alias(m.field!)}, ${cond}`;
    return `${p.add('String', m.name)}, toFloat64(${fn[m.kind]}(${arg}))`;
  });
  return `map(${exprs.join(', ')})`;
}

/** The key id (`a/b`) and key map expressions of an aggregation's group-by fields. */
export function groupKeyExprs(a: Aggregation, p: Params): { keyId: string; keysMap: string } {
  const groupKeys = a.groupBy.map((g) => alias(g));
  return {
    keyId: groupKeys.length === 0 ? `''` : `arrayStringConcat([${groupKeys.join(', ')}], '/')`,
    keysMap: groupKeys.length === 0 ? 'map()' : `map(${a.groupBy.map((g) => `${p.add('String', g)}, ${alias(g)}`).join(', ')})`,
  };
}

/** Distinct group keys among the rows of the new ranges (what absence detectors call "seen"). */
export function seenKeysQuery(spec: PipelineAnalytics, input: StepInput): BuiltQuery {
  const p = new Params();
  const a = input.aggregation;
  const groupKeys = a.groupBy.map((g) => alias(g));
  const keyId = groupKeys.length === 0 ? `''` : `arrayStringConcat([${groupKeys.join(', ')}], '/')`;
  const keysMap = groupKeys.length === 0 ? 'map()' : `map(${a.groupBy.map((g) => `${p.add('String', g)}, ${alias(g)}`).join(', ')})`;
  const query = `SELECT ${keyId} AS key_id, any(${keysMap}) AS keys FROM (${sourceRows(spec, a, p, rangesPredicate(spec, input.ranges, p))}) GROUP BY key_id ORDER BY key_id`;
  return { query, params: { ...p.values, pipeline: input.pipeline } };
}

/**
 * The source rows one window of one group key was computed from, per landing batch: the way back
 * from an aggregate row (and so from a detector's firing) to topic, partition, offsets and batch.
 * Same source reading as the aggregation (filters, de-duplication by source position), event times
 * in `[windowStartMs, windowEndMs)`, the group key `keyId` (values joined with `/`, as `key_id`),
 * and without the rows recorded in `late_events` as having missed this window.
 * Rows: `batch_id, topic, partition, events, min_offset, max_offset`.
 */
export function windowSourceBatches(spec: PipelineAnalytics, a: Aggregation, windowStartMs: number, windowEndMs: number, keyId: string): BuiltQuery {
  const p = new Params();
  const etime = p.add('Identifier', spec.source.eventTimeColumn);
  const from = p.add('Int64', windowStartMs);
  const to = p.add('Int64', windowEndMs);
  const groupKeys = a.groupBy.map((g) => alias(g));
  const keyExpr = groupKeys.length === 0 ? `''` : `arrayStringConcat([${groupKeys.join(', ')}], '/')`;
  const query = `SELECT src_batch AS batch_id, src_topic AS topic, src_partition AS partition, count() AS events, min(src_offset) AS min_offset, max(src_offset) AS max_offset
FROM (${sourceRows(spec, a, p, `${etime} >= fromUnixTimestamp64Milli(${from}, 'UTC') AND ${etime} < fromUnixTimestamp64Milli(${to}, 'UTC')`)})
WHERE ${keyExpr} = ${p.add('String', keyId)}
  AND (src_topic, src_partition, src_offset) NOT IN (SELECT topic, partition, offset FROM late_events WHERE pipeline = {pipeline:String} AND aggregation = {aggregation:String} AND toUnixTimestamp64Milli(window_start) = ${from})
GROUP BY batch_id, topic, partition ORDER BY topic, partition, min_offset`;
  return { query, params: { ...p.values, pipeline: spec.pipeline, aggregation: a.name } };
}

/**
 * The aggregator's read of what landed after its cursor: `lineage_batches` rows of the pipeline
 * whose `from_offset` is at or after the cursor's next offset for their partition (partitions not
 * in `nextOffsets` from offset 0), ordered by partition then offset, at most `limit`. Columns:
 * `partition, from_offset, to_offset, min_t, max_t` (event-time bounds, ms, null without valid
 * events) and `fin` (finished_at, ms).
 * Only first landings (`generation = 0`) are read: they tile each partition without gaps or
 * overlaps, which the cursor relies on; a replay's batch covers offsets the cursor has passed
 * (migration 076 keeps both rows).
 *
 * The cursor is written as one `(partition = p AND from_offset >= n)` term per partition (plus
 * `partition NOT IN (...)` for partitions it has not seen), a form the primary key
 * `(pipeline, topic, partition, from_offset)` can prune: only the granules at or after the cursor
 * are read and merged by FINAL, so the read stays flat as the pipeline's batch history grows. (An
 * expression that looks the offset up per row, `from_offset >= arrayElement(...)`, selects the same
 * rows but reads every batch the pipeline ever landed.)
 */
export function landedBatchesQuery(pipeline: string, nextOffsets: Record<string, number>, limit: number): BuiltQuery {
  const p = new Params();
  const parts = Object.keys(nextOffsets).map(Number).sort((a, b) => a - b);
  const cursor = parts.length === 0
    ? '1'
    : [...parts.map((part) => `(partition = ${p.add('UInt32', part)} AND from_offset >= ${p.add('UInt64', nextOffsets[String(part)] ?? 0)})`), `partition NOT IN ${p.add('Array(UInt32)', parts)}`].join(' OR ');
  const query = `SELECT partition, from_offset, to_offset,
       if(isNull(max_event_time), NULL, toUnixTimestamp64Milli(assumeNotNull(max_event_time))) AS max_t,
       if(isNull(min_event_time), NULL, toUnixTimestamp64Milli(assumeNotNull(min_event_time))) AS min_t,
       toUnixTimestamp64Milli(finished_at) AS fin
FROM lineage_batches FINAL
WHERE pipeline = {pipeline:String} AND generation = 0 AND (${cursor})
ORDER BY partition, from_offset
LIMIT ${p.add('UInt32', limit)}`;
  return { query, params: { ...p.values, pipeline } };
}
