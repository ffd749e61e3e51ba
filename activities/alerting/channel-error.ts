/**
 * Errors of the notification channels: a {@link PlatformError} with the receiver's answer as
 * context and, when the receiver said when to come back (HTTP Retry-After), that delay. At the
 * activity boundary {@link channelFailure} turns it into an `ApplicationFailure` whose `type` is the
 * code for retryable and final failures alike, so the workflow's timeline can tell a timeout from a
 * rejection.
 */
import { ApplicationFailure } from '@temporalio/common';
import { PlatformError } from '../errors.js';

/** Extra context of a {@link ChannelError}. */
export interface ChannelErrorOptions {
  cause?: unknown;
  /** Receiver-requested delay before the next attempt, in milliseconds. */
  retryAfterMs?: number;
  /** Structured context (HTTP status, body excerpt, SMTP stage), safe to log: never secrets. */
  details?: Record<string, unknown>;
}

/** A delivery failure; `code` is one of the notify error types in schemas/receivers.ts. */
export class ChannelError extends PlatformError {
  /** Receiver-requested delay before the next attempt, if any. */
  readonly retryAfterMs: number | undefined;
  /** Structured context, safe to log. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, retriable: boolean, options: ChannelErrorOptions = {}) {
    super(code, message, retriable, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChannelError';
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }
}

/**
 * Converts an error for the activity boundary: any {@link PlatformError} becomes an
 * `ApplicationFailure` with `type = code` and `nonRetryable = !retriable` (plus details and
 * `nextRetryDelay` for a {@link ChannelError}); anything else is returned unchanged and Temporal
 * retries it.
 */
export function channelFailure(error: unknown): unknown {
  if (!(error instanceof PlatformError)) return error;
  const channel = error instanceof ChannelError ? error : undefined;
  return ApplicationFailure.create({
    type: error.code,
    message: error.message,
    nonRetryable: !error.retriable,
    ...(channel?.details ? { details: [channel.details] } : {}),
    ...(error.retriable && channel?.retryAfterMs !== undefined ? { nextRetryDelay: channel.retryAfterMs } : {}),
  });
}
