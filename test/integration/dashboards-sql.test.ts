/**
 * Every dashboard query runs on the real ClickHouse of the shared stack, against the tables the
 * migrations create, after the Grafana macros are expanded the way the ClickHouse plugin expands
 * them. Known rows are seeded in a database of their own, and the results are checked against
 * them: counts add up, filters by template variable exclude other pipelines, percentiles and
 * ratios come out as seeded.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Dashboard, VariableModel } from '@grafana/grafana-foundation-sdk/dashboard';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboards } from '../../dashboards/build.js';
import { allPanels, clickHousePanels, type ClickHouseQuery } from '../../dashboards/panels.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { createWarehouse } from '../../workers/connections.js';
import { judge } from '../../activities/rollouts/judge.js';
import { judgementRows } from '../../activities/rollouts/rollout-activities.js';
import { analysisSchema } from '../../schemas/rollouts/rollout.js';
import { expandGrafanaSql, type GrafanaQueryContext } from '../support/grafana-sql.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

type Row = Record<string, unknown>;

const database = uniqueId('t');
let client: ClickHouseClient;
let admin: ClickHouseClient;

/** Minute boundaries of the seeded data; the dashboards' time range covers them. */
const base = Date.parse('2026-03-01T10:00:00Z');
const at = (minute: number, ms = 0): string => new Date(base + minute * 60_000 + ms).toISOString();

const ctx = (overrides: Partial<GrafanaQueryContext> = {}): GrafanaQueryContext => ({
  from: new Date(base - 5 * 60_000),
  to: new Date(base + 30 * 60_000),
  intervalSeconds: 60,
  variables: { pipeline: ['orders'], service: ['checkout', 'search'], severity: ['page', 'critical', 'warning', 'info'], rollout_pipeline: ['orders'] },
  ...overrides,
});

const dashboards = buildDashboards().map(({ file, dashboard }) => ({ file, dashboard: JSON.parse(JSON.stringify(dashboard)) as Dashboard }));

function panelSql(file: string, title: string): string {
  const dashboard = dashboards.find((d) => d.file === file)!.dashboard;
  const panel = allPanels(dashboard).find((p) => p.title === title);
  if (!panel) throw new Error(`${file}: no panel titled ${JSON.stringify(title)}`);
  return (panel.targets![0] as unknown as ClickHouseQuery).rawSql;
}

async function run(sql: string, context: GrafanaQueryContext = ctx()): Promise<Row[]> {
  const { query, params } = expandGrafanaSql(sql, context);
  const result = await client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<Row>();
}

const panel = (file: string, title: string, context?: GrafanaQueryContext): Promise<Row[]> => run(panelSql(file, title), context);

/**
 * Names of the outer SELECT list's columns: the alias after AS, or the bare column name. Splits on
 * top-level commas only (not inside parentheses, brackets or quotes).
 */
function selectColumns(sql: string): string[] {
  const list = /^SELECT\s+([\s\S]*?)\nFROM\b/.exec(sql)?.[1] ?? '';
  const items: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of list) {
    if (ch === "'") quoted = !quoted;
    if (!quoted && (ch === '(' || ch === '[')) depth++;
    if (!quoted && (ch === ')' || ch === ']')) depth--;
    if (!quoted && depth === 0 && ch === ',') {
      items.push(current);
      current = '';
    } else current += ch;
  }
  items.push(current);
  return items.map((item) => {
    const text = item.trim();
    return /\bAS\s+([A-Za-z_][A-Za-z0-9_]*)$/i.exec(text)?.[1] ?? text;
  });
}
const num = (value: unknown): number => Number(value);
const sum = (rows: Row[], column: string): number => rows.reduce((acc, r) => acc + num(r[column]), 0);

/**
 * Seeded data. Pipeline `orders` (selected) and `other` (must be filtered out):
 * - events: orders 5 / 7 / 3 in minutes 0, 1, 2 (15), other 4 in minute 1; each lands 250 ms
 *   after its Kafka timestamp.
 * - dead_letters: orders 3 contract_violation + 2 malformed_json, other 1 malformed_json.
 * - lineage_batches: orders 4 batches (partition 0: [0,6) [6,12); partition 1: [0,4) [4,8)) lasting
 *   100 / 200 / 300 / 400 ms, 15 valid + 5 rejected; other 1 batch.
 * - rollups_1m: orders checkout and search in minutes 0-2 (route '*' plus routes), one window
 *   recomputed (the newer computation must win), and other/checkout that must not count.
 */
async function seed(): Promise<void> {
  const common = { batch_id: 'b', subject: 'request_telemetry', contract_version: 1, processor_version: 'test' };
  const events: Row[] = [];
  const perMinute = [5, 7, 3];
  let offset = 0;
  perMinute.forEach((n, minute) => {
    for (let i = 0; i < n; i++) {
      const landed = at(minute, 1000 + i * 100);
      events.push({
        ...common,
        pipeline: 'orders',
        topic: 'requests',
        partition: offset % 2,
        offset: offset++,
        event_id: crypto.randomUUID(),
        event_key: `k${i}`,
        event_time: landed,
        data: '{}',
        kafka_timestamp: new Date(Date.parse(landed) - 250).toISOString(),
        ingested_at: landed,
      });
    }
  });
  for (let i = 0; i < 4; i++) {
    events.push({
      ...common,
      pipeline: 'other',
      topic: 'requests',
      partition: 0,
      offset: i,
      event_id: crypto.randomUUID(),
      event_key: 'k',
      event_time: at(1, 500),
      data: '{}',
      kafka_timestamp: at(1, 0),
      ingested_at: at(1, 500),
    });
  }
  await client.insert({ table: 'events', values: events, format: 'JSONEachRow' });

  const deadLetter = (pipeline: string, off: number, reason: string, minute: number): Row => ({
    pipeline,
    batch_id: 'b',
    topic: 'requests',
    partition: off % 2,
    offset: 1000 + off,
    reason_code: reason,
    reason_message: `${reason} at offset ${1000 + off}`,
    reason_detail: '{}',
    message_key: '',
    raw: '{bad',
    raw_encoding: 'utf8',
    raw_bytes: 4,
    kafka_timestamp: at(minute),
    processor_version: 'test',
    ingested_at: at(minute, 2000),
  });
  await client.insert({
    table: 'dead_letters',
    values: [
      deadLetter('orders', 0, 'contract_violation', 0),
      deadLetter('orders', 1, 'contract_violation', 1),
      deadLetter('orders', 2, 'contract_violation', 1),
      deadLetter('orders', 3, 'malformed_json', 2),
      deadLetter('orders', 4, 'malformed_json', 2),
      deadLetter('other', 5, 'malformed_json', 1),
    ],
    format: 'JSONEachRow',
  });

  const batch = (pipeline: string, partition: number, from: number, to: number, valid: number, rejected: number, minute: number, durationMs: number): Row => ({
    pipeline,
    batch_id: `${pipeline}/requests/${partition}/${from}-${to}`,
    topic: 'requests',
    partition,
    from_offset: from,
    to_offset: to,
    valid_count: valid,
    rejected_count: rejected,
    missing_count: 0,
    bytes: 100,
    contract_versions: ['request_telemetry@1'],
    reject_codes: {},
    min_event_time: at(minute),
    max_event_time: at(minute),
    processor_version: 'test',
    // Backlog after each batch: orders[0] ends at 12, orders[1] at 10, other[0] at 5.
    high_watermark: ({ 'orders/0': 12, 'orders/1': 10, 'other/0': 5 } as Record<string, number>)[`${pipeline}/${partition}`],
    workflow_id: 'wf',
    run_id: 'run',
    activity_attempt: 1,
    started_at: at(minute, 3000),
    finished_at: at(minute, 3000 + durationMs),
  });
  await client.insert({
    table: 'lineage_batches',
    values: [
      batch('orders', 0, 0, 6, 5, 1, 0, 100),
      batch('orders', 0, 6, 12, 4, 2, 1, 200),
      batch('orders', 1, 0, 4, 3, 1, 1, 300),
      batch('orders', 1, 4, 8, 3, 1, 2, 400),
      batch('other', 0, 0, 5, 4, 1, 1, 50),
    ],
    format: 'JSONEachRow',
  });

  const rollup = (pipeline: string, minute: number, service: string, route: string, requests: number, errors: number, p95: number, computedMs = 0): Row => ({
    pipeline,
    window_start: at(minute).replace('.000Z', 'Z'),
    service,
    route,
    requests,
    errors,
    client_errors: 1,
    duration_p50: p95 / 2,
    duration_p95: p95,
    duration_p99: p95 * 2,
    bytes_out: 0,
    processor_version: 'test',
    computed_at: at(minute + 1, computedMs),
  });
  await client.insert({
    table: 'rollups_1m',
    values: [
      // checkout: 100 + 120 + 80 = 300 requests, 2 + 30 + 1 = 33 errors, p95 up to 900 ms in minute 1.
      rollup('orders', 0, 'checkout', '*', 100, 2, 120),
      rollup('orders', 1, 'checkout', '*', 999, 999, 5000, 0), // superseded by the recomputation below
      rollup('orders', 1, 'checkout', '*', 120, 30, 900, 500),
      rollup('orders', 2, 'checkout', '*', 80, 1, 110),
      rollup('orders', 1, 'checkout', 'POST /pay', 70, 28, 950, 500),
      rollup('orders', 1, 'checkout', 'GET /cart', 50, 2, 90, 500),
      // search: 200 + 200 + 200 = 600 requests, no errors.
      rollup('orders', 0, 'search', '*', 200, 0, 40),
      rollup('orders', 1, 'search', '*', 200, 0, 45),
      rollup('orders', 2, 'search', '*', 200, 0, 50),
      rollup('orders', 1, 'search', 'GET /q', 200, 0, 45),
      // Another pipeline's copy of checkout: filtered out by $pipeline.
      rollup('other', 1, 'checkout', '*', 5000, 5000, 9999),
    ],
    format: 'JSONEachRow',
  });

}

/**
 * Alert audit rows (alert_events) for four incidents:
 * - I1 critical: opened minute 0, webhook delivered, email failed after 3 attempts, acknowledged
 *   +60 s by ann, resolved +300 s;
 * - I2 critical: opened minute 1, webhook delivered, acknowledged +120 s, still open;
 * - I3 warning: opened minute 2, webhook delivered, escalated, email delivered, not acknowledged;
 * - I4 info: opened minute 3, resolved +30 s without acknowledgement.
 * I1's webhook row is inserted twice in different blocks: FINAL must count it once.
 */
async function seedAlerts(): Promise<void> {
  const incidents: Record<string, { severity: string; detector: string; minute: number }> = {
    I1: { severity: 'critical', detector: 'error_rate_high', minute: 0 },
    I2: { severity: 'critical', detector: 'error_rate_high', minute: 1 },
    I3: { severity: 'warning', detector: 'latency_p95_high', minute: 2 },
    I4: { severity: 'info', detector: 'dead_letters_high', minute: 3 },
  };
  const event = (
    id: string,
    seq: number,
    offsetMs: number,
    type: string,
    status: string,
    extra: Partial<{ actor: string; target: string; delivered: number | null; attempts: number; detail: string; level: number }> = {},
  ): Row => {
    const incident = incidents[id]!;
    const target = extra.target ?? '';
    return {
      event_id: `${id}/e${seq}`,
      incident_id: id,
      workflow_id: `alert-${id.toLowerCase()}`,
      fingerprint: id,
      seq,
      event_time: at(incident.minute, offsetMs),
      event_type: type,
      status,
      severity: incident.severity,
      level: extra.level ?? 0,
      actor: extra.actor ?? 'policy',
      note: '',
      detector: incident.detector,
      summary: `${incident.detector} on checkout`,
      labels: { service: 'checkout' },
      pipeline: 'orders',
      route_receiver: 'ops',
      policy: 'default',
      config_version: 1,
      receiver: target ? 'ops' : '',
      target,
      notification_id: target ? `${id}/n${seq}` : '',
      notification_kind: target ? 'trigger' : '',
      delivered: extra.delivered ?? null,
      attempts: extra.attempts ?? 0,
      detail: extra.detail ?? '',
    };
  };
  const i1Webhook = event('I1', 2, 1000, 'notification', 'notified', { target: 'webhook:ops', delivered: 1, attempts: 1, detail: 'HTTP 200' });
  await client.insert({
    table: 'alert_events',
    format: 'JSONEachRow',
    values: [
      event('I1', 1, 0, 'opened', 'firing', { actor: 'detector' }),
      i1Webhook,
      event('I1', 3, 2000, 'notification', 'notified', { target: 'email:oncall', delivered: 0, attempts: 3, detail: 'SMTP 550 mailbox unavailable' }),
      event('I1', 4, 60_000, 'acknowledged', 'acknowledged', { actor: 'ann' }),
      event('I1', 5, 300_000, 'resolved', 'resolved', { actor: 'ann' }),
      event('I2', 1, 0, 'opened', 'firing', { actor: 'detector' }),
      event('I2', 2, 1000, 'notification', 'notified', { target: 'webhook:ops', delivered: 1, attempts: 1, detail: 'HTTP 200' }),
      event('I2', 3, 120_000, 'acknowledged', 'acknowledged', { actor: 'bob' }),
      event('I3', 1, 0, 'opened', 'firing', { actor: 'detector' }),
      event('I3', 2, 1000, 'notification', 'notified', { target: 'webhook:ops', delivered: 1, attempts: 2, detail: 'HTTP 200' }),
      event('I3', 3, 600_000, 'escalated', 'notified', { level: 1 }),
      event('I3', 4, 601_000, 'notification', 'notified', { target: 'email:oncall', delivered: 1, attempts: 1, detail: '250 OK', level: 1 }),
      event('I4', 1, 0, 'opened', 'firing', { actor: 'detector' }),
      event('I4', 2, 30_000, 'resolved', 'resolved', { actor: 'carol' }),
    ],
  });
  // A re-batched audit insert repeating I1's webhook row next to a new one.
  await client.insert({ table: 'alert_events', format: 'JSONEachRow', values: [i1Webhook, event('I4', 3, 31_000, 'continued_as_new', 'resolved')] });
}

/** Two judgements of one rollout (a pass, then a fail on reject_rate) by the real judge, and its audit trail. */
async function seedRollouts(): Promise<void> {
  const analysis = analysisSchema.parse({ minSamples: 20 });
  const times = (shift: number) => Array.from({ length: 40 }, (_, i) => 4 + shift + ((i * 37) % 11) / 10);
  const samples = (canaryRejects: number) =>
    new Map([
      ['reject_rate', { baseline: { values: [], events: 2000, hits: 2 }, canary: { values: [], events: 2000, hits: canaryRejects } }],
      ['processing_error_rate', { baseline: { values: [], events: 2000, hits: 0 }, canary: { values: [], events: 2000, hits: 0 } }],
      ['processing_time_ms', { baseline: { values: times(0), events: 40, hits: 0 }, canary: { values: times(0), events: 40, hits: 0 } }],
    ]);
  const input = (step: number, epoch: number, from: number, to: number) => ({
    rolloutId: 'rollout-orders-3', pipeline: 'orders', step, epoch, seq: step + 1, baselineVersion: '2', canaryVersion: '3', windowStart: at(from), windowEnd: at(to), analysis,
  });
  for (const [step, epoch, from, to, rejects] of [[0, 1, 0, 10, 3], [3, 2, 10, 20, 60]] as const) {
    const s = samples(rejects);
    const i = input(step, epoch, from, to);
    await client.insert({ table: 'canary_judgements', format: 'JSONEachRow', values: judgementRows(i, `j${step}`, judge(analysis, s), s, i.windowEnd) });
  }
  const ev = (seq: number, minute: number, type: string, mode: string, weight: number, epoch: number, actor = 'rollout') => ({
    rollout_id: 'rollout-orders-3', seq, pipeline: 'orders', baseline_version: '2', canary_version: '3', event_time: at(minute), event_type: type, step: 0,
    status: type === 'rolled_back' ? 'rolled_back' : 'progressing', actor, reason: type, routing_mode: mode, routing_weight: weight, routing_epoch: epoch, workflow_id: 'rollout-orders-3', run_id: 'r1',
  });
  await client.insert({
    table: 'rollout_events',
    format: 'JSONEachRow',
    values: [ev(1, 0, 'started', 'baseline', 0, 0, 'ann'), ev(2, 0, 'routing', 'shadow', 0, 1), ev(3, 10, 'routing', 'weight', 10, 2), ev(4, 20, 'routing', 'baseline', 0, 3), ev(5, 20, 'rolled_back', 'baseline', 0, 3, 'judge')],
  });
}

beforeAll(async () => {
  const config = testConfig();
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  client = createWarehouse(config, endpoints, database);
  await migrate(client, database, { admin });
  await seed();
  await seedAlerts();
  await seedRollouts();
});

afterAll(async () => {
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: database } });
  await client?.close();
  await admin?.close();
});

describe('dashboard SQL on the real ClickHouse', () => {
  it('runs every panel query and returns rows with the columns the panel shows', async () => {
    let ran = 0;
    for (const { file, dashboard } of dashboards) {
      for (const p of clickHousePanels(dashboard)) {
        for (const target of p.targets as unknown as ClickHouseQuery[]) {
          const rows = await run(target.rawSql);
          const where = `${file} / ${p.title}`;
          expect(rows.length, `${where}: rows for the seeded data`).toBeGreaterThan(0);
          // Every column the SELECT list names is a column of the result, in that order.
          const columns = selectColumns(target.rawSql);
          expect(columns.length, `${where}: named columns`).toBeGreaterThan(0);
          expect(Object.keys(rows[0]!), where).toEqual(columns);
          if (p.type === 'timeseries') expect(Object.keys(rows[0]!)[0], where).toBe('time');
          ran++;
        }
      }
    }
    expect(ran).toBeGreaterThanOrEqual(30);
  });

  it('runs every template variable query', async () => {
    for (const { file, dashboard } of dashboards) {
      for (const variable of (dashboard.templating.list ?? []) as VariableModel[]) {
        if (variable.type !== 'query') continue;
        const sql = (variable.query as { rawSql: string }).rawSql;
        const rows = await run(sql);
        expect(rows.length, `${file}: $${variable.name}`).toBeGreaterThan(0);
      }
    }
    const pipelines = await run('SELECT DISTINCT pipeline FROM lineage_batches ORDER BY pipeline');
    expect(pipelines.map((r) => r.pipeline)).toEqual(['orders', 'other']);
  });

  describe('operations', () => {
    const file = 'operations.json';

    it('charts the backlog left after each batch, per partition and minute, from the recorded high watermark', async () => {
      const rows = await panel(file, 'Backlog per partition');
      expect(rows.map((r) => [r.time, r.partition, num(r.lag)])).toEqual([
        [at(0).replace('.000Z', '').replace('T', ' '), 'requests[0]', 6],
        [at(1).replace('.000Z', '').replace('T', ' '), 'requests[0]', 0],
        [at(1).replace('.000Z', '').replace('T', ' '), 'requests[1]', 6],
        [at(2).replace('.000Z', '').replace('T', ' '), 'requests[1]', 2],
      ]);
    });

    it('measures freshness both ways and the landing latency of the seeded rows', async () => {
      const kafka = await panel(file, 'Freshness: Kafka to queryable');
      expect(kafka.length).toBe(3);
      for (const r of kafka) expect([num(r.p50), num(r.p95)]).toEqual([0.25, 0.25]);
      const age = await panel(file, 'Freshness: event age at landing');
      for (const r of age) expect(num(r.p95)).toBe(0);
      const latency = await panel(file, 'Landing latency (lineage)');
      expect(latency.map((r) => num(r.max))).toEqual([0.1, 0.3, 0.4]);
    });
  });

  describe('pipeline health', () => {
    const file = 'pipeline-health.json';

    it('events landed per minute add up to the seeded events of the selected pipeline', async () => {
      const rows = await panel(file, 'Events landed per minute');
      expect(new Set(rows.map((r) => r.pipeline))).toEqual(new Set(['orders']));
      expect(rows.map((r) => num(r.events_per_min))).toEqual([5, 7, 3]);
      expect(sum(rows, 'events_per_min')).toBe(15);
      // Wider buckets still show a per-minute rate: 15 events in one 5-minute bucket = 3 / min.
      const coarse = await panel(file, 'Events landed per minute', ctx({ intervalSeconds: 300 }));
      expect(coarse.map((r) => num(r.events_per_min))).toEqual([3]);
      // Both pipelines selected: the other one's 4 events appear as their own series.
      const both = await panel(file, 'Events landed per minute', ctx({ variables: { pipeline: ['orders', 'other'] } }));
      expect(sum(both, 'events_per_min')).toBe(19);
    });

    it('counts events, dead letters and the rejected share in the time range', async () => {
      expect(num((await panel(file, 'Events landed'))[0]!.events)).toBe(15);
      expect(num((await panel(file, 'Dead-lettered'))[0]!.dead_letters)).toBe(5);
      expect(num((await panel(file, 'Rejected share'))[0]!.rejected_ratio)).toBeCloseTo(5 / 20, 10);
      const [last] = await panel(file, 'Last batch landed');
      expect(num(last!.last_batch_at)).toBe(Date.parse(at(2, 3400)));
      // A range that ends before the data has nothing in it.
      const before = ctx({ from: new Date(base - 3_600_000), to: new Date(base - 60_000) });
      expect(num((await panel(file, 'Events landed', before))[0]!.events)).toBe(0);
    });

    it('dead letters per minute by reason add up per reason', async () => {
      const rows = await panel(file, 'Dead letters per minute by reason');
      const byReason = (code: string) => sum(rows.filter((r) => r.reason_code === code), 'dead_letters_per_min');
      expect(byReason('contract_violation')).toBe(3);
      expect(byReason('malformed_json')).toBe(2);
    });

    it('measures the Kafka-to-ClickHouse delay of the seeded events', async () => {
      const rows = await panel(file, 'Kafka-to-ClickHouse delay');
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(num(row.p50_ms)).toBe(250);
        expect(num(row.p95_ms)).toBe(250);
      }
    });

    it('counts batches and their latency from lineage', async () => {
      const batches = await panel(file, 'Batches per minute');
      expect(sum(batches, 'batches_per_min')).toBe(4);
      const latency = await panel(file, 'Batch latency');
      expect(latency.map((r) => num(r.max_ms))).toEqual([100, 300, 400]);
    });

    it('shows each partition position and the cursor over time', async () => {
      const positions = await panel(file, 'Partition positions');
      expect(positions.map((r) => [r.pipeline, r.topic, num(r.partition), num(r.next_offset), num(r.landed), num(r.rejected), num(r.batches)])).toEqual([
        ['orders', 'requests', 0, 12, 9, 3, 2],
        ['orders', 'requests', 1, 8, 6, 2, 2],
      ]);
      const cursor = await panel(file, 'Next offset per partition');
      const last = (tp: string) => Math.max(...cursor.filter((r) => r.topic_partition === tp).map((r) => num(r.next_offset)));
      expect(last('requests/0')).toBe(12);
      expect(last('requests/1')).toBe(8);
    });

    it('ranks the rejected reasons', async () => {
      const rows = await panel(file, 'Top rejected reasons');
      expect(rows.map((r) => [r.reason_code, num(r.rejected)])).toEqual([
        ['contract_violation', 3],
        ['malformed_json', 2],
      ]);
      expect(String(rows[0]!.example)).toMatch(/^contract_violation at offset/);
      expect(num(rows[0]!.partitions)).toBe(2);
    });
  });

  describe('alerts', () => {
    const file = 'alerts.json';
    const all = ctx().variables;

    it('counts open incidents by their latest status', async () => {
      expect(num((await panel(file, 'Open, not acknowledged', ctx({ variables: all })))[0]!.unacknowledged)).toBe(1);
      expect(num((await panel(file, 'Open, acknowledged', ctx({ variables: all })))[0]!.acknowledged_open)).toBe(1);
      const warningOnly = ctx({ variables: { ...all, severity: ['warning'] } });
      expect(num((await panel(file, 'Open, not acknowledged', warningOnly))[0]!.unacknowledged)).toBe(1);
      expect(num((await panel(file, 'Open, acknowledged', warningOnly))[0]!.acknowledged_open)).toBe(0);
      const open = await panel(file, 'Open alerts', ctx({ variables: all }));
      expect(open.map((r) => [r.workflow_id, r.severity, r.status, r.acknowledged_by])).toEqual([
        ['alert-i2', 'critical', 'acknowledged', 'bob'],
        ['alert-i3', 'warning', 'notified', ''],
      ]);
      expect(num(open[1]!.level)).toBe(1);
    });

    it('computes MTTA and MTTR overall and per severity', async () => {
      expect(num((await panel(file, 'MTTA', ctx({ variables: all })))[0]!.mtta_s)).toBe(90);
      expect(num((await panel(file, 'MTTR', ctx({ variables: all })))[0]!.mttr_s)).toBe(165);
      const rows = await panel(file, 'MTTA / MTTR per severity', ctx({ variables: all }));
      const value = (v: unknown) => (v === null ? null : num(v));
      expect(rows.map((r) => [r.severity, num(r.incidents), num(r.acknowledged), num(r.resolved), value(r.mtta_s), value(r.worst_tta_s), value(r.mttr_s)])).toEqual([
        ['critical', 2, 2, 1, 90, 120, 300],
        ['warning', 1, 0, 0, null, null, null],
        ['info', 1, 0, 1, null, null, 30],
      ]);
      // Incidents opened before the range are not part of it.
      const later = ctx({ from: new Date(base + 90_000), variables: all });
      expect((await panel(file, 'MTTA / MTTR per severity', later)).map((r) => r.severity)).toEqual(['warning', 'info']);
    });

    it('charts incidents opened by severity', async () => {
      const rows = await panel(file, 'Alerts opened', ctx({ variables: all }));
      expect(sum(rows, 'opened')).toBe(4);
      expect(sum(rows.filter((r) => r.severity === 'critical'), 'opened')).toBe(2);
    });

    it('counts notifications and failures per channel, each audit row once', async () => {
      const sent = await panel(file, 'Notifications per channel', ctx({ variables: all }));
      expect(sum(sent.filter((r) => r.channel === 'webhook'), 'notifications')).toBe(3);
      expect(sum(sent.filter((r) => r.channel === 'email'), 'notifications')).toBe(2);
      const failed = await panel(file, 'Failed notifications per channel', ctx({ variables: all }));
      expect(failed.map((r) => [r.channel, num(r.failed)])).toEqual([['email', 1]]);
      const table = await panel(file, 'Notification delivery by target', ctx({ variables: all }));
      expect(table.map((r) => [r.channel, r.target, num(r.notifications), num(r.delivered_ok), num(r.failed), num(r.failure_rate), r.last_failure])).toEqual([
        ['email', 'email:oncall', 2, 1, 1, 0.5, 'SMTP 550 mailbox unavailable'],
        ['webhook', 'webhook:ops', 3, 3, 0, 0, ''],
      ]);
    });
  });

  describe('canary rollouts', () => {
    const file = 'canary-rollouts.json';

    it('shows each judgement per metric, and counts failed judgements once', async () => {
      expect(num((await panel(file, 'Judgements failed'))[0]!.failed)).toBe(1);
      expect(num((await panel(file, 'Judgements waiting for a person'))[0]!.waiting)).toBe(0);
      const reports = await panel(file, 'Judgement reports');
      expect(reports.map((r) => [num(r.step), r.outcome, r.metric, r.verdict])).toEqual([
        [4, 'fail', 'processing_error_rate', 'pass'],
        [4, 'fail', 'processing_time_ms', 'pass'],
        [4, 'fail', 'reject_rate', 'fail'],
        [1, 'pass', 'processing_error_rate', 'pass'],
        [1, 'pass', 'processing_time_ms', 'pass'],
        [1, 'pass', 'reject_rate', 'pass'],
      ]);
      expect(reports[2]).toMatchObject({ test: 'fisher-exact', baseline_n: expect.anything() });
      expect(num(reports[2]!.p_value)).toBeLessThan(0.02);
      const other = await panel(file, 'Judgement reports', ctx({ variables: { ...ctx().variables, rollout_pipeline: ['payments'] } }));
      expect(other).toEqual([]);
    });

    it('lists the audit trail newest first with the routing each event left', async () => {
      const events = await panel(file, 'Rollout events');
      expect(events.map((e) => [num(e.seq), e.event_type, e.routing_mode, num(e.routing_epoch)])).toEqual([
        [5, 'rolled_back', 'baseline', 3],
        [4, 'routing', 'baseline', 3],
        [3, 'routing', 'weight', 2],
        [2, 'routing', 'shadow', 1],
        [1, 'started', 'baseline', 0],
      ]);
    });
  });

  describe('service telemetry', () => {
    const file = 'service-telemetry.json';

    it('offers the services of the selected pipelines', async () => {
      const dashboard = dashboards.find((d) => d.file === file)!.dashboard;
      const variable = dashboard.templating.list!.find((v) => v.name === 'service')!;
      const rows = await run((variable.query as { rawSql: string }).rawSql);
      expect(rows.map((r) => r.service)).toEqual(['checkout', 'search']);
    });

    it('reads the latest computation of each window and only the whole-service rows', async () => {
      expect(num((await panel(file, 'Requests'))[0]!.requests)).toBe(900);
      expect(num((await panel(file, 'Error rate'))[0]!.error_rate)).toBeCloseTo(33 / 900, 10);
      expect(num((await panel(file, 'Worst p95 latency'))[0]!.worst_p95_ms)).toBe(900);
    });

    it('charts requests, error rate and p95 per service and minute', async () => {
      const requests = await panel(file, 'Requests per minute');
      expect(sum(requests.filter((r) => r.service === 'checkout'), 'requests_per_min')).toBe(300);
      expect(sum(requests.filter((r) => r.service === 'search'), 'requests_per_min')).toBe(600);
      const errorRate = await panel(file, 'Error rate per service');
      expect(errorRate.filter((r) => r.service === 'checkout').map((r) => num(r.error_rate))).toEqual([0.02, 0.25, 0.0125]);
      expect(errorRate.filter((r) => r.service === 'search').every((r) => num(r.error_rate) === 0)).toBe(true);
      const p95 = await panel(file, 'p95 latency');
      expect(p95.filter((r) => r.service === 'checkout').map((r) => num(r.p95_ms))).toEqual([120, 900, 110]);
    });

    it('filters by the service variable', async () => {
      const rows = await panel(file, 'Services', ctx({ variables: { pipeline: ['orders'], service: ['search'] } }));
      expect(rows.map((r) => [r.service, num(r.requests), num(r.server_errors)])).toEqual([['search', 600, 0]]);
      const all = await panel(file, 'Services');
      expect(all.map((r) => [r.service, num(r.requests), num(r.server_errors), num(r.worst_p95_ms)])).toEqual([
        ['search', 600, 0, 50],
        ['checkout', 300, 33, 900],
      ]);
    });

    it('ranks routes by server errors, excluding the whole-service rows', async () => {
      const rows = await panel(file, 'Routes with the most server errors');
      expect(rows.map((r) => [r.service, r.route, num(r.server_errors)])).toEqual([
        ['checkout', 'POST /pay', 28],
        ['checkout', 'GET /cart', 2],
        ['search', 'GET /q', 0],
      ]);
    });
  });
});
