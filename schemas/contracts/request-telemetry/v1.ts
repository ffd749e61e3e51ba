/**
 * `request-telemetry` v1: one served HTTP request, as emitted by an edge proxy or a service mesh
 * sidecar. Rollups count requests and errors per service and route and take latency quantiles.
 * Pure; importable from workflows.
 */
import { z } from 'zod';

/** HTTP methods the contract accepts. */
export const httpMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/** Subject name of this contract. */
export const requestTelemetrySubject = 'request-telemetry';

/** The `data` of a request-telemetry v1 event. Unknown fields are rejected so typos surface. */
export const requestTelemetryV1 = z.strictObject({
  /** Service that served the request, e.g. `checkout`. */
  service: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'expected a lowercase service name like checkout'),
  /** Route template (not the raw path), e.g. `/orders/:id`. */
  route: z.string().min(1).max(256).startsWith('/', 'expected a route starting with /'),
  method: z.enum(httpMethods, { message: `expected one of ${httpMethods.join(', ')}` }),
  /** HTTP status code. */
  status: z.number().int().min(100, 'expected an HTTP status 100-599').max(599, 'expected an HTTP status 100-599'),
  /** Server-side duration in milliseconds. */
  duration_ms: z.number().min(0, 'expected a non-negative duration').max(3_600_000, 'expected at most one hour'),
  /** Cloud region, e.g. `eu-west-1`. */
  region: z.string().regex(/^[a-z]{2}-[a-z]+-\d$/, 'expected a region like eu-west-1'),
  /** Customer (tenant) the request was made for. */
  tenant_id: z.string().min(1).max(128),
  /** Application error code when the request failed, e.g. `PAYMENT_TIMEOUT`. */
  error_code: z.string().min(1).max(128).optional(),
  /** Request and response body sizes in bytes. */
  bytes_in: z.number().int().min(0).default(0),
  bytes_out: z.number().int().min(0).default(0),
  /** W3C trace id when the request was traced. */
  trace_id: z.string().regex(/^[0-9a-f]{32}$/, 'expected 32 lowercase hex digits').optional(),
});

/** A request-telemetry v1 payload. */
export type RequestTelemetryV1 = z.infer<typeof requestTelemetryV1>;
