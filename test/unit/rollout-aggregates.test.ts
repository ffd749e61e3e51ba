/**
 * Aggregate and detector metrics of a rollout: which declared aggregations a processor version can
 * be judged on (refusals name what is expected), the input's validation of the metric names, and
 * detector firings counted over each side's series after the shared live history.
 */
import { describe, expect, it } from 'vitest';
import { aggregateMetricRefusal, declaredAggregateMetrics, detectorFirings, judgeableAggregations } from '../../activities/rollouts/aggregate-metrics.js';
import { describeZodError } from '../../schemas/alerting/alert-incident.js';
import { pipelineAnalyticsSchema, type PipelineAnalyticsInput } from '../../schemas/analytics/declarations.js';
import { requestEnrichedV2 } from '../../schemas/processors/index.js';
import { implicitAggregateMetric, rolloutInputSchema } from '../../schemas/rollouts/rollout.js';

const declared = (source: string): PipelineAnalyticsInput => ({
  pipeline: 'orders',
  source: { table: source },
  fields: { duration: { column: 'duration_ms', type: 'number' } },
  aggregations: [
    { name: 'per_second', window: { type: 'tumbling', size: '1s' }, measures: [{ name: 'requests', kind: 'count' }, { name: 'p50', kind: 'p50', field: 'duration' }] },
    { name: 'sessions', window: { type: 'session', gap: '30s', maxDuration: '5m' }, measures: [{ name: 'requests', kind: 'count' }] },
  ],
  detectors: [
    { name: 'slow', aggregation: 'per_second', measure: 'p50', method: { kind: 'threshold' }, levels: { warning: 30 }, clear: { below: 30 } },
    { name: 'quiet', aggregation: 'per_second', measure: 'requests', method: { kind: 'absence', after: '1m' }, levels: { warning: 60 }, clear: { below: 1 } },
    { name: 'jumpy', aggregation: 'per_second', measure: 'p50', method: { kind: 'ewma', alpha: 0.3, minHistory: 5 }, levels: { warning: 3 }, clear: { below: 1 } },
  ],
});

describe('aggregate metrics of a rollout', () => {
  it('judges the declared tumbling/hopping aggregations over the processor outputs, never those over events', () => {
    const overOutputs = pipelineAnalyticsSchema.parse(declared('request_enriched_requests'));
    expect(judgeableAggregations(overOutputs, requestEnrichedV2).map((a) => a.name)).toEqual(['per_second']);
    expect(declaredAggregateMetrics(overOutputs, judgeableAggregations(overOutputs, requestEnrichedV2))).toEqual([
      'aggregate:per_second.requests',
      'aggregate:per_second.p50',
      'detector:slow',
      'detector:jumpy',
    ]);
    const overEvents = pipelineAnalyticsSchema.parse(declared('events'));
    expect(judgeableAggregations(overEvents, requestEnrichedV2)).toEqual([]);
    expect(aggregateMetricRefusal('aggregate:per_second.p50', 'orders', overEvents, requestEnrichedV2)).toMatch(/read events, which request-enriched v2 does not write \(its outputs: request_enriched_requests, request_enriched_errors\)/);
  });

  it('refuses a named metric it cannot judge, saying what is declared', () => {
    const spec = pipelineAnalyticsSchema.parse(declared('request_enriched_requests'));
    expect(aggregateMetricRefusal('aggregate:per_second.p50', 'orders', spec, requestEnrichedV2)).toBeNull();
    expect(aggregateMetricRefusal('detector:slow', 'orders', spec, requestEnrichedV2)).toBeNull();
    expect(aggregateMetricRefusal('reject_rate', 'orders', spec, requestEnrichedV2)).toBeNull();
    expect(aggregateMetricRefusal('aggregate:nope.p50', 'orders', spec, requestEnrichedV2)).toBe('no tumbling or hopping aggregation "nope" declared for pipeline orders (declared: per_second)');
    expect(aggregateMetricRefusal('aggregate:per_second.p99', 'orders', spec, requestEnrichedV2)).toBe('aggregation per_second has no measure "p99" (measures: requests, p50)');
    expect(aggregateMetricRefusal('detector:quiet', 'orders', spec, requestEnrichedV2)).toMatch(/absence detector/);
    expect(aggregateMetricRefusal('detector:gone', 'orders', spec, requestEnrichedV2)).toMatch(/no detector "gone" declared for pipeline orders \(declared: slow, quiet, jumpy\)/);
    expect(aggregateMetricRefusal('aggregate:per_second.p50', 'orders', undefined, requestEnrichedV2)).toMatch(/pipeline orders declares no analytics/);
  });

  it('validates aggregate and detector metric names and kinds in the input, naming the field', () => {
    const refusal = (metrics: unknown[]) => {
      const r = rolloutInputSchema.safeParse({ pipeline: 'orders', version: '3', analysis: { metrics } });
      return r.success ? 'accepted' : describeZodError(r.error);
    };
    expect(refusal([{ name: 'aggregate:per_second.p50', kind: 'continuous' }, { name: 'detector:slow', kind: 'proportion' }])).toBe('accepted');
    expect(refusal([{ name: 'aggregate:per_second.p50', kind: 'proportion' }])).toMatch(/^input\.analysis\.metrics\.0\.kind: expected "continuous" for an aggregate metric/);
    expect(refusal([{ name: 'detector:slow', kind: 'continuous' }])).toMatch(/^input\.analysis\.metrics\.0\.kind: expected "proportion" for a detector metric/);
    expect(refusal([{ name: 'aggregate:per_second', kind: 'continuous' }])).toMatch(/^input\.analysis\.metrics\.0\.name: expected aggregate:<aggregation>\.<measure>/);
    const r = rolloutInputSchema.safeParse({ pipeline: 'orders', version: '3', analysis: { aggregates: { measures: { minSamples: 3 } } } });
    expect(r.success ? '' : describeZodError(r.error)).toMatch(/^input\.analysis\.aggregates\.measures\.minSamples: 3 per side could never reject/);
    const parsed = rolloutInputSchema.parse({ pipeline: 'orders', version: '3' });
    expect(parsed.analysis.aggregates.include).toBe('declared');
    expect(implicitAggregateMetric('aggregate:per_second.p50', parsed.analysis.aggregates)).toMatchObject({ kind: 'continuous', direction: 'either', relativeTolerance: 0.1, critical: false });
    expect(implicitAggregateMetric('detector:slow', parsed.analysis.aggregates)).toMatchObject({ kind: 'proportion', direction: 'increase', tolerance: 0.05, critical: false });
  });

  it('counts the windows a detector fires in per side, after the same history (EWMA warm before the step)', () => {
    const spec = pipelineAnalyticsSchema.parse(declared('request_enriched_requests'));
    const slow = spec.detectors.find((d) => d.name === 'slow')!;
    const jumpy = spec.detectors.find((d) => d.name === 'jumpy')!;
    const w = (i: number, p50: number, key = '') => ({ ws: i * 1000, key, measures: { requests: 50, p50 } });
    const history = [20, 21, 19, 20, 22, 21, 20].map((v, i) => w(i, v));
    const baseline = [21, 20, 31, 22, 20].map((v, i) => w(10 + i, v));
    const canary = baseline.map((x) => ({ ...x, measures: { ...x.measures, p50: x.measures.p50 * 1.5 } }));
    // Threshold 30: baseline fires in one window of five, the canary (x1.5) in every one.
    expect(detectorFirings(slow, history, baseline, 1000, 1000)).toEqual({ judged: 5, firing: 1 });
    expect(detectorFirings(slow, history, canary, 1000, 1000)).toEqual({ judged: 5, firing: 5 });
    // EWMA needs 5 windows of history: warm from the live history, so every step window is judged.
    expect(detectorFirings(jumpy, history, baseline, 1000, 1000).judged).toBe(5);
    expect(detectorFirings(jumpy, [], baseline, 1000, 1000).judged).toBe(0);
  });
});
