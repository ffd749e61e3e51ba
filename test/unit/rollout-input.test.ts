/**
 * The `canaryRollout` input as people write it: defaults for everything sensible, refusals that
 * name the field, and refusal of a minimum sample size that could never reject at the confidence.
 */
import { describe, expect, it } from 'vitest';
import { describeZodError } from '../../schemas/alerting/alert-incident.js';
import { describeJudgingAt, rolloutInputSchema, rolloutWorkflowId, smallestTwoSidedP, smallestUsefulSampleSize } from '../../schemas/rollouts/rollout.js';
import { stepNumberOf } from '../../schemas/rollouts/rollout-state.js';

function refusal(input: unknown): string {
  const r = rolloutInputSchema.safeParse(input);
  if (r.success) throw new Error('expected a refusal');
  return describeZodError(r.error);
}

describe('rollout input', () => {
  it('a minimal hand-written input gets every default', () => {
    const input = rolloutInputSchema.parse({ pipeline: 'orders', version: '3' });
    expect(input.baselineVersion).toBe('current');
    expect(input.steps.map((s) => Object.keys(s)[0])).toEqual(['shadow', 'weight', 'pause', 'analysis', 'weight', 'pause', 'analysis']);
    expect(input.steps[0]).toEqual({ shadow: 600_000 });
    expect(input.analysis).toMatchObject({ confidence: 0.98, minSamples: 20, passScore: 95, marginalScore: 75 });
    expect(input.analysis.metrics.map((m) => [m.name, m.kind, m.direction, m.critical])).toEqual([
      ['reject_rate', 'proportion', 'increase', true],
      ['processing_error_rate', 'proportion', 'increase', true],
      ['processing_time_ms', 'continuous', 'increase', false],
    ]);
    expect(input.notify).toEqual({ severity: 'critical', remindEvery: 3_600_000 });
  });

  it('names a rollout after the version number, however the version is written', () => {
    expect(rolloutWorkflowId('demo', 'v1')).toBe('rollout-demo-1');
    expect(rolloutWorkflowId('demo', '1')).toBe('rollout-demo-1');
    expect(rolloutWorkflowId('demo', 'request-enriched@v3')).toBe('rollout-demo-request-enriched@3');
    expect(rolloutWorkflowId('demo', 'request-enriched@3')).toBe('rollout-demo-request-enriched@3');
  });

  it('accepts every step spelling of the README', () => {
    const input = rolloutInputSchema.parse({
      pipeline: 'orders',
      version: '3',
      steps: [{ shadow: '5m' }, 'analysis', { weight: 25 }, { pause: '90s' }, { analysis: {} }, { pause: {} }, 'pause'],
    });
    expect(input.steps).toEqual([{ shadow: 300_000 }, { analysis: {} }, { weight: 25 }, { pause: 90_000 }, { analysis: {} }, { pause: {} }, { pause: {} }]);
  });

  it('names the field of a bad input', () => {
    expect(refusal({ version: '3' })).toMatch(/^input\.pipeline: /);
    expect(refusal({ pipeline: 'orders', version: '3', steps: [{ weight: 150 }] })).toMatch(/input\.steps\.0/);
    expect(refusal({ pipeline: 'orders', version: '3', steps: [{ shadow: 'ten minutes' }] })).toMatch(/input\.steps\.0/);
    expect(refusal({ pipeline: 'orders', version: '3', steps: ['analysis'] })).toMatch(/input\.steps\.0: an analysis step needs a shadow or weight step before it/);
    expect(refusal({ pipeline: 'orders', version: '3', analysis: { confidence: 1.2 } })).toMatch(/input\.analysis\.confidence: expected a confidence in \(0\.5, 1\)/);
    expect(refusal({ pipeline: 'orders', version: '3', analysis: { passScore: 50, marginalScore: 80 } })).toMatch(/input\.analysis\.marginalScore: expected at most passScore \(50\), got 80/);
    expect(refusal({ pipeline: 'orders', version: '3', analysis: { metrics: [{ name: 'x', kind: 'continuous' }, { name: 'x', kind: 'proportion' }] } })).toMatch(/input\.analysis\.metrics\.1\.name: duplicate metric "x"/);
    expect(refusal({ pipeline: 'orders', version: '3', surprise: true })).toMatch(/surprise/);
  });

  it('refuses a minimum sample size that could never reject at the chosen confidence', () => {
    // 2 / C(8, 4) = 0.0286 >= 0.02: four per side can never be significant at 98 %.
    expect(smallestTwoSidedP(4)).toBeCloseTo(2 / 70, 12);
    expect(smallestUsefulSampleSize(0.02)).toBe(5);
    expect(refusal({ pipeline: 'orders', version: '3', analysis: { minSamples: 4 } })).toBe(
      'input.analysis.minSamples: 4 per side could never reject at confidence 0.98: the smallest two-sided p-value is 0.0286 >= 0.0200; use at least 5',
    );
    expect(refusal({ pipeline: 'o', version: '3', analysis: { confidence: 0.999, metrics: [{ name: 'x', kind: 'continuous', minSamples: 6 }] } })).toMatch(
      /input\.analysis\.metrics\.0\.minSamples: 6 per side could never reject at confidence 0\.999.*use at least 7/,
    );
    expect(rolloutInputSchema.safeParse({ pipeline: 'orders', version: '3', analysis: { minSamples: 5 } }).success).toBe(true);
  });
});

describe('rollout words people read', () => {
  it('the next judgement as a time that stays right, with a countdown that says when it was computed', () => {
    const now = Date.parse('2026-12-01T02:39:10Z');
    expect(describeJudgingAt(now + 2 * 60_000, now)).toBe('judging at 02:41:10Z (in about 2m, as of 02:39:10Z)');
    expect(describeJudgingAt(now + 10_000, now)).toBe('judging at 02:39:20Z (in about 10s, as of 02:39:10Z)');
    // Another day: the date too.
    expect(describeJudgingAt(now + 26 * 3_600_000, now)).toBe('judging at 2026-12-02 04:39:10Z (in about 1d2h, as of 02:39:10Z)');
  });

  it('step numbers are 1-based and never past the last step', () => {
    expect([0, 1, 3, 4].map((step) => stepNumberOf(step, 4))).toEqual([1, 2, 4, 4]);
  });
});
