/**
 * The local stack: Temporal, Kafka and ClickHouse as plain processes (no containers), installed
 * into and run from the state folder (`PLATFORM_STATE_DIR`, default `.state/`). Used by
 * `npm run stack:up|down|status`, the integration tests' global setup and `npm start`.
 *
 * For each server: an address in the environment (TEMPORAL_ADDRESS, KAFKA_BROKERS,
 * CLICKHOUSE_URL) wins and nothing is started; otherwise a healthy server on the configured
 * port is reused (ours or not); otherwise the missing pieces are installed and the server is
 * started detached, so it outlives the command that started it.
 */
import { rmSync } from 'node:fs';
import type { PlatformConfig } from '../../schemas/config.js';
import { clickhouseComponent } from './clickhouse/component.js';
import type { LocalComponent } from './component.js';
import type { StackEndpoints } from './endpoints.js';
import { kafkaComponent } from './kafka.js';
import {
  componentPaths,
  ensureDir,
  ownedPid,
  portOpen,
  stateDir,
  stopProcess,
  StackError,
  waitHealthy,
  withLock,
  type ComponentMode,
  type ComponentName,
  type ComponentResult,
  type LogFn,
} from './process.js';
import { temporalComponent } from './temporal.js';
import { PlatformError } from '../../schemas/errors.js';

export { StackError } from './process.js';
export type { ComponentName, ComponentResult, ComponentMode } from './process.js';

/** The stack's components, in display order. */
export const components: readonly LocalComponent[] = [temporalComponent, kafkaComponent, clickhouseComponent];

/** Options of {@link ensureStack}. */
export interface EnsureStackOptions {
  /** Receives progress lines (installs, starts, reuse). @default no output */
  log?: LogFn;
  /** Called with what was done per component (started, reused, external). */
  onResult?: (result: ComponentResult) => void;
}

/**
 * Makes the three servers available and returns their endpoints. Components are handled in
 * parallel; each is guarded by a lock file so that concurrent callers (a test run and
 * `npm run stack:up`) never start a server twice. Failures name the component, the port and
 * the log file, with the log's last lines.
 */
export async function ensureStack(config: PlatformConfig, opts: EnsureStackOptions = {}): Promise<StackEndpoints> {
  const log = opts.log ?? (() => undefined);
  ensureDir(stateDir(config));
  const settled = await Promise.allSettled(components.map((c) => ensureComponent(c, config, log)));
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    throw new StackErrors(failures);
  }
  for (const s of settled) if (s.status === 'fulfilled') opts.onResult?.(s.value);
  return endpoints(config);
}

/** Several components failed at once; `errors` holds each one. */
export class StackErrors extends PlatformError {
  constructor(readonly errors: readonly Error[]) {
    super('stack_components_failed', errors.map((e) => e.message).join('\n\n'), false);
    this.name = 'StackErrors';
  }
}

/** Endpoints of the stack as configured (environment first, local defaults otherwise). */
export function endpoints(config: PlatformConfig): StackEndpoints {
  return {
    temporalAddress: config.TEMPORAL_ADDRESS ?? temporalComponent.address(config),
    temporalUiUrl: config.TEMPORAL_ADDRESS ? null : `http://127.0.0.1:${config.LOCAL_TEMPORAL_UI_PORT}`,
    kafkaBrokers: config.KAFKA_BROKERS ?? [kafkaComponent.address(config)],
    clickhouseUrl: config.CLICKHOUSE_URL ?? clickhouseComponent.address(config),
  };
}

async function ensureComponent(c: LocalComponent, config: PlatformConfig, log: LogFn): Promise<ComponentResult> {
  const external = c.external(config);
  const paths = componentPaths(config, c.name);
  const port = c.port(config);
  if (external !== null) {
    log(`[${c.name}] using ${external} from the environment (nothing started)`);
    // Best effort: an external server may refuse (permissions, Cloud), which is its operator's call.
    await c.afterReady(config, log).catch((err: unknown) => log(`[${c.name}] note: set-up on ${external} skipped: ${(err as Error).message}`));
    return { component: c.name, mode: 'external', pid: null };
  }

  // Install and start can take minutes on a cold machine; another caller waits that long.
  return withLock(paths.lockFile, 15 * 60_000, async () => {
    const pid = ownedPid(paths, c.marker(config));
    if (await c.probe(config)) {
      await ready(c, config, log, paths.logFile);
      const mode: ComponentMode = pid === null ? 'foreign' : 'reused';
      log(`[${c.name}] reusing the ${pid === null ? 'healthy server (not started by this stack)' : `running server (pid ${pid})`} at ${c.address(config)}`);
      return { component: c.name, mode, pid };
    }
    if (pid !== null) {
      // Ours and alive but not healthy yet: still starting (e.g. a `stack:up` that was interrupted).
      log(`[${c.name}] waiting for pid ${pid} to become healthy at ${c.address(config)} ...`);
      try {
        await waitHealthy({ component: c.name, port, logFile: paths.logFile, probe: () => c.probe(config), timeoutMs: c.startTimeoutMs });
      } catch (err) {
        throw new StackError(c.name, port, paths.logFile, `our server (pid ${pid}) runs but does not answer: stop it with npm run stack:down and retry (${(err as Error).message.split('\n')[0]})`);
      }
      await ready(c, config, log, paths.logFile);
      return { component: c.name, mode: 'reused', pid };
    }
    for (const p of [port, ...c.extraPorts(config)]) {
      if (await portOpen('127.0.0.1', p)) {
        throw new StackError(c.name, p, null, `port ${p} is taken by another process that is not a healthy ${c.name} server; stop it or choose another port in the LOCAL_*_PORT variables`);
      }
    }
    try {
      await c.install(config, log);
    } catch (err) {
      throw new StackError(c.name, port, null, `install failed: ${(err as Error).message}`);
    }
    const started = Date.now();
    log(`[${c.name}] starting on ${c.address(config)} (log ${paths.logFile}) ...`);
    let child;
    try {
      child = await c.start(config, log);
    } catch (err) {
      throw new StackError(c.name, port, paths.logFile, `start failed: ${(err as Error).message}`);
    }
    try {
      await waitHealthy({ component: c.name, port, logFile: paths.logFile, probe: () => c.probe(config), timeoutMs: c.startTimeoutMs, child });
    } catch (err) {
      // Do not leave a half-started server behind holding the port for the next attempt.
      if (child.pid !== undefined && child.exitCode === null) await stopProcess(child.pid, c.stopGraceMs);
      rmSync(paths.pidFile, { force: true });
      throw err;
    }
    await ready(c, config, log, paths.logFile);
    log(`[${c.name}] ready at ${c.address(config)} (pid ${child.pid}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return { component: c.name, mode: 'started', pid: child.pid ?? null };
  });
}

async function ready(c: LocalComponent, config: PlatformConfig, log: LogFn, logFile: string): Promise<void> {
  try {
    await c.afterReady(config, log);
  } catch (err) {
    throw new StackError(c.name, c.port(config), logFile, `set-up after start failed: ${(err as Error).message}`);
  }
}

/** What {@link stopStack} did for one component. */
export interface StopResult {
  component: ComponentName;
  /** PID that was stopped, or null when this stack had nothing running. */
  pid: number | null;
  stopped: boolean;
}

/**
 * Stops the servers this stack started, as recorded in the PID files (SIGTERM, then SIGKILL
 * after a grace period). Servers from the environment and servers someone else started are
 * never touched.
 */
export async function stopStack(config: PlatformConfig, opts: { log?: LogFn } = {}): Promise<StopResult[]> {
  const log = opts.log ?? (() => undefined);
  return Promise.all(
    components.map(async (c) => {
      const paths = componentPaths(config, c.name);
      const pid = ownedPid(paths, c.marker(config));
      if (pid === null) return { component: c.name, pid: null, stopped: false };
      log(`[${c.name}] stopping pid ${pid} ...`);
      const stopped = await stopProcess(pid, c.stopGraceMs);
      if (stopped) {
        rmSync(paths.pidFile, { force: true });
        log(`[${c.name}] stopped`);
      } else {
        log(`[${c.name}] pid ${pid} did not exit after SIGKILL`);
      }
      return { component: c.name, pid, stopped };
    }),
  );
}

/** State of one component as reported by {@link stackStatus}. */
export interface ComponentStatus {
  component: ComponentName;
  /** Whether a healthy server answers at `address`; null when an external server could not be checked (Kafka, TLS, credentials). */
  running: boolean | null;
  /** external: from the environment; local: started by this stack; foreign: healthy but not ours; stopped. */
  mode: 'external' | 'local' | 'foreign' | 'stopped';
  /** PID of our server (from the PID file), null otherwise. */
  pid: number | null;
  /** Local port (null for external servers). */
  port: number | null;
  address: string;
  /** Log file of our server (null for external servers). */
  log: string | null;
  version: string | null;
}

/** Reports each component: running?, pid, port, address, log path, version. */
export async function stackStatus(config: PlatformConfig): Promise<ComponentStatus[]> {
  return Promise.all(
    components.map(async (c): Promise<ComponentStatus> => {
      const external = c.external(config);
      if (external !== null) {
        // A version proves it answers; without one (credentials, TLS, Kafka) it is simply not checked.
        const version = await c.version(config);
        return { component: c.name, running: version === null ? null : true, mode: 'external', pid: null, port: null, address: external, log: null, version };
      }
      const paths = componentPaths(config, c.name);
      const pid = ownedPid(paths, c.marker(config));
      const running = await c.probe(config);
      const mode = running ? (pid === null ? 'foreign' : 'local') : 'stopped';
      return {
        component: c.name,
        running,
        mode,
        pid,
        port: c.port(config),
        address: c.address(config),
        log: paths.logFile,
        version: running ? await c.version(config) : null,
      };
    }),
  );
}
