/**
 * Folds activity failures caused by an unreachable dependency into the {@link OutageTracker}: the
 * failure is counted there, and the activity fails with a retryable `ApplicationFailure` of type
 * `dependency_unavailable` and category BENIGN, carrying the one-line reason. The Temporal SDK
 * logs a BENIGN failure at DEBUG instead of its per-attempt WARN `Activity failed` line with the
 * whole error (worker/lib/activity.js), so an outage shows as the tracker's start and end lines
 * only. The retry policy of the calling workflow still retries it as before (the type is in no
 * `nonRetryableErrorTypes` list). Any other failure, and any failure that is already an
 * Temporal failure (an `ApplicationFailure` the activity chose, a cancellation), passes through unchanged and logs as before.
 */
import { ApplicationFailure, ApplicationFailureCategory, TemporalFailure } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';
import { shortReason } from '../dependencies.js';
import { classifyOutage, type DependencyTargets, type OutageTracker } from './outages.js';

/** The `type` of the failure an activity ends with when a dependency is unreachable. */
export const dependencyUnavailableType = 'dependency_unavailable';

/** An activity interceptor factory feeding `tracker`; see the module comment. */
export function outageInterceptor(tracker: OutageTracker, targets: DependencyTargets): ActivityInterceptorsFactory {
  return () => {
    const inbound: ActivityInboundCallsInterceptor = {
      async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
        try {
          return await next(input);
        } catch (err) {
          // Failures already shaped by the activity (or a cancellation) keep their meaning.
          if (err instanceof TemporalFailure || (err instanceof Error && err.name === 'AbortError')) throw err;
          const dependency = classifyOutage(err, targets);
          if (dependency === null) throw err;
          tracker.failed(dependency, err);
          throw ApplicationFailure.create({
            type: dependencyUnavailableType,
            message: `${dependency} unreachable: ${shortReason(err)}`,
            nonRetryable: false,
            category: ApplicationFailureCategory.BENIGN,
          });
        }
      },
    };
    return { inbound };
  };
}
