/**
 * Canary rollouts on the shared Temporal dev server (real visibility, real search attributes) with
 * a real worker, the real rollout and alert activities, ClickHouse and a local webhook receiver:
 * `platform rollouts start` validates before starting and refuses a second rollout of a pipeline
 * naming the running one; the rollout is found by `RolloutPipeline` / `RolloutStatus`; `abort`
 * records who and why in `rollout_events` and opens an incident that notifies.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertAuditActivities } from '../../activities/alerting/alert-audit.js';
import { createAlertRoutingActivities } from '../../activities/alerting/alert-routing.js';
import { createNotifyActivities } from '../../activities/alerting/notify.js';
import { createRolloutActivities } from '../../activities/rollouts/rollout-activities.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { alertingConfigSchema } from '../../schemas/alerting/alert-policy.js';
import type { RolloutState } from '../../schemas/rollouts/rollout-state.js';
import { abortUpdate, stateQuery } from '../../workflows/rollouts/canary-rollout.js';
import { RolloutRefusedError, listQuery, startRollout } from '../../workers/cli/rollouts.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import { rolloutWorkflowId } from '../../schemas/rollouts/rollout.js';
import { createWarehouse } from '../../workers/connections.js';
import { WebhookReceiver, waitFor } from '../workflows/alert-harness.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';
import { processors as catalogue } from '../fixtures/processors/regressed.js';
import { WorkflowFailedError } from '@temporalio/client';

const config = testConfig();
const id = uniqueId('t_rollcli');
const taskQueue = `rollouts-${id}`;
const pipeline = id.replace(/_/g, '-');
let admin: ClickHouseClient;
let warehouse: ClickHouseClient;
let connection: Connection;
let client: Client;
let nativeConnection: NativeConnection;
let worker: Worker;
let workerRun: Promise<void>;
// A second worker whose rollout activities keep the platform's default: a pipeline that is not
// running is refused. The first plays no pipeline (escape hatch requireRunningPipeline: false).
const strictQueue = `${taskQueue}-strict`;
let strictWorker: Worker;
let strictRun: Promise<void>;
/** Analytics declared for `pipeline` (as rollout-pipeline.test.ts declares them for its pipelines). */
const analytics = analyticsFileSchema.parse({
  pipelines: [
    {
      pipeline,
      source: { table: 'request_enriched_requests' },
      fields: { service: { column: 'service' }, duration: { column: 'duration_ms', type: 'number' } },
      aggregations: [{ name: 'requests_1s', window: { type: 'tumbling', size: '1s' }, measures: [{ name: 'requests', kind: 'count' }, { name: 'p50', kind: 'p50', field: 'duration' }] }],
      detectors: [{ name: 'slow_p50', aggregation: 'requests_1s', measure: 'p50', method: { kind: 'threshold' }, levels: { warning: 30 }, clear: { below: 30 } }],
    },
  ],
});
/** What the tests that play no pipeline pass to startRollout. */
const noPipeline = { catalogue, analytics, requireRunningPipeline: false };
const receiver = new WebhookReceiver();
const started: string[] = [];

beforeAll(async () => {
  const endpoints = stackEndpoints();
  admin = createWarehouse(config, endpoints, 'default');
  warehouse = createWarehouse(config, endpoints, id);
  await migrate(warehouse, id, { admin });
  connection = await Connection.connect({ address: endpoints.temporalAddress });
  client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  await receiver.start();
  const alerting = alertingConfigSchema.parse({
    version: 1,
    receivers: { release: { targets: ['webhook:release'] } },
    policies: { release: { levels: [{ receivers: ['release'], delay: '0s' }], repeatInterval: '12h' } },
    route: { receiver: 'release', policy: 'release', groupBy: [], groupWait: '0s', groupInterval: '1m', repeatInterval: '12h' },
  });
  nativeConnection = await NativeConnection.connect({ address: endpoints.temporalAddress });
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)) });
  strictWorker = await Worker.create({
    connection: nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: strictQueue,
    workflowBundle,
    activities: createRolloutActivities({ warehouse, temporal: client, taskQueue: strictQueue, catalogue, analytics }),
  });
  strictRun = strictWorker.run();
  worker = await Worker.create({
    connection: nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowBundle,
    activities: {
      ...createAlertRoutingActivities({ alerting, client, taskQueue }),
      ...createAlertAuditActivities({ warehouse }),
      ...createNotifyActivities({
        targets: { 'webhook:release': { type: 'webhook', url: `${receiver.url}/release`, timeoutMs: 5000 } },
        signingSecret: 'test-signing-secret-0123456789',
        publicUrl: 'http://ack.test:8787',
        log: { info: () => undefined, warn: () => undefined },
      }),
      ...createRolloutActivities({ warehouse, temporal: client, taskQueue, catalogue, analytics, requireRunningPipeline: false }),
    },
  });
  workerRun = worker.run();
}, 240_000);

afterAll(async () => {
  // Close what the tests opened on the shared server, so nothing of ours keeps running there.
  for (const workflowId of [...started, ...new Set(receiver.received.flatMap((r) => r.body.alerts.map((a) => a.incidentId)))]) {
    const handle = client.workflow.getHandle(workflowId);
    const running = (await handle.describe().catch(() => undefined))?.status.name === 'RUNNING';
    if (!running) continue;
    const closed = workflowId.startsWith('alert-')
      ? await handle.executeUpdate('resolve', { args: [{ by: 'test', note: 'cleanup' }] }).then(() => handle.result()).catch(() => undefined)
      : await handle.executeUpdate(abortUpdate, { args: [{ by: 'test', reason: 'cleanup' }] }).then(() => handle.result()).catch(() => undefined);
    if (closed === undefined) await handle.terminate('rollouts-cli test done').catch(() => undefined);
  }
  worker?.shutdown();
  strictWorker?.shutdown();
  await workerRun?.catch(() => undefined);
  await strictRun?.catch(() => undefined);
  await nativeConnection?.close();
  await receiver.stop();
  await connection?.close();
  await admin?.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await warehouse?.close();
  await admin?.close();
});

/**
 * A refused start is listed by `platform rollouts list --status refused` (its visibility query)
 * with RolloutStatus `refused` and RolloutPipeline set; before, a refusal set neither, so `list
 * --all` showed empty columns and `--status refused` missed it.
 */
async function refusedInVisibility(pipelineId: string, workflowId: string): Promise<void> {
  const query = listQuery({ pipeline: pipelineId, status: 'refused' });
  const listed = await waitFor(`${workflowId} listed by ${query}`, async () => {
    for await (const wf of client.workflow.list({ query })) if (wf.workflowId === workflowId) return wf;
    return undefined;
  });
  expect(listed.searchAttributes).toMatchObject({ RolloutStatus: ['refused'], RolloutPipeline: [pipelineId] });
}

describe('platform rollouts on the shared Temporal server', () => {
  it('refuses bad input naming the field, before anything starts', async () => {
    const bad = { pipeline, version: '2', steps: [{ weight: 120 }] };
    const err = await startRollout(client, taskQueue, bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutRefusedError);
    expect((err as Error).message).toBe('canaryRollout input: input.steps.0.weight: expected 1..99 (100 % is promotion)');
    expect(await client.workflow.getHandle(`rollout-${pipeline}-2`).describe().catch(() => 'not found')).toBe('not found');
    // The plain Temporal CLI's start of the same input: the workflow refuses it in the same words
    // (the tool said `rollout input:`, the workflow `canaryRollout input:`).
    // (A bad input is refused before the workflow id is checked: any id shows it.)
    const direct = await client.workflow.start('canaryRollout', { workflowId: `rollout-${pipeline}-bad-input`, taskQueue, args: [bad] });
    started.push(direct.workflowId);
    const failed = await direct.result().then(() => undefined, (e: unknown) => e);
    expect(String((failed as WorkflowFailedError).cause?.message)).toBe((err as Error).message);
    await refusedInVisibility(pipeline, direct.workflowId);
  });

  it('refuses a target version that is not registered (tool and workflow), naming input.version; nothing is locked or published', async () => {
    const err = await startRollout(client, taskQueue, { pipeline, version: '9' }, 'ann', noPipeline).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutRefusedError);
    expect((err as Error).message).toBe('canaryRollout input: input.version: "9": the pipeline runs no processor, and no registered processor has that version (registered: request-enriched 1, 2, 3, 4)');
    expect(await client.workflow.getHandle(`rollout-${pipeline}-9`).describe().catch(() => 'not found')).toBe('not found');
    // The same input from the plain Temporal CLI: the workflow refuses it on the worker.
    const direct = await client.workflow.start('canaryRollout', { workflowId: `rollout-${pipeline}-request-enriched@9`, taskQueue, args: [{ pipeline, version: 'request-enriched@9' }] });
    started.push(direct.workflowId);
    const failed = await direct.result().then(() => undefined, (e: unknown) => e);
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    expect(String((failed as WorkflowFailedError).cause?.message)).toBe('canaryRollout input: input.version: processor request-enriched has versions 1, 2, 3, 4, not 9 (expected a registered version: 3, v3 or name@3)');
    await refusedInVisibility(pipeline, direct.workflowId);
    // Refused before the lock and before any routing: the pipeline is free, and nothing was published.
    expect(await client.workflow.getHandle(`rollout-lock-${pipeline}`).describe().catch(() => 'not found')).toBe('not found');
    const published = await (await warehouse.query({ query: 'SELECT count() AS n FROM rollout_routing WHERE pipeline = {p:String}', query_params: { p: pipeline }, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<{ n: number }>();
    expect(published).toEqual([{ n: 0 }]);
  });

  it('refuses a pipeline that is not running, naming it (tool and workflow); nothing is locked or published', async () => {
    const stopped = `${pipeline}-stopped`;
    const refusal = `input.pipeline: pipeline "${stopped}" is not running (no running workflow pipeline-${stopped}): a rollout routes and judges a running pipeline's batches; start it first (platform pipeline start --id ${stopped} ...)`;
    const err = await startRollout(client, strictQueue, { pipeline: stopped, version: '2' }, 'ann', { catalogue, analytics }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutRefusedError);
    expect((err as Error).message).toBe(`canaryRollout input: ${refusal}`);
    expect(await client.workflow.getHandle(rolloutWorkflowId(stopped, '2')).describe().catch(() => 'not found')).toBe('not found');
    // From the plain Temporal CLI: the workflow's start check (the same code) refuses it on the worker.
    const direct = await client.workflow.start('canaryRollout', { workflowId: rolloutWorkflowId(stopped, '2'), taskQueue: strictQueue, args: [{ pipeline: stopped, version: '2' }] });
    started.push(direct.workflowId);
    const failed = await direct.result().then(() => undefined, (e: unknown) => e);
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    expect(String((failed as WorkflowFailedError).cause?.message)).toBe(`canaryRollout input: ${refusal}`);
    expect(await client.workflow.getHandle(`rollout-lock-${stopped}`).describe().catch(() => 'not found')).toBe('not found');
    // `platform rollouts list --status refused --pipeline <p>` finds it, with both columns filled.
    await refusedInVisibility(stopped, direct.workflowId);
  });

  it('the tool checks aggregate:/detector: metrics against the declared analytics, with the workflow\'s words', async () => {
    const cases = [
      { version: '2', metric: 'aggregate:requests_1s.p99', why: 'aggregation requests_1s has no measure "p99" (measures: requests, p50)' },
      { version: '4', metric: 'detector:fast_p50', why: `no detector "fast_p50" declared for pipeline ${pipeline} (declared: slow_p50)` },
    ];
    for (const { version, metric, why } of cases) {
      const input = { pipeline, version, analysis: { metrics: [{ name: 'reject_rate', kind: 'proportion' }, { name: metric, kind: metric.startsWith('detector:') ? 'proportion' : 'continuous' }] } };
      const err = await startRollout(client, taskQueue, input, 'ann', noPipeline).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RolloutRefusedError);
      expect((err as Error).message).toBe(`canaryRollout input: input.analysis.metrics.1.name: ${why}`);
      expect(await client.workflow.getHandle(rolloutWorkflowId(pipeline, version)).describe().catch(() => 'not found')).toBe('not found');
      // The workflow refuses the same input with the same words (one validation, two callers).
      const direct = await client.workflow.start('canaryRollout', { workflowId: rolloutWorkflowId(pipeline, version), taskQueue, args: [input] });
      started.push(direct.workflowId);
      const failed = await direct.result().then(() => undefined, (e: unknown) => e);
      expect(String((failed as WorkflowFailedError).cause?.message)).toBe((err as Error).message);
      await refusedInVisibility(pipeline, direct.workflowId);
    }
  });

  it('starts, is found by its search attributes, refuses a second rollout of the pipeline, and abort opens an incident', async () => {
    const workflowId = await startRollout(client, taskQueue, { pipeline, version: '3', steps: [{ weight: 10 }, 'pause'] }, 'ann', noPipeline);
    started.push(workflowId);
    expect(workflowId).toBe(`rollout-${pipeline}-3`);
    const handle = client.workflow.getHandle(workflowId);
    await waitFor('paused at the pause() step', async () => (await handle.query(stateQuery)).status === 'paused');
    const query = listQuery({ pipeline, status: 'paused' });
    expect(query).toBe(`WorkflowType = "canaryRollout" AND RolloutPipeline = "${pipeline}" AND RolloutStatus = "paused" AND ExecutionStatus = "Running"`);
    const listed = await waitFor('visible by RolloutPipeline and RolloutStatus', async () => {
      for await (const wf of client.workflow.list({ query })) if (wf.workflowId === workflowId) return wf;
      return undefined;
    });
    expect(listed.searchAttributes).toMatchObject({ RolloutStatus: ['paused'], RolloutPipeline: [pipeline] });

    const second = await startRollout(client, taskQueue, { pipeline, version: '4' }, undefined, noPipeline).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(RolloutRefusedError);
    expect((second as Error).message).toBe(`pipeline "${pipeline}" already has a running rollout: ${workflowId} (one rollout per pipeline at a time)`);

    const aborted: RolloutState = await handle.executeUpdate(abortUpdate, { args: [{ by: 'bob', reason: 'p99 doubled' }] });
    expect(aborted).toMatchObject({ status: 'aborted', routing: { mode: 'baseline', weightPercent: 0 } });
    const final = (await handle.result()) as RolloutState;
    expect(final.incident).toMatch(/^alert-/);
    await waitFor('incident notification', () => receiver.about(final.incident!).find((r) => r.body.alerts.some((a) => a.severity === 'critical')));
    const audit = await (
      await warehouse.query({
        query: "SELECT event_type, actor, reason FROM rollout_events FINAL WHERE rollout_id = {id:String} AND event_type IN ('started', 'aborted') ORDER BY seq",
        query_params: { id: workflowId },
        format: 'JSONEachRow',
      })
    ).json<{ event_type: string; actor: string; reason: string }>();
    expect(audit).toEqual([
      { event_type: 'started', actor: 'ann', reason: 'current -> 3: weight 10 %; pause (until resumed)' },
      { event_type: 'aborted', actor: 'bob', reason: 'p99 doubled' },
    ]);
    // The lock is released: the pipeline can have its next rollout.
    await waitFor('lock released', async () => (await client.workflow.getHandle(`rollout-lock-${pipeline}`).describe()).status.name === 'COMPLETED');
  });
});
