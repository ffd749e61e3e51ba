/**
 * `platform detectors backtest` on stored aggregates (real ClickHouse, the real CLI as a child
 * process): it reports when the rule would have fired, upgraded and resolved with counts, equal to
 * what the live evaluation decides on the same windows; it notifies nobody; a bad rule is refused
 * naming the option.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregationActivities } from '../../activities/analytics/aggregate.js';
import type { BacktestResult } from '../../activities/analytics/backtest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { analyticsFileSchema, type AnalyticsFileInput } from '../../schemas/analytics/declarations.js';
import { createWarehouse } from '../../workers/connections.js';
import { landBatch } from '../support/analytics.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const db = uniqueId('bt');
const minute = 60_000;
const t0 = Date.parse('2026-03-10T00:00:00Z');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let file: string;
const mock = new MockActivityEnvironment();

const declarations: AnalyticsFileInput = {
  pipelines: [{
    pipeline: 'bt',
    fields: { status: { json: 'status', type: 'number' } },
    watermark: { outOfOrderness: '0s', allowedLateness: '0s' },
    aggregations: [{ name: 'm', window: { type: 'tumbling', size: '1m' }, measures: [{ name: 'requests', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }] }],
    detectors: [
      { name: 'errs', aggregation: 'm', measure: 'errors', ratioOf: 'requests', method: { kind: 'threshold' }, levels: { warning: 0.2, page: 0.5 }, for: 2, clear: { below: 0.1, windows: 2 } },
      { name: 'gone', aggregation: 'm', measure: 'requests', method: { kind: 'absence', after: '1m' }, levels: { warning: 60 }, clear: { below: 1 } },
    ],
  }],
};

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, db);
  await migrate(warehouse, db, { admin });
  const dir = await mkdtemp(join(tmpdir(), 'bt-'));
  file = join(dir, 'pipelines.json');
  await writeFile(file, JSON.stringify(declarations));
  // 30 one-minute windows of 10 events; errors: 3/10 in windows 10-11, 6/10 in 12, 0 elsewhere;
  // again 3/10 in 20-21 (a second, smaller incident).
  const errorsIn = (w: number) => (w === 12 ? 6 : [10, 11, 20, 21].includes(w) ? 3 : 0);
  const events = Array.from({ length: 31 }, (_, w) => Array.from({ length: 10 }, (_, i) => ({ t: t0 + w * minute + i * 1000, status: i < errorsIn(w) ? 500 : 200 }))).flat();
  const r = await landBatch(warehouse, 'bt', 0, 0, events);
  const acts = createAggregationActivities({ warehouse, analytics: analyticsFileSchema.parse(declarations) });
  await mock.run(acts.ensureAggregationTables, { pipeline: 'bt' });
  await mock.run(acts.aggregateStep, { pipeline: 'bt', ranges: [r], watermarkBeforeMs: null, watermarkAfterMs: t0 + 30 * minute, stepMs: Date.now() });
});

afterAll(async () => {
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db } });
  await Promise.all([admin?.close(), warehouse?.close()]);
});

function cli(...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', 'workers/platform.ts', 'detectors', ...args], {
    cwd: root,
    env: { ...process.env, CLICKHOUSE_URL: stackEndpoints().clickhouseUrl, CLICKHOUSE_DATABASE: db, ANALYTICS_FILE: file },
  });
}

describe('platform detectors backtest', () => {
  it('prints when the rule would have fired, upgraded and resolved, with counts (--json and text)', async () => {
    const { stdout } = await cli('backtest', '--pipeline', 'bt', '--rule', 'errs', '--from', new Date(t0).toISOString(), '--to', new Date(t0 + 30 * minute).toISOString(), '--json');
    const r = JSON.parse(stdout) as BacktestResult;
    expect(r.transitions.map((t) => [t.transition, (t.windowStartMs - t0) / minute, t.level])).toEqual([
      ['fire', 11, 'warning'],
      ['upgrade', 12, 'page'],
      ['resolve', 14, null],
      ['fire', 21, 'warning'],
      ['resolve', 23, null],
    ]);
    expect(r.counts).toEqual({ fired: 2, upgraded: 1, resolved: 2, openAtEnd: 0 });
    expect(r.maxLevel).toBe('page');
    expect(r.windows).toBe(30);

    // A range starting mid-incident: the warm-up before it opens the incident silently, so the
    // range shows the upgrade and the resolution only.
    const mid = JSON.parse((await cli('backtest', '--pipeline', 'bt', '--rule', 'errs', '--from', new Date(t0 + 12 * minute).toISOString(), '--to', new Date(t0 + 16 * minute).toISOString(), '--json')).stdout) as BacktestResult;
    expect(mid.transitions.map((t) => t.transition)).toEqual(['upgrade', 'resolve']);

    const text = (await cli('backtest', '--pipeline', 'bt', '--rule', 'errs', '--from', new Date(t0).toISOString(), '--to', new Date(t0 + 30 * minute).toISOString())).stdout;
    expect(text).toContain('FIRE warning');
    expect(text).toContain('UPGRADE to page');
    expect(text).toContain('fired 2, upgraded 1, resolved 2');
  });

  it('refuses an unknown rule or an absence rule, naming the option', async () => {
    const unknown = await cli('backtest', '--pipeline', 'bt', '--rule', 'nope', '--from=-1d', '--to', 'now').catch((e: { stderr: string; code: number }) => e);
    expect((unknown as { code: number }).code).toBe(2);
    expect((unknown as { stderr: string }).stderr).toContain('--rule: pipeline bt has no rule "nope" (rules: errs, gone)');
    const absence = await cli('backtest', '--pipeline', 'bt', '--rule', 'gone', '--from=-1d', '--to', 'now').catch((e: { stderr: string }) => e);
    expect((absence as { stderr: string }).stderr).toContain('absence rule');
  });
});
