/**
 * Where a pipeline's analytics run: the `aggregator` workflow (watermarks, aggregation steps,
 * detectors) and the activities it schedules are served on a task queue of their own, next to the
 * platform's, so that a worker can poll it with a Temporal `Worker` of its own (its own workflow
 * thread, its own task slots and pollers) instead of queueing behind the partition consumers'
 * landing tasks. Pure, so workflow code derives the same name as the worker.
 */

/** Suffix of the analytics task queue. */
export const analyticsTaskQueueSuffix = '-analytics';

/**
 * The analytics task queue of a platform task queue: `<taskQueue>-analytics`
 * (`streamwarden` -> `streamwarden-analytics`).
 */
export function analyticsTaskQueue(taskQueue: string): string {
  return `${taskQueue}${analyticsTaskQueueSuffix}`;
}
