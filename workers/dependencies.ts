/**
 * Waiting for the servers a worker needs (ClickHouse, Temporal, Kafka) at start: each is probed
 * with capped exponential backoff until it answers, and its state is logged as ONE line each time
 * it changes (`dependency down` with the reason on the first failure, `dependency up` with how
 * long it was down and how many probes failed when it answers), never a dump per retry. A worker
 * started while a dependency is down waits for it instead of exiting.
 */
import type { Logger } from '../activities/logger.js';

/** Options of {@link untilUp}. */
export interface UntilUpOptions {
  log: Logger;
  /** First wait after a failed probe, ms. @default 250 */
  initialDelayMs?: number;
  /** Longest wait between probes, ms (the backoff doubles up to it). @default 2000 */
  maxDelayMs?: number;
  /** Stops waiting (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** First line of an error's message, without the multi-line client dumps some libraries attach. */
export function shortReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const first = text.split('\n', 1)[0]!.trim();
  return first.length > 300 ? `${first.slice(0, 297)}...` : first;
}

/**
 * Runs `attempt` until it resolves, waiting `initialDelayMs`, doubling, capped at `maxDelayMs`
 * between failures; returns its result. Logs `dependency down` once when the first attempt fails
 * (and again only if the reason's kind changes) and `dependency up` once when it succeeds after
 * failing. Nothing is logged when the first attempt succeeds.
 */
export async function untilUp<T>(name: string, attempt: () => Promise<T>, options: UntilUpOptions): Promise<T> {
  const initial = options.initialDelayMs ?? 250;
  const max = options.maxDelayMs ?? 2000;
  let delay = initial;
  let failures = 0;
  let downSince = 0;
  let lastReason = '';
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await attempt();
      if (failures > 0) options.log.info('dependency up', { dependency: name, downForMs: Date.now() - downSince, failedProbes: failures });
      return value;
    } catch (err) {
      const reason = shortReason(err);
      if (failures === 0) {
        downSince = Date.now();
        options.log.warn('dependency down; waiting for it', { dependency: name, reason, retryUpToMs: max });
      } else if (reasonKind(reason) !== reasonKind(lastReason)) {
        options.log.warn('dependency still down, new reason', { dependency: name, reason, failedProbes: failures });
      }
      lastReason = reason;
      failures += 1;
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, delay);
      options.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(options.signal?.reason as Error);
        },
        { once: true },
      );
    });
    delay = Math.min(max, delay * 2);
  }
}

/** The part of a reason that says what kind of failure it is (digits, ids and addresses removed). */
function reasonKind(reason: string): string {
  return reason.replace(/[0-9a-f]{8,}|\d+/gi, '#').slice(0, 80);
}
