/**
 * Detector rules declared per pipeline, and their evaluation: a pure state machine per series
 * (one series = one detector on one group key), fed one FINAL window at a time (never a
 * provisional one), so the same code runs in the aggregator workflow (state in workflow state,
 * carried across continue-as-new) and in the backtest CLI (over stored aggregates).
 *
 * Every method produces a finite score; risk levels map the score to info / warning / critical /
 * page, which are the alert severities. Firing, upgrade and resolution follow Prometheus'
 * alerting rules: a condition must hold `for` consecutive windows before the alert fires (pending
 * until then), a higher level reached later upgrades the open incident, and the incident resolves
 * when the score stays below the clear threshold for `clear.windows` consecutive windows (a
 * separate, lower threshold: hysteresis, so a value hovering at the firing threshold does not flap).
 * Levels never go down while open: a falling score is reported, not re-notified.
 */
import { z } from 'zod';
import { durationSchema } from '../alerting/alert-policy.js';
import { boundedScore, ewmaUpdate, madNormalConsistency, median, mad, type EwmaState } from './statistics.js';

/** Risk levels, lowest first; their names are the alert severities. */
export const riskLevels = ['info', 'warning', 'critical', 'page'] as const;
/** One risk level. */
export type RiskLevel = (typeof riskLevels)[number];

const identifier = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'expected a lowercase identifier ([a-z][a-z0-9_]*)');
const positiveInt = z.number().int().positive();

/** Score thresholds per level (any subset, ascending with the level). */
export const levelsSchema = z
  .object({ info: z.number().finite(), warning: z.number().finite(), critical: z.number().finite(), page: z.number().finite() })
  .partial()
  .strict()
  .refine((l) => riskLevels.some((k) => l[k] !== undefined), 'expected at least one of info, warning, critical, page')
  .refine((l) => {
    const defined = riskLevels.map((k) => l[k]).filter((v): v is number => v !== undefined);
    return defined.every((v, i) => i === 0 || v >= defined[i - 1]!);
  }, 'expected thresholds that do not decrease from info to page');

/** The method of a detector, with its documented parameters. */
export const methodSchema = z.discriminatedUnion('kind', [
  z.object({
    /** Score = the measure itself. */
    kind: z.literal('threshold'),
  }).strict(),
  z.object({
    /** Score = relative change from the previous final window, (x - prev) / max(|prev|, floor). */
    kind: z.literal('rate_of_change'),
    /** Smallest denominator, so a change from 0 stays finite. @default 1 */
    floor: z.number().positive().default(1),
  }).strict(),
  z.object({
    /** Score = (x - ewma mean) / ewma std, baseline updated AFTER judging (Finch 2009). */
    kind: z.literal('ewma'),
    /** Smoothing factor in (0, 1]. @default 0.3 */
    alpha: z.number().gt(0).lte(1).default(0.3),
    /** Windows needed in the baseline before the detector may fire. @default 10 */
    minHistory: positiveInt.default(10),
  }).strict(),
  z.object({
    /** Score = (x - median) / (1.4826 · MAD) over the last `history` final windows (robust z, Iglewicz & Hoaglin 1993). */
    kind: z.literal('mad'),
    /** Windows in the rolling baseline. @default 30 */
    history: positiveInt.default(30),
    /** Windows needed before it may fire. @default 10 */
    minHistory: positiveInt.default(10),
  }).strict(),
  z.object({
    /**
     * Score = (x - x[one period ago]) / (1.4826 · MAD of the past seasonal differences). Compares
     * a window with the same window one declared period earlier (seasonal naive baseline).
     */
    kind: z.literal('seasonal'),
    /** The season, e.g. `1d` (a multiple of the window size). */
    period: durationSchema,
    /** Seasonal differences needed before it may fire. @default 5 */
    minHistory: positiveInt.default(5),
  }).strict(),
  z.object({
    /** Dead man's switch: fires when a series has had no data for `after` (processing time). Score = silent seconds. */
    kind: z.literal('absence'),
    after: durationSchema,
  }).strict(),
]);
/** A detector method (parsed). */
export type DetectorMethod = z.infer<typeof methodSchema>;

/** One detector rule as declared (see {@link detectorSchema}). */
export const detectorSchema = z
  .object({
    /** Rule name: the alert's detector name and part of its fingerprint. */
    name: identifier,
    /** Aggregation whose final windows it judges. */
    aggregation: identifier,
    /** Measure judged; `ratio` divides two measures (0 when the denominator is 0). */
    measure: identifier,
    ratioOf: identifier.optional(),
    method: methodSchema,
    /** Which direction is anomalous for statistical scores. @default 'up' */
    direction: z.enum(['up', 'down', 'both']).default('up'),
    /** Score thresholds of the risk levels. */
    levels: levelsSchema,
    /** Consecutive final windows at or above the lowest level before firing (Prometheus `for`). @default 1 */
    for: positiveInt.default(1),
    /** Clear condition: the score below `below` for `windows` consecutive final windows resolves the incident. */
    clear: z.object({ below: z.number().finite(), windows: positiveInt.default(1) }).strict(),
    /** Skip windows whose `minCountMeasure` is below `minCount` (too little data to judge). */
    minCount: z.number().nonnegative().default(0),
    minCountMeasure: identifier.optional(),
    /** Largest |score| stored (flat baselines give ±cap). @default 1000 */
    cap: z.number().positive().default(1000),
    /** Final windows shipped with each firing as context. @default 10 */
    contextWindows: positiveInt.max(100).default(10),
  })
  .strict()
  .refine((d) => d.clear.below <= lowestThreshold(d.levels), { message: 'expected clear.below at or under the lowest level threshold (hysteresis)', path: ['clear', 'below'] });
/** A detector rule (parsed). */
export type Detector = z.infer<typeof detectorSchema>;
/** A detector rule as written in the declarations file. */
export type DetectorInput = z.input<typeof detectorSchema>;

function lowestThreshold(levels: Partial<Record<RiskLevel, number>>): number {
  for (const k of riskLevels) if (levels[k] !== undefined) return levels[k];
  return Number.POSITIVE_INFINITY;
}

/** The highest level whose threshold the score reaches, or null. */
export function levelOf(score: number, levels: Partial<Record<RiskLevel, number>>): RiskLevel | null {
  let found: RiskLevel | null = null;
  for (const k of riskLevels) {
    const t = levels[k];
    if (t !== undefined && score >= t) found = k;
  }
  return found;
}

/** Rank of a level (info 0 … page 3), -1 for none. */
export function levelRank(level: RiskLevel | null): number {
  return level === null ? -1 : riskLevels.indexOf(level);
}

/** One final window of a series. */
export interface SeriesPoint {
  startMs: number;
  endMs: number;
  value: number;
  /** Value of `minCountMeasure` (defaults to the value). */
  count?: number;
}

/** Per-series detector state (serialisable: numbers and arrays only, never infinities). */
export interface SeriesState {
  /** Recent final windows, oldest first (bounded). */
  recent: SeriesPoint[];
  ewma: EwmaState | null;
  /** Consecutive windows at or above the lowest level (the `for` counter). */
  pending: number;
  /** Consecutive windows below the clear threshold while open. */
  clearing: number;
  /** Level of the open incident, null when none is open. */
  open: RiskLevel | null;
  /** Last final window judged (ms end), to ignore repeats. */
  lastEndMs: number | null;
}

/** A fresh series state. */
export function emptySeriesState(): SeriesState {
  return { recent: [], ewma: null, pending: 0, clearing: 0, open: null, lastEndMs: null };
}

/** What happened when a window was judged. */
export type Transition = 'none' | 'pending' | 'fire' | 'upgrade' | 'resolve' | 'skipped' | 'warming_up';

/** Outcome of {@link judgeWindow}. */
export interface Judgement {
  state: SeriesState;
  transition: Transition;
  score: number;
  level: RiskLevel | null;
  /** The baseline the window was compared with (center and spread), null for threshold. */
  baseline: { center: number; spread: number; size: number } | null;
}

function keepRecent(d: Detector): number {
  if (d.method.kind === 'mad') return Math.max(d.method.history, d.contextWindows) + 1;
  if (d.method.kind === 'seasonal') return 0; // computed from the period by the caller through windowSizeMs
  return d.contextWindows + 1;
}

function directional(score: number, direction: Detector['direction']): number {
  if (direction === 'up') return score;
  if (direction === 'down') return -score;
  return Math.abs(score);
}

/**
 * Judges one final window of a series and returns the new state and the transition. The
 * baseline is computed from the state BEFORE the window (it never includes the judged window),
 * then the window is folded in. `windowSizeMs` sizes the seasonal history. Pure.
 */
export function judgeWindow(d: Detector, prev: SeriesState, point: SeriesPoint, windowSizeMs: number): Judgement {
  if (prev.lastEndMs !== null && point.endMs <= prev.lastEndMs) {
    return { state: prev, transition: 'none', score: 0, level: prev.open, baseline: null };
  }
  const history = prev.recent.map((p) => p.value);
  let raw = 0;
  let baseline: Judgement['baseline'] = null;
  let warm = true;
  const m = d.method;
  switch (m.kind) {
    case 'threshold':
    case 'absence':
      raw = point.value;
      break;
    case 'rate_of_change': {
      const last = prev.recent[prev.recent.length - 1];
      if (!last) warm = false;
      else {
        baseline = { center: last.value, spread: Math.max(Math.abs(last.value), m.floor), size: 1 };
        raw = boundedScore(point.value, last.value, baseline.spread, d.cap);
      }
      break;
    }
    case 'ewma': {
      const e = prev.ewma;
      warm = e !== null && e.n >= m.minHistory;
      if (e) {
        baseline = { center: e.mean, spread: Math.sqrt(e.variance), size: e.n };
        raw = boundedScore(point.value, e.mean, baseline.spread, d.cap);
      }
      break;
    }
    case 'mad': {
      const window = history.slice(-m.history);
      warm = window.length >= m.minHistory;
      if (window.length > 0) {
        const center = median(window);
        baseline = { center, spread: madNormalConsistency * mad(window), size: window.length };
        raw = boundedScore(point.value, center, baseline.spread, d.cap);
      }
      break;
    }
    case 'seasonal': {
      const lag = Math.round(m.period / windowSizeMs);
      const byStart = new Map(prev.recent.map((p) => [p.startMs, p.value]));
      const ago = byStart.get(point.startMs - m.period);
      const diffs: number[] = [];
      for (const p of prev.recent) {
        const before = byStart.get(p.startMs - m.period);
        if (before !== undefined) diffs.push(p.value - before);
      }
      warm = ago !== undefined && diffs.length >= m.minHistory && lag >= 1;
      if (ago !== undefined) {
        baseline = { center: ago, spread: madNormalConsistency * (diffs.length > 0 ? mad(diffs) : 0), size: diffs.length };
        // The residual is judged against the spread of earlier residuals centered on their median.
        const residualCenter = diffs.length > 0 ? median(diffs) : 0;
        raw = boundedScore(point.value - ago, residualCenter, baseline.spread, d.cap);
      }
      break;
    }
  }
  const score = m.kind === 'threshold' || m.kind === 'absence' ? raw : directional(raw, d.direction);
  const finiteScore = Number.isFinite(score) ? Math.max(-d.cap, Math.min(d.cap, score)) : 0;

  // Fold the window into the baseline AFTER judging it.
  const keep = m.kind === 'seasonal' ? Math.round(m.period / windowSizeMs) + m.minHistory + d.contextWindows + 1 : keepRecent(d);
  const recent = [...prev.recent, point].slice(-Math.max(keep, d.contextWindows + 1));
  const state: SeriesState = {
    ...prev,
    recent,
    ewma: m.kind === 'ewma' ? ewmaUpdate(prev.ewma, point.value, m.alpha) : prev.ewma,
    lastEndMs: point.endMs,
  };

  if (d.minCount > 0 && (point.count ?? point.value) < d.minCount) {
    return { state, transition: 'skipped', score: 0, level: prev.open, baseline };
  }
  if (!warm) return { state: { ...state, pending: 0 }, transition: 'warming_up', score: finiteScore, level: prev.open, baseline };

  const level = levelOf(finiteScore, d.levels);
  if (prev.open === null) {
    if (level === null) return { state: { ...state, pending: 0, clearing: 0 }, transition: 'none', score: finiteScore, level: null, baseline };
    const pending = prev.pending + 1;
    if (pending < d.for) return { state: { ...state, pending }, transition: 'pending', score: finiteScore, level: null, baseline };
    return { state: { ...state, pending, clearing: 0, open: level }, transition: 'fire', score: finiteScore, level, baseline };
  }
  // An incident is open.
  if (finiteScore < d.clear.below) {
    const clearing = prev.clearing + 1;
    if (clearing >= d.clear.windows) return { state: { ...state, clearing: 0, pending: 0, open: null }, transition: 'resolve', score: finiteScore, level: null, baseline };
    return { state: { ...state, clearing }, transition: 'none', score: finiteScore, level: prev.open, baseline };
  }
  if (levelRank(level) > levelRank(prev.open)) {
    return { state: { ...state, clearing: 0, open: level }, transition: 'upgrade', score: finiteScore, level, baseline };
  }
  return { state: { ...state, clearing: 0 }, transition: 'none', score: finiteScore, level: prev.open, baseline };
}

/**
 * Absence on processing time: judges a series whose last data arrived at `lastSeenMs`, at
 * processing time `nowMs`. Score = silent seconds; fires/upgrades/resolves like a window judgement
 * (`for` is not applied: the declared `after` is the hold time).
 */
export function judgeAbsence(d: Detector, prev: SeriesState, lastSeenMs: number, nowMs: number): Judgement {
  if (d.method.kind !== 'absence') throw new TypeError(`judgeAbsence: detector ${d.name} is ${d.method.kind}, not absence`);
  const silentMs = Math.max(0, nowMs - lastSeenMs);
  const score = silentMs >= d.method.after ? Math.min(d.cap, silentMs / 1000) : 0;
  const level = silentMs >= d.method.after ? (levelOf(score, d.levels) ?? lowestLevel(d)) : null;
  if (prev.open === null) {
    if (level === null) return { state: prev, transition: 'none', score, level: null, baseline: null };
    return { state: { ...prev, open: level }, transition: 'fire', score, level, baseline: null };
  }
  if (level === null) return { state: { ...prev, open: null, clearing: 0 }, transition: 'resolve', score, level: null, baseline: null };
  if (levelRank(level) > levelRank(prev.open)) return { state: { ...prev, open: level }, transition: 'upgrade', score, level, baseline: null };
  return { state: prev, transition: 'none', score, level: prev.open, baseline: null };
}

function lowestLevel(d: Detector): RiskLevel {
  return riskLevels.find((k) => d.levels[k] !== undefined) ?? 'warning';
}
