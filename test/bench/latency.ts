/**
 * `npm run bench:latency`: measurement (l) alone (see detection-latency.ts), on the local stack
 * (started or reused). `npm run bench` runs the same step after (a) unless `--skip latency`.
 * Options: `--rate N` (events/s, default 5000), `--seconds N` (default 60), `--poll-ms N`
 * (the aggregator's poll interval, default 250), `--deadline-min M` (default 10), `--keep`,
 * `--analytics-in-process` (the analytics task queue served by the landing worker process, as
 * `npm start` runs it, instead of a worker process of its own, as docker-compose.yml deploys it).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureStack } from '../../infra/local/stack.js';
import { loadConfig } from '../../schemas/config.js';
import { connectTemporal, createKafka, createWarehouse } from '../../workers/connections.js';
import { bundlePlatformWorkflows } from '../../workers/worker.js';
import { Deadline } from './deadline.js';
import { formatLatency, measureDetectionLatency } from './detection-latency.js';

const log = (line: string): void => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got "${raw}"`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { rate: { type: 'string' }, seconds: { type: 'string' }, 'poll-ms': { type: 'string' }, 'deadline-min': { type: 'string' }, keep: { type: 'boolean', default: false }, 'analytics-in-process': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    console.log('Usage: npm run bench:latency -- [--rate 5000] [--seconds 60] [--poll-ms 250] [--deadline-min 10] [--keep] [--analytics-in-process]');
    return 0;
  }
  const config = loadConfig();
  const stateDir = resolve(config.PLATFORM_STATE_DIR);
  const deadline = new Deadline(positive('deadline-min', values['deadline-min'], 10) * 60_000);
  const endpoints = await ensureStack(config, { log: (line) => console.log(`[stack] ${line}`) });
  const kafka = createKafka(config, endpoints, '-bench');
  const chAdmin = createWarehouse(config, endpoints, 'default');
  const temporal = await connectTemporal(config, endpoints);
  await mkdir(join(stateDir, 'bench'), { recursive: true });
  const bundle = await bundlePlatformWorkflows();
  if (!('code' in bundle)) throw new Error('bench: expected bundlePlatformWorkflows() to return code');
  const workflowBundlePath = join(stateDir, 'bench', `latency-${process.pid}-workflows.js`);
  await writeFile(workflowBundlePath, bundle.code);
  try {
    const result = await measureDetectionLatency(
      { temporal, kafka, chAdmin, createWarehouse: (db) => createWarehouse(config, endpoints, db), endpoints, workflowBundlePath, stateDir, deadline, log, keep: values.keep },
      { rate: positive('rate', values.rate, 5000), seconds: positive('seconds', values.seconds, 60), pollMs: positive('poll-ms', values['poll-ms'], 250), analyticsProcess: !values['analytics-in-process'] },
    );
    console.log(`\n${formatLatency(result)}`);
    const path = join(stateDir, 'bench', `latency-${new Date().toISOString().replaceAll(':', '-')}.json`);
    await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nresults: ${path}`);
    return 0;
  } finally {
    await rm(workflowBundlePath, { force: true });
    await Promise.all([chAdmin.close(), temporal.connection.close()]);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
