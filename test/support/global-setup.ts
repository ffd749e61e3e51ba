/**
 * Starts the local stack once for the integration project (or reuses a running one, or uses the
 * servers named by TEMPORAL_ADDRESS / KAFKA_BROKERS / CLICKHOUSE_URL) and hands the endpoints to
 * the test files through vitest's provide/inject.
 */
import type { TestProject } from 'vitest/node';
import { ensureStack } from '../../infra/local/stack.js';
import { loadConfig } from '../../schemas/config.js';
import type { StackEndpoints } from '../../infra/local/endpoints.js';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const config = loadConfig();
  const endpoints = await ensureStack(config, { log: (line) => console.log(`[stack] ${line}`) });
  project.provide('stack', endpoints);
}
