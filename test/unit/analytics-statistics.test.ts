/**
 * The detector statistics against reference values computed with numpy, scipy and pandas
 * (test/fixtures/statistics/generate.sh; the JSON is committed and never recomputed here), and the
 * detectors' documented behaviour: minimum history, a baseline that excludes the judged window,
 * flat baselines that store no infinities, `for`, hysteresis, upgrades and resolution.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectorSchema, emptySeriesState, judgeAbsence, judgeWindow, levelOf, type DetectorInput, type SeriesState } from '../../schemas/analytics/detectors.js';
import { boundedScore, ewmaUpdate, mad, madNormalConsistency, mean, median, stddev, type EwmaState } from '../../schemas/analytics/statistics.js';

interface Sample {
  name: string;
  values: number[];
  mean: number;
  stddev: number;
  median: number;
  mad: number;
  mad_normal: number;
  ewma: Record<string, { mean: number[]; variance: number[] }>;
}
const reference = JSON.parse(readFileSync(new URL('../fixtures/statistics/reference.json', import.meta.url), 'utf8')) as { samples: Sample[] };

describe('statistics vs numpy/scipy/pandas', () => {
  for (const s of reference.samples) {
    it(`${s.name}: mean, stddev (ddof=1), median, MAD (raw and scale='normal')`, () => {
      expect(mean(s.values)).toBeCloseTo(s.mean, 9);
      expect(stddev(s.values)).toBeCloseTo(s.stddev, 9);
      expect(median(s.values)).toBeCloseTo(s.median, 12);
      expect(mad(s.values)).toBeCloseTo(s.mad, 12);
      expect(madNormalConsistency * mad(s.values)).toBeCloseTo(s.mad_normal, 9);
    });
    it(`${s.name}: EWMA mean and variance equal pandas ewm(adjust=False) for alpha 0.1, 0.3, 0.5`, () => {
      for (const [alpha, ref] of Object.entries(s.ewma)) {
        let state: EwmaState | null = null;
        s.values.forEach((x, i) => {
          state = ewmaUpdate(state, x, Number(alpha));
          expect(state.mean).toBeCloseTo(ref.mean[i]!, 8);
          expect(state.variance).toBeCloseTo(ref.variance[i]!, 6);
        });
      }
    });
  }

  it('a flat baseline scores 0 for the same value and ±cap otherwise, never an infinity or NaN', () => {
    expect(boundedScore(4, 4, 0, 1000)).toBe(0);
    expect(boundedScore(5, 4, 0, 1000)).toBe(1000);
    expect(boundedScore(3, 4, 0, 1000)).toBe(-1000);
    expect(boundedScore(1e308, -1e308, 1e-300, 50)).toBe(50);
    expect(boundedScore(Number.NaN, 4, 1, 10)).toBe(0);
  });
});

const base: DetectorInput = { name: 'd', aggregation: 'a', measure: 'm', method: { kind: 'threshold' }, levels: { warning: 10 }, clear: { below: 5 } };
const detector = (over: Partial<DetectorInput>) => detectorSchema.parse({ ...base, ...over });
const minute = 60_000;

/** Feeds values as consecutive one-minute windows; returns the transitions. */
function feed(d: ReturnType<typeof detector>, values: number[], state: SeriesState = emptySeriesState()) {
  const out: { transition: string; score: number; level: string | null; baseline: unknown }[] = [];
  values.forEach((value, i) => {
    const j = judgeWindow(d, state, { startMs: i * minute, endMs: (i + 1) * minute, value }, minute);
    state = j.state;
    out.push({ transition: j.transition, score: j.score, level: j.level, baseline: j.baseline });
  });
  return { out, state };
}

describe('detectors', () => {
  it('threshold with for: fires after N consecutive windows, clears only below the separate clear threshold', () => {
    const d = detector({ for: 3, levels: { warning: 10, critical: 20 }, clear: { below: 5, windows: 2 } });
    const { out } = feed(d, [11, 12, 1, 11, 12, 13, 25, 8, 6, 4, 9, 3, 2]);
    expect(out.map((o) => o.transition)).toEqual(['pending', 'pending', 'none', 'pending', 'pending', 'fire', 'upgrade', 'none', 'none', 'none', 'none', 'none', 'resolve']);
    expect(out[5]!.level).toBe('warning');
    expect(out[6]!.level).toBe('critical');
  });

  it('EWMA: no firing before minHistory; the baseline excludes the judged window; a flat baseline gives a finite score', () => {
    const d = detector({ method: { kind: 'ewma', alpha: 0.3, minHistory: 5 }, levels: { warning: 3, critical: 6 }, clear: { below: 1 } });
    const flat = feed(d, [10, 10, 10, 10, 10, 10, 50]);
    expect(flat.out.slice(0, 5).every((o) => o.transition === 'warming_up')).toBe(true);
    expect(flat.out[5]!.transition).toBe('none');
    // Judged against mean 10, variance 0 (the 50 itself is not in the baseline): +cap, critical.
    expect(flat.out[6]).toMatchObject({ transition: 'fire', score: 1000, level: 'critical', baseline: { center: 10, spread: 0, size: 6 } });
    expect(JSON.stringify(flat.state)).not.toMatch(/Infinity|NaN|null,"variance":null/);
    // A spike during warm-up does not fire.
    expect(feed(d, [10, 500]).out.map((o) => o.transition)).toEqual(['warming_up', 'warming_up']);
  });

  it('median/MAD: robust z against the previous windows only; a zero MAD is a flat baseline', () => {
    const d = detector({ method: { kind: 'mad', history: 8, minHistory: 6 }, levels: { warning: 3.5, page: 10 }, clear: { below: 2 } });
    const values = [10, 11, 9, 10, 12, 10, 8, 10, 30];
    const { out } = feed(d, values);
    const prior = values.slice(0, 8);
    const expected = (30 - median(prior)) / (madNormalConsistency * mad(prior));
    expect(out[8]!.score).toBeCloseTo(expected, 12);
    expect(out[8]!.transition).toBe('fire');
    expect(out[8]!.level).toBe('page');
    const flat = feed(d, [5, 5, 5, 5, 5, 5, 5, 6]);
    expect(flat.out[7]).toMatchObject({ transition: 'fire', score: 1000 });
  });

  it('seasonal: compares with the same window one period ago, not with the previous window', () => {
    const d = detector({ method: { kind: 'seasonal', period: '4m', minHistory: 4 }, levels: { warning: 4 }, clear: { below: 2 } });
    // Period of 4 windows: 1, 5, 9, 5 repeating with a little noise; then window 12 doubles.
    const season = [1, 5, 9, 5];
    const values = Array.from({ length: 16 }, (_, i) => season[i % 4]! + (i % 3) * 0.1);
    values[13] = 18; // should be ~5
    const { out } = feed(d, values);
    expect(out.slice(0, 13).some((o) => o.transition === 'fire')).toBe(false);
    expect(out[13]!.transition).toBe('fire');
    expect(out[13]!.baseline).toMatchObject({ center: values[9] });
  });

  it('rate of change: relative change from the previous window', () => {
    const d = detector({ method: { kind: 'rate_of_change', floor: 1 }, levels: { warning: 1 }, clear: { below: 0.5 } });
    const { out } = feed(d, [100, 110, 250, 260]);
    expect(out.map((o) => o.transition)).toEqual(['warming_up', 'none', 'fire', 'resolve']);
    expect(out[2]!.score).toBeCloseTo(140 / 110, 12);
  });

  it('absence: fires after the declared silence, upgrades with longer silence, resolves when data returns', () => {
    const d = detector({ method: { kind: 'absence', after: '30s' }, levels: { warning: 30, critical: 120 }, clear: { below: 1 } });
    let s = emptySeriesState();
    const at = (now: number) => {
      const j = judgeAbsence(d, s, 0, now);
      s = j.state;
      return [j.transition, j.level];
    };
    expect(at(29_000)).toEqual(['none', null]);
    expect(at(30_000)).toEqual(['fire', 'warning']);
    expect(at(121_000)).toEqual(['upgrade', 'critical']);
    const back = judgeAbsence(d, s, 125_000, 126_000);
    expect(back.transition).toBe('resolve');
  });

  it('declarations refuse a clear threshold above the lowest level, naming the field', () => {
    const r = detectorSchema.safeParse({ ...base, clear: { below: 11 } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['clear', 'below']);
    expect(levelOf(5, { info: 1, page: 5 })).toBe('page');
  });
});
