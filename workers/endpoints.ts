/**
 * Where the servers are, without starting anything: the addresses from the environment when set,
 * otherwise the local stack's defaults on the configured ports (`npm run stack:up` starts them).
 * Workers use this; `npm start` and the tests start or reuse the stack first.
 */
import type { StackEndpoints } from '../infra/local/endpoints.js';
import { endpoints } from '../infra/local/stack.js';
import type { PlatformConfig } from '../schemas/config.js';

/** The endpoints for `config` (environment first, local defaults otherwise). Starts nothing. */
export function resolveEndpoints(config: PlatformConfig): StackEndpoints {
  return endpoints(config);
}
