/**
 * The batch plan: everything that decides how an offset range is cut into inserts. The
 * `planBatch` activity returns it, Temporal records it in the partition workflow's history, and
 * every landing attempt of that batch executes exactly these steps with exactly these
 * de-duplication tokens, whatever the configuration of the worker that runs the attempt
 * (`PIPELINE_CHUNK_MAX_BYTES`) and whichever heartbeat it resumes from. A replay is a new
 * `generation` of the same offsets, so its tokens differ from the first landing's.
 * Pure; importable from workflows.
 */
import { z } from 'zod';
import { batchId } from './pipeline.js';
import { processorSelectionSchema } from '../processing/selection.js';
import { plannedRoutingSchema } from '../rollouts/routing.js';

const offset = z.number({ message: 'expected an offset (integer >= 0)' }).int().min(0);

/** One landing step: the sub-range `[from, to)` inserted as one insert per table under `token`. */
export const batchStepSchema = z.strictObject({
  from: offset,
  to: offset,
  /** insert_deduplication_token of the step's insert (tables add their own suffix). */
  token: z.string().min(1).max(1000),
});

/** A landing step. */
export type BatchStep = z.infer<typeof batchStepSchema>;

/**
 * The processor a batch runs under, with the flags it runs with (absent means the built-in contract
 * validation only). Part of the plan so a retried batch is processed as first planned: the same
 * processor version, the same flags, the same tokens. Same shape as a pipeline's `processor`.
 */
export const plannedProcessorSchema = processorSelectionSchema;

/** The batch plan recorded in history: range, generation, steps and (optionally) processor. */
export const batchPlanSchema = z
  .object({
    pipelineId: z.string().min(1),
    topic: z.string().min(1),
    partition: z.number().int().min(0),
    from: offset,
    to: offset,
    /** 0 for the first landing of these offsets; each replay takes a new, higher one. */
    generation: z.number().int().min(0).default(0),
    /** Batch id (and lineage token): see {@link planBatchId}. */
    batchId: z.string().min(1),
    steps: z.array(batchStepSchema),
    /** The processor and flags of the batch (the partition workflow sets it from its state). */
    processor: plannedProcessorSchema.optional(),
    /**
     * The canary routing of the batch while a rollout runs on the pipeline (absent otherwise, and
     * in plans recorded before rollouts existed): `processor` is then the baseline.
     */
    routing: plannedRoutingSchema.optional(),
    /** High watermark at planning time (informational). */
    highWatermark: offset.optional(),
    /** Log start offset at planning time (informational). */
    lowWatermark: offset.optional(),
  })
  .superRefine((plan, ctx) => {
    if (plan.to < plan.from) ctx.addIssue({ code: 'custom', path: ['to'], message: `expected to >= from (${plan.from})` });
    let next = plan.from;
    plan.steps.forEach((step, i) => {
      if (step.from !== next || step.to <= step.from) {
        ctx.addIssue({ code: 'custom', path: ['steps', i], message: `expected a step starting at ${next} with to > from, got [${step.from}, ${step.to})` });
      }
      next = step.to;
    });
    if (next !== plan.to) ctx.addIssue({ code: 'custom', path: ['steps'], message: `expected steps to tile [${plan.from}, ${plan.to}), they end at ${next}` });
    if (plan.routing && !plan.processor) ctx.addIssue({ code: 'custom', path: ['routing'], message: 'expected a processor (the baseline) when a batch is routed to a canary' });
  });

/** A batch plan (see {@link batchPlanSchema}). */
export type BatchPlanSteps = z.output<typeof batchPlanSchema>;

/**
 * Batch id of `[from, to)` in a generation: `<pipeline>/<topic>/<partition>/<from>-<to>` for the
 * first landing (generation 0, the historical form), with `/g<generation>` appended for replays.
 */
export function planBatchId(pipelineId: string, topic: string, partition: number, from: number, to: number, generation: number): string {
  const base = batchId(pipelineId, topic, partition, from, to);
  return generation === 0 ? base : `${base}/g${generation}`;
}

/** Default estimate of one record's size when nothing was landed yet, in bytes. @default 1024 */
export const defaultRecordBytesEstimate = 1024;

/**
 * Cuts `[from, to)` into steps of at most `stepMaxEvents` offsets each. Offsets, not bytes: the
 * cut is a pure function of the plan's inputs, so it can be recorded and repeated exactly. Each
 * step's token is its batch-id form, so a batch landed in one step keeps the batch's token.
 */
export function cutSteps(pipelineId: string, topic: string, partition: number, from: number, to: number, generation: number, stepMaxEvents: number): BatchStep[] {
  if (!(Number.isInteger(stepMaxEvents) && stepMaxEvents >= 1)) throw new RangeError(`stepMaxEvents: expected an integer >= 1, got ${stepMaxEvents}`);
  const steps: BatchStep[] = [];
  for (let start = from; start < to; start += stepMaxEvents) {
    const end = Math.min(to, start + stepMaxEvents);
    steps.push({ from: start, to: end, token: planBatchId(pipelineId, topic, partition, start, end, generation) });
  }
  return steps;
}

/**
 * Offsets per step so that a step holds about `stepMaxBytes` of records of `recordBytes` each
 * (at least 1). `recordBytes` comes from the previous landing of the partition (recorded in
 * history), else {@link defaultRecordBytesEstimate}.
 */
export function stepEventsFor(stepMaxBytes: number, recordBytes: number | null | undefined): number {
  const estimate = recordBytes !== null && recordBytes !== undefined && recordBytes > 0 ? recordBytes : defaultRecordBytesEstimate;
  return Math.max(1, Math.floor(stepMaxBytes / estimate));
}

/**
 * A complete plan of `[from, to)` in a generation, cut into steps of at most `stepMaxEvents`
 * offsets (used by planBatch, replays and tests).
 */
export function planRange(pipelineId: string, topic: string, partition: number, from: number, to: number, generation: number, stepMaxEvents: number): BatchPlanSteps {
  return {
    pipelineId,
    topic,
    partition,
    from,
    to,
    generation,
    batchId: planBatchId(pipelineId, topic, partition, from, to, generation),
    steps: cutSteps(pipelineId, topic, partition, from, to, generation, stepMaxEvents),
  };
}
