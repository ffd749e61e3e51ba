/**
 * All activities of the platform, built from their dependencies. Workflows type their proxies
 * with `ReturnType<typeof createActivities>`; the worker registers the result. Each group lives
 * in its own module; add a group with one spread line.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import type { AlertingConfig } from '../schemas/alerting/alert-policy.js';
import type { ChannelTargets } from '../schemas/alerting/receivers.js';
import { createAlertAuditActivities } from './alerting/alert-audit.js';
import { createAlertRoutingActivities } from './alerting/alert-routing.js';
import { createIngestActivities, type KafkaResources } from './ingest/ingest.js';
import { createPartitionProgressActivities } from './ingest/partition-progress.js';
import { createConsumerStopActivities } from './ingest/consumer-stop.js';
import { silentLogger, type Logger } from './logger.js';
import { heartbeating } from './ingest/heartbeat.js';
import { createNotifyActivities } from './alerting/notify.js';
import { createRollupActivities } from './analytics/rollup.js';
import { createProcessingActivities } from './processing/activities.js';
import { createProcessingRuntime } from './processing/runtime.js';
import { createAggregationActivities } from './analytics/aggregate.js';
import { createDetectionActivities } from './analytics/detect.js';
import type { AnalyticsFile } from '../schemas/analytics/declarations.js';
import type { LandingObserver } from './observability/landing-observer.js';
import type { ProcessorFamily } from '../schemas/processing/define.js';
import { createRolloutActivities } from './rollouts/rollout-activities.js';
import type { RolloutLineageSink } from './observability/rollout-lineage.js';

/** What the alerting activities need: the validated policy and channel files, and the secrets. */
export interface AlertingDeps {
  /** Routing tree, escalation policies, inhibition (infra/alerting/policy.json). */
  policy: AlertingConfig;
  /** Channel targets by id (infra/alerting/channels.json). */
  targets: ChannelTargets;
  /** Where secrets named by the channel config are looked up (the worker passes its environment). */
  secrets: Readonly<Record<string, string | undefined>>;
  /** HMAC key of ack links and webhook signatures. */
  signingSecret: string;
  /** Base URL that ack links point at. */
  publicUrl: string;
  /** A channel whose secrets are unset: refuse to start, or disable it with a warning. */
  missingSecrets: 'refuse' | 'disable';
}

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
  /** Alert routing, audit and notification channels. */
  alerting: AlertingDeps;
  /** Secrets of processor stages (`pseudonymKey`), from the worker's environment. @default {} */
  processingSecrets?: Readonly<Record<string, string>>;
  /** Analytics declarations (infra/analytics/pipelines.json). @default no pipelines */
  analytics?: AnalyticsFile;
  /** Told about landed rows (freshness metrics). @default none */
  landingObserver?: LandingObserver;
  /** Processor versions the landing activities can run. @default the working tree's catalogue */
  processorCatalogue?: readonly ProcessorFamily[];
  /** OpenLineage sink of the rollouts' run events (the worker's emitter). @default none */
  rolloutLineage?: RolloutLineageSink;
}

/** Builds every activity of the platform. */
export function createActivities(deps: ActivityDeps) {
  return withSupervisorHeartbeats({
    ...createIngestActivities({
      ...deps,
      processing: createProcessingRuntime({ warehouse: deps.warehouse, secrets: deps.processingSecrets ?? {}, ...(deps.log ? { log: deps.log } : {}) }),
      ...(deps.landingObserver ? { observer: deps.landingObserver } : {}),
      ...(deps.processorCatalogue ? { catalogue: deps.processorCatalogue } : {}),
    }),
    ...createPartitionProgressActivities({ temporal: deps.temporal }),
    ...createConsumerStopActivities({ temporal: deps.temporal }),
    ...createRollupActivities(deps),
    ...createAggregationActivities({ warehouse: deps.warehouse, analytics: deps.analytics ?? { pipelines: [] }, log: deps.log ?? silentLogger }),
    ...createDetectionActivities({ temporal: deps.temporal, taskQueue: deps.taskQueue, analytics: deps.analytics ?? { pipelines: [] }, log: deps.log ?? silentLogger }),
    ...createAlertRoutingActivities({ alerting: deps.alerting.policy, client: deps.temporal, taskQueue: deps.taskQueue }),
    ...createAlertAuditActivities({ warehouse: deps.warehouse }),
    ...createProcessingActivities({ warehouse: deps.warehouse, temporal: deps.temporal, taskQueue: deps.taskQueue, ...(deps.log ? { log: deps.log } : {}) }),
    ...createRolloutActivities({
      warehouse: deps.warehouse,
      temporal: deps.temporal,
      taskQueue: deps.taskQueue,
      ...(deps.processorCatalogue ? { catalogue: deps.processorCatalogue } : {}),
      ...(deps.analytics ? { analytics: deps.analytics } : {}),
      ...(deps.rolloutLineage ? { lineage: deps.rolloutLineage } : {}),
    }),
    ...createNotifyActivities({
      targets: deps.alerting.targets,
      secrets: deps.alerting.secrets,
      signingSecret: deps.alerting.signingSecret,
      publicUrl: deps.alerting.publicUrl,
      missingSecrets: deps.alerting.missingSecrets,
      log: deps.log ?? silentLogger,
    }),
  });
}

/**
 * The activities the pipeline supervisor (workflows/ingest/pipeline.ts) schedules. It schedules them
 * with the data path's 2 s heartbeat timeout, so they heartbeat every 0.5 s while they run
 * ({@link heartbeating}): a worker that dies holding one (a `detectThresholds` of a supervisor
 * whose worker was SIGKILLed) is noticed within 2 s, not after the start-to-close timeout (5 min
 * for the rollup and detection runs), during which the supervisor computed no rollups.
 */
export const supervisorActivityNames = [
  'ensureTopic', 'pipelineDeclaresAnalytics', 'partitionProgress', 'cancelWorkflows',
  'prepareProcessor', 'openProcessorBreakerAlert', 'computeRollups', 'detectThresholds',
] as const;

function withSupervisorHeartbeats<T extends Record<(typeof supervisorActivityNames)[number], (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, unknown> = { ...activities };
  for (const name of supervisorActivityNames) wrapped[name] = heartbeating(activities[name] as (...args: unknown[]) => Promise<unknown>);
  return wrapped as T;
}

/** Every activity, by name. */
export type Activities = ReturnType<typeof createActivities>;
