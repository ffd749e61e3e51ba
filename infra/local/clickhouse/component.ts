/**
 * Local ClickHouse: the project's ClickHouse-HTTP-compatible endpoint over the embedded engine
 * (npm `chdb`), infra/local/clickhouse/server-main.ts, run as its own detached Node process.
 * Nothing to download: chdb comes with the npm install.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PlatformConfig } from '../../../schemas/config.js';
import type { LocalComponent } from '../component.js';
import { componentPaths, ensureDir, repoRoot, spawnDetached } from '../process.js';

const host = '127.0.0.1';

/** Entry point of the embedded ClickHouse HTTP endpoint. */
export const clickhouseServerMain: string = join(repoRoot, 'infra/local/clickhouse/server-main.ts');

function dataPath(config: PlatformConfig): string {
  return join(componentPaths(config, 'clickhouse').dataDir, 'data');
}

function baseUrl(config: PlatformConfig): string {
  return `http://${host}:${config.LOCAL_CLICKHOUSE_PORT}`;
}

/** GET /ping answering `Ok.` is ClickHouse's own liveness contract, which the endpoint keeps. */
async function ping(url: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/ping', url), { signal: AbortSignal.timeout(2000) });
    return res.ok && (await res.text()).trim() === 'Ok.';
  } catch {
    return false;
  }
}

/** The local embedded ClickHouse endpoint component. */
export const clickhouseComponent: LocalComponent = {
  name: 'clickhouse',
  startTimeoutMs: 120_000,
  stopGraceMs: 10_000,
  port: (config) => config.LOCAL_CLICKHOUSE_PORT,
  extraPorts: () => [],
  address: (config) => baseUrl(config),
  external: (config) => config.CLICKHOUSE_URL ?? null,
  marker: (config) => dataPath(config),

  probe: (config) => ping(baseUrl(config)),

  async install() {
    if (!existsSync(clickhouseServerMain)) {
      throw new Error(`${clickhouseServerMain} is missing: the embedded ClickHouse endpoint is part of the repository`);
    }
    if (!existsSync(join(repoRoot, 'node_modules/chdb'))) {
      throw new Error('the npm package chdb is not installed: run `npm install` (npm run stack:up does it)');
    }
  },

  async start(config) {
    const paths = componentPaths(config, 'clickhouse');
    ensureDir(dataPath(config));
    return spawnDetached({
      command: process.execPath,
      args: ['--import', 'tsx', clickhouseServerMain, '--host', host, '--port', String(config.LOCAL_CLICKHOUSE_PORT), '--path', dataPath(config)],
      cwd: repoRoot, // `--import tsx` resolves tsx from here
      // Each running query holds a libuv worker thread (chdb runs native calls there); the default
      // pool of 4 would cap the endpoint at 4 parallel queries.
      env: { ...process.env, UV_THREADPOOL_SIZE: '64' },
      logFile: paths.logFile,
      pidFile: paths.pidFile,
    });
  },

  async afterReady() {
    // Databases and tables are created by the platform's migrations, not by the stack.
  },

  async version(config) {
    const url = new URL('/', config.CLICKHOUSE_URL ?? baseUrl(config));
    url.searchParams.set('query', 'SELECT version()');
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      return res.ok ? (await res.text()).trim() : null;
    } catch {
      return null;
    }
  },
};
