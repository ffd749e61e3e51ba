/**
 * The pipeline side of a rollout, pure parts: the key split (FNV-1a against the published test
 * vectors of draft-eastlake-fnv, a share of keys close to the percentage, monotone in the
 * percentage), the version names a rollout may use, the planner's reading of a routing row, the
 * batch plan with a routing (refused without a baseline, old plans unchanged), and the observation
 * rows of a landing step.
 */
import { describe, expect, it } from 'vitest';
import { routingForBatch, stepObservations, type RoutingRow } from '../../activities/rollouts/routing.js';
import type { ProcessedStep } from '../../activities/processing/runtime.js';
import { silentLogger } from '../../activities/logger.js';
import { batchPlanSchema, planRange } from '../../schemas/ingest/batch-plan.js';
import { canaryProcessorName, fnv1a32, keyBucket, onCanary } from '../../schemas/rollouts/routing.js';
import { processors as regressed } from '../fixtures/processors/regressed.js';

const row = (over: Partial<RoutingRow> = {}): RoutingRow => ({
  rollout_id: 'rollout-orders-3',
  epoch: 2,
  step: 1,
  mode: 'weight',
  percent: 25,
  canary_version: '3',
  canary_flags: '{"errorStatusFrom": 400}',
  fields: ['duration_ms'],
  final: 0,
  ...over,
});

const baseline = { name: 'request-enriched', version: 1, flags: {} };

describe('key split', () => {
  it('hashes with FNV-1a 32 (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('puts about `percent` % of keys on the canary, and a key on the canary stays there at every larger share', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `tenant-${i}`);
    for (const percent of [1, 10, 25, 50, 90]) {
      const share = keys.filter((k) => onCanary(k, percent)).length / keys.length;
      expect(Math.abs(share - percent / 100)).toBeLessThan(0.015);
    }
    for (const k of keys.slice(0, 2000)) {
      let was = false;
      for (let p = 1; p <= 99; p++) {
        const on = onCanary(k, p);
        if (was) expect(on).toBe(true);
        was = on;
      }
      expect(keyBucket(k)).toBe(fnv1a32(k) % 10_000);
    }
  });
});

describe('canary version names', () => {
  it('reads 3, v3 and name@3; refuses anything else', () => {
    expect(canaryProcessorName('3', 'request-enriched')).toEqual({ name: 'request-enriched', version: 3 });
    expect(canaryProcessorName('v3', 'request-enriched')).toEqual({ name: 'request-enriched', version: 3 });
    expect(canaryProcessorName('orders-enriched@v2', 'request-enriched')).toEqual({ name: 'orders-enriched', version: 2 });
    expect(canaryProcessorName('latest', 'request-enriched')).toBeNull();
    expect(canaryProcessorName('3.1', 'request-enriched')).toBeNull();
  });
});

describe('routing for a batch', () => {
  it('routes weight and shadow rows of a running rollout with the canary, its flags and fields', () => {
    expect(routingForBatch(row(), baseline, regressed, silentLogger)).toEqual({
      rolloutId: 'rollout-orders-3',
      epoch: 2,
      step: 1,
      mode: 'weight',
      percent: 25,
      canary: { name: 'request-enriched', version: 3, flags: { errorStatusFrom: 400 } },
      fields: ['duration_ms'],
    });
    expect(routingForBatch(row({ mode: 'shadow', percent: 0 }), baseline, regressed, silentLogger)).toMatchObject({ mode: 'shadow', percent: 0 });
  });

  it('leaves the batch unrouted without a row, after the rollout ended, in baseline mode, or when the canary is unknown', () => {
    expect(routingForBatch(null, baseline, regressed, silentLogger)).toBeNull();
    expect(routingForBatch(row({ final: 1 }), baseline, regressed, silentLogger)).toBeNull();
    expect(routingForBatch(row({ mode: 'baseline' }), baseline, regressed, silentLogger)).toBeNull();
    expect(routingForBatch(row({ mode: 'canary', final: 1, percent: 100 }), baseline, regressed, silentLogger)).toBeNull();
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string, meta?: Record<string, unknown>) => void warnings.push(`${m} ${JSON.stringify(meta)}`) };
    expect(routingForBatch(row({ canary_version: '9' }), baseline, regressed, log)).toBeNull();
    expect(warnings.join()).toContain('has versions 1, 2, 3, 4, not 9');
  });

  it('drops field names that are not column names (the plan would refuse them)', () => {
    expect(routingForBatch(row({ fields: ['duration_ms', 'a.b', "x'); DROP"] }), baseline, regressed, silentLogger)?.fields).toEqual(['duration_ms']);
  });
});

describe('batch plan with a routing', () => {
  const plan = { ...planRange('p', 't', 0, 0, 10, 0, 5), processor: baseline };
  const routing = routingForBatch(row(), baseline, regressed, silentLogger)!;

  it('accepts a routed plan with a baseline processor, and old plans without routing as before', () => {
    expect(batchPlanSchema.parse({ ...plan, routing }).routing).toEqual(routing);
    expect(batchPlanSchema.parse(plan)).not.toHaveProperty('routing');
  });

  it('refuses a routing without a baseline processor, naming the field', () => {
    const { processor: _omitted, ...bare } = { ...plan, routing };
    void _omitted;
    const r = batchPlanSchema.safeParse(bare);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toContain('routing');
  });
});

describe('observations of a landing step', () => {
  const step = (over: Partial<ProcessedStep>): ProcessedStep => ({
    rows: new Map(),
    failures: [],
    dropped: 0,
    emitted: 0,
    breakerFailures: 0,
    processed: 0,
    dedupeKeys: [],
    eventTimesMs: [],
    ...over,
  });

  it('writes reject and error proportions, per-event times and chosen fields per role; a missing field is NaN, never 0', () => {
    const routing = routingForBatch(row(), baseline, regressed, silentLogger)!;
    const canary = step({
      processed: 3,
      emitted: 2,
      breakerFailures: 1,
      failures: [{ offset: 12, code: 'processing_error', message: 'x', detail: {} }],
      eventTimesMs: [0.1, 0.2, 0.3],
      rows: new Map([
        ['request_enriched_requests', [{ offset: 10, duration_ms: 12.5 }, { offset: 11, route: '/x' }]],
        ['request_enriched_errors', [{ offset: 10, duration_ms: 99 }]],
      ]),
    });
    const base = step({ processed: 4, emitted: 4, eventTimesMs: [0.1, 0.1, 0.1, 0.1], rows: new Map([['request_enriched_requests', [{ offset: 13, duration_ms: 7 }]]]) });
    const obs = stepObservations(
      { routing, pipeline: 'orders', topic: 't', partition: 0, stepId: 'orders/t/0/10-17', from: 10, to: 17, observedAt: '2026-11-30T12:00:00.000Z' },
      [
        { role: 'baseline', processorVersion: 'request-enriched@1', events: 4, processed: base },
        { role: 'canary', processorVersion: 'request-enriched@3', events: 3, processed: canary },
      ],
    );
    const get = (role: string, metric: string) => obs.find((o) => o.role === role && o.metric === metric)!;
    expect(get('canary', 'reject_rate')).toMatchObject({ events: 3, hits: 1, epoch: 2, rolloutId: 'rollout-orders-3', batchId: 'orders/t/0/10-17', processorVersion: 'request-enriched@3' });
    expect(get('canary', 'processing_error_rate')).toMatchObject({ events: 3, hits: 1 });
    expect(get('canary', 'processing_time_ms').values).toEqual([0.1, 0.2, 0.3]);
    const field = get('canary', 'field:duration_ms');
    expect(field.values?.[0]).toBe(12.5);
    expect(field.values).toHaveLength(1);
    expect(get('baseline', 'reject_rate')).toMatchObject({ events: 4, hits: 0 });
    expect(get('baseline', 'field:duration_ms').values).toEqual([7]);
    const nan = stepObservations(
      { routing, pipeline: 'orders', topic: 't', partition: 0, stepId: 's', from: 0, to: 1, observedAt: '2026-11-30T12:00:00.000Z' },
      [{ role: 'canary', processorVersion: 'request-enriched@3', events: 1, processed: step({ rows: new Map([['t', [{ offset: 0, duration_ms: 'n/a' }]]]) }) }],
    );
    expect(Number.isNaN(nan.find((o) => o.metric === 'field:duration_ms')!.values![0])).toBe(true);
  });
});
