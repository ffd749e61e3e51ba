/** Helpers for integration tests: the shared stack's endpoints, clients, and unique names. */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { StackEndpoints } from '../../infra/local/endpoints.js';
import { loadConfig, type PlatformConfig } from '../../schemas/config.js';

/** The endpoints the global setup started or found. */
export function stackEndpoints(): StackEndpoints {
  return inject('stack');
}

/** The platform config as the tests see it (environment plus defaults). */
export function testConfig(): PlatformConfig {
  return loadConfig();
}

/** A short unique suffix so tests can share one stack: `events_${uniqueId()}`. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/**
 * Event time for generated test data: one hour ago, on a minute boundary. Kafka timestamps follow
 * event time, and the broker's time-based retention (24 h locally) deletes records stamped months
 * ago within a minute, so test data must be recent.
 */
export function recentStart(): number {
  return Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
}
