/** The analytics declarations: the repo's file validates; errors name the file and the field. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AnalyticsConfigError, loadAnalyticsFile } from '../../activities/analytics/declarations-file.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';

describe('analytics declarations', () => {
  it('the repo file validates, durations become milliseconds', async () => {
    const file = await loadAnalyticsFile();
    const demo = file.pipelines.find((p) => p.pipeline === 'demo')!;
    expect(demo.watermark).toEqual({ outOfOrderness: 5000, idleness: 30_000, allowedLateness: 60_000 });
    expect(demo.aggregations[1]!.window).toEqual({ type: 'hopping', size: 60_000, slide: 20_000 });
    expect(new Set(demo.detectors.map((d) => d.method.kind))).toEqual(new Set(['threshold', 'ewma', 'mad', 'seasonal', 'rate_of_change', 'absence']));
  });

  it('refuses a bad file at start with the file, the field and what was found', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'analytics-'));
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({
      pipelines: [{
        pipeline: 'p',
        fields: { s: { json: 'service' } },
        aggregations: [{ name: 'a', window: { type: 'hopping', size: '1m', slide: 'often' }, groupBy: ['nope'], measures: [{ name: 'm', kind: 'p95' }] }],
        detectors: [{ name: 'd', aggregation: 'zz', measure: 'm', method: { kind: 'ewma' }, levels: { warning: 3 }, clear: { below: 1 } }],
      }],
    }));
    const err = await loadAnalyticsFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnalyticsConfigError);
    const message = (err as Error).message;
    expect(message).toContain(path);
    expect(message).toContain('pipelines.0.aggregations.0.window.slide: expected a duration like 30s, 5m or 1h30m, got "often"');
    const second = analyticsFileSchema.safeParse({
      pipelines: [{ pipeline: 'p', fields: {}, aggregations: [{ name: 'a', window: { type: 'tumbling', size: '1m' }, groupBy: ['nope'], measures: [{ name: 'm', kind: 'p95' }] }], detectors: [{ name: 'd', aggregation: 'zz', measure: 'm', method: { kind: 'ewma' }, levels: { warning: 3 }, clear: { below: 1 } }] }],
    });
    const paths = second.error!.issues.map((i) => i.path.join('.'));
    // Session aggregations are accepted (aggregated in ClickHouse), and so are window detectors over
    // them, except a seasonal one (no "same window one period ago"), refused naming method.kind.
    const session = { pipeline: 'p', aggregations: [{ name: 'a', window: { type: 'session', gap: '30s', maxDuration: '10m' }, measures: [{ name: 'n', kind: 'count' }] }] };
    expect(analyticsFileSchema.safeParse({ pipelines: [session] }).success).toBe(true);
    const judge = (method: Record<string, unknown>) => analyticsFileSchema.safeParse({ pipelines: [{ ...session, detectors: [{ name: 'd', aggregation: 'a', measure: 'n', method, levels: { warning: 3 }, clear: { below: 1 } }] }] });
    for (const kind of ['threshold', 'rate_of_change', 'ewma', 'mad']) expect(judge({ kind }).error?.issues, kind).toBeUndefined();
    expect(judge({ kind: 'seasonal', period: '1h' }).error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'pipelines.0.detectors.0.method.kind: a seasonal detector compares a window with the same window one period earlier, which session windows (aggregation a) do not have; use threshold, rate_of_change, ewma, mad or absence',
    ]);
    expect(paths).toEqual(expect.arrayContaining(['pipelines.0.aggregations.0.groupBy.0', 'pipelines.0.aggregations.0.measures.0.field', 'pipelines.0.detectors.0.aggregation']));
  });
});
