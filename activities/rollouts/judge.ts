/**
 * The canary judge: per metric a verdict (pass, fail, inconclusive) from a two-sample test of the
 * canary against the baseline over the same window, then an aggregate outcome from weights,
 * criticality and a score with marginal and pass thresholds.
 *
 * The shape is Kayenta's (NetflixACAJudge: Mann–Whitney at 98 % confidence with a Hodges–Lehmann
 * effect, metric weights and criticality, score thresholds). The rules differ where Kayenta is known
 * to pass bad canaries:
 * - rates and counts use Fisher's exact test on pooled hits/events, not a rank test on per-batch
 *   values: a metric that is mostly zero has a Hodges–Lehmann shift of 0 even when the canary adds
 *   failures;
 * - missing data (fewer than the minimum observations, or NaN values) is `inconclusive`, never a
 *   pass and never zero, and an inconclusive metric keeps the aggregate from passing;
 * - a significant change fails only when the estimated effect also exceeds the tolerance in the
 *   harmful direction, so a tiny but significant shift on a huge sample does not block a release.
 */
import { fisherExact, hodgesLehmann, mannWhitneyU, median } from './statistics.js';
import type { AnalysisConfig, MetricConfig } from '../../schemas/rollouts/rollout.js';
import type { JudgementOutcome } from '../../schemas/rollouts/rollout-state.js';

/** What one side (baseline or canary) contributed to one metric over the window. */
export interface SideSample {
  /** Values of a continuous metric (NaN kept: it makes the metric inconclusive). */
  values: number[];
  /** Events seen (proportions: the denominator). */
  events: number;
  /** Events that hit (proportions: rejects, errors, firings). */
  hits: number;
}

/** Samples of one metric. */
export interface MetricSamples {
  baseline: SideSample;
  canary: SideSample;
}

/** Verdict of one metric. */
export type MetricVerdict = 'pass' | 'fail' | 'inconclusive';

/** The judge's report on one metric (one row of `canary_judgements`). */
export interface MetricReport {
  metric: string;
  kind: MetricConfig['kind'];
  direction: MetricConfig['direction'];
  weight: number;
  critical: boolean;
  /** `mann-whitney-exact`, `mann-whitney-asymptotic`, `fisher-exact`, or `none` (not tested). */
  test: 'mann-whitney-exact' | 'mann-whitney-asymptotic' | 'fisher-exact' | 'none';
  baselineN: number;
  canaryN: number;
  baselineHits: number;
  canaryHits: number;
  baselineNaN: number;
  canaryNaN: number;
  /** Median (continuous) or rate (proportion); NaN when missing. */
  baselineCenter: number;
  canaryCenter: number;
  /** U of the canary sample (continuous) or the odds ratio canary/baseline (proportion); NaN when not tested. */
  statistic: number;
  pValue: number;
  /** Hodges–Lehmann shift canary - baseline (continuous) or rate difference canary - baseline (proportion). */
  effect: number;
  /** Tolerance that applied, in the effect's unit. */
  tolerance: number;
  verdict: MetricVerdict;
  /** The verdict in words. */
  reason: string;
}

/** A whole judgement. */
export interface JudgementReport {
  outcome: JudgementOutcome;
  /** 100 x weighted share of passing metrics among the conclusive ones (0 when none is conclusive). */
  score: number;
  /** Why the outcome, in words. */
  reason: string;
  metrics: MetricReport[];
}

const harmful = (direction: MetricConfig['direction'], effect: number, tolerance: number): boolean =>
  direction === 'increase' ? effect > tolerance : direction === 'decrease' ? effect < -tolerance : Math.abs(effect) > tolerance;

function fmt(v: number): string {
  return Number.isFinite(v) ? Number(v.toPrecision(4)).toString() : String(v);
}

/** Judges one metric. */
export function judgeMetric(metric: MetricConfig, samples: MetricSamples, analysis: AnalysisConfig): MetricReport {
  const alpha = 1 - analysis.confidence;
  const min = metric.minSamples ?? analysis.minSamples;
  const b = samples.baseline;
  const c = samples.canary;
  const base: MetricReport = {
    metric: metric.name,
    kind: metric.kind,
    direction: metric.direction,
    weight: metric.weight,
    critical: metric.critical,
    test: 'none',
    baselineN: metric.kind === 'continuous' ? b.values.length : b.events,
    canaryN: metric.kind === 'continuous' ? c.values.length : c.events,
    baselineHits: b.hits,
    canaryHits: c.hits,
    baselineNaN: b.values.filter(Number.isNaN).length,
    canaryNaN: c.values.filter(Number.isNaN).length,
    baselineCenter: Number.NaN,
    canaryCenter: Number.NaN,
    statistic: Number.NaN,
    pValue: Number.NaN,
    effect: Number.NaN,
    tolerance: metric.tolerance,
    verdict: 'inconclusive',
    reason: '',
  };
  if (base.baselineN < min || base.canaryN < min) {
    return { ...base, reason: `too few samples: baseline ${base.baselineN}, canary ${base.canaryN}, minimum ${min} per side` };
  }
  if (metric.kind === 'proportion') {
    if (b.hits > b.events || c.hits > c.events) {
      return { ...base, reason: `hits exceed events (baseline ${b.hits}/${b.events}, canary ${c.hits}/${c.events}): observations are corrupt` };
    }
    const bRate = b.hits / b.events;
    const cRate = c.hits / c.events;
    // Table rows: canary, baseline; so the odds ratio reads "canary vs baseline".
    const fisher = fisherExact([[c.hits, c.events - c.hits], [b.hits, b.events - b.hits]]);
    const effect = cRate - bRate;
    const tolerance = Math.max(metric.tolerance, metric.relativeTolerance * bRate);
    const significant = fisher.pValue < alpha;
    const bad = significant && harmful(metric.direction, effect, tolerance);
    return {
      ...base,
      test: 'fisher-exact',
      baselineCenter: bRate,
      canaryCenter: cRate,
      statistic: fisher.oddsRatio,
      pValue: fisher.pValue,
      effect,
      tolerance,
      verdict: bad ? 'fail' : 'pass',
      reason: bad
        ? `rate ${fmt(cRate)} vs ${fmt(bRate)} (${c.hits}/${c.events} vs ${b.hits}/${b.events}): difference ${fmt(effect)} beyond tolerance ${fmt(tolerance)}, p=${fmt(fisher.pValue)} < ${fmt(alpha)}`
        : significant
          ? `rate ${fmt(cRate)} vs ${fmt(bRate)}: significant (p=${fmt(fisher.pValue)}) but within tolerance ${fmt(tolerance)} or not in the harmful direction`
          : `rate ${fmt(cRate)} vs ${fmt(bRate)}: no significant difference (p=${fmt(fisher.pValue)} >= ${fmt(alpha)})`,
    };
  }
  if (base.baselineNaN > 0 || base.canaryNaN > 0) {
    return { ...base, reason: `missing values: ${base.baselineNaN} NaN in baseline, ${base.canaryNaN} NaN in canary` };
  }
  // Canary first, so U counts pairs where the canary is larger.
  const mw = mannWhitneyU(c.values, b.values);
  const hl = hodgesLehmann(b.values, c.values);
  const bMedian = median(b.values);
  const tolerance = Math.max(metric.tolerance, metric.relativeTolerance * Math.abs(bMedian));
  const significant = mw.pValue < alpha;
  const bad = significant && harmful(metric.direction, hl.shift, tolerance);
  return {
    ...base,
    test: mw.method === 'exact' ? 'mann-whitney-exact' : 'mann-whitney-asymptotic',
    baselineCenter: bMedian,
    canaryCenter: median(c.values),
    statistic: mw.u,
    pValue: mw.pValue,
    effect: hl.shift,
    tolerance,
    verdict: bad ? 'fail' : 'pass',
    reason: bad
      ? `shift ${fmt(hl.shift)} (Hodges–Lehmann${hl.method === 'thinned' ? ', thinned' : ''}) beyond tolerance ${fmt(tolerance)}, p=${fmt(mw.pValue)} < ${fmt(alpha)} (${mw.method})`
      : significant
        ? `shift ${fmt(hl.shift)}: significant (p=${fmt(mw.pValue)}) but within tolerance ${fmt(tolerance)} or not in the harmful direction`
        : `shift ${fmt(hl.shift)}: no significant difference (p=${fmt(mw.pValue)} >= ${fmt(alpha)}, ${mw.method})`,
  };
}

const emptySide: SideSample = { values: [], events: 0, hits: 0 };

/**
 * Judges every configured metric and aggregates, in this order:
 * 1. a critical metric that fails -> `fail`;
 * 2. a critical metric that is inconclusive -> `inconclusive`;
 * 3. no conclusive metric -> `inconclusive`;
 * 4. score = 100 x (weight of passing metrics) / (weight of conclusive metrics);
 *    below `marginalScore` -> `fail`;
 * 5. any metric inconclusive -> `inconclusive` (missing data never passes);
 * 6. score >= `passScore` -> `pass`, else `marginal`.
 * Metrics with no samples at all are judged on empty samples (inconclusive).
 */
export function judge(analysis: AnalysisConfig, samples: ReadonlyMap<string, MetricSamples>): JudgementReport {
  const metrics = analysis.metrics.map((m) => judgeMetric(m, samples.get(m.name) ?? { baseline: emptySide, canary: emptySide }, analysis));
  const names = (vs: MetricReport[]) => vs.map((m) => m.metric).join(', ');
  const criticalFail = metrics.filter((m) => m.critical && m.verdict === 'fail');
  const inconclusive = metrics.filter((m) => m.verdict === 'inconclusive');
  const conclusive = metrics.filter((m) => m.verdict !== 'inconclusive');
  const conclusiveWeight = conclusive.reduce((s, m) => s + m.weight, 0);
  const passWeight = conclusive.filter((m) => m.verdict === 'pass').reduce((s, m) => s + m.weight, 0);
  const score = conclusiveWeight > 0 ? (100 * passWeight) / conclusiveWeight : 0;
  const failed = metrics.filter((m) => m.verdict === 'fail');
  if (criticalFail.length > 0) return { outcome: 'fail', score, reason: `critical metric failed: ${names(criticalFail)}`, metrics };
  const criticalInconclusive = inconclusive.filter((m) => m.critical);
  if (criticalInconclusive.length > 0) return { outcome: 'inconclusive', score, reason: `critical metric inconclusive: ${names(criticalInconclusive)}`, metrics };
  if (conclusive.length === 0) return { outcome: 'inconclusive', score, reason: 'no metric had enough data', metrics };
  if (score < analysis.marginalScore) {
    return { outcome: 'fail', score, reason: `score ${fmt(score)} < marginal ${analysis.marginalScore} (failed: ${names(failed)})`, metrics };
  }
  if (inconclusive.length > 0) return { outcome: 'inconclusive', score, reason: `score ${fmt(score)} but inconclusive: ${names(inconclusive)}`, metrics };
  if (score >= analysis.passScore) return { outcome: 'pass', score, reason: `score ${fmt(score)} >= pass ${analysis.passScore}`, metrics };
  return { outcome: 'marginal', score, reason: `score ${fmt(score)} in [${analysis.marginalScore}, ${analysis.passScore}) (failed: ${names(failed)})`, metrics };
}
