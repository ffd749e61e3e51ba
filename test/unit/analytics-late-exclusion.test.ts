/**
 * The recompute statement leaves out the late_events exclusion only when no recomputed window can
 * have late rows: rows of window W go to late_events only once `W.start + size - 1 + allowed
 * lateness <= watermark` at their step (lateEventsInsert), and the watermark never moves back.
 * The integration side (a too-late event stays out of its window while others revise theirs) is
 * test/integration/analytics-aggregate.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { computeWindowsQuery } from '../../activities/analytics/aggregate-sql.js';
import { analyticsFileSchema, aggregationTable } from '../../schemas/analytics/declarations.js';

const spec = analyticsFileSchema.parse({
  pipelines: [{
    pipeline: 'p',
    fields: { service: { json: 'service' } },
    watermark: { outOfOrderness: '0s', idleness: '1h', allowedLateness: '5s' },
    aggregations: [{ name: 'svc', window: { type: 'tumbling', size: '1s' }, groupBy: ['service'], measures: [{ name: 'requests', kind: 'count' }] }],
    detectors: [],
  }],
}).pipelines[0]!;
const a = spec.aggregations[0]!;

function query(watermarkBeforeMs: number | null, lo: number): string {
  const input = { pipeline: 'p', aggregation: a, table: aggregationTable('p', a), ranges: [], watermarkBeforeMs, watermarkAfterMs: lo + 10_000, allowedLatenessMs: 5_000, stepMs: 1 };
  return computeWindowsQuery(spec, input, { count: 2, lo, hi: lo + 1_000, list: [lo, lo + 1_000] }).query;
}

describe('late_events exclusion in the recompute', () => {
  it('is left out when the earliest window recomputed ends, plus the allowed lateness, after the watermark before the step', () => {
    // start 100_000 + 999 + 5_000 = 105_999 > 105_998: no row of it can be late yet.
    expect(query(105_998, 100_000)).not.toContain('late_events');
  });

  it('is kept once that window could have late rows, and before any watermark', () => {
    expect(query(105_999, 100_000)).toContain('FROM late_events');
    expect(query(200_000, 100_000)).toContain('FROM late_events');
    expect(query(null, 100_000)).toContain('FROM late_events');
  });
});
