/**
 * Checks a rollout's target before it starts: asks the pipeline which processor it runs (its
 * `processor` query) and resolves the rollout's `version` and `flags` in a processor catalogue
 * ({@link resolveRolloutTarget}). Shared by the `checkRolloutTarget` activity (the worker's
 * catalogue) and `platform rollouts start` (the tool's).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import { pipelineWorkflowId } from '../../schemas/ingest/pipeline.js';
import { resolveRolloutTarget, type RolloutTargetCheck } from '../../schemas/rollouts/target.js';

/** What a target check needs from the rollout input. */
export interface RolloutTargetInput {
  pipeline: string;
  version: string;
  flags: Record<string, unknown>;
}

/**
 * The processor name pipeline `pipeline` runs, or null when its workflow is not running (never
 * started, or ended) or it runs no processor. Throws on other Temporal errors (retried by the
 * activity; the tool reports them).
 */
export async function pipelineProcessorName(temporal: Client, pipeline: string): Promise<string | null> {
  const handle = temporal.workflow.getHandle(pipelineWorkflowId(pipeline));
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return null;
    const status = await handle.query<{ processor: { name: string } | null }>('processor');
    return status.processor?.name ?? null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** Resolves a rollout's target against `catalogue` and the pipeline's current processor. */
export async function checkRolloutTarget(temporal: Client, catalogue: readonly ProcessorFamily[], input: RolloutTargetInput): Promise<RolloutTargetCheck> {
  return resolveRolloutTarget(input.version, input.flags, await pipelineProcessorName(temporal, input.pipeline), catalogue);
}
