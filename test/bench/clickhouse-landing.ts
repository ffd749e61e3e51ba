/**
 * Landing rate during a long analytical query, old endpoint against new, side by side in one run:
 * `npm run bench:clickhouse [-- --baseline <git rev>] [--seconds 10]`.
 *
 * For each endpoint (the baseline is the endpoint code at the given git revision, default the
 * commit before the concurrent endpoint, extracted to .state/bench/; the candidate is this
 * worktree's), started as the local stack starts it: inserts of 1000 JSONEachRow rows each, one
 * after another through @clickhouse/client, for `seconds` with nothing else running, then again
 * while a `seconds`-long analytical query runs (max_execution_time ends it). Prints inserts/s and
 * rows/s in both phases and the ratios.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { repoRoot } from '../../infra/local/process.js';

const { values } = parseArgs({ options: { baseline: { type: 'string', default: '9100879' }, seconds: { type: 'string', default: '10' } } });
const seconds = Number(values.seconds);
const batch = 1000;

function baselineTree(rev: string): string {
  const dir = join(repoRoot, '.state/bench', `clickhouse-endpoint-${rev}`);
  if (!existsSync(join(dir, 'infra/local/clickhouse/server-main.ts'))) {
    mkdirSync(dir, { recursive: true });
    const archive = execFileSync('git', ['archive', rev, 'infra/local', 'schemas'], { cwd: repoRoot });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  }
  return dir;
}

async function start(root: string): Promise<{ url: string; child: ChildProcess; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ch-landing-bench-'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'infra/local/clickhouse/server-main.ts'), '--port', '0', '--path', dataDir], {
    cwd: root, stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, UV_THREADPOOL_SIZE: '64', CLICKHOUSE_PASSWORD: '' },
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => { if (line.startsWith('ready ')) resolve(line.slice(6)); });
    child.once('exit', (code) => reject(new Error(`endpoint exited with ${code}`)));
  });
  return { url, child, dataDir };
}

async function landFor(url: string, ms: number, offset: number): Promise<number> {
  const client = createClient({ url, log: { level: ClickHouseLogLevel.OFF } });
  const deadline = Date.now() + ms;
  let inserts = 0;
  try {
    while (Date.now() < deadline) {
      const rows = Array.from({ length: batch }, (_, i) => ({ offset: offset + inserts * batch + i, body: `{"n":${i}}` }));
      await client.insert({ table: 'landing', values: rows, format: 'JSONEachRow' });
      if (Date.now() <= deadline) inserts++;
    }
  } finally {
    await client.close();
  }
  return inserts / (ms / 1000);
}

async function measure(label: string, root: string): Promise<{ idle: number; during: number }> {
  const { url, child, dataDir } = await start(root);
  try {
    const admin = createClient({ url, request_timeout: (seconds + 30) * 1000, log: { level: ClickHouseLogLevel.OFF } });
    await admin.command({ query: 'CREATE TABLE landing (offset UInt64, body String) ENGINE = MergeTree ORDER BY offset' });
    const idle = await landFor(url, seconds * 1000, 0);
    const long = admin.query({
      query: "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number, 'bench') = 42",
      clickhouse_settings: { max_execution_time: seconds },
    }).catch(() => undefined); // ends with TIMEOUT_EXCEEDED after `seconds`, as intended
    await new Promise((r) => setTimeout(r, 200));
    const during = await landFor(url, seconds * 1000, 1e9);
    await long;
    await admin.close();
    console.log(`${label.padEnd(28)} idle ${idle.toFixed(1)} inserts/s (${Math.round(idle * batch)} rows/s); during a ${seconds} s query ${during.toFixed(1)} inserts/s (${Math.round(during * batch)} rows/s)`);
    return { idle, during };
  } finally {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const before = await measure(`baseline ${values.baseline}`, baselineTree(values.baseline));
const after = await measure('this tree', repoRoot);
console.log(`landing during the long query / idle: baseline ${(before.during / before.idle).toFixed(2)}, this tree ${(after.during / after.idle).toFixed(2)}`);
console.log(`landing during the long query, this tree / baseline: ${before.during > 0 ? (after.during / before.during).toFixed(1) : 'baseline landed nothing'}`);
