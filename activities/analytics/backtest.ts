/**
 * Backtest: runs one declared detector over stored final windows, with the same pure evaluation
 * as the live aggregator (schemas/analytics/evaluate.ts), and notifies nobody. Windows before
 * `fromMs` warm the baseline up (judged silently), so a rule with a minimum history behaves at
 * `fromMs` as it would have live. Answers "would this rule have paged us last week?".
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { aggregationTable, windowStepMs, type AnalyticsFile } from '../../schemas/analytics/declarations.js';
import { evaluateWindows, type DetectorStates, type DetectorTransition, type WindowRow } from '../../schemas/analytics/evaluate.js';
import { PlatformError } from '../../schemas/errors.js';

/** Input of {@link backtest}. */
export interface BacktestInput {
  pipeline: string;
  /** Detector (rule) name. */
  rule: string;
  /** Judged window starts in `[fromMs, toMs)`. */
  fromMs: number;
  toMs: number;
}

/** What {@link backtest} found. */
export interface BacktestResult {
  pipeline: string;
  rule: string;
  method: string;
  from: string;
  to: string;
  /** Windows judged in the range (all keys), and warm-up windows before it. */
  windows: number;
  warmupWindows: number;
  keys: number;
  transitions: (Omit<DetectorTransition, 'recent' | 'keys'> & { windowStart: string; windowEnd: string })[];
  counts: { fired: number; upgraded: number; resolved: number; openAtEnd: number };
  /** Highest level reached, null when it never fired. */
  maxLevel: string | null;
}

/** A rule that cannot be backtested (unknown, or an absence rule, which runs on processing time). */
export class BacktestError extends PlatformError {
  constructor(message: string) {
    super('backtest', message, false);
    this.name = 'BacktestError';
  }
}

/** Runs the backtest. @throws BacktestError for an unknown pipeline or rule, or an absence rule. */
export async function backtest(warehouse: ClickHouseClient, analytics: AnalyticsFile, input: BacktestInput): Promise<BacktestResult> {
  const spec = analytics.pipelines.find((p) => p.pipeline === input.pipeline);
  if (!spec) throw new BacktestError(`--pipeline: no analytics declared for "${input.pipeline}" (declared: ${analytics.pipelines.map((p) => p.pipeline).join(', ') || 'none'})`);
  const d = spec.detectors.find((x) => x.name === input.rule);
  if (!d) throw new BacktestError(`--rule: pipeline ${spec.pipeline} has no rule "${input.rule}" (rules: ${spec.detectors.map((x) => x.name).join(', ') || 'none'})`);
  if (d.method.kind === 'absence') throw new BacktestError(`--rule: ${d.name} is an absence rule; it judges processing time, which stored aggregates do not record`);
  if (!(input.toMs > input.fromMs)) throw new BacktestError('--to: expected a time after --from');
  const agg = spec.aggregations.find((a) => a.name === d.aggregation)!;
  const step = windowStepMs(agg.window);
  const needed = d.method.kind === 'mad' ? d.method.history : d.method.kind === 'ewma' ? d.method.minHistory * 3 : d.method.kind === 'seasonal' ? d.method.period / step + d.method.minHistory + 1 : 1;
  const warmFrom = input.fromMs - Math.ceil(needed + d.for) * step;
  const rows = await (await warehouse.query({
    query: `SELECT key_id, keys, toUnixTimestamp64Milli(window_start) AS ws, toUnixTimestamp64Milli(window_end) AS we, measures
            FROM {table:Identifier} FINAL
            WHERE pipeline = {p:String} AND aggregation = {a:String} AND final = 1
              AND window_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND window_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
            ORDER BY window_start, key_id`,
    query_params: { table: aggregationTable(spec.pipeline, agg), p: spec.pipeline, a: agg.name, from: warmFrom, to: input.toMs },
    format: 'JSONEachRow',
  })).json<{ key_id: string; keys: Record<string, string>; ws: string; we: string; measures: Record<string, number> }>();
  const windows: WindowRow[] = rows.map((r) => ({ key: r.key_id, keys: r.keys, startMs: Number(r.ws), endMs: Number(r.we), measures: Object.fromEntries(Object.entries(r.measures).map(([k, v]) => [k, Number(v)])) }));
  const only = { ...spec, detectors: [d] };
  const warm = windows.filter((w) => w.startMs < input.fromMs);
  const judged = windows.filter((w) => w.startMs >= input.fromMs);
  let states: DetectorStates = evaluateWindows(only, agg.name, warm, {}).states;
  // A warm-up that ended with an open incident starts the range open, as it would have been live.
  const result = evaluateWindows(only, agg.name, judged, states);
  states = result.states;
  const iso = (ms: number) => new Date(ms).toISOString();
  const transitions = result.transitions.map((t) => ({ detector: t.detector, transition: t.transition, key: t.key, level: t.level, score: t.score, value: t.value, baseline: t.baseline, windowStartMs: t.windowStartMs, windowEndMs: t.windowEndMs, windowStart: iso(t.windowStartMs), windowEnd: iso(t.windowEndMs) }));
  const rank = ['info', 'warning', 'critical', 'page'];
  const levels = transitions.map((t) => t.level).filter((l): l is NonNullable<typeof l> => l !== null);
  return {
    pipeline: spec.pipeline,
    rule: d.name,
    method: d.method.kind,
    from: iso(input.fromMs),
    to: iso(input.toMs),
    windows: judged.length,
    warmupWindows: warm.length,
    keys: new Set(judged.map((w) => w.key)).size,
    transitions,
    counts: {
      fired: transitions.filter((t) => t.transition === 'fire').length,
      upgraded: transitions.filter((t) => t.transition === 'upgrade').length,
      resolved: transitions.filter((t) => t.transition === 'resolve').length,
      openAtEnd: Object.values(states[d.name] ?? {}).filter((s) => s.open !== null).length,
    },
    maxLevel: levels.length === 0 ? null : levels.reduce((a, b) => (rank.indexOf(b) > rank.indexOf(a) ? b : a)),
  };
}
