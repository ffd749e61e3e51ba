/**
 * Liveness of the short activities of the data path (planBatch, commitProgress and the replay's
 * bookkeeping). They are scheduled with a 2 s heartbeat timeout (workflows/ingest/activity-options.ts),
 * so an attempt whose task or result was lost in a Temporal outage is retried within 2 s of the
 * server being back, instead of after its whole start-to-close timeout. For that they must
 * heartbeat while they run, which this does.
 */
import { Context } from '@temporalio/activity';

/** Heartbeat period of {@link whileHeartbeating}, in ms: a quarter of the 2 s heartbeat timeout. */
export const shortActivityHeartbeatMs = 500;

/**
 * Runs `work` and heartbeats the current activity every `everyMs` ms until it settles (the first
 * heartbeat after `everyMs`, so an activity that finishes sooner sends none). Outside an activity
 * (a direct call from a script) it just runs `work`. Heartbeats carry no details; activities that
 * record progress in their heartbeat details (landBatch) heartbeat themselves instead.
 * Returns or throws what `work` does.
 */
export async function whileHeartbeating<T>(work: () => Promise<T>, everyMs: number = shortActivityHeartbeatMs): Promise<T> {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    // Not inside an activity: nothing to heartbeat.
    return work();
  }
  const beat = setInterval(() => ctx.heartbeat(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

/**
 * `fn` as an activity that heartbeats while it runs ({@link whileHeartbeating}); same arguments,
 * same result.
 */
export function heartbeating<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args: A) => whileHeartbeating(() => fn(...args));
}
