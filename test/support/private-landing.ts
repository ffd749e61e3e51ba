/**
 * The set-up of a landing test on a broker of its own (test/support/private-kafka.ts): the
 * private broker, a Kafka client on it, a fresh migrated database on the shared ClickHouse with
 * merges stopped on the checked tables (so counts without FINAL cannot be right by a lucky
 * merge), and ingest activities whose Kafka connections {@link PrivateLanding.close} closes.
 *
 * Start it in `beforeAll` without awaiting, and await {@link PrivateLanding} inside each test:
 * a broker that does not start then FAILS the test with the reason, it is never reported as
 * skipped (a failing `beforeAll` can show as skipped tests under load).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll } from 'vitest';
import { createIngestActivities, KafkaResources, type IngestDeps } from '../../activities/ingest/ingest.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import type { PlatformConfig } from '../../schemas/config.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { startPrivateKafka, type PrivateKafka } from './private-kafka.js';
import { stackEndpoints } from './stack.js';

/** A private broker and a database, ready to land. */
export interface PrivateLanding {
  broker: PrivateKafka;
  /** Client of the private broker. */
  kafka: Kafka;
  /** Bound to the test's database. */
  warehouse: ClickHouseClient;
  /**
   * New ingest activities on the private broker (own KafkaResources, closed by `close`); call it
   * after a broker restart for clients that never saw the old process.
   */
  activities(deps?: Partial<Omit<IngestDeps, 'kafka' | 'warehouse' | 'resources'>>): ReturnType<typeof createIngestActivities>;
  /** Closes the activities' connections, stops the broker, drops the database. */
  close(): Promise<void>;
}

/** Tables whose merges are stopped. @default events and dead_letters */
export async function startPrivateLanding(config: PlatformConfig, database: string, stopMerges: readonly string[] = ['events', 'dead_letters']): Promise<PrivateLanding> {
  let broker: PrivateKafka;
  try {
    broker = await startPrivateKafka(config);
  } catch (err) {
    throw new Error(`the test's private Kafka broker did not start (the test cannot run without it): ${(err as Error).message}`, { cause: err });
  }
  const endpoints = { ...stackEndpoints(), kafkaBrokers: [broker.broker] };
  const kafka = createKafka(config, endpoints, `-${database}`);
  const admin = createWarehouse(config, endpoints, 'default');
  const warehouse = createWarehouse(config, endpoints, database);
  const resources: KafkaResources[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled(resources.map((r) => r.close()));
    await broker.stop();
    await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: database } }).catch(() => undefined);
    await Promise.allSettled([admin.close(), warehouse.close()]);
  };
  try {
    await migrate(warehouse, database, { admin });
    for (const table of stopMerges) await warehouse.command({ query: 'SYSTEM STOP MERGES {t:Identifier}', query_params: { t: table } });
  } catch (err) {
    await close();
    throw err;
  }
  return {
    broker,
    kafka,
    warehouse,
    activities(deps = {}) {
      const own = new KafkaResources(kafka);
      resources.push(own);
      return createIngestActivities({ processorVersion: 'private-landing', fetchTimeoutMs: 20_000, ...deps, kafka, warehouse, resources: own });
    },
    close,
  };
}

/**
 * Registers the suite's private landing: started in `beforeAll` without awaiting (a broker that
 * does not start then fails each test that awaits it, with the reason, instead of skipping it),
 * closed in `afterAll`. Returns what each test awaits.
 */
export function usePrivateLanding(config: PlatformConfig, database: string, stopMerges?: readonly string[]): () => Promise<PrivateLanding> {
  let setup: Promise<PrivateLanding>;
  beforeAll(() => {
    setup = startPrivateLanding(config, database, stopMerges);
    setup.catch(() => undefined);
  });
  afterAll(async () => {
    await (await setup.catch(() => null))?.close();
  }, 60_000);
  return () => setup;
}
