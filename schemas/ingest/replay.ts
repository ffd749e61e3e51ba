/**
 * Input and result of the `replay` workflow: re-read an offset range of one partition (or only its
 * dead letters) under the current contracts and processor, land what now passes exactly once under
 * a new replay generation, mark the dead letters it resolved, and record the replay in lineage.
 * Hand-writable from the Temporal CLI:
 * `temporal workflow start --type replay --task-queue streamwarden --workflow-id replay-orders-orders-0
 *  --input '{"pipelineId":"orders","topic":"orders","partition":0,"from":0,"to":500,"by":"ann","reason":"contract fix"}'`.
 * Pure; importable from workflows.
 */
import { z } from 'zod';
import { processorSelectionSchema } from '../processing/selection.js';
import { defaultDuplicateIdWindowMinutes, pipelineIdSchema, topicSchema } from './pipeline.js';

const offset = (what: string) => z.number({ message: `expected ${what} (an integer offset >= 0)` }).int(`expected ${what} (an integer offset >= 0)`).min(0, `expected ${what} (an integer offset >= 0)`);

/** Input of the `replay` workflow (and of `platform replay`). */
export const replayInputSchema = z
  .strictObject({
    pipelineId: pipelineIdSchema,
    topic: topicSchema,
    partition: z.number({ message: 'expected a partition number' }).int('expected a partition number').min(0, 'expected a partition number'),
    /** First offset of the range. */
    from: offset('the first offset of the range'),
    /** End of the range, exclusive; at most the pipeline's committed offset on the partition. */
    to: offset('the end of the range, exclusive'),
    /** Re-read only the offsets that are open dead letters (the range is narrowed to them). @default false */
    onlyDeadLetters: z.boolean({ message: 'expected true or false' }).default(false),
    /** Why (recorded in lineage). @default "" */
    reason: z.string({ message: 'expected a string' }).max(500, 'expected at most 500 characters').default(''),
    /** Who asked (recorded in lineage), e.g. a user name. */
    by: z.string({ message: 'expected who asks for the replay, e.g. "ann"' }).min(1, 'expected who asks for the replay, e.g. "ann"').max(200),
    /** The pipeline's largest accepted event, bytes. @default 1048576 */
    maxEventBytes: z.number().int().min(64).max(16 * 1024 * 1024).default(1024 * 1024),
    /** The pipeline's duplicate-id window, minutes (0: off). @default 1440 */
    duplicateIdWindowMinutes: z.number({ message: 'expected a number of minutes' }).int().min(0).max(30 * 24 * 60).default(defaultDuplicateIdWindowMinutes),
    /** The processor to run, as the pipeline runs it now; unset: contract validation only. */
    processor: processorSelectionSchema.optional(),
    /** Offsets per landing batch (one `lineage_batches` row each). @default 5000 */
    batchMaxEvents: z.number({ message: 'expected a number' }).int().min(1).max(100_000, 'expected at most 100000').default(5000),
    /** Consumer group holding the pipeline's committed offsets. @default "streamwarden-<pipelineId>" */
    consumerGroup: z.string().min(1).max(255).optional(),
  })
  .superRefine((input, ctx) => {
    if (input.to <= input.from) ctx.addIssue({ code: 'custom', path: ['to'], message: `expected an offset above from (${input.from})` });
  });

/** Input of a replay as written (defaults optional). */
export type ReplayInputRaw = z.input<typeof replayInputSchema>;
/** Input of a replay after defaults. */
export type ReplayInput = z.output<typeof replayInputSchema>;

/**
 * Workflow id of a partition's replay: `replay-<pipeline>-<topic>-<partition>`. One id per
 * partition, so two replays of the same partition never run at once (their landings would race).
 */
export function replayWorkflowId(pipelineId: string, topic: string, partition: number): string {
  return `replay-${pipelineId}-${topic}-${partition}`;
}

/** What a replay did (also its `progress` query while it runs). */
export interface ReplayResult {
  pipelineId: string;
  topic: string;
  partition: number;
  /** The replay generation: its batch ids and tokens end in `/g<generation>`. */
  generation: number;
  /** The range re-read (narrowed to the open dead letters with onlyDeadLetters). */
  from: number;
  to: number;
  /** Offsets re-read so far. */
  read: number;
  /** Events that landed now (were not in `events` before). */
  landed: number;
  /** Offsets already in `events`, or dead letters that still fail: nothing new inserted. */
  alreadyLanded: number;
  /** Records that fail validation or processing now. */
  rejected: number;
  /** Dead letters marked resolved (their offset now landed). */
  resolved: number;
  batches: number;
  state: 'planning' | 'landing' | 'completed';
}
