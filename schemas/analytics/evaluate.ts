/**
 * Runs a pipeline's window detectors over final windows, in window order: the shared core of the
 * aggregator workflow (live) and the backtest (stored aggregates). Pure and deterministic.
 */
import type { PipelineAnalytics } from './declarations.js';
import { windowStepMs } from './declarations.js';
import { emptySeriesState, judgeAbsence, judgeWindow, type Detector, type RiskLevel, type SeriesState, type Transition } from './detectors.js';

/** A final window as read from an aggregation table. */
export interface WindowRow {
  key: string;
  keys: Record<string, string>;
  startMs: number;
  endMs: number;
  measures: Record<string, number>;
}

/** Detector state of a pipeline: per detector, per series key. */
export type DetectorStates = Record<string, Record<string, SeriesState>>;

/** One transition worth telling alerting (or printing in a backtest). */
export interface DetectorTransition {
  detector: string;
  transition: Extract<Transition, 'fire' | 'upgrade' | 'resolve'>;
  key: string;
  keys: Record<string, string>;
  level: RiskLevel | null;
  score: number;
  value: number;
  baseline: { center: number; spread: number; size: number } | null;
  windowStartMs: number;
  windowEndMs: number;
  recent: { startMs: number; endMs: number; value: number }[];
}

/** The judged value of a window: the measure, or measure / ratioOf (0 when the denominator is 0). */
export function detectorValue(d: Detector, measures: Record<string, number>): number {
  const v = measures[d.measure] ?? 0;
  if (!d.ratioOf) return Number.isFinite(v) ? v : 0;
  const den = measures[d.ratioOf] ?? 0;
  return den === 0 || !Number.isFinite(v) ? 0 : v / den;
}

/**
 * Feeds final windows of one aggregation to every window detector on it. Windows must be in
 * start order per key; a window already judged (end <= last judged end) is skipped.
 */
export function evaluateWindows(spec: PipelineAnalytics, aggregation: string, rows: readonly WindowRow[], states: DetectorStates): { states: DetectorStates; transitions: DetectorTransition[] } {
  const agg = spec.aggregations.find((a) => a.name === aggregation);
  if (!agg) return { states, transitions: [] };
  const step = windowStepMs(agg.window);
  const next: DetectorStates = { ...states };
  const transitions: DetectorTransition[] = [];
  const sorted = [...rows].sort((a, b) => a.startMs - b.startMs || a.key.localeCompare(b.key));
  for (const d of spec.detectors) {
    if (d.aggregation !== aggregation || d.method.kind === 'absence') continue;
    const perKey = { ...(next[d.name] ?? {}) };
    for (const row of sorted) {
      const prev = perKey[row.key] ?? emptySeriesState();
      const value = detectorValue(d, row.measures);
      const count = d.minCountMeasure ? (row.measures[d.minCountMeasure] ?? 0) : value;
      const j = judgeWindow(d, prev, { startMs: row.startMs, endMs: row.endMs, value, count }, step);
      perKey[row.key] = j.state;
      if (j.transition === 'fire' || j.transition === 'upgrade' || j.transition === 'resolve') {
        transitions.push({
          detector: d.name,
          transition: j.transition,
          key: row.key,
          keys: row.keys,
          level: j.level,
          score: j.score,
          value,
          baseline: j.baseline,
          windowStartMs: row.startMs,
          windowEndMs: row.endMs,
          recent: j.state.recent.slice(-d.contextWindows).map((p) => ({ startMs: p.startMs, endMs: p.endMs, value: p.value })),
        });
      }
    }
    next[d.name] = perKey;
  }
  return { states: next, transitions };
}

/**
 * Absence detectors at processing time `nowMs`: a key of the detector's aggregation whose last
 * data arrived (processing time, `lastSeen[key]`) longer ago than the declared `after` fires.
 */
export function evaluateAbsence(spec: PipelineAnalytics, lastSeen: Record<string, Record<string, { atMs: number; keys: Record<string, string> }>>, states: DetectorStates, nowMs: number): { states: DetectorStates; transitions: DetectorTransition[] } {
  const next: DetectorStates = { ...states };
  const transitions: DetectorTransition[] = [];
  for (const d of spec.detectors) {
    if (d.method.kind !== 'absence') continue;
    const perKey = { ...(next[d.name] ?? {}) };
    for (const [key, seen] of Object.entries(lastSeen[d.aggregation] ?? {})) {
      const j = judgeAbsence(d, perKey[key] ?? emptySeriesState(), seen.atMs, nowMs);
      perKey[key] = j.state;
      if (j.transition === 'fire' || j.transition === 'upgrade' || j.transition === 'resolve') {
        transitions.push({ detector: d.name, transition: j.transition, key, keys: seen.keys, level: j.level, score: j.score, value: j.score, baseline: null, windowStartMs: seen.atMs, windowEndMs: nowMs, recent: [] });
      }
    }
    next[d.name] = perKey;
  }
  return { states: next, transitions };
}
