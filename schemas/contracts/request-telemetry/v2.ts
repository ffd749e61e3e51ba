/**
 * `request-telemetry` v2. What changed, and why it is BACKWARD compatible with v1:
 * - `error` (optional object) carries the application error code together with whether the
 *   client may retry; it supersedes the flat `error_code`, which stays optional and deprecated so
 *   v1 events still parse. The declared migration copies `error_code` into `error.code` on landing.
 * - `protocol` (HTTP version) is new with a default, so v1 events, which lack it, parse.
 * - `upstream_ms` (optional) splits out the time spent waiting for the upstream service.
 * Pure; importable from workflows.
 */
import { z } from 'zod';
import { migration } from '../define.js';
import { requestTelemetryV1 } from './v1.js';

/** HTTP protocol versions. */
export const httpProtocols = ['http/1.0', 'http/1.1', 'h2', 'h3'] as const;

/** The `data` of a request-telemetry v2 event. */
export const requestTelemetryV2 = requestTelemetryV1.extend({
  /** @deprecated since v2: use `error.code`. Kept so that v1 events remain valid. */
  error_code: z.string().min(1).max(128).optional(),
  /** Application error, when the request failed. */
  error: z
    .strictObject({
      /** Application error code, e.g. `PAYMENT_TIMEOUT`. */
      code: z.string().min(1).max(128),
      /** Whether the client may retry the request as is. @default false */
      retryable: z.boolean().default(false),
    })
    .optional(),
  /** HTTP protocol version. @default "http/1.1" */
  protocol: z.enum(httpProtocols).default('http/1.1'),
  /** Part of `duration_ms` spent waiting for the upstream service, in milliseconds. */
  upstream_ms: z.number().min(0).max(3_600_000).optional(),
});

/** A request-telemetry v2 payload. */
export type RequestTelemetryV2 = z.infer<typeof requestTelemetryV2>;

/**
 * Upcasts a v1 payload for landing as v2: the flat `error_code` is copied into `error.code` (not
 * retryable: v1 producers did not say). `error_code` itself is kept, so SQL written against v1
 * rows (`JSONExtractString(data, 'error_code')`) keeps working on landed v2 rows.
 */
export const upcastRequestTelemetryV1 = migration(requestTelemetryV1, requestTelemetryV2, (v1) =>
  v1.error_code === undefined ? v1 : { ...v1, error: { code: v1.error_code, retryable: false } },
);
