/**
 * Inputs of the pipeline workflows, validated at the workflow boundary. Defaults make the
 * shortest start work from the plain Temporal CLI:
 * `temporal workflow start --type pipeline --task-queue streamwarden --workflow-id pipeline-demo
 *  --input '{"pipelineId":"demo","topic":"requests"}'`. Pure; importable from workflows.
 */
import { z } from 'zod';
import { processorSelectionSchema } from '../processing/selection.js';

/** Pipeline ids: short lowercase names, used in workflow ids, consumer groups and table rows. */
export const pipelineIdSchema = z
  .string({ message: 'expected a string' })
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected 1-63 chars of a-z, 0-9, - or _ starting with a letter or digit, e.g. "demo"');

/** Kafka topic names as the broker accepts them. */
export const topicSchema = z
  .string({ message: 'expected a string' })
  .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name (1-249 chars of A-Z a-z 0-9 . _ -), e.g. "requests"');

/** Where a partition starts when neither the workflow nor the consumer group has a position. */
export const startFromSchema = z.enum(['earliest', 'latest'], { message: 'expected "earliest" or "latest"' });

const counters = z.object({
  landed: z.number().int().min(0).default(0),
  rejected: z.number().int().min(0).default(0),
  batches: z.number().int().min(0).default(0),
});

/** Default duplicate-id window: 24 hours of event time, in minutes. */
export const defaultDuplicateIdWindowMinutes = 24 * 60;

/** Consumption settings shared by the supervisor and its partition workflows. */
const consumptionFields = {
  /** Kafka consumer group the progress is committed to (for lag tooling). @default "streamwarden-<pipelineId>" */
  consumerGroup: z.string().min(1).max(255).optional(),
  /** @default "earliest" */
  startFrom: startFromSchema.default('earliest'),
  /** Largest batch, in events. @default 2000 */
  batchMaxEvents: z.number({ message: 'expected a number' }).int().min(1).max(100_000, 'expected at most 100000').default(2000),
  /** Largest accepted event, in bytes; larger ones become `oversized` dead letters. @default 1048576 */
  maxEventBytes: z.number().int().min(64).max(16 * 1024 * 1024).default(1024 * 1024),
  /** Wait between polls when a partition has no new data, in ms. @default 1000 */
  pollIntervalMs: z.number({ message: 'expected a number of milliseconds' }).int().min(50).max(3_600_000).default(1000),
  /**
   * Duplicate-id window, minutes of event time. An event whose id already landed for the pipeline
   * (any partition, any earlier batch) with an event time at most this far from its own becomes a
   * `duplicate_id` dead letter pointing at the offset where the id first landed. 0 turns the
   * cross-batch check off (ids stay unique within one landing step). @default 1440 (24 h)
   */
  duplicateIdWindowMinutes: z
    .number({ message: 'expected a number of minutes (0 turns the check off), e.g. 1440' })
    .int('expected a whole number of minutes, e.g. 1440')
    .min(0, 'expected minutes >= 0 (0 turns the check off)')
    .max(30 * 24 * 60, 'expected at most 43200 minutes (30 days)')
    .default(defaultDuplicateIdWindowMinutes),
};

/** Rollup loop settings. */
export const rollupSettingsSchema = z.object({
  /** How often the supervisor recomputes recent 1-minute windows, in ms. @default 10000 */
  intervalMs: z.number().int().min(200).max(3_600_000).default(10_000),
  /** Overlap when finding windows touched by newly ingested rows, in seconds. @default 120 */
  overlapSeconds: z.number().int().min(0).max(86_400).default(120),
});

/** The error-rate threshold detector. */
export const detectorSettingsSchema = z.object({
  /** @default true */
  enabled: z.boolean().default(true),
  /** Error rate (5xx / requests) of a service in one 1-minute window above which it fires. @default 0.1 */
  errorRateThreshold: z.number().gt(0).lt(1, 'expected a fraction between 0 and 1, e.g. 0.1').default(0.1),
  /** Windows with fewer requests than this are not judged. @default 50 */
  minRequests: z.number().int().min(1).default(50),
  /** How far back complete windows are evaluated, in minutes. @default 15 */
  lookbackMinutes: z.number().int().min(1).max(24 * 60).default(15),
});

/** Input of the `pipeline` supervisor workflow. */
export const pipelineInputSchema = z.strictObject({
  pipelineId: pipelineIdSchema,
  topic: topicSchema,
  /** Partition count used when the topic has to be created. @default 3 */
  partitions: z.number().int().min(1).max(1000).default(3),
  ...consumptionFields,
  rollup: rollupSettingsSchema.prefault({}),
  detector: detectorSettingsSchema.prefault({}),
  /**
   * The processor the pipeline runs, e.g. `{"name": "request-enriched", "version": 2}`; its output
   * rows land in typed tables next to `events`. Changed at runtime by the `setProcessor` update.
   * Unset: contract validation and `events` only.
   */
  processor: processorSelectionSchema.optional(),
  /** Carried across continue-as-new; not for people to set. */
  state: z
    .object({
      rollupWatermark: z.string().optional(),
      firedKeys: z.array(z.string()).default([]),
    })
    .optional(),
});

/** Input of the supervisor as people write it (defaults optional). */
export type PipelineInputRaw = z.input<typeof pipelineInputSchema>;
/** Input of the supervisor after defaults. */
export type PipelineInput = z.output<typeof pipelineInputSchema>;

/** Input of a `partitionConsumer` workflow: one (topic, partition) of a pipeline. */
export const partitionConsumerInputSchema = z.strictObject({
  pipelineId: pipelineIdSchema,
  topic: topicSchema,
  partition: z.number({ message: 'expected a partition number' }).int().min(0),
  ...consumptionFields,
  /** Next offset to land. Unset: the consumer group's committed offset, else `startFrom`. */
  cursor: z.number().int().min(0).optional(),
  /** Totals carried across continue-as-new. */
  totals: counters.prefault({}),
  /** Start paused (carried across continue-as-new). @default false */
  paused: z.boolean().default(false),
  /** Average record size of the last landing, bytes (carried across continue-as-new; sizes plan steps). */
  recordBytes: z.number().int().min(1).optional(),
  /** The processor of the next batch (carried across continue-as-new; changed by the supervisor's signals). */
  processor: processorSelectionSchema.optional(),
  /** Why the partition is paused, when the breaker paused it (carried across continue-as-new). */
  pausedBy: z.string().optional(),
  /**
   * Whether the pipeline declares analytics, so that the consumer reports each landed batch to
   * the pipeline's aggregator (`batchLanded` signal to `aggregator-<pipeline>`). The supervisor
   * sets it from the analytics declarations; with `false` no signal is sent, since it could only
   * fail and add a failed external-signal command to every batch's history. Carried across
   * continue-as-new. @default unset: report (consumers started before the field existed, or by hand)
   */
  reportLandings: z.boolean().optional(),
});

/** Input of a partition consumer as written (defaults optional). */
export type PartitionConsumerInputRaw = z.input<typeof partitionConsumerInputSchema>;
/** Input of a partition consumer after defaults. */
export type PartitionConsumerInput = z.output<typeof partitionConsumerInputSchema>;

/** What the `progress` query of a partition consumer returns. */
export interface PartitionProgress {
  pipelineId: string;
  topic: string;
  partition: number;
  /** Next offset to land, null before the first plan. */
  cursor: number | null;
  landed: number;
  rejected: number;
  batches: number;
  /** Messages behind the high watermark at the last plan, null if unknown. */
  lag: number | null;
  paused: boolean;
  /** The batch being landed, if any. */
  inFlight: { from: number; to: number } | null;
  /** Current batch size (adapted to landing time, at most batchMaxEvents). */
  batchSize: number;
}

/**
 * One partition as the supervisor last heard from its consumer (numbers only). Null numbers with
 * `error` when the consumer did not answer.
 */
export interface PartitionSummary {
  partition: number;
  /** Next offset to land. */
  cursor: number | null;
  landed: number | null;
  rejected: number | null;
  /** Messages behind the high watermark at the consumer's last plan. */
  lag: number | null;
  paused: boolean | null;
  batches: number | null;
  /** Why the consumer gave no numbers (e.g. no worker answered its query). */
  error?: string;
}

/** What the `progress` query of the supervisor returns. */
export interface PipelineProgress {
  pipelineId: string;
  topic: string;
  partitions: number[];
  /**
   * Each partition's cursor, landed, rejected and lag, refreshed every rollup interval by asking
   * the partition consumers (`partitionProgress` activity); empty until the first refresh.
   */
  partitionProgress: PartitionSummary[];
  /** Sums over `partitionProgress` (null when no partition answered). */
  totals: { landed: number | null; rejected: number | null; lag: number | null };
  /** Workflow time of the last refresh (ISO-8601), null before the first. */
  partitionProgressAt: string | null;
  consumerGroup: string;
  rollupWatermark: string | null;
  rollupRuns: number;
  alertsFired: number;
  lastError: string | null;
}

/** Default consumer group of a pipeline. */
export function defaultConsumerGroup(pipelineId: string): string {
  return `streamwarden-${pipelineId}`;
}

/** Workflow id of a pipeline's supervisor: `pipeline-<id>`. */
export function pipelineWorkflowId(pipelineId: string): string {
  return `pipeline-${pipelineId}`;
}

/** Workflow id of a partition consumer: `pipeline-<id>-<topic>-<partition>`. */
export function partitionWorkflowId(pipelineId: string, topic: string, partition: number): string {
  return `pipeline-${pipelineId}-${topic}-${partition}`;
}

/** Batch id and insert de-duplication token of the range `[from, to)`: `<pipeline>/<topic>/<partition>/<from>-<to>`. */
export function batchId(pipelineId: string, topic: string, partition: number, from: number, to: number): string {
  return `${pipelineId}/${topic}/${partition}/${from}-${to}`;
}

/** Pause/resume signal argument. */
export const pauseArgsSchema = z.strictObject({ reason: z.string().max(500).optional() }).prefault({});

/**
 * One line naming every problem: `pipeline input: topic: expected ..., got 42`. Used for
 * non-retryable failures at workflow boundaries.
 */
export function describeInputError(what: string, error: z.ZodError, input: unknown): string {
  const parts = error.issues.map((issue) => {
    const path = issue.path.map(String).join('.') || '(root)';
    let found: unknown = input;
    for (const key of issue.path) {
      found = typeof found === 'object' && found !== null ? (found as Record<PropertyKey, unknown>)[key as PropertyKey] : undefined;
    }
    const got = found === undefined ? 'nothing' : JSON.stringify(found)?.slice(0, 80);
    return issue.code === 'unrecognized_keys' ? `${path}: ${issue.message}` : `${path}: ${issue.message}, got ${got}`;
  });
  return `${what}: ${parts.join('; ')}`;
}
