/**
 * The checks a rollout passes before it starts, shared by the `checkRolloutTarget` activity (the
 * worker's catalogue and analytics declarations) and `platform rollouts start` (the tool's), so the
 * two refuse the same inputs with the same words:
 * - the pipeline must be running (its `pipeline-<id>` workflow): a rollout routes and judges the
 *   batches of a running pipeline, and on a stopped one it would wait for observations that never
 *   come and end inconclusive;
 * - the target `version` must be a registered processor version and `flags` must parse with its
 *   flag schema ({@link resolveRolloutTarget}; a plain `3` is the pipeline's processor at version 3);
 * - every `aggregate:` / `detector:` metric must name a declared aggregation measure or window
 *   detector over the target's outputs ({@link aggregateMetricRefusal}).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AnalyticsFile } from '../../schemas/analytics/declarations.js';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import { lookupProcessor } from '../../schemas/processors/index.js';
import { pipelineWorkflowId } from '../../schemas/ingest/pipeline.js';
import { resolveRolloutTarget, type RolloutTargetCheck } from '../../schemas/rollouts/target.js';
import { aggregateMetricRefusal } from './aggregate-metrics.js';

/** What the start checks need from the rollout input. */
export interface RolloutTargetInput {
  pipeline: string;
  version: string;
  flags: Record<string, unknown>;
  /** Names of `analysis.metrics`, in order (refusals name `input.analysis.metrics.<i>.name`). @default none checked */
  metrics?: string[];
}

/** What the checks compare the input with. */
export interface RolloutStartContext {
  /** Processor versions that can run (the worker's, or the tool's working tree). */
  catalogue: readonly ProcessorFamily[];
  /** Analytics declarations (ANALYTICS_FILE). @default none: every `aggregate:`/`detector:` metric is refused */
  analytics?: AnalyticsFile;
  /**
   * Whether a pipeline that is not running is refused. `false` is an escape hatch for tests that
   * play the pipeline themselves (they write `canary_observations` for the rollout's routing epochs
   * and run no `pipeline` workflow); the platform never sets it.
   * @default true
   */
  requireRunningPipeline?: boolean;
}

/** A pipeline's workflow as a rollout sees it. */
export interface PipelineRunState {
  /** Whether the latest run of `pipeline-<id>` is RUNNING. */
  running: boolean;
  /** The processor name it runs (its `processor` query), or null when not running or none. */
  processor: string | null;
  /** The version of that processor, or null when not running or none. */
  processorVersion: number | null;
}

/**
 * Result of {@link checkRolloutStart}: the target check, and when it passed, the baseline as
 * recorded at start: `name@version` of the processor the pipeline runs, or null when none runs.
 */
export type RolloutStartCheck = Extract<RolloutTargetCheck, { ok: false }> | (Extract<RolloutTargetCheck, { ok: true }> & { readonly baseline: string | null });

/**
 * Asks Temporal whether pipeline `pipeline` is running and which processor it runs. A pipeline never
 * started or ended is `{ running: false, processor: null }`. Throws on other Temporal errors
 * (retried by the activity; the tool reports them).
 */
export async function pipelineRunState(temporal: Client, pipeline: string): Promise<PipelineRunState> {
  const handle = temporal.workflow.getHandle(pipelineWorkflowId(pipeline));
  const none = { running: false, processor: null, processorVersion: null };
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return none;
    const status = await handle.query<{ processor: { name: string; version: number } | null }>('processor');
    return { running: true, processor: status.processor?.name ?? null, processorVersion: status.processor?.version ?? null };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return none;
    throw err;
  }
}

/** The refusal of a pipeline that is not running, naming it. */
export function pipelineNotRunningRefusal(pipeline: string): Extract<RolloutTargetCheck, { ok: false }> {
  return {
    ok: false,
    field: 'input.pipeline',
    message: `pipeline "${pipeline}" is not running (no running workflow ${pipelineWorkflowId(pipeline)}): a rollout routes and judges a running pipeline's batches; start it first (platform pipeline start --id ${pipeline} ...)`,
  };
}

/**
 * Runs every start check of a rollout (see the module comment) against `context`; the first
 * refusal wins, in the order pipeline, version, flags, metrics. Never throws for bad input: the
 * refusal names the field (`input.pipeline`, `input.version`, `input.flags.<path>`,
 * `input.analysis.metrics.<i>.name`) and what is expected.
 */
export async function checkRolloutStart(temporal: Client, context: RolloutStartContext, input: RolloutTargetInput): Promise<RolloutStartCheck> {
  const pipeline = await pipelineRunState(temporal, input.pipeline);
  if (!pipeline.running && context.requireRunningPipeline !== false) return pipelineNotRunningRefusal(input.pipeline);
  const check = resolveRolloutTarget(input.version, input.flags, pipeline.processor, context.catalogue);
  if (!check.ok) return check;
  const found = lookupProcessor(check.target.name, check.target.version, context.catalogue);
  const spec = context.analytics?.pipelines.find((p) => p.pipeline === input.pipeline);
  for (const [i, name] of (input.metrics ?? []).entries()) {
    const why = found.found ? aggregateMetricRefusal(name, input.pipeline, spec, found.processor) : null;
    if (why) return { ok: false, field: `input.analysis.metrics.${i}.name`, message: why };
  }
  return { ...check, baseline: pipeline.processor !== null && pipeline.processorVersion !== null ? `${pipeline.processor}@${pipeline.processorVersion}` : null };
}
