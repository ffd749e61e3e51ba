/**
 * Test harness for canary rollouts: Temporal's time-skipping test server (Java, Maven Central), the
 * real rollout activities (judge, audit, alerts, lock) on a unique migrated database of the shared
 * ClickHouse, and the real alert workflow with its routing, audit and notify activities delivering
 * to a local webhook receiver. The test plays the pipeline: it writes observations into
 * `canary_observations` for the routing epochs the rollout announces. Nothing under test is faked.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { fileURLToPath } from 'node:url';
import { createAlertAuditActivities } from '../../activities/alerting/alert-audit.js';
import { createAlertRoutingActivities } from '../../activities/alerting/alert-routing.js';
import { createNotifyActivities } from '../../activities/alerting/notify.js';
import { recordObservations, type CanaryObservation } from '../../activities/rollouts/observations.js';
import { createRolloutActivities } from '../../activities/rollouts/rollout-activities.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { ensureTemporalTestServer } from '../../infra/local/temporal-test-server/install.js';
import { alertingConfigSchema } from '../../schemas/alerting/alert-policy.js';
import { searchAttributes } from '../../schemas/search-attributes.js';
import { createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';
import { WebhookReceiver } from './alert-harness.js';
import { processors as testCatalogue } from '../fixtures/processors/regressed.js';

/** Everything a rollout test needs. */
export interface RolloutHarness {
  env: TestWorkflowEnvironment;
  receiver: WebhookReceiver;
  warehouse: ClickHouseClient;
  taskQueue: string;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  /** Replays a workflow's history on a fresh replay worker; throws on nondeterminism. */
  replay(workflowId: string): Promise<void>;
  teardown(): Promise<void>;
}

let bundle: WorkflowBundle | undefined;

/** Builds the harness and starts a worker. */
export async function createRolloutHarness(): Promise<RolloutHarness> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = testConfig();
  const endpoints = stackEndpoints();
  const launcher = await ensureTemporalTestServer(config.PLATFORM_STATE_DIR);
  // The SDK gives the Java server 5 s to come up; on a loaded machine that can be short: try again.
  let env: TestWorkflowEnvironment | undefined;
  for (let attempt = 1; !env; attempt++) {
    try {
      env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: launcher } } });
    } catch (err) {
      if (attempt >= 6) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  const types = proto.temporal.api.enums.v1.IndexedValueType;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      Object.entries(searchAttributes).map(([name, type]) => [name, type === 'Int' ? types.INDEXED_VALUE_TYPE_INT : types.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });
  const database = uniqueId('t_rollout');
  const admin = createWarehouse(config, endpoints, 'default');
  const warehouse = createWarehouse(config, endpoints, database);
  await migrate(warehouse, database, { admin });
  const receiver = new WebhookReceiver();
  await receiver.start();
  const taskQueue = uniqueId('rollouts');
  const alerting = alertingConfigSchema.parse({
    version: 1,
    receivers: { release: { targets: ['webhook:release'] } },
    policies: { release: { levels: [{ receivers: ['release'], delay: '0s' }], repeatInterval: '12h' } },
    route: { receiver: 'release', policy: 'release', groupBy: [], groupWait: '0s', groupInterval: '1m', repeatInterval: '12h' },
  });
  bundle ??= await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  });
  const quiet = { info: () => undefined, warn: () => undefined };
  // Activities get a plain client on the test server's connection (not the env's time-skipping one).
  const activityClient = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
  const activities = {
    ...createNotifyActivities({ targets: { 'webhook:release': { type: 'webhook', url: `${receiver.url}/release` } }, signingSecret: 'test-signing-secret-0123456789', publicUrl: 'http://ack.test:8787', log: quiet }),
    ...createAlertAuditActivities({ warehouse }),
    ...createAlertRoutingActivities({ alerting, client: activityClient, taskQueue }),
    // The test catalogue (request-enriched 1-4): rollouts here target v2, v3 and v4. The test plays
    // the pipeline (it writes the observations), so no pipeline workflow runs: the escape hatch.
    ...createRolloutActivities({ warehouse, temporal: activityClient, taskQueue, catalogue: testCatalogue, requireRunningPipeline: false }),
  };
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const harness: RolloutHarness = {
    env,
    receiver,
    warehouse,
    taskQueue,
    async startWorker() {
      worker = await Worker.create({
        connection: env.nativeConnection,
        namespace: env.namespace ?? 'default',
        taskQueue,
        workflowBundle: bundle!,
        activities,
        // No sticky cache: a restart must replay from history (see alert-harness).
        maxCachedWorkflows: 0,
      });
      running = worker.run();
    },
    async stopWorker() {
      worker?.shutdown();
      await running;
      worker = undefined;
    },
    async replay(workflowId) {
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: bundle! }, history, workflowId);
    },
    async teardown() {
      await harness.stopWorker();
      await env.teardown();
      await receiver.stop();
      await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: database } });
      await Promise.all([warehouse.close(), admin.close()]);
    },
  };
  await harness.startWorker();
  return harness;
}

/** What the test-as-pipeline observed in one batch per side. */
export interface SideBatch {
  /** Events of the batch. */
  events: number;
  rejects: number;
  /** Per-event processing times (ms). */
  times: number[];
  /** Values of the output field `amount`, when the test judges it (metric `field:amount`). */
  amounts?: number[];
}

/**
 * Writes `batches` observation batches for one epoch, both sides, at evenly spaced times in
 * [fromMs, toMs): reject_rate, processing_error_rate (0 hits) and processing_time_ms. Batches are
 * numbered from `firstBatch` (@default 0), ids `b<n>`, offsets `[n * events, (n + 1) * events)`: a
 * later call for the same epoch must continue the numbering, as a pipeline's next batches would,
 * because observations are idempotent per (rollout, epoch, batch) and a repeated batch id is
 * dropped as a re-landed batch.
 */
export async function observe(
  warehouse: ClickHouseClient,
  o: { rolloutId: string; pipeline: string; epoch: number; fromMs: number; toMs: number; baseline: (i: number) => SideBatch; canary: (i: number) => SideBatch; batches: number; firstBatch?: number },
): Promise<void> {
  const first = o.firstBatch ?? 0;
  for (let i = 0; i < o.batches; i++) {
    const at = new Date(o.fromMs + ((o.toMs - o.fromMs) * i) / o.batches).toISOString();
    const rows: CanaryObservation[] = [];
    const n = first + i;
    for (const role of ['baseline', 'canary'] as const) {
      const b = role === 'baseline' ? o.baseline(i) : o.canary(i);
      const common = { rolloutId: o.rolloutId, pipeline: o.pipeline, epoch: o.epoch, role, processorVersion: role, batchId: `b${n}`, topic: 't', partition: 0, fromOffset: n * b.events, toOffset: (n + 1) * b.events, observedAt: at };
      rows.push(
        { ...common, metric: 'reject_rate', events: b.events, hits: b.rejects },
        { ...common, metric: 'processing_error_rate', events: b.events, hits: 0 },
        { ...common, metric: 'processing_time_ms', events: b.events, values: b.times },
        ...(b.amounts ? [{ ...common, metric: 'field:amount', events: b.events, values: b.amounts }] : []),
      );
    }
    await recordObservations(warehouse, rows);
  }
}
