/**
 * The judge's decisions on real statistics: rates through Fisher (a mostly-zero failure metric is
 * caught although its Hodges–Lehmann shift is 0), distributions through Mann–Whitney with the
 * Hodges–Lehmann effect against a tolerance, missing/NaN data inconclusive, criticality and
 * score thresholds.
 */
import { describe, expect, it } from 'vitest';
import { judge, type MetricSamples, type SideSample } from '../../activities/rollouts/judge.js';
import { hodgesLehmann } from '../../activities/rollouts/statistics.js';
import { analysisSchema } from '../../schemas/rollouts/rollout.js';

/** Deterministic pseudo-random numbers (mulberry32) so the cases are fixed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const normal = (r: () => number, mean: number, sd: number) => mean + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
const series = (seed: number, n: number, mean: number, sd: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => normal(r, mean, sd));
};
const values = (v: number[]): SideSample => ({ values: v, events: v.length, hits: 0 });
const rate = (hits: number, events: number): SideSample => ({ values: [], events, hits });

const analysis = analysisSchema.parse({
  minSamples: 20,
  metrics: [
    { name: 'reject_rate', kind: 'proportion', critical: true, tolerance: 0.001 },
    { name: 'processing_time_ms', kind: 'continuous', direction: 'increase', relativeTolerance: 0.25 },
    { name: 'field:amount', kind: 'continuous', tolerance: 0.5 },
  ],
});
function samples(entries: Record<string, MetricSamples>): Map<string, MetricSamples> {
  return new Map(Object.entries(entries));
}
const good = () => ({
  reject_rate: { baseline: rate(10, 5000), canary: rate(12, 5000) },
  processing_time_ms: { baseline: values(series(1, 300, 4, 1)), canary: values(series(2, 300, 4, 1)) },
  'field:amount': { baseline: values(series(3, 400, 100, 5)), canary: values(series(4, 400, 100, 5)) },
});

describe('judge', () => {
  it('passes a canary equal to the baseline', () => {
    const report = judge(analysis, samples(good()));
    expect(report.metrics.map((m) => m.verdict)).toEqual(['pass', 'pass', 'pass']);
    expect(report).toMatchObject({ outcome: 'pass', score: 100 });
  });

  it('fails on a mostly-zero failure rate that the rank shift cannot see', () => {
    // Per-batch reject counts: almost all zero on both sides; the canary adds failures.
    const baselinePerBatch: number[] = Array.from({ length: 100 }, (_, i) => (i % 50 === 0 ? 1 : 0));
    const canaryPerBatch: number[] = Array.from({ length: 100 }, (_, i) => (i % 7 === 0 ? 2 : 0));
    expect(hodgesLehmann(baselinePerBatch, canaryPerBatch).shift).toBe(0);
    const events = 100 * 50;
    const report = judge(analysis, samples({
      ...good(),
      reject_rate: { baseline: rate(baselinePerBatch.reduce((a, b) => a + b), events), canary: rate(canaryPerBatch.reduce((a, b) => a + b), events) },
    }));
    const reject = report.metrics.find((m) => m.metric === 'reject_rate')!;
    expect(reject).toMatchObject({ verdict: 'fail', test: 'fisher-exact' });
    expect(reject.pValue).toBeLessThan(0.02);
    expect(report.outcome).toBe('fail');
    expect(report.reason).toBe('critical metric failed: reject_rate');
  });

  it('catches a small shift of one output field in its distribution, not only in counts', () => {
    const report = judge(analysis, samples({
      ...good(),
      'field:amount': { baseline: values(series(3, 2000, 100, 5)), canary: values(series(4, 2000, 100.8, 5)) },
    }));
    const field = report.metrics.find((m) => m.metric === 'field:amount')!;
    expect(field.verdict).toBe('fail');
    expect(field.effect).toBeGreaterThan(0.5);
    expect(field.baselineN).toBe(field.canaryN);
    expect(report.score).toBeCloseTo(200 / 3, 6);
    expect(report.outcome).toBe('fail');
  });

  it('a 5x slower stage fails processing time; a faster one does not', () => {
    const slow = judge(analysis, samples({ ...good(), processing_time_ms: { baseline: values(series(1, 300, 4, 1)), canary: values(series(2, 300, 20, 5)) } }));
    expect(slow.metrics[1]).toMatchObject({ verdict: 'fail' });
    expect(slow.outcome).toBe('fail');
    const fast = judge(analysis, samples({ ...good(), processing_time_ms: { baseline: values(series(1, 300, 4, 1)), canary: values(series(2, 300, 2, 0.5)) } }));
    expect(fast.metrics[1]).toMatchObject({ verdict: 'pass' });
    expect(fast.outcome).toBe('pass');
  });

  it('missing or NaN samples are inconclusive, never zero, and never pass', () => {
    const withNaN = good();
    withNaN['field:amount'].canary.values[7] = Number.NaN;
    const report = judge(analysis, samples(withNaN));
    expect(report.metrics[2]).toMatchObject({ verdict: 'inconclusive', canaryNaN: 1, reason: 'missing values: 0 NaN in baseline, 1 NaN in canary' });
    expect(report.outcome).toBe('inconclusive');

    const missing = good() as Partial<ReturnType<typeof good>>;
    delete missing.processing_time_ms;
    expect(judge(analysis, samples(missing as Record<string, MetricSamples>)).metrics[1]).toMatchObject({ verdict: 'inconclusive', baselineN: 0 });

    const fewCritical = judge(analysis, samples({ ...good(), reject_rate: { baseline: rate(0, 10), canary: rate(0, 12) } }));
    expect(fewCritical).toMatchObject({ outcome: 'inconclusive', reason: 'critical metric inconclusive: reject_rate' });
  });

  it('weights and thresholds make a marginal outcome', () => {
    const weighted = analysisSchema.parse({
      passScore: 95,
      marginalScore: 75,
      metrics: [
        { name: 'a', kind: 'continuous', weight: 9 },
        { name: 'b', kind: 'continuous', weight: 1 },
      ],
    });
    const report = judge(weighted, samples({
      a: { baseline: values(series(5, 100, 0, 1)), canary: values(series(6, 100, 0, 1)) },
      b: { baseline: values(series(7, 100, 0, 1)), canary: values(series(8, 100, 3, 1)) },
    }));
    expect(report.metrics.map((m) => m.verdict)).toEqual(['pass', 'fail']);
    expect(report).toMatchObject({ outcome: 'marginal', score: 90 });
  });
});
