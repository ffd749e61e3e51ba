/**
 * Test harness for the alert workflows: Temporal's time-skipping test server (Java, from Maven
 * Central, through the SDK's `existing-path` executable), the real notify activity (C2) delivering
 * to a real local HTTP receiver, and the real audit activities on a unique database of the shared
 * ClickHouse. Nothing under test is faked.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Runtime, DefaultLogger, Worker, type WorkflowBundle } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createAlertAuditActivities } from '../../activities/alerting/alert-audit.js';
import { createAlertRoutingActivities } from '../../activities/alerting/alert-routing.js';
import { createNotifyActivities, type NotifyActivitiesOptions } from '../../activities/alerting/notify.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { ensureTemporalTestServer } from '../../infra/local/temporal-test-server/install.js';
import { alertingConfigSchema, type AlertingConfig, type AlertingConfigInput } from '../../schemas/alerting/alert-policy.js';
import type { ChannelTargetsInput } from '../../schemas/alerting/receivers.js';
import { searchAttributes } from '../../schemas/search-attributes.js';
import { createWarehouse } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';
import { startTimeSkipping } from '../support/time-skipping.js';

/** One HTTP request the receiver got. */
export interface Received {
  path: string;
  body: {
    notificationId: string;
    kind: string;
    receiver: string;
    target: string;
    alerts: { incidentId: string; fingerprint: string; level: number; status: string; count: number; severity: string }[];
  };
}

/** A local webhook receiver: records every request; paths listed in `failing` answer 503. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  readonly failing = new Set<string>();
  url = '';
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = (req.url ?? '/').split('?')[0]!;
        try {
          this.received.push({ path, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'] });
        } catch {
          this.received.push({ path, body: { notificationId: '', kind: 'unparsable', receiver: '', target: '', alerts: [] } });
        }
        res.writeHead(this.failing.has(path) ? 503 : 200, { 'content-type': 'text/plain' });
        res.end(this.failing.has(path) ? 'down' : 'ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests about one incident (by workflow id). */
  about(workflowId: string): Received[] {
    return this.received.filter((r) => r.body.alerts.some((a) => a.incidentId === workflowId));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** Polls until `check` returns a truthy value (real time); fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Everything a test needs. */
export interface AlertHarness {
  env: TestWorkflowEnvironment;
  receiver: WebhookReceiver;
  warehouse: ClickHouseClient;
  database: string;
  taskQueue: string;
  alerting: AlertingConfig;
  /** Starts a worker on the task queue (a second call after `stopWorker` is a restart). */
  startWorker(): Promise<void>;
  /** Replays the workflow's history so far on a fresh replay worker; throws on nondeterminism. */
  replay(workflowId: string): Promise<void>;
  stopWorker(): Promise<void>;
  teardown(): Promise<void>;
}

let bundle: WorkflowBundle | undefined;

/** Builds the harness: test server, migrated unique database, receiver, worker. */
export async function createAlertHarness(
  alertingInput: AlertingConfigInput,
  targets: (receiverUrl: string) => ChannelTargetsInput,
  notify: Pick<NotifyActivitiesOptions, 'secrets' | 'missingSecrets'> = {},
): Promise<AlertHarness> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = testConfig();
  const endpoints = stackEndpoints();
  const launcher = await ensureTemporalTestServer(config.PLATFORM_STATE_DIR);
  const env = await startTimeSkipping(launcher);
  const types = proto.temporal.api.enums.v1.IndexedValueType;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      Object.entries(searchAttributes).map(([name, type]) => [name, type === 'Int' ? types.INDEXED_VALUE_TYPE_INT : types.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });

  const database = uniqueId('t_alert');
  const admin = createWarehouse(config, endpoints, 'default');
  const warehouse = createWarehouse(config, endpoints, database);
  await migrate(warehouse, database, { admin });

  const receiver = new WebhookReceiver();
  await receiver.start();
  const alerting = alertingConfigSchema.parse(alertingInput);
  const taskQueue = uniqueId('alerts');
  bundle ??= await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  });
  const quiet = { info: () => undefined, warn: () => undefined };
  const activities = {
    ...createNotifyActivities({ ...notify, targets: targets(receiver.url), signingSecret: 'test-signing-secret-0123456789', publicUrl: 'http://ack.test:8787', log: quiet }),
    ...createAlertAuditActivities({ warehouse }),
    ...createAlertRoutingActivities({ alerting }),
  };

  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const harness: AlertHarness = {
    env,
    receiver,
    warehouse,
    database,
    taskQueue,
    alerting,
    async startWorker() {
      worker = await Worker.create({
        connection: env.nativeConnection,
        namespace: env.namespace ?? 'default',
        taskQueue,
        workflowBundle: bundle!,
        activities,
        // No sticky cache: the Java test server does not move a dead worker's sticky tasks back to
        // the normal queue, and replaying every task from history is what a restart exercises anyway.
        maxCachedWorkflows: 0,
      });
      running = worker.run();
    },
    async replay(workflowId) {
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: bundle! }, history, workflowId);
    },
    async stopWorker() {
      worker?.shutdown();
      await running;
      worker = undefined;
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
