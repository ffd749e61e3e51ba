/**
 * The Temporal Workers of one worker process (one per task queue), and their replacement after a
 * Temporal outage (issue 7, point 7).
 *
 * Why: while Temporal's frontend is unreachable, the Core SDK's pollers back off up to ~10 s
 * between polls, and `@temporalio/worker` (1.24.0) has no option for that backoff. After an
 * outage longer than ~13 s, a worker whose pollers were asleep picked up work only ~6 s after the
 * server answered again. Fresh Workers poll at once.
 *
 * What: when the {@link OutageTracker} opens a `temporal` outage, a spare `NativeConnection` is
 * tried every `retryEveryMs` (250 ms by default). As soon as one connects, new Workers are built
 * on it (same task queues, activities and options), started, and only then are the old Workers
 * shut down (between two workflow activations, waiting up to `activationWaitMs`; their in-flight
 * activities get the Workers' `shutdownGraceTime`) and their connection closed. One `temporal workers replaced` line (info) says so, with `outageMs` (first failure of
 * the outage to the new Workers polling) and `buildMs` (spare connection up to new Workers polling). A failure to build the new Workers is logged once
 * (warn) per replacement and retried; the process never exits on this path.
 */
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Logger } from '../activities/logger.js';
import { shortReason } from './dependencies.js';
import type { OutageTracker } from './observability/outages.js';

/** Options of {@link TaskQueueWorkers.create}. */
export interface TaskQueueWorkersOptions {
  /** Opens a connection to Temporal's frontend (rejects while it is unreachable). */
  connect(): Promise<NativeConnection>;
  /** Builds (does not run) the Worker of `taskQueue` on `connection`. */
  build(connection: NativeConnection, taskQueue: string): Promise<Worker>;
  /** Task queues, one Worker each, in order (the first is {@link TaskQueueWorkers.first}). Non-empty. */
  taskQueues: readonly string[];
  log: Logger;
  /** When given, every `temporal` outage it opens starts a replacement. @default none (only {@link TaskQueueWorkers.replace} replaces) */
  outages?: OutageTracker;
  /** Interval between attempts at a spare connection (and at building Workers on it), ms. @default 250 */
  retryEveryMs?: number;
  /** Longest wait for a replaced Worker's workflow activations in flight to end before it is shut down anyway, ms. @default 5000 */
  activationWaitMs?: number;
}

/** One set of Workers on one connection. */
interface Generation {
  connection: NativeConnection;
  workers: Worker[];
  /** Set once every Worker of the set has stopped. */
  finished: boolean;
  /** The first fatal error of its Workers, or null. */
  error: unknown;
}

/** The process's Temporal Workers; see the module comment. */
export class TaskQueueWorkers {
  private current: Generation;
  /** Every set of Workers not yet stopped (the current one, and replaced ones still draining). */
  private readonly live = new Set<Generation>();
  private replacing: Promise<void> | null = null;
  private stopping = false;
  private readonly retryEveryMs: number;
  private readonly activationWaitMs: number;
  private readonly unsubscribe: () => void;
  private settle!: { resolve: () => void; reject: (err: unknown) => void };
  /** Resolves when the Workers stopped (signal or {@link shutdown}) and their connection is closed; rejects with a Worker's fatal error. */
  readonly done: Promise<void>;

  /**
   * Connects, builds one Worker per task queue and runs them. Rejects (closing the connection)
   * when the connection or a Worker cannot be built.
   */
  static async create(options: TaskQueueWorkersOptions): Promise<TaskQueueWorkers> {
    if (options.taskQueues.length === 0) throw new Error('TaskQueueWorkers needs at least one task queue');
    const connection = await options.connect();
    let workers: Worker[];
    try {
      workers = await buildAll(options, connection);
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
    return new TaskQueueWorkers(options, connection, workers);
  }

  private constructor(private readonly options: TaskQueueWorkersOptions, connection: NativeConnection, workers: Worker[]) {
    this.retryEveryMs = options.retryEveryMs ?? 250;
    this.activationWaitMs = options.activationWaitMs ?? 5000;
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // The caller awaits `done`; this keeps an unawaited rejection from crashing the process meanwhile.
    this.done.catch(() => undefined);
    this.current = this.run(connection, workers);
    this.unsubscribe = options.outages?.onStarted((dependency, since) => {
      if (dependency === 'temporal') void this.replace(since);
    }) ?? (() => undefined);
  }

  /** The Workers now polling, one per task queue in `taskQueues` order (they change at each replacement). */
  get workers(): readonly Worker[] {
    return this.current.workers;
  }

  /** The Worker of the first task queue now polling. */
  get first(): Worker {
    return this.current.workers[0]!;
  }

  /**
   * Replaces the Workers: tries a spare connection every `retryEveryMs` until one connects, builds
   * and runs new Workers on it, then shuts the old ones down between two workflow activations
   * (waiting up to `activationWaitMs`; not waiting for them to drain).
   * Joins the replacement in progress if there is one. Resolves once the old ones are told to stop, or
   * when the Workers are stopping (nothing replaced then); never rejects.
   * @param since start of the outage that calls for it (epoch ms), for the log line. @default now
   */
  replace(since: number = Date.now()): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.replacing ??= this.replaceLoop(since).finally(() => {
      this.replacing = null;
    });
    return this.replacing;
  }

  /** Stops polling, lets in-flight tasks finish (within the Workers' `shutdownGraceTime`), closes the connection; resolves with `done`. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const generation of this.live) shutdownRunning(generation.workers);
    await this.done;
  }

  private run(connection: NativeConnection, workers: Worker[]): Generation {
    const runs = workers.map((w) => w.run());
    const generation: Generation = { connection, workers, finished: false, error: null };
    this.live.add(generation);
    Promise.all(runs)
      .then(
        () => null,
        async (err: unknown) => {
          // One Worker failed: stop the others too, so the set ends instead of half-serving.
          shutdownRunning(workers);
          await Promise.allSettled(runs);
          return err;
        },
      )
      .then((err) => this.generationEnded(generation, err))
      .catch((err: unknown) => this.settle.reject(err));
    return generation;
  }

  private async generationEnded(generation: Generation, err: unknown): Promise<void> {
    generation.finished = true;
    generation.error = err;
    this.live.delete(generation);
    await generation.connection.close().catch(() => undefined);
    if (generation !== this.current) {
      // Replaced: its end is not the process's end.
      if (err !== null) this.options.log.warn('replaced temporal workers failed while draining', { reason: shortReason(err) });
      return;
    }
    if (err !== null && !this.stopping && this.options.outages?.inOutage('temporal')) {
      // Failed during a Temporal outage: the replacement (running since the outage started) takes over.
      this.options.log.warn('temporal workers failed during the outage; they are replaced once Temporal answers', { reason: shortReason(err) });
      void this.replace();
      return;
    }
    await this.finish(generation);
  }

  /** Ends `done` with the end of `generation`, unless a replacement installed another one meanwhile (that one ends it). */
  private async finish(generation: Generation): Promise<void> {
    this.stopping = true;
    this.unsubscribe();
    await this.replacing?.catch(() => undefined);
    if (generation !== this.current) return;
    if (generation.error === null) this.settle.resolve();
    else this.settle.reject(generation.error);
  }

  private async replaceLoop(since: number): Promise<void> {
    try {
      await this.replaceUntilDone(since);
    } finally {
      // Stopped before anything replaced Workers that had already failed: nothing else ends `done`.
      const current = this.current;
      if (this.stopping && current.finished) setImmediate(() => void this.finish(current));
    }
  }

  private async replaceUntilDone(since: number): Promise<void> {
    let loggedFailure = false;
    while (!this.stopping) {
      let connection: NativeConnection | null = null;
      try {
        connection = await this.options.connect();
      } catch {
        // Still unreachable: the outage tracker already logged the outage.
      }
      if (connection && !this.stopping) {
        const connectedAt = Date.now();
        let workers: Worker[] | null = null;
        try {
          workers = await buildAll(this.options, connection);
        } catch (err) {
          if (!loggedFailure) this.options.log.warn('temporal workers could not be rebuilt after the outage; retrying', { reason: shortReason(err), retryEveryMs: this.retryEveryMs });
          loggedFailure = true;
        }
        if (workers) {
          const old = this.current;
          this.current = this.run(connection, workers);
          if (this.stopping) {
            // A shutdown arrived while they were built: they stop with the rest.
            shutdownRunning(workers);
          } else {
            // The new Workers poll before the old ones (perhaps asleep in a poll backoff) drain.
            this.options.log.info('temporal workers replaced', { outageMs: Date.now() - since, buildMs: Date.now() - connectedAt, taskQueues: this.options.taskQueues });
            // An old Worker shut down in the middle of a workflow activation lost its result (the
            // workflow task then waited for its 10 s start-to-close timeout, seen in a fault test's
            // history): each one is shut down between activations, or after `activationWaitMs`.
            await untilNoActivation(old.workers, this.activationWaitMs);
            shutdownRunning(old.workers);
          }
          return;
        }
      }
      await connection?.close().catch(() => undefined);
      if (this.stopping) return;
      await new Promise((resolve) => setTimeout(resolve, this.retryEveryMs));
    }
  }
}

/** Builds one Worker per task queue; when one fails, the ones already built are run and stopped (a built Worker holds its connection open until it ran). */
async function buildAll(options: TaskQueueWorkersOptions, connection: NativeConnection): Promise<Worker[]> {
  // Built side by side: each waits on its own namespace check and workflow thread.
  const built = await Promise.allSettled(options.taskQueues.map((queue) => options.build(connection, queue)));
  const workers = built.flatMap((b) => (b.status === 'fulfilled' ? [b.value] : []));
  const failed = built.find((b): b is PromiseRejectedResult => b.status === 'rejected');
  if (failed) {
    const runs = workers.map((w) => w.run());
    shutdownRunning(workers);
    await Promise.allSettled(runs);
    throw failed.reason;
  }
  return workers;
}

/** Resolves when no Worker of `workers` has a workflow activation in flight (checked every 20 ms), or after `timeoutMs`. */
async function untilNoActivation(workers: readonly Worker[], timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  const busy = () => workers.some((w) => w.getState() === 'RUNNING' && w.getStatus().numInFlightWorkflowActivations > 0);
  while (busy() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
}

function shutdownRunning(workers: readonly Worker[]): void {
  for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
}
