/**
 * `npm start`: the platform's main job on the local stack. Boots (or reuses) Temporal, Kafka and
 * ClickHouse, applies migrations, runs a worker and the acknowledge-link endpoint, starts the demo
 * pipeline (`pipeline-demo` on topic `requests`) and a synthetic event stream with an injected
 * incident so the demo alert fires, and shows live progress until Ctrl-C.
 *
 * A second `npm start` while one runs joins as another worker (the stack, the pipeline workflow
 * and the HTTP port are reused, the stream is not doubled).
 *
 * The screen shows only this job's own lines and the progress line. Everything else goes to the
 * log file whose path it prints: the worker's log and the Temporal SDK's (Core and worker) log,
 * including multi-line `Activity failed` blocks with stack traces. Errors that need attention also
 * appear on the screen as one line each, on a line of their own (never inside the progress line).
 *
 * Flags: `--rate N` events/s of the demo stream (default 400), `--no-stream` (worker and progress only).
 */
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { alertFingerprint, alertWorkflowId } from '../schemas/alerting/alert.js';
import { defaultConsumerGroup } from '../schemas/ingest/pipeline.js';
import { createSchemaRegistry, registerCatalogue } from '../activities/contracts/registry.js';
import { errorRateDetector } from '../activities/analytics/rollup.js';
import { subjects } from '../schemas/contracts/index.js';
import { stateDir } from '../infra/local/process.js';
import { ensureStack } from '../infra/local/stack.js';
import { ConfigError, loadConfig } from '../schemas/config.js';
import { connectTemporal, createKafka, createWarehouse } from './connections.js';
import { produceEvents } from './generator.js';
import { demoStreamOptions } from './demo-stream.js';
import { startPipeline } from './pipelines.js';
import { ackEndpointSettings, startAckEndpoint } from './ack-endpoint.js';
import { tryCommands } from './start-commands.js';
import { createScreen, fileLogger, sdkFileLogger, startLog } from './start-screen.js';
import { readFile } from 'node:fs/promises';
import { createProcessorRegistry } from '../activities/processing/registry.js';
import { seedServiceCatalog } from '../activities/processing/service-catalog.js';
import { processors } from '../schemas/processors/index.js';
import { processorLockFile } from './cli/processors.js';
import { pipelineSnapshot, type PipelineSnapshot } from './progress.js';
import { configSecretValues, loadAlerting, startWorker } from './worker.js';
import { installRuntime } from './observability/runtime.js';
import { startObservability } from './observability/setup.js';
import { processorVersion } from './processor-version.js';

const demo = { pipelineId: 'demo', topic: 'requests', partitions: 3, incidentService: 'checkout' } as const;

const screen = createScreen();
const say = (line: string): void => screen.say(line);

/** Repository root (where `npm run platform` works). */
const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

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
  // Refuses a non-loopback bind without ALERT_SIGNING_SECRET before anything starts.
  const ack = ackEndpointSettings(config);
  const started = Date.now();

  const state = resolve(stateDir(config));
  mkdirSync(state, { recursive: true });
  const logPath = join(state, 'worker.log');
  const problem = (line: string): void => screen.problem(line);
  // Before anything creates the SDK runtime: every SDK log line goes to the file, none to the screen.
  const json = startLog(logPath, { level: config.LOG_LEVEL, secretValues: configSecretValues(config) });
  // The SDK's metrics are served on TEMPORAL_METRICS_PORT, as by `npm run worker`.
  const runtime = await installRuntime(config, json, sdkFileLogger(json, problem));
  const log = fileLogger(json, problem);

  say('streamwarden: starting the local stack (first run installs the Temporal CLI, Kafka and ClickHouse; about a minute)');
  const endpoints = await ensureStack(config, { log: (line) => say(`  ${line}`) });

  const pidPath = join(state, 'start.pid');
  const other = existsSync(pidPath) ? Number(readFileSync(pidPath, 'utf8').trim()) : NaN;
  const primary = !(Number.isInteger(other) && other !== process.pid && processAlive(other));
  if (primary) writeFileSync(pidPath, String(process.pid));

  say(`streamwarden: starting a worker on task queue "${config.TEMPORAL_TASK_QUEUE}"`);
  say(`  worker log (JSON lines): ${logPath} (the demo alert's notifications and ack links appear there through the log:alerts channel;`);
  say('  Slack, PagerDuty and email targets stay disabled until their variables are set, see README "Notification channels")');
  const observed = await startObservability(config, endpoints, processorVersion(config), log);
  say(`  metrics: ${observed.metricsUrl ?? 'not served (see the worker log)'}${runtime.temporalMetricsAddress ? `, Temporal SDK metrics: http://${runtime.temporalMetricsAddress}/metrics` : ''}`);
  const worker = await startWorker({ config, endpoints, log, alerting: await loadAlerting(config, ack), observability: observed.observability });
  const temporal = await connectTemporal(config, endpoints);
  // The demo stream's and the screen's own clients log to the file, never to the screen: during an
  // outage KafkaJS wrote one JSON line per retry (160 in 30 s) and buried the `!` lines saying why.
  const kafka = createKafka(config, endpoints, '-start', { onLog: (entry) => json.warn(entry.message, { source: 'kafkajs', kafkaLevel: entry.level }) });
  const admin = kafka.admin();
  await admin.connect();
  const warehouse = createWarehouse(config, endpoints, config.CLICKHOUSE_DATABASE, { onLog: (entry) => json.warn(entry.message, { source: 'clickhouse-client', clickhouseLevel: entry.level, ...(entry.err ? { error: entry.err.message } : {}) }) });

  // Keep the registry in step with the code that validates: new contract versions are registered
  // (each re-checked against its subject's compatibility mode); a refused subject is reported.
  const registration = await registerCatalogue(createSchemaRegistry({ warehouse, actor: 'npm start' }), subjects);
  const registered = registration.outcomes.filter((o) => o.status === 'registered').map((o) => `${o.subject} v${o.version}`);
  if (registered.length > 0) say(`streamwarden: registered contracts ${registered.join(', ')}`);
  for (const refused of registration.refused) problem(`contract registry refused subject ${refused.subject}: run \`npm run -s platform -- schemas check\``);
  // The same for processors (fingerprint-locked versions), and the demo's reference data.
  const processorRegistration = await createProcessorRegistry({ warehouse, actor: 'npm start' }).register(processors, JSON.parse(await readFile(processorLockFile, 'utf8')) as Record<string, Record<string, string>>);
  if (processorRegistration.registered.length > 0) say(`streamwarden: registered processors ${processorRegistration.registered.join(', ')}`);
  if (!processorRegistration.ok) problem('processor registry refused a version: run `npm run -s platform -- processors check`');
  if ((await seedServiceCatalog(warehouse)) > 0) say('streamwarden: seeded service_catalog (team and tier per service) for the demo enrichment');

  const http = await startAckEndpoint({ client: temporal, settings: ack, log });
  if (!http) say(`  acknowledge links: ${ack.host}:${ack.port} is served by another process (another npm start or worker)`);
  if (ack.secretSource.kind === 'state-file') log.info('ack links signed with the generated key', { path: ack.secretSource.path });

  const pipeline = await startPipeline(temporal, config.TEMPORAL_TASK_QUEUE, {
    pipelineId: demo.pipelineId,
    topic: demo.topic,
    partitions: demo.partitions,
    processor: { name: 'request-enriched', version: 1 },
  });
  const workflowId = pipeline.workflowId;
  say(pipeline.started ? `streamwarden: started workflow ${workflowId}` : `streamwarden: workflow ${workflowId} is already running; this worker joins it`);

  const abort = new AbortController();
  let stream: Promise<unknown> = Promise.resolve();
  if (primary && !values['no-stream']) {
    // Event time follows the wall clock; the incident starts 45 s in and lasts two minutes, so at
    // least one complete 1-minute window breaches the detector's threshold; then a latency spike
    // and a silent service (workers/demo-stream.ts has the timeline and which detectors fire).
    stream = produceEvents(kafka, {
      ...demoStreamOptions(rate, started % 1_000_000),
      topic: demo.topic,
      partitions: demo.partitions,
      count: Number.MAX_SAFE_INTEGER,
      pace: true,
      signal: abort.signal,
    }).catch((err: unknown) => problem(`event stream stopped: ${err instanceof Error ? err.message : String(err)}`));
    say(`streamwarden: producing ~${rate} events/s to topic "${demo.topic}" (2% contract violations, 1% malformed JSON); incident on "${demo.incidentService}" from +45 s, search latency spike at +4 min, recommendations silent +5 to +6:30 min`);
  }

  const alertId = alertWorkflowId(alertFingerprint(errorRateDetector, { pipeline: demo.pipelineId, service: demo.incidentService }));
  const temporalCli = existsSync(join(state, 'bin', 'temporal')) ? join(state, 'bin', 'temporal') : 'temporal';
  const chUrl = endpoints.clickhouseUrl.replace(/\/$/, '');
  const commands = tryCommands({ repoDir, env: process.env, config, endpoints, temporalCli, pipelineWorkflowId: workflowId, pipelineId: demo.pipelineId, alertWorkflowId: alertId });
  say('');
  say(`Temporal UI   ${endpoints.temporalUiUrl ?? '(external Temporal: use your UI)'}`);
  say(`ClickHouse    ${chUrl}  (database "${config.CLICKHOUSE_DATABASE}")`);
  say(`Ack links     ${http?.url ?? ack.publicUrl}  (bound to ${ack.host}; links point at ${ack.publicUrl})`);
  say('');
  say('Try (each line works pasted into a new shell):');
  say(`  ${commands.progress}`);
  say(`  ${commands.deadLetters}`);
  say(`  ${commands.enriched}`);
  say(`  ${commands.switchProcessor}`);
  say(`  ${commands.ack}     # once the demo alert is open; --by defaults to your OS user name`);
  say(`  ${commands.ackWithTemporal}`);
  if (commands.secretsToExport.length > 0) say(`  (export ${commands.secretsToExport.join(', ')} in that shell first; secrets are not printed)`);
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
      say(`  alert opened: see it in the Temporal UI with the query  AlertStatus != "resolved"  (or: npm run -s platform -- alerts list)`);
    }
    lastAlerts = snap.openAlerts;
    last = snap;
    screen.live(text);
  };
  const interval = setInterval(() => {
    tick().catch((err: unknown) => problem(`progress: ${err instanceof Error ? err.message : String(err)}`));
  }, tty ? 1000 : 5000);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(interval);
    say('streamwarden: stopping (the pipeline workflow keeps its cursor; the next npm start resumes it)');
    abort.abort();
    await stream;
    await Promise.allSettled([worker.shutdown(), http?.close(), observed.close(), admin.disconnect(), warehouse.close(), temporal.connection.close()]);
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
