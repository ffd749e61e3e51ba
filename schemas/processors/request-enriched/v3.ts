/**
 * `request-enriched` v3: **a demo of a bad version**, published so that the README's rollout demo
 * can show a regression being caught and rolled back on `npm start`'s stack. Never promote it.
 *
 * The regression is a real bug, not a random failure: v3 adds a stage that checks each request's
 * route template against a table of known templates before building the row, and the table forgot
 * `/payments/:id`. Those requests (about 3 % of the generator's traffic: payments is 6 % of it, and
 * half of its requests use that route) fail with `processing_error`; every other row is exactly
 * v2's. The same events fail on every run. A canary judgement catches it on `reject_rate` and
 * `processing_error_rate` (default metrics, critical) at the shadow step. Pure; importable from workflows.
 */
import { defineProcessor } from '../../processing/define.js';
import { map } from '../../processing/stage.js';
import type { EnrichedRequest } from './v1.js';
import { requestEnrichedV2 } from './v2.js';

/** The route templates v3 knows; `/payments/:id` was forgotten (the bug). */
const knownRoutes = new Set(['/v1/*', '/cart', '/cart/items', '/orders', '/search', '/suggest', '/products/:id', '/categories', '/login', '/token/refresh', '/payments', '/recommendations', '/stock/:sku', '/health', '/healthz']);

/** The stage v3 adds before `to-row`: throws on a route template it does not know. */
const routeTemplate = map<EnrichedRequest, EnrichedRequest>('route-template', (r) => {
  if (!knownRoutes.has(r.event.data.route)) throw new Error(`unknown route template ${JSON.stringify(r.event.data.route)}`);
  return r;
});

/** request-enriched v3 (demo of a bad version): v2 plus a route-template check that fails ~3 % of requests. */
export const requestEnrichedV3 = defineProcessor({
  ...requestEnrichedV2,
  version: 3,
  description: 'DEMO OF A BAD VERSION (do not promote): v2 plus a route-template check whose table forgot /payments/:id, so ~3 % of requests fail.',
  stages: [...requestEnrichedV2.stages.slice(0, -1), routeTemplate, requestEnrichedV2.stages.at(-1)!],
  notes: 'demo of a bad version: /payments/:id requests (~3 %) fail with processing_error; the canary rollout demo rolls it back',
});
