/**
 * All activities of the platform, built from their dependencies. Workflows type their proxies
 * with `ReturnType<typeof createActivities>`; the worker registers the result. Each group lives
 * in its own module; add a group with one spread line.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { createIngestActivities, type KafkaResources } from './ingest.js';
import type { Logger } from './logger.js';
import { createRollupActivities } from './rollup.js';

/** What the activities need: clients, the task queue they run on, a logger, the processor version. */
export interface ActivityDeps {
  kafka: Kafka;
  /** Bound to the platform's database. */
  warehouse: ClickHouseClient;
  temporal: Client;
  /** Task queue of the platform's workflows (alerts are started on it). */
  taskQueue: string;
  processorVersion: string;
  log?: Logger;
  /** The worker's long-lived Kafka connections (so it can close them). */
  resources?: KafkaResources;
  /** Most record bytes held per landing step. @default 8 MiB */
  chunkMaxBytes?: number;
}

/** Builds every activity of the platform. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createIngestActivities(deps),
    ...createRollupActivities(deps),
  };
}

/** Every activity, by name. */
export type Activities = ReturnType<typeof createActivities>;
