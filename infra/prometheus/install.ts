/**
 * A local Prometheus from the Debian package `prometheus` (pinned below), unpacked into the state
 * folder without installing it system-wide: `apt-get download` fetches the .deb through the
 * machine's apt sources and `dpkg -x` extracts it into `<state>/prometheus/`, where
 * `usr/bin/prometheus` is a self-contained Go binary. Idempotent and cached: a second call finds
 * the binary and downloads nothing. Optional: when apt cannot provide it, the error says why and
 * everything else of the platform works without it.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runInstall, type LogFn } from '../local/process.js';

/** The Debian package version the dashboards' PromQL is tested with (bookworm). */
export const PROMETHEUS_DEB_VERSION = '2.42.0+ds-5+deb12u1';

/** Thrown when Prometheus cannot be installed here; names the step and the reason. */
export class PrometheusUnavailableError extends Error {
  readonly code = 'prometheus_unavailable';
  readonly retriable = false;
}

/** Path of the binary inside `<stateDir>/prometheus`. */
export function prometheusBinary(stateDir: string): string {
  return join(stateDir, 'prometheus', 'root', 'usr', 'bin', 'prometheus');
}

/**
 * Ensures the binary exists and returns its path. Tries the pinned version first, then whatever
 * version apt offers (printed), running `apt-get update` once when the package lists are empty.
 */
export async function ensurePrometheus(stateDir: string, log: LogFn = () => undefined): Promise<string> {
  const binary = prometheusBinary(stateDir);
  if (existsSync(binary)) return binary;
  const dir = join(stateDir, 'prometheus');
  const download = join(dir, 'download');
  mkdirSync(download, { recursive: true });
  const fetch = async (spec: string): Promise<void> => {
    log(`[prometheus] apt-get download ${spec} ...`);
    await runInstall('apt-get', ['download', spec], { cwd: download });
  };
  try {
    try {
      await fetch(`prometheus=${PROMETHEUS_DEB_VERSION}`);
    } catch {
      try {
        await fetch('prometheus');
      } catch {
        log('[prometheus] apt-get update (package lists missing or stale) ...');
        await runInstall('apt-get', ['update', '-q'], { cwd: download });
        await fetch('prometheus');
      }
    }
    const deb = readdirSync(download).find((f) => f.startsWith('prometheus_') && f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download produced no prometheus_*.deb');
    log(`[prometheus] unpacking ${deb} ...`);
    await runInstall('dpkg', ['-x', join(download, deb), join(dir, 'root')], { cwd: dir });
    rmSync(download, { recursive: true, force: true });
  } catch (err) {
    throw new PrometheusUnavailableError(`Prometheus (Debian package "prometheus") could not be installed into ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!existsSync(binary)) throw new PrometheusUnavailableError(`the prometheus package did not contain ${binary}`);
  log(`[prometheus] installed ${binary}`);
  return binary;
}
