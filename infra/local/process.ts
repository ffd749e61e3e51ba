/**
 * Shared plumbing of the local stack: where its state lives, detached server processes with PID
 * and log files, ports, health polling, install commands and cross-process locks. Nothing here
 * knows about Temporal, Kafka or ClickHouse; the component modules build on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, readSync, fstatSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PlatformConfig } from '../../schemas/config.js';
import { PlatformError } from '../../schemas/errors.js';

/** Repository root, so the state folder does not depend on the caller's working directory. */
export const repoRoot: string = fileURLToPath(new URL('../../', import.meta.url));

/** The three servers of the local stack. */
export type ComponentName = 'temporal' | 'kafka' | 'clickhouse';

/** Writes one progress line (the CLI prints it, tests prefix it). */
export type LogFn = (line: string) => void;

/** Absolute state folder: `PLATFORM_STATE_DIR` resolved against the repository root. */
export function stateDir(config: PlatformConfig): string {
  return resolve(repoRoot, config.PLATFORM_STATE_DIR);
}

/** File locations of one component inside the state folder. */
export interface ComponentPaths {
  /** `<state>/<component>.pid`: the PID of the server this stack started. */
  pidFile: string;
  /** `<state>/<component>.log`: stdout and stderr of that server. */
  logFile: string;
  /** `<state>/<component>.lock`: held while a process checks, installs or starts the component. */
  lockFile: string;
  /** `<state>/<component>/`: the component's data and config. */
  dataDir: string;
  /** `<state>/bin/`: installed executables. */
  binDir: string;
}

/** Paths of `component` under the configured state folder (nothing is created). */
export function componentPaths(config: PlatformConfig, component: ComponentName): ComponentPaths {
  const root = stateDir(config);
  return {
    pidFile: join(root, `${component}.pid`),
    logFile: join(root, `${component}.log`),
    lockFile: join(root, `${component}.lock`),
    dataDir: join(root, component),
    binDir: join(root, 'bin'),
  };
}

/**
 * A local stack component failed to install, start or become healthy. The message names the
 * component, the port and the log file, and quotes the end of the log.
 */
export class StackError extends PlatformError {
  constructor(
    readonly component: ComponentName,
    readonly port: number,
    readonly logFile: string | null,
    problem: string,
  ) {
    const tail = logFile ? tailFile(logFile, 20) : '';
    super(
      'stack_component_failed',
      `[${component}] ${problem} (port ${port}${logFile ? `, log ${logFile}` : ''})` +
        (tail ? `\n--- last lines of ${logFile} ---\n${tail}` : ''),
      false,
    );
    this.name = 'StackError';
  }
}

/** The last `lines` lines of a text file ('' when it does not exist); reads at most 64 KiB. */
export function tailFile(path: string, lines: number): string {
  if (!existsSync(path)) return '';
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8').split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
  } finally {
    closeSync(fd);
  }
}

/** Whether a process with this PID exists (zombies count as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return true; // no procfs (macOS): trust kill(0)
  }
}

/** The command line of a live process, '' when it cannot be read (no procfs, or gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/**
 * The PID recorded in the component's PID file if that process is alive and is still ours: its
 * command line must contain `marker` (a path inside our state folder), so a PID reused by the
 * OS for an unrelated process is never mistaken for our server. Stale PID files are removed.
 */
export function ownedPid(paths: ComponentPaths, marker: string): number | null {
  if (!existsSync(paths.pidFile)) return null;
  const pid = Number.parseInt(readFileSync(paths.pidFile, 'utf8').trim(), 10);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    const cmd = commandLine(pid);
    if (cmd === '' || cmd.includes(marker)) return pid;
  }
  rmSync(paths.pidFile, { force: true });
  return null;
}

/** Options of {@link spawnDetached}. */
export interface SpawnOptions {
  command: string;
  args: string[];
  cwd: string;
  logFile: string;
  pidFile: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a server that outlives this process: its own process group, stdout and stderr appended
 * to the log file, no handle keeping our event loop alive. The PID file is written at once. The
 * returned ChildProcess still reports an early exit while we are around, which the health wait
 * uses to fail fast instead of timing out.
 */
export function spawnDetached(opts: SpawnOptions): ChildProcess {
  const fd = openSync(opts.logFile, 'a');
  writeFileSync(fd, `\n===== ${new Date().toISOString()} starting: ${opts.command} ${opts.args.join(' ')}\n`);
  try {
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${opts.command}`);
    writeFileSync(opts.pidFile, `${child.pid}\n`);
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Whether something accepts TCP connections on host:port (within `timeoutMs`). */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (open: boolean): void => {
      socket.destroy();
      done(open);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `probe` until it returns true. Fails with a {@link StackError} when `child` exits first
 * or `timeoutMs` passes.
 */
export async function waitHealthy(opts: {
  component: ComponentName;
  port: number;
  logFile: string;
  probe: () => Promise<boolean>;
  timeoutMs: number;
  child?: ChildProcess;
  intervalMs?: number;
}): Promise<void> {
  let exited: string | null = null;
  opts.child?.once('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (exited) throw new StackError(opts.component, opts.port, opts.logFile, `server process exited during start-up (${exited})`);
    if (await opts.probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new StackError(opts.component, opts.port, opts.logFile, `not healthy after ${Math.round(opts.timeoutMs / 1000)} s`);
    }
    await sleep(opts.intervalMs ?? 300);
  }
}

/**
 * Runs an install command, collecting its output. Throws with the command and its output's
 * last lines when it fails, so a failed download says why.
 */
export function runInstall(command: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (err) => fail(new Error(`${command} ${args.join(' ')}: ${err.message}`)));
    child.once('close', (code) => {
      if (code === 0) done(out);
      else fail(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${out.split('\n').slice(-15).join('\n')}`));
    });
  });
}

/**
 * Holds an exclusive cross-process lock (a file created with O_EXCL holding our PID) while `fn`
 * runs, so two `ensureStack` calls at once (a test run and `npm run stack:up`) never start the
 * same server twice. A lock whose holder died is taken over.
 */
export async function withLock<T>(lockFile: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(readFileSafe(lockFile).trim(), 10);
      const ageMs = Date.now() - mtimeMs(lockFile);
      // A lock file still empty may be mid-write; only a dead PID (or an empty file for seconds) is stale.
      if ((Number.isInteger(holder) && !isAlive(holder)) || (!Number.isInteger(holder) && ageMs > 5000)) {
        rmSync(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lockFile} held by PID ${holder}`);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockFile, { force: true });
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Date.now();
  }
}

/** Creates a folder (and parents) if missing; returns it. */
export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

/**
 * Stops a server this stack started: SIGTERM to its process group, then SIGKILL after
 * `graceMs`. Only PIDs that {@link ownedPid} confirmed are passed here. Resolves true when it is gone.
 */
export async function stopProcess(pid: number, graceMs: number): Promise<boolean> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig); // the whole group: a server's own children go too
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(200);
  }
  signal('SIGKILL');
  for (let i = 0; i < 25; i++) {
    if (!isAlive(pid)) return true;
    await sleep(200);
  }
  return !isAlive(pid);
}

/** How a component is being served. */
export type ComponentMode = 'external' | 'started' | 'reused' | 'foreign';

/** What {@link ensureStack} did for one component. */
export interface ComponentResult {
  component: ComponentName;
  mode: ComponentMode;
  /** PID of our server; null for external servers and healthy servers we did not start. */
  pid: number | null;
}
