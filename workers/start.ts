/**
 * `npm start`: the platform's main job on the local stack. Boots (or reuses) Temporal, Kafka and
 * ClickHouse, applies migrations, runs a worker and the acknowledge-link endpoint, starts the demo
 * pipeline (`pipeline-demo` on topic `requests`) and a synthetic event stream with an injected
 * incident so the demo alert fires, and shows live progress until Ctrl-C.
 *
 * A second `npm start` while one runs joins as another worker (the stack, the pipeline workflow
 * and the HTTP port are reused, the stream is not doubled).
 *
 * Flags: `--rate N` events/s of the demo stream (default 400), `--no-stream` (worker and progress only).
 */
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { alertFingerprint, alertWorkflowId } from '../schemas/alerting/alert.js';
import { defaultConsumerGroup } from '../schemas/ingest/pipeline.js';
import type { Logger } from '../activities/logger.js';
import { createSchemaRegistry, registerCatalogue } from '../activities/contracts/registry.js';
import { errorRateDetector } from '../activities/analytics/rollup.js';
import { subjects } from '../schemas/contracts/index.js';
import { stateDir } from '../infra/local/process.js';
import { ensureStack } from '../infra/local/stack.js';
import { ConfigError, loadConfig, type PlatformConfig } from '../schemas/config.js';
import { pino } from 'pino';
import { createJsonLogger } from '../activities/observability/json-logger.js';
import { connectTemporal, createKafka, createWarehouse } from './connections.js';
import { produceEvents } from './generator.js';
import { startPipeline } from './pipelines.js';
import { startHttpServer, type RunningHttpServer } from './http-server.js';
import { pipelineSnapshot, type PipelineSnapshot } from './progress.js';
import { configSecretValues, startWorker } from './worker.js';

const demo = { pipelineId: 'demo', topic: 'requests', partitions: 3, incidentService: 'checkout' } as const;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Worker logs go to a file so they do not tear the progress line; errors also reach the terminal. */
/** The worker's JSON log (pino, one object per line) appended to `path`; errors also go to the screen. */
function fileLogger(path: string, onProblem: (line: string) => void, config: PlatformConfig): Logger {
  const json = createJsonLogger({ level: config.LOG_LEVEL, component: 'worker', secretValues: configSecretValues(config), destination: pino.destination({ dest: path, append: true, sync: true }) });
  return {
    ...json,
    error: (message, meta) => {
      json.error(message, meta);
      onProblem(`${message}${meta && Object.keys(meta).length > 0 ? ` ${JSON.stringify(meta)}` : ''}`);
    },
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function formatRate(n: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: 0 });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { rate: { type: 'string', default: '400' }, 'no-stream': { type: 'boolean', default: false } },
    allowPositionals: false,
  });
  const rate = Number(values.rate);
  if (!Number.isFinite(rate) || rate <= 0 || rate > 100_000) {
    say(`npm start: --rate: expected events per second between 1 and 100000, got "${values.rate}"`);
    return 2;
  }

  const config = loadConfig();
  const started = Date.now();
  say('streamwarden: starting the local stack (first run installs the Temporal CLI, Kafka and ClickHouse; about a minute)');
  const endpoints = await ensureStack(config, { log: (line) => say(`  ${line}`) });

  const state = resolve(stateDir(config));
  mkdirSync(state, { recursive: true });
  const logPath = join(state, 'worker.log');
  const pidPath = join(state, 'start.pid');
  const other = existsSync(pidPath) ? Number(readFileSync(pidPath, 'utf8').trim()) : NaN;
  const primary = !(Number.isInteger(other) && other !== process.pid && processAlive(other));
  if (primary) writeFileSync(pidPath, String(process.pid));

  // Core SDK logs only warnings to the terminal; the worker's own log goes to the file.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  let liveLine = false;
  const problem = (line: string): void => {
    if (liveLine) process.stdout.write('\n');
    liveLine = false;
    say(`  ! ${line}`);
  };
  const log = fileLogger(logPath, problem, config);

  say(`streamwarden: starting a worker on task queue "${config.TEMPORAL_TASK_QUEUE}"`);
  say(`  worker log (JSON lines): ${logPath} (the demo alert's notifications and ack links appear there through the log:alerts channel;`);
  say('  Slack, PagerDuty and email targets stay disabled until their variables are set, see README "Notification channels")');
  const worker = await startWorker({ config, endpoints, log });
  const temporal = await connectTemporal(config, endpoints);
  const kafka = createKafka(config, endpoints, '-start');
  const admin = kafka.admin();
  await admin.connect();
  const warehouse = createWarehouse(config, endpoints);

  // Keep the registry in step with the code that validates: new contract versions are registered
  // (each re-checked against its subject's compatibility mode); a refused subject is reported.
  const registration = await registerCatalogue(createSchemaRegistry({ warehouse, actor: 'npm start' }), subjects);
  const registered = registration.outcomes.filter((o) => o.status === 'registered').map((o) => `${o.subject} v${o.version}`);
  if (registered.length > 0) say(`streamwarden: registered contracts ${registered.join(', ')}`);
  for (const refused of registration.refused) problem(`contract registry refused subject ${refused.subject}: run \`npm run -s platform -- schemas check\``);

  let http: RunningHttpServer | null = null;
  try {
    http = await startHttpServer({ client: temporal, secret: config.ALERT_SIGNING_SECRET, port: config.PLATFORM_HTTP_PORT, log });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    say(`  acknowledge-link endpoint: port ${config.PLATFORM_HTTP_PORT} is taken (another npm start serves it)`);
  }

  const pipeline = await startPipeline(temporal, config.TEMPORAL_TASK_QUEUE, {
    pipelineId: demo.pipelineId,
    topic: demo.topic,
    partitions: demo.partitions,
  });
  const workflowId = pipeline.workflowId;
  say(pipeline.started ? `streamwarden: started workflow ${workflowId}` : `streamwarden: workflow ${workflowId} is already running; this worker joins it`);

  const abort = new AbortController();
  let stream: Promise<unknown> = Promise.resolve();
  if (primary && !values['no-stream']) {
    // Event time follows the wall clock; the incident starts 45 s in and lasts two minutes, so at
    // least one complete 1-minute window breaches the detector's threshold.
    stream = produceEvents(kafka, {
      topic: demo.topic,
      partitions: demo.partitions,
      count: Number.MAX_SAFE_INTEGER,
      rate,
      pace: true,
      invalid: 0.02,
      malformed: 0.01,
      incidentAt: 45,
      incidentDuration: 120,
      incidentService: demo.incidentService,
      seed: started % 1_000_000,
      signal: abort.signal,
    }).catch((err: unknown) => problem(`event stream stopped: ${err instanceof Error ? err.message : String(err)}`));
    say(`streamwarden: producing ~${rate} events/s to topic "${demo.topic}" (2% contract violations, 1% malformed JSON); incident on "${demo.incidentService}" from +45 s`);
  }

  const alertId = alertWorkflowId(alertFingerprint(errorRateDetector, { pipeline: demo.pipelineId, service: demo.incidentService }));
  const temporalCli = existsSync(join(state, 'bin', 'temporal')) ? join(state, 'bin', 'temporal') : 'temporal';
  const chUrl = endpoints.clickhouseUrl.replace(/\/$/, '');
  say('');
  say(`Temporal UI   ${endpoints.temporalUiUrl ?? '(external Temporal: use your UI)'}`);
  say(`ClickHouse    ${chUrl}  (database "${config.CLICKHOUSE_DATABASE}")`);
  say('');
  say('Try:');
  say(`  ${temporalCli} workflow query --address ${endpoints.temporalAddress} --workflow-id ${workflowId} --name progress`);
  say(`  curl -s '${chUrl}/?database=${config.CLICKHOUSE_DATABASE}&param_pipeline=${demo.pipelineId}' --data-binary 'SELECT reason_code, count() AS n FROM dead_letters WHERE pipeline = {pipeline:String} GROUP BY reason_code ORDER BY n DESC FORMAT PrettyCompact'`);
  say(`  npm run -s platform -- alerts ack ${alertId} --by "$USER"     # once the demo alert is open`);
  say(`  (or: ${temporalCli} workflow update execute --address ${endpoints.temporalAddress} --workflow-id ${alertId} --name acknowledge --input '{"by":"you"}')`);
  say('');
  say('Ctrl-C stops this worker and the stream; the stack keeps running (npm run stack:down stops it).');
  say('');

  let last: PipelineSnapshot | null = null;
  let lastAlerts = 0;
  const tty = process.stdout.isTTY;
  const tick = async (): Promise<void> => {
    const snap = await pipelineSnapshot({
      warehouse,
      admin,
      temporal,
      pipelineId: demo.pipelineId,
      topic: demo.topic,
      consumerGroup: defaultConsumerGroup(demo.pipelineId),
    });
    const rateNow = last ? ((snap.landed - last.landed) * 1000) / Math.max(1, snap.at - last.at) : 0;
    const elapsed = Math.round((snap.at - started) / 1000);
    const text = `[+${String(Math.floor(elapsed / 60)).padStart(2, '0')}:${String(elapsed % 60).padStart(2, '0')}] landed ${formatRate(snap.landed)} (${formatRate(rateNow)} ev/s) | lag ${snap.lag ?? '?'} | dead-lettered ${formatRate(snap.deadLettered)} | open alerts ${snap.openAlerts}`;
    if (snap.openAlerts > lastAlerts) {
      if (liveLine) process.stdout.write('\n');
      liveLine = false;
      say(`  alert opened: see it in the Temporal UI with the query  AlertStatus != "resolved"  (or: npm run -s platform -- alerts list)`);
    }
    lastAlerts = snap.openAlerts;
    last = snap;
    if (tty) {
      process.stdout.write(`\r\x1b[K${text}`);
      liveLine = true;
    } else {
      say(text);
    }
  };
  const interval = setInterval(() => {
    tick().catch((err: unknown) => problem(`progress: ${err instanceof Error ? err.message : String(err)}`));
  }, tty ? 1000 : 5000);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(interval);
    if (liveLine) process.stdout.write('\n');
    say('streamwarden: stopping (the pipeline workflow keeps its cursor; the next npm start resumes it)');
    abort.abort();
    await stream;
    await Promise.allSettled([worker.shutdown(), http?.close(), admin.disconnect(), warehouse.close(), temporal.connection.close()]);
    if (primary) rmSync(pidPath, { force: true });
  };
  await new Promise<void>((resolveDone) => {
    const onSignal = (): void => void stop().then(resolveDone);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // The worker stopping by itself (fatal error) ends the job too.
    void worker.done.then(() => stop().then(resolveDone));
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
