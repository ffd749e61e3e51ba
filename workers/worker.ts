/**
 * The platform worker (`npm run worker`): runs every workflow and activity on the configured task
 * queue and on its analytics queue `<queue>-analytics` (WORKER_TASK_QUEUES picks one or both; each
 * gets a Temporal Worker of its own). Reads the config, resolves the servers (environment first, local defaults otherwise;
 * starts nothing), applies the ClickHouse migrations, builds the activities with real clients
 * and polls until SIGINT/SIGTERM, then drains and closes its connections. After a Temporal outage
 * its Temporal Workers are rebuilt on a fresh connection (workers/task-queue-workers.ts).
 *
 * `startWorker()` is the same in-process, for `npm start`, the bench and tests; pass a
 * `workflowBundle` from `bundlePlatformWorkflows()` to bundle once and reuse it.
 */
import { shortReason, untilUp } from './dependencies.js';
import type { ProcessorFamily } from '../schemas/processing/define.js';
import { AnalyticsConfigError, loadAnalyticsFile } from '../activities/analytics/declarations-file.js';
import type { AnalyticsFile } from '../schemas/analytics/declarations.js';
import type { RolloutLineageSink } from '../activities/observability/rollout-lineage.js';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities, type AlertingDeps } from '../activities/index.js';
import { loadAlertingConfigFile } from '../activities/alerting/alert-routing.js';
import { loadChannelTargetsFile } from '../activities/alerting/notify.js';
import { undefinedTargetProblems } from '../schemas/alerting/receivers.js';
import { KafkaResources } from '../activities/ingest/ingest.js';
import type { Logger } from '../activities/logger.js';
import type { StackEndpoints } from '../infra/local/endpoints.js';
import { migrate } from '../infra/clickhouse/migrate.js';
import { ConfigError, loadConfig, type PlatformConfig } from '../schemas/config.js';
import { connectTemporal, createKafka, createWarehouse } from './connections.js';
import { resolveEndpoints } from './endpoints.js';
import { ackEndpointSettings, startAckEndpoint, type AckEndpointSettings } from './ack-endpoint.js';
import { processorVersion } from './processor-version.js';
import { processorSecrets } from '../activities/processing/secrets.js';
import { loadWasmSipHash } from '../activities/processing/wasm-siphash.js';
import { setWasmSipHash } from '../schemas/processing/pseudonymise/stage.js';
import { observabilityInterceptor, type LandingLineageSink } from '../activities/observability/interceptor.js';
import { createJsonLogger } from '../activities/observability/json-logger.js';
import { metricsLandingObserver } from '../activities/observability/landing-observer.js';
import type { PlatformMetrics } from '../activities/observability/metrics.js';
import { startObservability } from './observability/setup.js';
import { installRuntime } from './observability/runtime.js';
import { tracingWorkflowInterceptorModule, type Tracing } from './observability/tracing.js';
import { analyticsTaskQueue } from '../schemas/analytics/task-queue.js';
import { classifyOutage, isKafkaConnectionLog, OutageTracker } from './observability/outages.js';
import { outageInterceptor } from './observability/outage-interceptor.js';
import { TaskQueueWorkers } from './task-queue-workers.js';

/** Path of the workflow entry (every workflow of the platform). */
export const workflowsPath: string = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * Bundles the platform's workflow code once (a few seconds); pass the result to several workers.
 * With `tracing: true` the OpenTelemetry workflow interceptors are bundled in (needed by a
 * worker started with tracing on). @default tracing false
 */
export async function bundlePlatformWorkflows(options: { tracing?: boolean } = {}): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger, ...(options.tracing ? { workflowInterceptorModules: [tracingWorkflowInterceptorModule] } : {}) });
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

/** Options of {@link startWorker}. */
export interface StartWorkerOptions {
  config: PlatformConfig;
  endpoints: StackEndpoints;
  /** ClickHouse database. @default config.CLICKHOUSE_DATABASE */
  database?: string;
  /** @default config.TEMPORAL_TASK_QUEUE */
  taskQueue?: string;
  /** A prebuilt bundle (see {@link bundlePlatformWorkflows}); bundled from workflowsPath when absent. */
  workflowBundle?: WorkflowBundle;
  /** @default a console logger at config.LOG_LEVEL */
  log?: Logger;
  /** Skip migrations (already applied by the caller). @default false */
  skipMigrations?: boolean;
  /** Alerting policy, channels and secrets. @default loaded with {@link loadAlerting} */
  alerting?: AlertingDeps;
  /** Analytics declarations. @default loaded from ANALYTICS_FILE or infra/analytics/pipelines.json */
  analytics?: AnalyticsFile;
  /** Metrics, traces and lineage of this worker. @default none (nothing recorded) */
  observability?: WorkerObservability;
  /**
   * Wait for ClickHouse, Temporal and Kafka with capped backoff (one log line per state change)
   * instead of failing when one is down at start (see workers/dependencies.ts). @default false
   */
  waitForDependencies?: boolean;
  /** Outage tracker (one line when a dependency's outage starts, one when it ends); main() passes the one its SDK logger feeds. @default a new one on `log` */
  outages?: OutageTracker;
  /**
   * Task queues to poll: `all` (the platform queue and `<taskQueue>-analytics`), `platform` or
   * `analytics` (see WORKER_TASK_QUEUES). @default config.WORKER_TASK_QUEUES
   */
  queues?: PlatformConfig['WORKER_TASK_QUEUES'];
  /** Processor versions the landing activities can run. @default the working tree's catalogue (schemas/processors) */
  processorCatalogue?: readonly ProcessorFamily[];
}

/** What a worker reports to: each part optional, all off by default. */
export interface WorkerObservability {
  /** prom-client metrics the activity interceptor and the landing code record into. */
  metrics?: PlatformMetrics;
  /** Tracing setup (see workers/observability/tracing.ts); a prebuilt bundle must then come from `bundlePlatformWorkflows({ tracing: true })`. */
  tracing?: Tracing | null;
  /** OpenLineage run events per landing. */
  lineage?: LandingLineageSink;
}

/**
 * Loads the alerting policy and channel files named by the config (or the repo's defaults) and
 * checks that every receiver's target is defined; throws a message naming the file and field, so
 * the worker refuses to start on a bad config. The signing key and link URL come from `ack`
 * (default: {@link ackEndpointSettings} of the config).
 */
export async function loadAlerting(config: PlatformConfig, ack: AckEndpointSettings = ackEndpointSettings(config)): Promise<AlertingDeps> {
  const [policy, targets] = await Promise.all([
    loadAlertingConfigFile(config.ALERT_POLICY_FILE),
    loadChannelTargetsFile(config.ALERT_CHANNELS_FILE),
  ]);
  const problems = undefinedTargetProblems(policy.receivers, targets);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    policy,
    targets,
    // Channel configs name the variables that hold their secrets; workers/ is where the environment is read.
    secrets: process.env,
    signingSecret: ack.secret,
    publicUrl: ack.publicUrl,
    missingSecrets: config.ALERT_CHANNELS_MISSING_SECRETS,
  };
}

/** A running worker: await `done`, or call `shutdown()`. */
export interface RunningWorker {
  /** The first Worker now polling (the platform queue's, or with `queues: 'analytics'` the analytics queue's); another one after {@link replaceWorkers}. */
  readonly worker: Worker;
  /** The platform task queue (the analytics queue is `<taskQueue>-analytics`). */
  taskQueue: string;
  database: string;
  processorVersion: string;
  /** Temporal client the activities use (also handy for callers). */
  temporal: Client;
  warehouse: ClickHouseClient;
  /** Resolves when the worker has stopped and every connection is closed. */
  done: Promise<void>;
  /** Stops polling, waits for running tasks, closes connections. */
  shutdown(): Promise<void>;
  /**
   * Replaces the Temporal Workers as after a Temporal outage (workers/task-queue-workers.ts): new
   * Workers on a new connection poll before the old ones drain. Resolves once they poll; for tests.
   */
  replaceWorkers(): Promise<void>;
}

/** A console logger with a level threshold, one line per entry. */
export function consoleLogger(level: PlatformConfig['LOG_LEVEL'] = 'info', prefix = 'worker'): Logger {
  const order = ['debug', 'info', 'warn', 'error'] as const;
  const min = order.indexOf(level);
  const write = (lvl: (typeof order)[number]) => (message: string, meta?: Record<string, unknown>) => {
    if (order.indexOf(lvl) < min) return;
    const line = `${new Date().toISOString()} ${lvl.toUpperCase()} [${prefix}] ${message}${meta && Object.keys(meta).length > 0 ? ` ${JSON.stringify(meta)}` : ''}`;
    if (lvl === 'error' || lvl === 'warn') console.error(line);
    else console.log(line);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Starts a platform worker in this process. */
export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { config, endpoints } = options;
  const database = options.database ?? config.CLICKHOUSE_DATABASE;
  const taskQueue = options.taskQueue ?? config.TEMPORAL_TASK_QUEUE;
  const log = options.log ?? consoleLogger(config.LOG_LEVEL);
  const version = processorVersion(config);

  // Outages of a running worker's dependencies: one line when each starts, one when it ends (workers/observability/outages.ts).
  const outageTargets = { clickhouseUrl: endpoints.clickhouseUrl, kafkaBrokers: endpoints.kafkaBrokers, temporalAddress: endpoints.temporalAddress };
  const outageProbe = createKafka(config, endpoints, '-probe', { retries: 0, quiet: true });
  let temporalForProbe: Client | null = null;
  let serving = false;
  const outages = options.outages ?? new OutageTracker({ log });
  // One health check per server, used both while the start waits for them and to end an outage.
  const pingClickHouse = async (): Promise<void> => {
    const ping = await warehouse.ping();
    if (!ping.success) throw ping.error;
  };
  const pingKafka = async (): Promise<void> => {
    const a = outageProbe.admin();
    try {
      await a.connect();
      await a.listTopics();
    } finally {
      await a.disconnect().catch(() => undefined);
    }
  };
  outages.setProbes({
      clickhouse: pingClickHouse,
      kafka: pingKafka,
      temporal: async () => {
        if (!temporalForProbe) throw new Error('no Temporal client yet');
        // One attempt bounded to 1 s: the client's retry interceptor would otherwise keep one probe
        // retrying for up to ~20 s, and the tracker probes again 0.5 s after a failed probe.
        const probe = temporalForProbe;
        await probe.connection.withDeadline(Date.now() + 1000, () => probe.workflowService.getSystemInfo({}));
      },
  });
  const warehouse = createWarehouse(config, endpoints, database, {
    onLog: (entry) => {
      // A request that failed because the server is unreachable is part of an outage (its
      // operation's failure is counted where it surfaces); anything else is one line, no dump.
      const dependency = entry.err ? classifyOutage(entry.err, outageTargets) : null;
      // While the start waits for the servers, untilUp logs their state instead.
      if (dependency) {
        if (serving) outages.noticed(dependency, entry.err);
      }
      else log[entry.level](`clickhouse client: ${entry.message.trim()}`, { operation: entry.args?.operation, queryId: entry.args?.query_id, ...(entry.err ? { reason: shortReason(entry.err) } : {}) });
    },
  });
  const wait = options.waitForDependencies ? { log } : null;
  // All three are waited for at once, so each one's down/up lines appear as its state changes.
  let waitedTemporal: Client | null = null;
  if (wait) {
    [, , waitedTemporal] = await Promise.all([
      untilUp('clickhouse', pingClickHouse, wait),
      untilUp('kafka', pingKafka, wait),
      // Short attempts, so a server that comes back is noticed within the backoff cap.
      untilUp('temporal', () => connectTemporal(config, endpoints, { connectTimeoutMs: 2000 }), wait),
    ]);
  }
  if (!options.skipMigrations) {
    const admin = createWarehouse(config, endpoints, 'default');
    try {
      const result = await migrate(warehouse, database, { admin, log: (line) => log.info(line) });
      if (result.applied.length > 0) log.info('migrations applied', { database, applied: result.applied });
    } finally {
      await admin.close();
    }
  }
  const temporal = waitedTemporal ?? (await connectTemporal(config, endpoints));
  temporalForProbe = temporal;
  serving = true;
  const kafka = createKafka(config, endpoints, '-worker', {
    onLog: (entry) => {
      // Connection errors (one per KafkaJS retry) open or join a Kafka outage; others are one line without the stack.
      if (isKafkaConnectionLog(`${entry.message} ${String(entry.fields.error ?? '')}`)) outages.noticed('kafka', entry.message);
      else log[entry.level](`kafkajs: ${entry.message}`, { broker: entry.fields.broker, groupId: entry.fields.groupId, error: entry.fields.error });
    },
  });
  const resources = new KafkaResources(kafka, log, { ssl: config.KAFKA_SSL, sasl: config.KAFKA_SASL_MECHANISM !== undefined });
  const alerting = options.alerting ?? (await loadAlerting(config));
  const processingSecrets = await processorSecrets(config.PROCESSOR_PSEUDONYM_KEY, config.PLATFORM_STATE_DIR);
  try {
    // WebAssembly stages: built once from infra/wasm (cached in .state/wasm), then shared by every batch.
    setWasmSipHash(await loadWasmSipHash((line) => log.info(line)));
  } catch (err) {
    log.warn('WebAssembly stages unavailable; processor versions that select them dead-letter with processing_error', { error: (err as Error).message });
  }
  const analytics = options.analytics ?? (await loadAnalyticsFile(config.ANALYTICS_FILE));
  const obs = options.observability ?? {};
  const activities = createActivities({
    kafka,
    warehouse,
    temporal,
    taskQueue,
    processorVersion: version,
    log,
    resources,
    chunkMaxBytes: config.PIPELINE_CHUNK_MAX_BYTES,
    alerting,
    processingSecrets,
    analytics,
    ...(obs.metrics ? { landingObserver: metricsLandingObserver(obs.metrics) } : {}),
    ...(options.processorCatalogue ? { processorCatalogue: options.processorCatalogue } : {}),
    // The OpenLineage emitter also takes the rollouts' run events (anything with enqueue and location).
    ...(obs.lineage && 'enqueue' in obs.lineage && 'location' in obs.lineage ? { rolloutLineage: obs.lineage as unknown as RolloutLineageSink } : {}),
  });
  // Bundled once for every Worker (each would bundle on its own from workflowsPath), replacements included.
  const workflowBundle = options.workflowBundle ?? (await bundlePlatformWorkflows({ tracing: Boolean(obs.tracing) }));
  const workerOptions = {
    namespace: config.TEMPORAL_NAMESPACE,
    workflowBundle,
    activities,
    // Heartbeats reach Temporal at most 0.5 s apart (the SDK's default throttle is 80 % of the
    // heartbeat timeout): a landing's 2 s heartbeat timeout then has 1.5 s of margin.
    maxHeartbeatThrottleInterval: '500 milliseconds',
    // In-flight tasks of stopping Workers (SIGTERM, or Workers replaced after a Temporal outage)
    // get 5 s to finish before their activities are cancelled (SDK default: cancelled at once).
    shutdownGraceTime: '5 seconds',
    // A workflow task on the sticky queue of Workers that are gone (replaced, killed) moves to the
    // normal queue after 2 s instead of the SDK's 10 s.
    stickyQueueScheduleToStartTimeout: '2 seconds',
    interceptors: {
      // Tracing first (outermost), so the metrics/log interceptor runs inside the RunActivity span.
      activity: [...(obs.tracing?.activityInterceptors ?? []), observabilityInterceptor({ ...(obs.metrics ? { metrics: obs.metrics } : {}), ...(obs.lineage ? { lineage: obs.lineage } : {}) }), outageInterceptor(outages, outageTargets)],
    },
    ...(obs.tracing ? { sinks: obs.tracing.sinks } : {}),
  };
  // The analytics task queue (aggregators and their activities, schemas/analytics/task-queue.ts)
  // gets a Worker of its own: its own workflow thread, pollers and slots, so a window that became
  // final is judged without waiting behind the landings' workflow tasks. In this process (`all`),
  // or in a process of its own (`platform` here, `analytics` there), off the landings' main thread.
  const queues = options.queues ?? config.WORKER_TASK_QUEUES;
  const analyticsQueue = analyticsTaskQueue(taskQueue);
  const taskQueues = [...(queues !== 'analytics' ? [taskQueue] : []), ...(queues !== 'platform' ? [analyticsQueue] : [])];
  // The Workers are rebuilt on a fresh connection after a Temporal outage (workers/task-queue-workers.ts).
  const workers = await TaskQueueWorkers.create({
    connect: () =>
      NativeConnection.connect({
        address: endpoints.temporalAddress,
        tls: config.TEMPORAL_TLS || config.TEMPORAL_API_KEY !== undefined,
        ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}),
      }),
    build: (connection, queue) => Worker.create({ ...workerOptions, connection, taskQueue: queue }),
    taskQueues,
    log,
    ...(config.TEMPORAL_WORKER_REPLACEMENT ? { outages } : {}),
  });
  log.info('worker polling', { taskQueues, namespace: config.TEMPORAL_NAMESPACE, database, processorVersion: version });
  const done = workers.done.finally(async () => {
    outages.close();
    await Promise.allSettled([resources.close(), warehouse.close(), temporal.connection.close()]);
    log.info('worker stopped', { taskQueue });
  });
  return {
    get worker() {
      return workers.first;
    },
    taskQueue,
    database,
    processorVersion: version,
    temporal,
    warehouse,
    done,
    replaceWorkers: () => workers.replace(),
    async shutdown() {
      await workers.shutdown().catch(() => undefined);
      await done;
    },
  };
}

/** Secret values of the configuration, masked in every log line. */
export function configSecretValues(config: PlatformConfig): string[] {
  return [config.TEMPORAL_API_KEY, config.KAFKA_SASL_PASSWORD, config.CLICKHOUSE_PASSWORD, config.ALERT_SIGNING_SECRET, config.OPENLINEAGE_API_KEY].filter((v): v is string => typeof v === 'string' && v.length > 0);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const endpoints = resolveEndpoints(config);
  const log = createJsonLogger({ level: config.LOG_LEVEL, component: 'worker', secretValues: configSecretValues(config) });
  // The SDK's own log lines (and workflow `log` lines) go to the same JSON log; its metrics to TEMPORAL_METRICS_PORT.
  // Installed before any connection exists.
  // Outages of Temporal, ClickHouse and Kafka: one line each way (workers/observability/outages.ts); the SDK's own lines feed it too.
  const outages = new OutageTracker({ log });
  const runtime = await installRuntime(config, log, undefined, outages);
  const started = await startObservability(config, endpoints, processorVersion(config), log);
  const { tracing, lineage } = started.observability;
  log.info('observability', {
    metrics: started.metricsUrl,
    temporalMetrics: runtime.temporalMetricsAddress ? `http://${runtime.temporalMetricsAddress}/metrics` : null,
    // Both are absent (undefined) or null when not configured.
    tracing: tracing != null,
    openLineage: lineage != null,
  });
  // Refuses a non-loopback bind without a signing secret before anything connects.
  const ack = ackEndpointSettings(config);
  // Temporal's runtime already turns SIGINT/SIGTERM into a graceful shutdown of every worker.
  const running = await startWorker({ config, endpoints, log, outages, waitForDependencies: true, alerting: await loadAlerting(config, ack), observability: started.observability });
  // The acknowledge-link endpoint lives with the worker, so every deployment that notifies can also take acks;
  // an analytics-only process (WORKER_TASK_QUEUES=analytics) leaves it to the platform process beside it.
  const http = config.WORKER_TASK_QUEUES === 'analytics' ? null : await startAckEndpoint({ client: running.temporal, settings: ack, log: log.child('http') });
  try {
    await running.done;
  } finally {
    await Promise.allSettled([http?.close(), started.close()]);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof ConfigError || err instanceof AnalyticsConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
