/**
 * `npm run prometheus:up` / `prometheus:down`: an optional local Prometheus on
 * 127.0.0.1:LOCAL_PROMETHEUS_PORT (default 9090) scraping the local worker's METRICS_PORT and
 * TEMPORAL_METRICS_PORT every 5 s, installed from the Debian package into the state folder (see
 * install.ts). When it cannot be installed, `up` says why and exits 1; nothing else depends on it.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../schemas/config.js';
import { isAlive, stopProcess } from '../local/process.js';
import { ensurePrometheus } from './install.js';
import { startPrometheus } from './local.js';

async function main(command: string | undefined): Promise<number> {
  const config = loadConfig();
  const state = resolve(config.PLATFORM_STATE_DIR);
  const dir = join(state, 'prometheus', 'run');
  const pidFile = join(dir, 'prometheus.pid');
  const url = `http://127.0.0.1:${config.LOCAL_PROMETHEUS_PORT}`;
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : null;
  if (command === 'up') {
    if (pid && isAlive(pid) && (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false))) {
      console.log(`[prometheus] already running at ${url} (pid ${pid})`);
      return 0;
    }
    const binary = await ensurePrometheus(state, (line) => console.log(line));
    const running = await startPrometheus({
      binary,
      dir,
      port: config.LOCAL_PROMETHEUS_PORT,
      jobs: [
        { job: 'streamwarden-worker', targets: [`127.0.0.1:${config.METRICS_PORT}`] },
        { job: 'temporal-sdk', targets: [`127.0.0.1:${config.TEMPORAL_METRICS_PORT}`] },
      ],
    });
    console.log(`[prometheus] ready at ${running.url} (pid ${running.child.pid}, log ${running.logFile}); scraping 127.0.0.1:${config.METRICS_PORT} and 127.0.0.1:${config.TEMPORAL_METRICS_PORT}`);
    return 0;
  }
  if (command === 'down') {
    if (!pid || !isAlive(pid)) {
      console.log('[prometheus] not running');
      return 0;
    }
    await stopProcess(pid, 10_000);
    rmSync(pidFile, { force: true });
    console.log(`[prometheus] stopped (pid ${pid})`);
    return 0;
  }
  console.error('usage: tsx infra/prometheus/cli.ts up|down');
  return 2;
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
