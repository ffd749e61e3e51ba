/**
 * Activity-side errors on the platform's error base (schemas/errors.ts), and the conversion of a
 * non-retriable one into a non-retryable ApplicationFailure whose type is its code.
 */
import { ApplicationFailure } from '@temporalio/common';
import { PlatformError } from '../schemas/errors.js';

export { PlatformError };

/** Error type names that workflows list as non-retryable. */
export const nonRetryableErrorTypes = ['invalid_input', 'topic_missing', 'range_invalid', 'migration_failed'] as const;

/** Bad input to an activity: retrying cannot help. */
export class InvalidInputError extends PlatformError {
  constructor(message: string) {
    super('invalid_input', message, false);
    this.name = 'InvalidInputError';
  }
}

/** A fetch did not cover its range before the deadline (broker slow or unreachable): retried. */
export class RangeIncompleteError extends PlatformError {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly from: number,
    readonly to: number,
    readonly reached: number,
  ) {
    super('range_incomplete', `fetch ${topic}[${partition}] [${from}, ${to}): expected to reach offset ${to} before the deadline, reached ${reached}`, true);
    this.name = 'RangeIncompleteError';
  }
}

/** Converts a non-retriable platform error into a non-retryable ApplicationFailure; rethrows others as they are. */
export function toActivityFailure(err: unknown): unknown {
  if (err instanceof PlatformError && !err.retriable) {
    return ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, cause: err });
  }
  return err;
}
