/**
 * The alert workflow on the shared Temporal dev server (real visibility, real timers, seconds-long
 * policy): the documented visibility query finds the incident by its search attributes, and the
 * `platform alerts` CLI, run as a child process, lists, acknowledges, shows and resolves it and
 * manages silences. Then the README's MTTA/MTTR SQL runs on the audit rows.
 */
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertResponseTimesSql, createAlertAuditActivities } from '../../activities/alerting/alert-audit.js';
import { fireAlert } from '../../activities/alerting/alert-firing.js';
import { createAlertRoutingActivities } from '../../activities/alerting/alert-routing.js';
import { createNotifyActivities } from '../../activities/alerting/notify.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { alertingConfigSchema } from '../../schemas/alerting/alert-policy.js';
import type { IncidentState } from '../../schemas/alerting/alert-incident.js';
import { connectTemporal, createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';
import { WebhookReceiver, waitFor } from './alert-harness.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

const config = testConfig();
const database = uniqueId('t_alertvis');
const taskQueue = uniqueId('alerts_vis');
const receiver = new WebhookReceiver();
let client: Client;
let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
const admin = () => createWarehouse(config, stackEndpoints(), 'default');
let warehouse: ReturnType<typeof createWarehouse>;
/** Incidents this file opened, terminated at the end if a failed assertion left them running on the shared server. */
const opened: string[] = [];

/** Runs `platform alerts ...` in a child process against the shared stack and this test's database. */
async function platform(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('npx', ['tsx', 'workers/platform.ts', 'alerts', ...args], {
      cwd: root,
      env: { ...process.env, CLICKHOUSE_DATABASE: database, CLICKHOUSE_URL: stackEndpoints().clickhouseUrl, TEMPORAL_ADDRESS: stackEndpoints().temporalAddress },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  warehouse = createWarehouse(config, endpoints, database);
  const a = admin();
  await migrate(warehouse, database, { admin: a });
  await a.close();
  await receiver.start();
  client = await connectTemporal(config, endpoints);
  connection = await NativeConnection.connect({ address: endpoints.temporalAddress });
  const alerting = alertingConfigSchema.parse({
    version: 1,
    receivers: { team: { targets: ['webhook:team'] }, oncall: { targets: ['webhook:oncall'] } },
    policies: { fast: { levels: [{ receivers: [], delay: '0s' }, { receivers: ['oncall'], delay: '3s' }], repeatInterval: '1h' } },
    route: { receiver: 'team', policy: 'fast', groupBy: [], groupWait: '0s', groupInterval: '1m', repeatInterval: '1h' },
  });
  worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)),
    activities: {
      ...createNotifyActivities({
        targets: { 'webhook:team': { type: 'webhook', url: `${receiver.url}/team` }, 'webhook:oncall': { type: 'webhook', url: `${receiver.url}/oncall` } },
        signingSecret: 'test-signing-secret-0123456789',
        publicUrl: 'http://ack.test:8787',
        log: { info: () => undefined, warn: () => undefined },
      }),
      ...createAlertAuditActivities({ warehouse }),
      ...createAlertRoutingActivities({ alerting }),
    },
  });
  running = worker.run();
});

afterAll(async () => {
  for (const id of opened) {
    const handle = client.workflow.getHandle(id);
    if ((await handle.describe()).status.name === 'RUNNING') await handle.terminate('test cleanup');
  }
  worker?.shutdown();
  await running;
  await connection?.close();
  await client?.connection.close();
  await receiver.stop();
  const a = admin();
  await a.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: database } });
  await Promise.all([a.close(), warehouse?.close()]);
});

describe('alert workflow on the dev server', () => {
  it('is found by the documented visibility query and steered by the platform CLI', async () => {
    const service = uniqueId('svc');
    const { workflowId, fingerprint } = await fireAlert(client, taskQueue, {
      detector: 'error_rate_high',
      labels: { service, pipeline: 'demo' },
      severity: 'critical',
      summary: `error rate 9% on ${service}`,
      value: 0.09,
      threshold: 0.05,
      windowStart: new Date(Date.now() - 60_000).toISOString(),
      windowEnd: new Date().toISOString(),
      pipeline: 'demo',
      firedAt: new Date().toISOString(),
    });
    opened.push(workflowId);

    // Level 1 after 3 real seconds, then the UI query lists it by its search attributes.
    await waitFor('level 1 notification', () => receiver.about(workflowId).some((r) => r.path === '/oncall'), 60_000);
    const query = `AlertStatus = "notified" AND AlertSeverity = "critical" AND AlertFingerprint = "${fingerprint}"`;
    const listed = await waitFor('visibility', async () => {
      for await (const wf of client.workflow.list({ query })) if (wf.workflowId === workflowId && wf.searchAttributes.AlertLevel?.[0] === 1) return wf;
      return undefined;
    });
    expect(listed.searchAttributes).toMatchObject({ Pipeline: ['demo'] });
    const description = await client.workflow.getHandle(workflowId).describe();
    expect(await description.staticSummary()).toMatch(/CRITICAL.*error_rate_high/);

    // The list also says what each incident is about (detector and summary, from the audit trail).
    await waitFor('audit row', async () => {
      const rows = await (await warehouse.query({ query: 'SELECT 1 FROM alert_events WHERE workflow_id = {id:String} LIMIT 1', query_params: { id: workflowId }, format: 'JSONEachRow' })).json();
      return rows.length > 0;
    });
    const list = await platform('list', '--status', 'notified', '--severity', 'critical', '--json');
    expect(list.code, list.stderr).toBe(0);
    const listedRow = (JSON.parse(list.stdout) as { id: string; detector: string; summary: string }[]).find((r) => r.id === workflowId);
    expect(listedRow).toMatchObject({ detector: 'error_rate_high', summary: `error rate 9% on ${service}` });
    const table = await platform('list', '--status', 'notified', '--severity', 'critical');
    expect(table.stdout.split('\n').find((l) => l.includes(workflowId))).toMatch(new RegExp(`error_rate_high +error rate 9% on ${service}`));

    // The update's validator refuses bad input with a message naming the field.
    const badAck = await platform('ack', workflowId, '--by', 'cli-user', '--note', 'x'.repeat(2001));
    expect(badAck.code).not.toBe(0);
    expect(badAck.stderr).toMatch(/acknowledge: input\.note: .*2000/);

    const ack = await platform('ack', fingerprint, '--by', 'cli-user', '--note', 'looking');
    expect(ack.code, ack.stderr).toBe(0);
    expect(ack.stdout).toMatch(/acknowledged by cli-user/);
    await waitFor('acknowledged in visibility', async () => {
      for await (const wf of client.workflow.list({ query: `AlertStatus = "acknowledged" AND AlertAcknowledgedBy = "cli-user" AND AlertFingerprint = "${fingerprint}"` })) return wf;
      return undefined;
    });

    const show = await platform('show', workflowId);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/acknowledged .*cli-user/);
    expect(show.stdout).toMatch(/escalated/);

    const resolved = await platform('resolve', workflowId, '--by', 'cli-user', '--note', 'fixed');
    expect(resolved.code, resolved.stderr).toBe(0);
    const final: IncidentState = await client.workflow.getHandle(workflowId).result();
    expect(final).toMatchObject({ status: 'resolved', resolvedBy: 'cli-user', acknowledgedBy: 'cli-user' });
    // Acting on the closed incident says it is closed (not the SDK's bare "workflow execution already completed").
    const late = await platform('ack', workflowId, '--by', 'cli-user');
    expect(late.code).not.toBe(0);
    expect(late.stderr).toMatch(new RegExp(`${workflowId} is closed \\(completed at [0-9T:.-]+Z\\); nothing was changed`));
    const missing = await platform('resolve', 'alert-0000000000000000', '--by', 'cli-user');
    expect(missing.stderr).toContain('no incident alert-0000000000000000');

    // Silences from the CLI, stored in ClickHouse.
    const silence = await platform('silence', '--matcher', `service=${service}`, '--matcher', 'severity=~"warning|critical"', '--duration', '1h', '--by', 'cli-user', '--comment', 'deploy');
    expect(silence.code, silence.stderr).toBe(0);
    const id = /silence ([0-9a-f-]{36})/.exec(silence.stdout)?.[1];
    expect(id).toBeDefined();
    const silences = await platform('silences', '--json');
    expect((JSON.parse(silences.stdout) as { id: string }[]).map((s) => s.id)).toContain(id);
    expect((await platform('unsilence', id!)).code).toBe(0);
    expect((JSON.parse((await platform('silences', '--json')).stdout) as { id: string }[]).map((s) => s.id)).not.toContain(id);

    // MTTA / MTTR per severity and per receiver, from the audit rows.
    const rows = await waitFor('audit rows of the resolution', async () => {
      const r = await (await warehouse.query({ query: alertResponseTimesSql('severity'), query_params: { days: 1 }, format: 'JSONEachRow' })).json<Record<string, unknown>>();
      return r.length === 1 && Number(r[0]!.resolved) === 1 ? r : undefined;
    });
    // Counts are UInt64: JSON strings on a ClickHouse server by default, so compare as numbers.
    const counts = (r: Record<string, unknown>, key: string) => [r[key], Number(r.incidents), Number(r.acknowledged), Number(r.resolved)];
    expect(counts(rows[0]!, 'severity')).toEqual(['critical', 1, 1, 1]);
    expect(Number(rows[0]!.mtta_s)).toBeGreaterThan(3);
    expect(Number(rows[0]!.mttr_s)).toBeGreaterThanOrEqual(Number(rows[0]!.mtta_s));
    const byReceiver = await (await warehouse.query({ query: alertResponseTimesSql('route_receiver'), query_params: { days: 1 }, format: 'JSONEachRow' })).json<Record<string, unknown>>();
    expect(byReceiver.map((r) => counts(r, 'route_receiver'))).toEqual([['team', 1, 1, 1]]);
  });

  it('platform pipeline stop resolves the pipeline\'s open incidents, which nothing would clear any more', async () => {
    // Walkthrough finding: after `pipeline stop` the aggregator was gone and its incidents escalated forever.
    const pipelineId = uniqueId('stopped');
    // A pipeline no worker serves: stop only needs it to exist.
    await client.workflow.start('pipeline', { taskQueue: uniqueId('nobody'), workflowId: `pipeline-${pipelineId}`, args: [{ pipelineId, topic: `t-${pipelineId}` }] });
    const { workflowId } = await fireAlert(client, taskQueue, {
      detector: 'latency_ewma',
      labels: { service: uniqueId('svc'), pipeline: pipelineId },
      severity: 'critical',
      summary: 'p95 z-score 6',
      value: 6,
      threshold: 3,
      windowStart: new Date(Date.now() - 60_000).toISOString(),
      windowEnd: new Date().toISOString(),
      pipeline: pipelineId,
      firedAt: new Date().toISOString(),
    });
    opened.push(workflowId);
    await waitFor('incident visible with its pipeline', async () => {
      for await (const wf of client.workflow.list({ query: `WorkflowType = "alert" AND ExecutionStatus = "Running" AND Pipeline = "${pipelineId}"` })) return wf;
      return undefined;
    });
    const env = { ...process.env, TEMPORAL_ADDRESS: stackEndpoints().temporalAddress };
    const { stdout } = await run('npx', ['tsx', 'workers/platform.ts', 'pipeline', 'stop', '--id', pipelineId, '--by', 'ann'], { cwd: root, env });
    expect(stdout).toContain(`resolved 1 open incident(s) of pipeline ${pipelineId}`);
    const final: IncidentState = await client.workflow.getHandle(workflowId).result();
    expect(final).toMatchObject({ status: 'resolved', resolvedBy: 'platform pipeline stop (ann)' });
    expect(final.timeline.find((e) => e.type === 'resolved')?.note).toBe(`pipeline ${pipelineId} stopped; its detectors no longer run`);
    await client.workflow.getHandle(`pipeline-${pipelineId}`).terminate('test cleanup').catch(() => undefined);
  });
});
