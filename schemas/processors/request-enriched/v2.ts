/**
 * `request-enriched` v2: adds `protocol` and `upstream_ms` to `requests` (two new columns, nothing
 * dropped or retyped) and pseudonymises tenants with the WebAssembly SipHash (same pseudonyms as
 * v1's TypeScript one). Pure; importable from workflows.
 */
import { z } from 'zod';
import { defineProcessor } from '../../processing/define.js';
import { pseudonymise } from '../../processing/pseudonymise/stage.js';
import { map } from '../../processing/stage.js';
import { httpProtocols } from '../../contracts/request-telemetry/v2.js';
import { byStatus, dropUnwanted, errorsV1, requestEnrichedFlags, requestsV1, rowV1, serviceCatalog, type EnrichedRequest } from './v1.js';

/** Output `requests` of v2: v1 plus protocol and upstream time. */
export const requestsV2 = requestsV1.extend({
  protocol: z.enum(httpProtocols),
  upstream_ms: z.number().nullable(),
});

function rowV2(r: EnrichedRequest): ReturnType<typeof rowV1> & z.input<typeof requestsV2> {
  return { ...rowV1(r), protocol: r.event.data.protocol, upstream_ms: r.event.data.upstream_ms ?? null };
}

/** request-enriched v2. */
export const requestEnrichedV2 = defineProcessor({
  name: 'request-enriched',
  version: 2,
  description: 'Request telemetry with team and tier from the service catalogue, tenant pseudonymised; all requests and the failed ones.',
  input: { subject: 'request-telemetry', versions: [2] },
  stages: [
    dropUnwanted,
    serviceCatalog,
    pseudonymise<Omit<EnrichedRequest, 'tenantKey'> & { tenantKey?: string }>('pseudonymise-tenant', {
      get: (r) => r.event.data.tenant_id,
      set: (r, tenantKey) => ({ ...r, tenantKey }),
      secret: 'pseudonymKey',
      implementation: 'wasm',
    }),
    byStatus,
    map<EnrichedRequest, ReturnType<typeof rowV2>>('to-row', rowV2),
  ],
  outputs: { requests: { schema: requestsV2 }, errors: { schema: errorsV1 } },
  flags: requestEnrichedFlags,
  breaker: { failureRatio: 0.5, consecutiveBatches: 3, minEvents: 10 },
  implementation: 'wasm',
  notes: 'requests: + protocol, upstream_ms; tenant pseudonyms computed by the WebAssembly SipHash.',
});
