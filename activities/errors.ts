/**
 * The platform's error base: every error an activity throws on purpose carries a stable `code`
 * (it becomes the Temporal failure `type`, which retry policies name) and a `retriable` flag.
 * At the activity boundary {@link toApplicationFailure} turns it into an `ApplicationFailure`.
 */
import { ApplicationFailure } from '@temporalio/common';

/** Extra context for a {@link PlatformError}. */
export interface PlatformErrorOptions {
  /** The underlying error (kept as the failure's cause). */
  cause?: unknown;
  /** When the other side said when to come back (HTTP Retry-After), in milliseconds. */
  retryAfterMs?: number;
  /** Structured context recorded as the failure's details (never secrets). */
  details?: Record<string, unknown>;
}

/** Base class: a stable machine-readable `code` plus whether trying again can help. */
export class PlatformError extends Error {
  /** Server-requested delay before the next attempt, if any. */
  readonly retryAfterMs: number | undefined;
  /** Structured context (status, target, ...), safe to log. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    /** Stable identifier, used as the Temporal failure type (`nonRetryableErrorTypes`). */
    readonly code: string,
    message: string,
    /** True when the same call may succeed later (network, 5xx, timeouts). */
    readonly retriable: boolean,
    options: PlatformErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }
}

/**
 * Converts an error for the activity boundary: a {@link PlatformError} becomes an
 * `ApplicationFailure` with `type = code`, `nonRetryable = !retriable`, its details, and
 * `nextRetryDelay` when the other side asked for one; anything else is returned unchanged
 * (Temporal records it as a retryable failure).
 */
export function toApplicationFailure(error: unknown): unknown {
  if (!(error instanceof PlatformError)) return error;
  return ApplicationFailure.create({
    type: error.code,
    message: error.message,
    nonRetryable: !error.retriable,
    ...(error.details ? { details: [error.details] } : {}),
    ...(error.cause instanceof Error ? { cause: error.cause } : {}),
    ...(error.retriable && error.retryAfterMs !== undefined ? { nextRetryDelay: error.retryAfterMs } : {}),
  });
}
