/**
 * Writes every dashboard as plain Grafana JSON: `npm run dashboards:build` (to dashboards/dist/) or
 * `tsx dashboards/build.ts --out DIR`. Grafana's file provider (infra/grafana/provisioning) loads
 * the folder; stale JSON files of dashboards that no longer exist are removed so that Grafana
 * drops them too.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { alertsDashboard } from './alerts.js';
import { operationsDashboard } from './operations.js';
import { canaryRolloutsDashboard } from './canary-rollouts.js';

import type { DashboardFile } from './panels.js';
import { pipelineHealthDashboard } from './pipeline-health.js';
import { serviceTelemetryDashboard } from './service-telemetry.js';

/** Default output folder (gitignored). */
export const defaultOutDir = fileURLToPath(new URL('./dist/', import.meta.url));

/** Every dashboard of the platform, built. */
export function buildDashboards(): DashboardFile[] {
  return [
    { file: 'pipeline-health.json', dashboard: pipelineHealthDashboard() },
    { file: 'service-telemetry.json', dashboard: serviceTelemetryDashboard() },
    { file: 'alerts.json', dashboard: alertsDashboard() },
    { file: 'operations.json', dashboard: operationsDashboard() },
    { file: 'canary-rollouts.json', dashboard: canaryRolloutsDashboard() },

  ];
}

/** Writes the dashboards to `outDir` and returns the paths written. */
export async function writeDashboards(outDir: string = defaultOutDir): Promise<string[]> {
  const files = buildDashboards();
  await mkdir(outDir, { recursive: true });
  const keep = new Set(files.map((f) => f.file));
  for (const existing of await readdir(outDir)) {
    if (existing.endsWith('.json') && !keep.has(existing)) await rm(join(outDir, existing));
  }
  const written: string[] = [];
  for (const { file, dashboard } of files) {
    const path = join(outDir, file);
    await writeFile(path, `${JSON.stringify(dashboard, null, 2)}\n`);
    written.push(path);
  }
  return written;
}

function parseArgs(argv: string[]): { outDir: string } {
  let outDir = defaultOutDir;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out' && argv[i + 1]) outDir = resolve(argv[++i]!);
    else throw new Error(`dashboards/build.ts: unknown argument ${JSON.stringify(arg)}; expected --out DIR`);
  }
  return { outDir };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { outDir } = parseArgs(process.argv.slice(2));
  const written = await writeDashboards(outDir);
  for (const path of written) console.log(`wrote ${path}`);
}
