/**
 * Prometheus metrics and JSON logs of a real worker process during a real pipeline run: the
 * worker (`workers/worker.ts`, as `npm run worker` runs it) serves /metrics on METRICS_PORT and the
 * Temporal SDK's metrics on TEMPORAL_METRICS_PORT (both free ports picked here); events with known
 * valid and rejected counts go through Kafka, the pipeline workflow lands them in ClickHouse, and
 * the scraped values must have moved by exactly what the run caused. The worker's stdout must be
 * one JSON object per line, and every line written inside a landing must name its pipeline,
 * batch, workflow and run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionWorkflowId, pipelineWorkflowId, type PipelineInputRaw } from '../../schemas/ingest/pipeline.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents, type GeneratorSummary } from '../../workers/generator.js';
import { buildDashboards } from '../../dashboards/build.js';
import { prometheusPanels } from '../../dashboards/panels.js';
import { ensurePrometheus } from '../../infra/prometheus/install.js';
import { startPrometheus, type RunningPrometheus } from '../../infra/prometheus/local.js';
import { freePort, scrape, sumOf, type Sample } from '../support/observability.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const config = testConfig();
const id = uniqueId('m');
const pipelineId = id.replace(/_/g, '-').slice(2);
const topic = `metrics-${id}`;
const taskQueue = `metrics-${id}`;
let kafka: Kafka;
let kadmin: Admin;
let temporal: Client;
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let worker: ChildProcess;
const stdout: string[] = [];
let metricsUrl: string;
let temporalMetricsUrl: string;
let prometheus: RunningPrometheus;
let runStarted = 0;
let produced: GeneratorSummary;
const promDir = mkdtempSync(join(resolve(config.PLATFORM_STATE_DIR), 'prometheus-test-'));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  kafka = createKafka(config, endpoints, `-${id}`);
  kadmin = kafka.admin();
  await kadmin.connect();
  temporal = await connectTemporal(config, endpoints);
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  const [mp, tp] = [await freePort(), await freePort()];
  metricsUrl = `http://127.0.0.1:${mp}/metrics`;
  temporalMetricsUrl = `http://127.0.0.1:${tp}/metrics`;
  worker = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
    cwd: root,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: endpoints.temporalAddress,
      KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
      CLICKHOUSE_URL: endpoints.clickhouseUrl,
      CLICKHOUSE_DATABASE: id,
      TEMPORAL_TASK_QUEUE: taskQueue,
      METRICS_PORT: String(mp),
      TEMPORAL_METRICS_PORT: String(tp),
      LOCAL_ACK_PORT: String(await freePort()),
      LOG_LEVEL: 'debug',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let partial = '';
  worker.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    stdout.push(...lines);
  });
  worker.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  // A real Prometheus (Debian package, unpacked under the state folder) scraping both endpoints every second.
  const binary = await ensurePrometheus(resolve(config.PLATFORM_STATE_DIR), (line) => console.log(line));
  prometheus = await startPrometheus({ binary, dir: promDir, port: await freePort(), scrapeIntervalSeconds: 1, jobs: [{ job: 'worker', targets: [`127.0.0.1:${mp}`] }, { job: 'temporal-sdk', targets: [`127.0.0.1:${tp}`] }] });
});

afterAll(async () => {
  if (prometheus && prometheus.child.exitCode === null) {
    prometheus.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
  }
  rmSync(promDir, { recursive: true, force: true });
  await temporal?.workflow.getHandle(pipelineWorkflowId(pipelineId)).terminate('test over').catch(() => undefined);
  for (const p of [0, 1, 2]) await temporal?.workflow.getHandle(partitionWorkflowId(pipelineId, topic, p)).terminate('test over').catch(() => undefined);
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } }).catch(() => undefined);
  await Promise.all([kadmin?.disconnect(), admin?.close(), warehouse?.close(), temporal?.connection.close()]);
});

describe('worker metrics and logs during a pipeline run', () => {
  it('counters, histograms and lag moved by exactly what the run landed; SDK metrics served; JSON log lines carry the batch', { timeout: 300_000 }, async () => {
    // Before the run: the endpoint answers and holds nothing for this pipeline.
    const before = await waitFor('the worker /metrics endpoint', () => scrape(metricsUrl));
    expect(sumOf(before, 'streamwarden_events_landed_total', { pipeline: pipelineId })).toBe(0);
    expect(before.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);

    runStarted = Date.now();
    produced = await produceEvents(kafka, { topic, partitions: 3, count: 1200, rate: 1000, invalid: 0.05, malformed: 0.03, seed: 12, startTime: Date.now() - 60_000 });
    expect(produced.rejected).toBeGreaterThan(0);
    const input: PipelineInputRaw = { pipelineId, topic, batchMaxEvents: 100, pollIntervalMs: 500, rollup: { intervalMs: 1000 } };
    await temporal.workflow.start('pipeline', { taskQueue, workflowId: pipelineWorkflowId(pipelineId), args: [input] });

    const ends = new Map((await kadmin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
    await waitFor('group offsets at the end of every partition', async () => {
      const [t] = await kadmin.fetchOffsets({ groupId: `streamwarden-${pipelineId}`, topics: [topic] });
      const committed = new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      return [...ends].every(([p, high]) => committed.get(p) === high) ? true : undefined;
    });
    // A caught-up partition plans again within pollIntervalMs; the lag gauge then reads 0 everywhere.
    const after: Sample[] = await waitFor('lag 0 on every partition and a rollup run', async () => {
      const s = await scrape(metricsUrl);
      const lags = s.filter((x) => x.name === 'streamwarden_consumer_lag_events' && x.labels.pipeline === pipelineId);
      return lags.length === 3 && lags.every((x) => x.value === 0) && sumOf(s, 'streamwarden_rollup_duration_seconds_count') > 0 ? s : undefined;
    });

    const p = { pipeline: pipelineId, topic };
    expect(sumOf(after, 'streamwarden_events_landed_total', p)).toBe(produced.valid);
    for (const [reason, n] of Object.entries(produced.byReason)) expect(sumOf(after, 'streamwarden_events_rejected_total', { ...p, reason })).toBe(n);
    expect(sumOf(after, 'streamwarden_events_rejected_total', p)).toBe(produced.rejected);

    // One histogram observation per landed batch, the same batches lineage recorded.
    const [lineage] = await rows<{ batches: string; offsets: string }>('SELECT count() AS batches, sum(to_offset - from_offset) AS offsets FROM lineage_batches');
    // Backlog over time: every batch records the high watermark it was planned against (all produced before the start).
    const watermarks = await rows<{ partition: number; hw: string | null }>('SELECT DISTINCT partition, high_watermark AS hw FROM lineage_batches ORDER BY partition');
    expect(watermarks.map((w) => [w.partition, w.hw === null ? null : Number(w.hw)])).toEqual([...ends].sort(([a], [b]) => a - b));
    expect(sumOf(after, 'streamwarden_batches_total', { ...p, outcome: 'success' })).toBe(Number(lineage!.batches));
    expect(sumOf(after, 'streamwarden_batch_landing_duration_seconds_count', { ...p, outcome: 'success' })).toBe(Number(lineage!.batches));
    expect(sumOf(after, 'streamwarden_batch_size_events_count', p)).toBe(Number(lineage!.batches));
    expect(sumOf(after, 'streamwarden_batch_size_events_sum', p)).toBe(produced.total);
    expect(sumOf(after, 'streamwarden_batch_landing_duration_seconds_sum', p)).toBeGreaterThan(0);

    // Freshness: one observation per landed event, both ways; event times were ~1 minute old.
    expect(sumOf(after, 'streamwarden_event_age_at_landing_seconds_count', p)).toBe(produced.valid);
    expect(sumOf(after, 'streamwarden_kafka_to_queryable_seconds_count', p)).toBe(produced.valid);
    expect(sumOf(after, 'streamwarden_event_age_at_landing_seconds_sum', p) / produced.valid).toBeGreaterThan(30);
    expect(sumOf(after, 'streamwarden_activity_duration_seconds_count', { activity: 'landBatch', outcome: 'success' })).toBe(Number(lineage!.batches));

    // The Temporal SDK's own exporter: activity executions of this worker were counted.
    const sdk = await scrape(temporalMetricsUrl);
    expect(sumOf(sdk, 'temporal_activity_execution_latency_seconds_count', { activity_type: 'landBatch' })).toBeGreaterThanOrEqual(Number(lineage!.batches));

    // Logs: every stdout line is one JSON object; lines written inside a landing carry the batch.
    const parsed = stdout.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.length).toBeGreaterThan(0);
    const landings = parsed.filter((l) => l.activity === 'landBatch');
    expect(landings.length).toBeGreaterThanOrEqual(Number(lineage!.batches));
    for (const l of landings) {
      expect(l).toMatchObject({ pipeline: pipelineId, workflowId: expect.stringMatching(/^pipeline-/), runId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      expect(String(l.batchId)).toMatch(new RegExp(`^${pipelineId}/${topic}/\\d+/\\d+-\\d+$`));
      expect(typeof l.level).toBe('string');
      expect(typeof l.time).toBe('string');
    }
  });

  it('every PromQL query of the dashboards runs on a real Prometheus scraping that worker, and shows the run', { timeout: 120_000 }, async () => {
    // Prometheus scrapes every second: wait until it has scraped the state the first test saw (lag 0 everywhere).
    await waitFor('Prometheus to scrape lag 0 on every partition', async () => {
      const q = `count(streamwarden_consumer_lag_events{pipeline="${pipelineId}"} == 0)`;
      const body = (await (await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: q })}`)).json()) as { data: { result: { value: [number, string] }[] } };
      return body.data.result[0]?.value[1] === '3' ? true : undefined;
    }, 30_000);
    // The SDK's exporter is a second scrape target, scraped on its own schedule: wait until
    // Prometheus holds this worker's landBatch executions too (CI once queried before it did).
    await waitFor('Prometheus to scrape the SDK landBatch executions', async () => {
      const q = 'count(temporal_activity_execution_latency_seconds_count{activity_type="landBatch"})';
      const body = (await (await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: q })}`)).json()) as { data: { result: { value: [number, string] }[] } };
      return Number(body.data.result[0]?.value[1] ?? 0) > 0 ? true : undefined;
    }, 30_000);
    // Each rate() panel needs two samples inside its 15 s window. Under CI load a scrape of the
    // worker can time out (the timeout is the 1 s interval) and Prometheus then marks every series
    // stale, so one scrape showing lag 0 does not mean two samples of each counter (CI run of stop
    // 17 got no Throughput series at all). Wait until it holds two recent samples of every series
    // the assertions below read.
    const pipelineSel = `pipeline="${pipelineId}"`;
    for (const metric of ['streamwarden_events_landed_total', 'streamwarden_events_rejected_total', 'streamwarden_consumer_lag_events', 'streamwarden_batch_landing_duration_seconds_count', 'streamwarden_kafka_to_queryable_seconds_count']) {
      await waitFor(`Prometheus to hold two samples of ${metric} within 15 s`, async () => {
        const q = `min(count_over_time(${metric}{${pipelineSel}}[15s]))`;
        const body = (await (await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: q })}`)).json()) as { data: { result: { value: [number, string] }[] } };
        return Number(body.data.result[0]?.value[1] ?? 0) >= 2 ? true : undefined;
      }, 30_000);
    }
    const end = Date.now() / 1000 + 1;
    const start = runStarted / 1000 - 5;
    const escaped = pipelineId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const results = new Map<string, { metric: Record<string, string>; values: [number, string][] }[]>();
    for (const { file, dashboard } of buildDashboards()) {
      for (const panel of prometheusPanels(dashboard)) {
        for (const t of (panel.targets ?? []) as unknown as { expr: string }[]) {
          // What Grafana substitutes: $__rate_interval (at least 4 scrape intervals) and the pipeline variable as a regex.
          const expr = t.expr.replaceAll('$__rate_interval', '15s').replaceAll('${pipeline:regex}', escaped);
          expect(expr, `${file} / ${panel.title}: unknown template form`).not.toContain('$');
          const url = `${prometheus.url}/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(start), end: String(end), step: '1' })}`;
          const body = (await (await fetch(url)).json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; values: [number, string][] }[] } };
          expect(body.status, `${file} / ${panel.title}: ${expr}: ${body.error ?? ''}`).toBe('success');
          results.set(`${panel.title}|${expr}`, body.data.result);
        }
      }
    }
    const series = (title: string, metricPart: string) => [...results].find(([k]) => k.startsWith(`${title}|`) && k.includes(metricPart))?.[1] ?? [];
    const max = (s: { values: [number, string][] }) => Math.max(...s.values.map(([, v]) => Number(v)).filter((v) => Number.isFinite(v)));
    const landed = series('Throughput', 'events_landed_total');
    expect(landed.map((s) => s.metric.pipeline)).toEqual([pipelineId]);
    expect(max(landed[0]!)).toBeGreaterThan(0);
    expect(new Set(series('Rejections by reason', 'rejected').map((s) => s.metric.reason))).toEqual(new Set(Object.keys(produced.byReason)));
    const lag = series('Consumer lag per partition', 'consumer_lag');
    expect(lag.map((s) => s.metric.partition).sort()).toEqual(['0', '1', '2']);
    expect(lag.map((s) => Number(s.values[s.values.length - 1]![1])), JSON.stringify(lag.map((s) => s.values.slice(-3)))).toEqual([0, 0, 0]);
    expect(max(series('Batch landing latency', 'batch_landing_duration')[0]!)).toBeGreaterThan(0);
    expect(max(series('Freshness (metrics)', 'kafka_to_queryable')[0]!)).toBeGreaterThan(0);
    const sdk = series('Temporal: activity schedule-to-start and execution', 'execution_latency');
    expect(sdk.map((s) => s.metric.activity_type)).toContain('landBatch');
  });
});
