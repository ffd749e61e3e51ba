/**
 * The landing report a pipeline's aggregator receives: `batchLanded` `{partition, from, to}`.
 * Shared by the aggregator (which defines the signal), the partition consumer and the landing
 * activity (which send it), so the name and the shape are written once.
 */
import { z } from 'zod';

/** Name of the aggregator's `batchLanded` signal. */
export const batchLandedSignalName = 'batchLanded';

/** Argument of `batchLanded`: the landed range `[from, to)` of a partition. */
export const batchLandedSchema = z
  .object({ partition: z.number().int().min(0), from: z.number().int().min(0), to: z.number().int().min(0) })
  .strict();
/** Argument of `batchLanded`. */
export type BatchLanded = z.infer<typeof batchLandedSchema>;

/** Workflow id of a pipeline's aggregator: `aggregator-<pipeline>`. */
export function aggregatorWorkflowId(pipeline: string): string {
  return `aggregator-${pipeline}`;
}
