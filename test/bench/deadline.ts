/** The bench's global time budget and a polling helper bounded by it. */
import { setTimeout as sleep } from 'node:timers/promises';

/** Thrown when the global deadline passes; carries the phase that was running. */
export class DeadlineExceededError extends Error {
  readonly code = 'bench_deadline';
  readonly retriable = false;
  constructor(
    readonly phase: string,
    readonly budgetMs: number,
    detail = '',
    /** The run was interrupted (Ctrl-C) rather than out of time. */
    readonly interrupted = false,
  ) {
    const what = interrupted ? 'bench interrupted' : `bench deadline of ${Math.round(budgetMs / 1000)} s passed`;
    super(`${what} during "${phase}"${detail ? `: ${detail}` : ''}`);
    this.name = 'DeadlineExceededError';
  }
}

/** A fixed point in time that every wait of the run is measured against. */
export class Deadline {
  private endsAt: number;
  private reason: string | null = null;

  private readonly controller = new AbortController();

  constructor(readonly budgetMs: number) {
    this.endsAt = Date.now() + budgetMs;
    setTimeout(() => this.controller.abort(), budgetMs).unref();
  }

  /** Aborted when the deadline passes or the run is aborted; for APIs that take a signal. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Milliseconds left, never negative. */
  remainingMs(): number {
    return Math.max(0, this.endsAt - Date.now());
  }

  /** Ends the budget now (Ctrl-C): the next check throws an error marked as interrupted. */
  abort(reason: string): void {
    this.reason = reason;
    this.endsAt = 0;
    this.controller.abort();
  }

  /** Throws {@link DeadlineExceededError} once the deadline has passed (or the run was aborted). */
  check(phase: string, detail?: string): void {
    if (Date.now() < this.endsAt) return;
    throw new DeadlineExceededError(phase, this.budgetMs, detail, this.reason !== null);
  }

  /**
   * Polls `probe` every `intervalMs` until it returns a non-undefined value; `describe` says
   * where things stand when the deadline cuts the wait short, so the message is useful.
   */
  async waitFor<T>(phase: string, probe: () => Promise<T | undefined>, intervalMs: number, describe: () => string = () => ''): Promise<T> {
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      this.check(phase, describe());
      await sleep(Math.min(intervalMs, Math.max(10, this.remainingMs())));
    }
  }
}
