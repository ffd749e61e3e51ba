/**
 * The platform worker under measurement, in a child process of its own so that its peak RSS is
 * its own (Temporal's native core included) and not mixed with the bench's producer and
 * consumers. Talks to test/bench/worker-child.ts over the IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { StackEndpoints } from '../../infra/local/endpoints.js';

/** Messages the child sends. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'stopped'; maxRssKb: number }
  | { type: 'error'; message: string };

/** Messages the parent sends. */
export interface ParentMessage {
  type: 'stop';
}

/** Peak resident set size of a process, with where the figure came from. */
export interface PeakRss {
  mb: number;
  source: string;
}

/** Reads VmHWM (peak RSS) or VmRSS (current) of a live process from /proc; null where there is no /proc. */
export async function procRssMb(pid: number, field: 'VmHWM' | 'VmRSS' = 'VmHWM'): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1];
    return kb === undefined ? null : Number(kb) / 1024;
  } catch {
    return null;
  }
}

/** A running worker child: wait for it to be ready, sample its memory, stop it. */
export class WorkerProcess {
  private readonly messages: ChildMessage[] = [];
  private readonly waiters: (() => void)[] = [];
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  private constructor(
    private readonly child: ChildProcess,
    /** Where the child's stdout and stderr go. */
    readonly logFile: string,
  ) {
    child.on('message', (m: ChildMessage) => {
      this.messages.push(m);
      this.wake();
    });
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      this.wake();
    });
  }

  /**
   * Forks the child with the stack's endpoints pinned in its environment (so it starts nothing)
   * and its own database and task queue.
   */
  static start(endpoints: StackEndpoints, env: { database: string; taskQueue: string; workflowBundlePath: string; extraEnv?: Record<string, string> }, logFile: string): WorkerProcess {
    const out = createWriteStream(logFile);
    const child = fork(fileURLToPath(new URL('./worker-child.ts', import.meta.url)), [env.workflowBundlePath], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: endpoints.temporalAddress,
        KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
        CLICKHOUSE_URL: endpoints.clickhouseUrl,
        CLICKHOUSE_DATABASE: env.database,
        TEMPORAL_TASK_QUEUE: env.taskQueue,
        ...env.extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    return new WorkerProcess(child, logFile);
  }

  /** Process id of the child. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async next<T extends ChildMessage['type']>(type: T, timeoutMs: number, what: string): Promise<Extract<ChildMessage, { type: T }>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((m) => m.type === type || m.type === 'error');
      if (found?.type === 'error') throw new Error(`worker child: ${found.message} (log: ${this.logFile})`);
      if (found) return found as Extract<ChildMessage, { type: T }>;
      if (this.exited) throw new Error(`worker child exited (code ${this.exited.code}, signal ${this.exited.signal}) before ${what} (log: ${this.logFile})`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`worker child: no "${type}" within ${Math.round(timeoutMs / 1000)} s while ${what} (log: ${this.logFile})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once the worker polls its task queue. */
  async ready(timeoutMs: number): Promise<void> {
    await this.next('ready', timeoutMs, 'starting');
  }

  /**
   * Stops the worker gracefully and returns its peak RSS: VmHWM sampled from /proc just before
   * the stop (covers everything the process mapped, native core included), else the child's own
   * `process.resourceUsage().maxRSS`. Kills it when it does not stop in time.
   */
  async stop(timeoutMs: number): Promise<PeakRss | null> {
    if (this.exited) return null;
    const hwm = await procRssMb(this.pid, 'VmHWM');
    this.child.send({ type: 'stop' } satisfies ParentMessage);
    try {
      const stopped = await this.next('stopped', timeoutMs, 'stopping');
      const reported = stopped.maxRssKb / 1024;
      if (hwm !== null) return { mb: Math.max(hwm, reported), source: 'VmHWM from /proc' };
      return { mb: reported, source: 'child resourceUsage().maxRSS' };
    } catch (err) {
      this.kill();
      if (hwm !== null) return { mb: hwm, source: `VmHWM from /proc (worker killed: ${(err as Error).message})` };
      throw err;
    }
  }

  /** Last resort: SIGKILL (the child is ours). */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
