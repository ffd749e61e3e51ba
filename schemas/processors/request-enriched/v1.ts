/**
 * `request-enriched` v1: request telemetry joined with the service catalogue (team and tier from
 * the ClickHouse table `service_catalog`), health checks and excluded services filtered out, the
 * tenant id pseudonymised, and two outputs: every request (`requests`) and the failed ones with
 * their error (`errors`). Pure; importable from workflows.
 */
import { z } from 'zod';
import type { ValidEvent } from '../../contracts/envelope.js';
import type { RequestTelemetryV2 } from '../../contracts/request-telemetry/v2.js';
import { defineProcessor } from '../../processing/define.js';
import { pseudonymise } from '../../processing/pseudonymise/stage.js';
import { enrich, filter, map, route, type ReferenceRow } from '../../processing/stage.js';
import { httpMethods } from '../../contracts/request-telemetry/v1.js';

/** Feature flags of request-enriched (every version so far). */
export const requestEnrichedFlags = z.strictObject({
  /** Drop `/health` and `/healthz` requests. @default true */
  dropHealthChecks: z.boolean().default(true),
  /** Services whose requests are dropped. @default [] */
  excludeServices: z.array(z.string()).default([]),
  /** Status from which a request also goes to `errors`. @default 500 */
  errorStatusFrom: z.number().int().min(400).max(599).default(500),
});

/** Flags after defaults. */
export type RequestEnrichedFlags = z.output<typeof requestEnrichedFlags>;

/** The input of the stages: a request-telemetry event landed at contract v2. */
export type RequestEvent = ValidEvent<RequestTelemetryV2>;

/** After enrichment: the event with its service's team and tier (null when the catalogue has no row). */
export interface EnrichedRequest {
  readonly event: RequestEvent;
  readonly team: string | null;
  readonly tier: number | null;
  /** Pseudonymised tenant (SipHash-2-4 hex under the secret `pseudonymKey`). */
  readonly tenantKey: string;
}

/** The reference table of the enrichment (created by migration 041 and seeded by `npm start`). */
export const serviceCatalogSource = { kind: 'clickhouse', table: 'service_catalog', keyColumn: 'service', columns: ['team', 'tier'] } as const;

/** Output `requests` of v1: one row per request. */
export const requestsV1 = z.object({
  event_id: z.string(),
  event_time: z.iso.datetime(),
  service: z.string(),
  route: z.string(),
  method: z.enum(httpMethods),
  status: z.int().min(100).max(599),
  duration_ms: z.number(),
  region: z.string(),
  tenant_key: z.string(),
  team: z.string().nullable(),
  tier: z.int().min(0).max(9).nullable(),
});

/** Output `errors` of v1: one row per failed request. */
export const errorsV1 = z.object({
  event_id: z.string(),
  event_time: z.iso.datetime(),
  service: z.string(),
  route: z.string(),
  status: z.int().min(100).max(599),
  error: z.object({ code: z.string(), retryable: z.boolean() }).nullable(),
  team: z.string().nullable(),
  tier: z.int().min(0).max(9).nullable(),
});

/** The enrichment stage shared by the versions. */
export const serviceCatalog = enrich<RequestEvent, Omit<EnrichedRequest, 'tenantKey'>>('service-catalog', {
  source: serviceCatalogSource,
  key: (e) => e.data.service,
  join: (event, row: ReferenceRow | null) => {
    // A catalogue row without an owner is a data error upstream: fail loudly (processing_error),
    // never land a request owned by nobody.
    if (row && (typeof row.team !== 'string' || row.team === '')) throw new Error(`service_catalog row of ${event.data.service} has no team`);
    return { event, team: row ? String(row.team) : null, tier: row ? Number(row.tier) : null };
  },
  onMiss: 'keep',
  refreshMs: 10_000,
});

/** Filter shared by the versions: health checks and excluded services (flags). */
export const dropUnwanted = filter<RequestEvent, RequestEnrichedFlags>(
  'drop-unwanted',
  (e, ctx) => !(ctx.flags.dropHealthChecks && (e.data.route === '/health' || e.data.route === '/healthz')) && !ctx.flags.excludeServices.includes(e.data.service),
);

/** Routing shared by the versions: every request to `requests`, failures also to `errors`. */
export const byStatus = route<{ event: RequestEvent }, RequestEnrichedFlags>('by-status', (r, ctx) =>
  r.event.data.status >= ctx.flags.errorStatusFrom ? ['requests', 'errors'] : ['requests'],
);

/** Builds the row of an output from an enriched request. */
export function errorsRow(r: EnrichedRequest): z.input<typeof errorsV1> {
  const d = r.event.data;
  const error = d.error ?? (d.error_code ? { code: d.error_code, retryable: false } : null);
  return { event_id: r.event.id, event_time: r.event.time, service: d.service, route: d.route, status: d.status, error, team: r.team, tier: r.tier };
}

/** Rows of both outputs; each output keeps the fields its schema declares (zod strips the rest). */
export function rowV1(r: EnrichedRequest): z.input<typeof requestsV1> & z.input<typeof errorsV1> {
  const d = r.event.data;
  return { ...errorsRow(r), method: d.method, duration_ms: d.duration_ms, region: d.region, tenant_key: r.tenantKey };
}

/** request-enriched v1. */
export const requestEnrichedV1 = defineProcessor({
  name: 'request-enriched',
  version: 1,
  description: 'Request telemetry with team and tier from the service catalogue, tenant pseudonymised; all requests and the failed ones.',
  input: { subject: 'request-telemetry', versions: [2] },
  stages: [
    dropUnwanted,
    serviceCatalog,
    pseudonymise<Omit<EnrichedRequest, 'tenantKey'> & { tenantKey?: string }>('pseudonymise-tenant', {
      get: (r) => r.event.data.tenant_id,
      set: (r, tenantKey) => ({ ...r, tenantKey }),
      secret: 'pseudonymKey',
      implementation: 'typescript',
    }),
    byStatus,
    map<EnrichedRequest, ReturnType<typeof rowV1>>('to-row', rowV1),
  ],
  outputs: { requests: { schema: requestsV1 }, errors: { schema: errorsV1 } },
  flags: requestEnrichedFlags,
  breaker: { failureRatio: 0.5, consecutiveBatches: 3, minEvents: 10 },
  implementation: 'typescript',
});
