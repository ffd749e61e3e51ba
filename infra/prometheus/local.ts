/**
 * Runs the locally installed Prometheus (see install.ts) with a generated configuration that
 * scrapes the given targets every `scrapeIntervalSeconds`, on 127.0.0.1 only. Used by
 * `npm run prometheus:up` (scrapes the local worker's METRICS_PORT and TEMPORAL_METRICS_PORT) and
 * by the PromQL test of the dashboards (own free port, own data folder).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnDetached } from '../local/process.js';

/** One scrape job. */
export interface ScrapeJob {
  job: string;
  /** host:port each */
  targets: string[];
}

/** Options of {@link startPrometheus}. */
export interface StartPrometheusOptions {
  binary: string;
  /** Folder for the config, the TSDB, the log and the pid file. */
  dir: string;
  port: number;
  jobs: ScrapeJob[];
  /** @default 5 */
  scrapeIntervalSeconds?: number;
}

/** The prometheus.yml text for `jobs`. */
export function prometheusConfig(jobs: readonly ScrapeJob[], scrapeIntervalSeconds = 5): string {
  const lines = ['global:', `  scrape_interval: ${scrapeIntervalSeconds}s`, `  evaluation_interval: ${scrapeIntervalSeconds}s`, 'scrape_configs:'];
  for (const j of jobs) {
    lines.push(`  - job_name: ${JSON.stringify(j.job)}`, '    static_configs:', `      - targets: [${j.targets.map((t) => JSON.stringify(t)).join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}

/** A started Prometheus: its URL and process. */
export interface RunningPrometheus {
  url: string;
  child: ChildProcess;
  logFile: string;
  pidFile: string;
}

/** Starts Prometheus detached and waits until `/-/ready` answers (60 s at most). */
export async function startPrometheus(options: StartPrometheusOptions): Promise<RunningPrometheus> {
  mkdirSync(join(options.dir, 'data'), { recursive: true });
  const configFile = join(options.dir, 'prometheus.yml');
  writeFileSync(configFile, prometheusConfig(options.jobs, options.scrapeIntervalSeconds));
  const logFile = join(options.dir, 'prometheus.log');
  const pidFile = join(options.dir, 'prometheus.pid');
  const child = spawnDetached({
    command: options.binary,
    args: [`--config.file=${configFile}`, `--storage.tsdb.path=${join(options.dir, 'data')}`, `--web.listen-address=127.0.0.1:${options.port}`, '--web.enable-lifecycle'],
    cwd: options.dir,
    logFile,
    pidFile,
  });
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited during start-up (code ${child.exitCode}); see ${logFile}`);
    const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ok) return { url, child, logFile, pidFile };
    if (Date.now() > deadline) throw new Error(`prometheus not ready after 60 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
