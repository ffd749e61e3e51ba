/**
 * SQL of session-window aggregations (`session(gap, maxDuration)`), built like aggregate-sql.ts:
 * names as `Identifier` parameters, values as typed parameters, nothing contract-specific.
 *
 * A session row is `[first event, last event + gap)` of one group key (Flink's
 * `EventTimeSessionWindows`: windows that overlap or touch merge, so events exactly one gap apart
 * share a session); `maxDuration` splits a session whose span would exceed it. Sessions change
 * identity when they merge or split, so their table is a `ReplacingMergeTree(version, is_deleted)`:
 * a session that no longer exists after a recomputation gets a tombstone row (`is_deleted = 1`,
 * newer version) and `FINAL` reads only the live ones.
 */
import type { Aggregation, PipelineAnalytics } from '../../schemas/analytics/declarations.js';
import { groupKeyExprs, measuresMap, noWatermark, Params, rangesPredicate, sourceRows, type BuiltQuery, type StepInput } from './aggregate-sql.js';

/** DDL of a session aggregation's table: the window table's columns plus `is_deleted`. */
export function sessionTableDdl(table: string): BuiltQuery {
  return {
    query: `CREATE TABLE IF NOT EXISTS {table:Identifier}
(
    pipeline LowCardinality(String),
    aggregation LowCardinality(String),
    window_start DateTime64(3, 'UTC') COMMENT 'first event of the session',
    window_end DateTime64(3, 'UTC') COMMENT 'last event + gap (exclusive)',
    key_id String COMMENT 'group key values joined with /',
    keys Map(String, String),
    measures Map(String, Float64),
    events UInt64 COMMENT 'source rows in the session',
    final UInt8 COMMENT '0 = provisional: the watermark has not passed the session end yet',
    revision UInt32 COMMENT 'landed batches that changed the session after it became final (allowed lateness)',
    finalized_at_ms UInt64 COMMENT 'processing time the session first became final; 0 = never',
    version UInt64,
    is_deleted UInt8 COMMENT '1 = the session merged into another or split since (a tombstone; FINAL hides it)',
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(window_start)
ORDER BY (pipeline, aggregation, window_start, window_end, key_id)`,
    params: { table },
  };
}

type SessionWindow = Extract<Aggregation['window'], { type: 'session' }>;

function sessionOf(a: Aggregation): SessionWindow {
  if (a.window.type !== 'session') throw new Error(`aggregation ${a.name}: expected a session window`);
  return a.window;
}

/** Rows with their key: the source rows (de-duplicated) plus `k` and `kmap`. */
function keyedRows(spec: PipelineAnalytics, a: Aggregation, p: Params, where: string): string {
  const { keyId, keysMap } = groupKeyExprs(a, p);
  return `SELECT *, ${keyId} AS k, ${keysMap} AS kmap FROM (${sourceRows(spec, a, p, where)})`;
}

/**
 * Per group key of the new ranges: the smallest event time among its rows that are not late
 * (`t + gap - 1 + allowed lateness > watermark before`): where its sessions may have changed.
 */
export function sessionTouchedKeysQuery(spec: PipelineAnalytics, input: StepInput): BuiltQuery {
  const p = new Params();
  const w = sessionOf(input.aggregation);
  const gap = p.add('Int64', w.gap);
  const lateness = p.add('Int64', input.allowedLatenessMs);
  const before = p.add('Int64', input.watermarkBeforeMs ?? noWatermark);
  return {
    query: `SELECT k, toString(min(t)) AS tmin FROM (${keyedRows(spec, input.aggregation, p, rangesPredicate(spec, input.ranges, p))})
WHERE t + ${gap} - 1 + ${lateness} > ${before} GROUP BY k ORDER BY k`,
    params: { ...p.values, pipeline: input.pipeline },
  };
}

/** A stored live session, as {@link liveSessionsQuery} returns it. */
export interface StoredSession {
  key_id: string;
  keys: Record<string, string>;
  ws: string;
  we: string;
  measures: Record<string, number>;
  events: string;
  revision: number;
  final: number;
  finalized_at_ms: string;
}

/**
 * Live sessions that a step may replace or finalise: those of the `keys` starting at or after
 * `fromMs` (a session holding an event before `tmin - gap` cannot change, and one session spans at
 * most `maxDuration`), and those of any key whose end becomes final in the step.
 */
export function liveSessionsQuery(spec: PipelineAnalytics, input: StepInput, keys: string[], fromMs: number): BuiltQuery {
  const p = new Params();
  const table = p.add('Identifier', input.table);
  const before = p.add('Int64', input.watermarkBeforeMs ?? noWatermark);
  const after = p.add('Int64', input.watermarkAfterMs ?? noWatermark);
  return {
    query: `SELECT key_id, keys, toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(toUnixTimestamp64Milli(window_end)) AS we, measures, toString(events) AS events, revision, final, toString(finalized_at_ms) AS finalized_at_ms
FROM ${table} FINAL
WHERE pipeline = {pipeline:String} AND aggregation = {aggregation:String}
  AND ((key_id IN ${p.add('Array(String)', keys)} AND toUnixTimestamp64Milli(window_start) >= ${p.add('Int64', fromMs)})
       OR (toUnixTimestamp64Milli(window_end) - 1 > ${before} AND toUnixTimestamp64Milli(window_end) - 1 <= ${after}))
ORDER BY key_id, window_start`,
    params: { ...p.values, pipeline: input.pipeline, aggregation: input.aggregation.name },
  };
}

/**
 * Sessions a window detector judges in this step: live sessions whose end plus the allowed
 * lateness the watermark passes now (`before < end - 1 + allowedLateness <= after`). Judged then,
 * not at the first finalisation, because within the allowed lateness a session can still grow or
 * merge with its neighbour (its identity, the start, may change); past it, late events of the
 * session go to late_events. Ordered by start, then key.
 */
export function judgeableSessionsQuery(spec: PipelineAnalytics, input: StepInput): BuiltQuery {
  const p = new Params();
  const table = p.add('Identifier', input.table);
  const lateness = p.add('Int64', input.allowedLatenessMs);
  const before = p.add('Int64', input.watermarkBeforeMs ?? noWatermark);
  const after = p.add('Int64', input.watermarkAfterMs ?? noWatermark);
  return {
    query: `SELECT key_id, keys, toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(toUnixTimestamp64Milli(window_end)) AS we, measures, revision
FROM ${table} FINAL
WHERE pipeline = {pipeline:String} AND aggregation = {aggregation:String} AND is_deleted = 0
  AND toUnixTimestamp64Milli(window_end) - 1 + ${lateness} > ${before} AND toUnixTimestamp64Milli(window_end) - 1 + ${lateness} <= ${after}
ORDER BY window_start, key_id`,
    params: { ...p.values, pipeline: input.pipeline, aggregation: input.aggregation.name },
  };
}

/** Excludes rows recorded in late_events for this aggregation (from `fromMs` on). */
function notLate(p: Params, fromMs: number): string {
  return `(src_topic, src_partition, src_offset) NOT IN (SELECT topic, partition, offset FROM late_events
      WHERE pipeline = {pipeline:String} AND aggregation = {aggregation:String} AND event_time >= fromUnixTimestamp64Milli(greatest(${p.add('Int64', fromMs)}, -2208988800000), 'UTC'))`;
}

function keyFrom(p: Params, keys: string[], from: number[]): string {
  const ks = p.add('Array(String)', keys);
  return `has(${ks}, k) AND t >= arrayElement(${p.add('Array(Int64)', from)}, indexOf(${ks}, k))`;
}

/** Event times of each key from its recomputation start (`from[i]` for `keys[i]`), late rows left out. */
export function sessionTimesQuery(spec: PipelineAnalytics, input: StepInput, keys: string[], from: number[]): BuiltQuery {
  const p = new Params();
  const lo = Math.min(...from);
  const etime = p.add('Identifier', spec.source.eventTimeColumn);
  const where = `${etime} >= fromUnixTimestamp64Milli(greatest(${p.add('Int64', lo)}, -2208988800000), 'UTC')`;
  return {
    query: `SELECT k, any(kmap) AS keys_map, groupArray(toString(t)) AS times FROM (${keyedRows(spec, input.aggregation, p, where)})
WHERE ${keyFrom(p, keys, from)} AND ${notLate(p, lo)} GROUP BY k ORDER BY k`,
    params: { ...p.values, pipeline: input.pipeline, aggregation: input.aggregation.name },
  };
}

/** The sessions to measure, flattened: key, first and last event time, first finalisation (0 = none). */
export interface SessionSpans {
  keys: string[];
  starts: number[];
  lasts: number[];
  finalizedAt: number[];
}

/** One measured session, as {@link sessionMeasuresQuery} returns it (`idx` is 1-based into the spans). */
export interface MeasuredSession {
  idx: number;
  measures: Record<string, number>;
  events: string;
  revision: number;
}

/**
 * Measures of each session in `spans`: every row of its key with `start <= t <= last` (sessions
 * of one key never overlap on their events), late rows left out; `revision` counts landed batches
 * ingested after the session first became final.
 */
export function sessionMeasuresQuery(spec: PipelineAnalytics, input: StepInput, spans: SessionSpans): BuiltQuery {
  const p = new Params();
  const lo = Math.min(...spans.starts);
  const hi = Math.max(...spans.lasts);
  const etime = p.add('Identifier', spec.source.eventTimeColumn);
  const where = `${etime} >= fromUnixTimestamp64Milli(greatest(${p.add('Int64', lo)}, -2208988800000), 'UTC') AND ${etime} <= fromUnixTimestamp64Milli(greatest(${p.add('Int64', hi)}, -2208988800000), 'UTC')`;
  const sk = p.add('Array(String)', spans.keys);
  const ss = p.add('Array(Int64)', spans.starts);
  const sl = p.add('Array(Int64)', spans.lasts);
  const sf = p.add('Array(UInt64)', spans.finalizedAt);
  const a = input.aggregation;
  return {
    query: `SELECT idx, ${measuresMap(spec, a, p)} AS measures, toString(count()) AS events, toUInt32(uniqExactIf(src_batch, f > 0 AND src_ingested > f)) AS revision
FROM (
  SELECT *, arrayFirstIndex((kk, s, l) -> kk = k AND t >= s AND t <= l, ${sk}, ${ss}, ${sl}) AS idx, arrayElement(${sf}, idx) AS f
  FROM (${keyedRows(spec, a, p, where)})
  WHERE has(${sk}, k) AND ${notLate(p, lo)}
)
WHERE idx > 0
GROUP BY idx ORDER BY idx`,
    params: { ...p.values, pipeline: input.pipeline, aggregation: a.name },
  };
}
