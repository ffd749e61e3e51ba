/**
 * Every detector kind against the generator's synthetic incidents (step, drift, spike, compressed
 * seasonality, a silent key, the error burst), through the same evaluation the aggregator and the
 * backtest use. Windows are aggregated here in plain TypeScript (10 s tumbling, per service); the
 * ClickHouse aggregation itself is tested in test/integration/analytics-aggregate.test.ts.
 * Asserts each detector fires at its incident and never on the clean stretch before the first
 * one, and prints the true/false positive counts.
 */
import { describe, expect, it } from 'vitest';
import { analyticsFileSchema, type PipelineAnalytics } from '../../schemas/analytics/declarations.js';
import { evaluateAbsence, evaluateWindows, type DetectorStates, type DetectorTransition, type WindowRow } from '../../schemas/analytics/evaluate.js';
import { generateEvents, type IncidentShape } from '../../workers/generator.js';

const start = Date.parse('2026-04-01T00:00:00Z');
const size = 10_000;
const seconds = 1500;
const rate = 100;
const shapes: IncidentShape[] = [
  { kind: 'step', service: 'search', at: 540, duration: 120, factor: 4 },
  { kind: 'spike', service: 'auth', at: 700, duration: 20, factor: 8 },
  { kind: 'drift', service: 'catalog', at: 780, duration: 300, factor: 6 },
  { kind: 'seasonality', service: 'checkout', period: 120, amplitude: 0.6 },
  { kind: 'silence', service: 'recommendations', at: 900 },
  { kind: 'silence', service: 'checkout', at: 1100, duration: 120, keep: 0.05 },
];
/** Injected incidents: what counts as a true positive for which metric. */
const incidents: { metric: 'errors' | 'latency' | 'traffic'; service: string; from: number; to: number }[] = [
  { metric: 'errors', service: 'checkout', from: 600, to: 660 },
  { metric: 'latency', service: 'checkout', from: 600, to: 660 },
  { metric: 'latency', service: 'search', from: 540, to: 660 },
  { metric: 'latency', service: 'auth', from: 700, to: 720 },
  { metric: 'latency', service: 'catalog', from: 780, to: seconds },
  { metric: 'traffic', service: 'recommendations', from: 900, to: seconds },
  { metric: 'traffic', service: 'checkout', from: 1100, to: 1220 },
];
const firstIncident = 540;

const spec: PipelineAnalytics = analyticsFileSchema.parse({
  pipelines: [{
    pipeline: 'synthetic',
    fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' }, duration: { json: 'duration_ms', type: 'number' } },
    aggregations: [{ name: 's10', window: { type: 'tumbling', size: '10s' }, groupBy: ['service'], measures: [{ name: 'requests', kind: 'count' }, { name: 'errors', kind: 'count' }, { name: 'p50', kind: 'p50', field: 'duration' }, { name: 'p95', kind: 'p95', field: 'duration' }] }],
    detectors: [
      { name: 'error_rate', aggregation: 's10', measure: 'errors', ratioOf: 'requests', method: { kind: 'threshold' }, levels: { warning: 0.1, critical: 0.25, page: 0.5 }, for: 2, clear: { below: 0.05, windows: 3 }, minCount: 20, minCountMeasure: 'requests' },
      { name: 'latency_ewma', aggregation: 's10', measure: 'p95', method: { kind: 'ewma', alpha: 0.1, minHistory: 18 }, levels: { warning: 8, critical: 16 }, clear: { below: 2, windows: 3 }, minCount: 20, minCountMeasure: 'requests' },
      { name: 'latency_mad', aggregation: 's10', measure: 'p95', method: { kind: 'mad', history: 30, minHistory: 12 }, levels: { warning: 8, critical: 16 }, clear: { below: 3, windows: 3 }, minCount: 20, minCountMeasure: 'requests' },
      { name: 'latency_jump', aggregation: 's10', measure: 'p50', method: { kind: 'rate_of_change', floor: 5 }, levels: { warning: 3.5, critical: 6 }, clear: { below: 0.5, windows: 2 }, minCount: 20, minCountMeasure: 'requests' },
      { name: 'traffic_seasonal', aggregation: 's10', measure: 'requests', method: { kind: 'seasonal', period: '2m', minHistory: 12 }, direction: 'down', levels: { warning: 5, critical: 10 }, clear: { below: 3, windows: 2 } },
      { name: 'service_silent', aggregation: 's10', measure: 'requests', method: { kind: 'absence', after: '30s' }, levels: { warning: 30, critical: 120 }, clear: { below: 1 } },
    ],
  }],
}).pipelines[0]!;
const metricOf: Record<string, 'errors' | 'latency' | 'traffic'> = { error_rate: 'errors', latency_ewma: 'latency', latency_mad: 'latency', latency_jump: 'latency', traffic_seasonal: 'traffic', service_silent: 'traffic' };

/** ClickHouse quantileExact: the element at floor(q * n) of the sorted values. */
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

function windows(): WindowRow[] {
  const groups = new Map<string, { service: string; ws: number; n: number; errors: number; durations: number[] }>();
  for (const r of generateEvents({ count: seconds * rate, rate, startTime: start, seed: 11, incidentAt: 600, incidentDuration: 60, incidentService: 'checkout', shapes })) {
    if (!r.data) continue;
    const ws = r.time - (((r.time % size) + size) % size);
    const k = `${r.data.service}@${ws}`;
    const g = groups.get(k) ?? { service: r.data.service, ws, n: 0, errors: 0, durations: [] };
    g.n++;
    if (r.data.status >= 500) g.errors++;
    g.durations.push(r.data.duration_ms);
    groups.set(k, g);
  }
  return [...groups.values()].map((g) => ({ key: g.service, keys: { service: g.service }, startMs: g.ws, endMs: g.ws + size, measures: { requests: g.n, errors: g.errors, p50: quantile(g.durations, 0.5), p95: quantile(g.durations, 0.95) } }));
}

describe('detectors on synthetic incidents', () => {
  it('each detector fires at its incident and not on the clean stretch before it; TP/FP counts', () => {
    const rows = windows();
    let states: DetectorStates = {};
    const fires: DetectorTransition[] = [];
    const lastSeen: Record<string, Record<string, { atMs: number; keys: Record<string, string> }>> = { s10: {} };
    // Replay window by window in end order, as the watermark would finalise them; absence runs on
    // (simulated) processing time = the window end.
    const ends = [...new Set(rows.map((r) => r.endMs))].sort((a, b) => a - b);
    for (const end of ends) {
      const batch = rows.filter((r) => r.endMs === end);
      for (const r of batch) lastSeen.s10![r.key] = { atMs: r.endMs, keys: r.keys };
      const w = evaluateWindows(spec, 's10', batch, states);
      const a = evaluateAbsence(spec, lastSeen, w.states, end);
      states = a.states;
      fires.push(...[...w.transitions, ...a.transitions].filter((t) => t.transition === 'fire'));
    }
    const table: Record<string, { tp: number; fp: number; fpBeforeFirstIncident: number; firstTp: string | null }> = {};
    for (const d of spec.detectors) table[d.name] = { tp: 0, fp: 0, fpBeforeFirstIncident: 0, firstTp: null };
    for (const f of fires) {
      const at = (f.windowStartMs - start) / 1000;
      const hit = incidents.some((i) => i.metric === metricOf[f.detector] && i.service === f.key && at >= i.from - 10 && at <= i.to + 60);
      const row = table[f.detector]!;
      if (hit) {
        row.tp++;
        row.firstTp ??= `${f.key}@${at}s`;
      } else {
        row.fp++;
        if (at < firstIncident) row.fpBeforeFirstIncident++;
      }
    }
    console.log('true/false positives on synthetic incidents (fires, 25 min, 8 services, 10 s windows):');
    console.table(table);
    for (const [name, row] of Object.entries(table)) {
      expect(row.tp, `${name} fires at its incident`).toBeGreaterThan(0);
      expect(row.fpBeforeFirstIncident, `${name} is quiet on the clean stretch`).toBe(0);
    }
    expect(table.error_rate!.firstTp).toBe('checkout@610s');
    expect(table.latency_ewma!.firstTp).toMatch(/^search@5[45]0s$/);
    expect(table.service_silent!.firstTp).toMatch(/^recommendations@/);
  });
});
