/**
 * The server under test for the ClickHouse HTTP conformance suite: the one named by
 * CLICKHOUSE_CONFORMANCE_URL (a real ClickHouse server, e.g. docker-compose's, user and password
 * from CLICKHOUSE_CONFORMANCE_USER / CLICKHOUSE_CONFORMANCE_PASSWORD), or else the project's
 * embedded endpoint, started here as the local stack starts it (its own process, on a free port,
 * with a temporary data directory) and stopped afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestProject } from 'vitest/node';
import { clickhouseServerMain } from '../../../infra/local/clickhouse/component.js';
import { repoRoot } from '../../../infra/local/process.js';

/** What the test files get through `inject('conformance')`. */
export interface ConformanceTarget {
  url: string;
  user: string;
  password: string;
  /** Process id of the embedded endpoint (for its memory), absent for an external server. */
  pid?: number;
  embedded: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    conformance: ConformanceTarget;
  }
}

let child: ChildProcess | undefined;
let dataDir: string | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Test configuration, read here and nowhere else in the suite.
  const external = process.env.CLICKHOUSE_CONFORMANCE_URL;
  if (external) {
    project.provide('conformance', {
      url: external.replace(/\/$/, ''),
      user: process.env.CLICKHOUSE_CONFORMANCE_USER ?? 'default',
      password: process.env.CLICKHOUSE_CONFORMANCE_PASSWORD ?? '',
      embedded: false,
    });
    return async () => undefined;
  }
  dataDir = mkdtempSync(join(tmpdir(), 'ch-conformance-'));
  const server = spawn(process.execPath, ['--import', 'tsx', clickhouseServerMain, '--port', '0', '--path', dataDir], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    // As the local stack starts it (component.ts): enough libuv threads for parallel queries.
    env: { ...process.env, UV_THREADPOOL_SIZE: '64', CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '' },
  });
  child = server;
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: server.stdout! });
    lines.on('line', (line) => { if (line.startsWith('ready ')) resolve(line.slice(6).trim()); });
    server.once('exit', (code) => reject(new Error(`the embedded ClickHouse endpoint exited with code ${code} before it was ready`)));
  });
  project.provide('conformance', { url, user: 'default', password: '', pid: server.pid!, embedded: true });
  return async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
}
