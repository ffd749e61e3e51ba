/**
 * `npm run bench:aggregation`: measurement (h) alone (see aggregation-history.ts), on the local
 * stack's ClickHouse (started or reused). `npm run bench` runs the same step unless
 * `--skip aggregation`. Options: `--stages 1000000,4000000` (cumulative history rows),
 * `--rounds N` (default 12), `--deadline-min M` (default 10), `--keep`.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureStack } from '../../infra/local/stack.js';
import { loadConfig } from '../../schemas/config.js';
import { createWarehouse } from '../../workers/connections.js';
import { formatAggregationHistory, measureAggregationHistory } from './aggregation-history.js';
import { Deadline } from './deadline.js';

const log = (line: string): void => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { stages: { type: 'string' }, rounds: { type: 'string' }, 'deadline-min': { type: 'string' }, keep: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    console.log('Usage: npm run bench:aggregation -- [--stages 1000000,4000000] [--rounds 12] [--deadline-min 10] [--keep]');
    return 0;
  }
  const stages = values.stages?.split(',').map((s) => Number(s.replaceAll('_', '')));
  if (stages && (stages.length === 0 || stages.some((n, i) => !Number.isInteger(n) || n < 10_000 || (i > 0 && n <= stages[i - 1]!)))) {
    throw new Error(`--stages: expected increasing row counts of at least 10000, comma-separated, got "${values.stages}"`);
  }
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1)) throw new Error(`--rounds: expected a positive integer, got "${values.rounds}"`);
  const minutes = values['deadline-min'] === undefined ? 10 : Number(values['deadline-min']);
  if (!Number.isFinite(minutes) || minutes <= 0) throw new Error(`--deadline-min: expected a positive number, got "${values['deadline-min']}"`);
  const config = loadConfig();
  const endpoints = await ensureStack(config, { log: (line) => console.log(`[stack] ${line}`) });
  const admin = createWarehouse(config, endpoints, 'default');
  try {
    const result = await measureAggregationHistory(admin, (db) => createWarehouse(config, endpoints, db), new Deadline(minutes * 60_000), log, {
      ...(stages ? { stages } : {}), ...(rounds ? { rounds } : {}), keep: values.keep,
    });
    console.log(`\n${formatAggregationHistory(result)}`);
    const dir = join(resolve(config.PLATFORM_STATE_DIR), 'bench');
    await mkdir(dir, { recursive: true });
    const path = join(dir, `aggregation-${new Date().toISOString().replaceAll(':', '-')}.json`);
    await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nresults: ${path}`);
    return 0;
  } finally {
    await admin.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
