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

/**
 * Reading a range failed because the range consumer crashed: the broker went away (retried as
 * the consumer reconnects) or a record batch could not be decoded (`undecodable`: a compression
 * codec or format this worker cannot read). Retriable either way: the activity fails, the worker
 * stays up, and Temporal shows the message on the failing attempt.
 */
export class RangeReadError extends PlatformError {
  /** True when the cause is a batch that could not be decoded (codec missing, corrupt data). */
  readonly undecodable: boolean;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    override readonly cause: unknown,
    /** The caller knows (from the raw bytes) whether the batch is undecodable. @default guessed from the cause */
    known?: { undecodable: boolean },
  ) {
    const message = cause instanceof Error ? cause.message : String(cause);
    const name = cause instanceof Error ? cause.name : '';
    // KafkaJS reports a batch it cannot read as "not implemented" (unknown codec) or, when it
    // parses compressed bytes as records, as an out-of-bounds read of the batch buffer.
    const undecodable = known?.undecodable ?? (name === 'KafkaJSNotImplemented' || /compress|codec|decod|corrupt|crc|outside buffer bounds/i.test(message));
    super(
      undecodable ? 'undecodable_batch' : 'range_read_failed',
      `fetch ${topic}[${partition}] at offset ${offset}: ${undecodable ? 'record batch could not be decoded' : 'range consumer failed'}: ${message}`,
      true,
    );
    this.name = 'RangeReadError';
    this.undecodable = undecodable;
  }
}

/** Converts a non-retriable platform error into a non-retryable ApplicationFailure; rethrows others as they are. */
export function toActivityFailure(err: unknown): unknown {
  if (err instanceof PlatformError && !err.retriable) {
    return ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, cause: err });
  }
  return err;
}
