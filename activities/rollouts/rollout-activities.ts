/**
 * Activities of the `canaryRollout` workflow:
 * - `judgeCanary` pools a window's observations from `canary_observations`, runs the judge and
 *   stores the report in `canary_judgements` (idempotent per judgement id);
 * - `recordRolloutEvents` appends the audit trail to `rollout_events`;
 * - `fireRolloutAlert` opens (or repeats) an incident through the alert workflow (signal-with-start);
 * - `rolloutLockHolder` and `isWorkflowRunning` serve the one-rollout-per-pipeline lock.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { clearAlert, fireAlert } from '../alerting/alert-firing.js';
import { alertFiringSchema, type AlertFiring } from '../../schemas/alerting/alert.js';
import { describeZodError } from '../../schemas/alerting/alert-incident.js';
import { aggregateMetricPrefix, analysisSchema, detectorMetricPrefix, implicitAggregateMetric, rolloutLockWorkflowId, type AnalysisConfig } from '../../schemas/rollouts/rollout.js';
import type { AnalyticsFile } from '../../schemas/analytics/declarations.js';
import { lookupProcessor } from '../../schemas/processors/index.js';
import { aggregateSamples, declaredAggregateMetrics, judgeableAggregations, stepBatches } from './aggregate-metrics.js';
import type { JudgementSummary, RolloutEvent, RolloutStatus, Routing } from '../../schemas/rollouts/rollout-state.js';
import { judge, type JudgementReport, type MetricReport, type MetricSamples } from './judge.js';
import { jsonFloat, loadObservations } from './observations.js';
import { pipelineWorkflowId } from '../../schemas/ingest/pipeline.js';
import { canaryProcessorName } from '../../schemas/rollouts/routing.js';
import { processors as treeProcessors } from '../../schemas/processors/index.js';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import { describeTargetRefusal, type RolloutTarget } from '../../schemas/rollouts/target.js';
import { checkRolloutStart, type RolloutStartContext, type RolloutTargetInput } from './target.js';
import { rolloutRunEvent, type RolloutLineageSink } from '../observability/rollout-lineage.js';

/** Input of `publishRouting`: one routing change of a rollout, as the pipeline's planner reads it. */
export interface PublishRoutingInput {
  pipeline: string;
  rolloutId: string;
  routing: Routing;
  step: number;
  status: RolloutStatus;
  /** Whether the rollout has ended (its routing no longer applies). */
  final: boolean;
  /** Canary flags (JSON object). */
  flags: Record<string, unknown>;
  /** Numeric output columns to observe (`field:<column>` metrics). */
  fields: string[];
  /** ISO-8601 workflow time of the change. */
  publishedAt: string;
}

/** Input of `handOverProcessor`: promote the canary to be the pipeline's own processor. */
export interface HandOverInput {
  pipeline: string;
  rolloutId: string;
  canaryVersion: string;
  flags: Record<string, unknown>;
  by: string;
  reason: string;
}

/** Dependencies of {@link createRolloutActivities}. */
export interface RolloutActivityDeps {
  /** Bound to the platform's database. */
  warehouse: ClickHouseClient;
  /** Temporal client (alerts, lock holder lookups). */
  temporal: Client;
  /** Task queue the alert workflows run on. */
  taskQueue: string;
  /** Processor versions this worker can run (a rollout's target must be one). @default the working tree's catalogue */
  catalogue?: readonly ProcessorFamily[];
  /** Analytics declarations: the aggregations and detectors judged as aggregate metrics. @default none */
  analytics?: AnalyticsFile;
  /** OpenLineage: one run per rollout, an event per step change. @default none (not emitted) */
  lineage?: RolloutLineageSink;
  /**
   * Whether `checkRolloutTarget` refuses a pipeline that is not running. `false` only for tests that
   * play the pipeline (they write the observations themselves and run no `pipeline` workflow).
   * @default true
   */
  requireRunningPipeline?: boolean;
}

/** Input of `judgeCanary`. */
export interface JudgeCanaryInput {
  rolloutId: string;
  pipeline: string;
  /** 0-based index of the judged step. */
  step: number;
  /**
   * 1-based step number (`step + 1`), named in the judgement id (`.../step-<n>/...`). Absent in
   * activities scheduled before step numbers were 1-based: their retries keep the id they had
   * (`step-<index>`), so a retried judgement is still written once.
   */
  stepNumber?: number;
  epoch: number;
  /** Sequence number the workflow gives this judgement (a retried activity repeats it). */
  seq: number;
  baselineVersion: string;
  canaryVersion: string;
  /** ISO-8601 window [from, to) of the observations judged. */
  windowStart: string;
  windowEnd: string;
  /** Parsed analysis configuration (re-validated here). */
  analysis: AnalysisConfig;
}

/** Samples stored per side and metric in `canary_judgements` (sizes and summaries are always complete). */
export const storedSamplesCap = 10_000;

/** Query name of the rollout lock (the workflow id holding it). */
export const lockHolderQueryName = 'holder';

function metricLine(m: MetricReport): string {
  const p = Number.isFinite(m.pValue) ? `p=${Number(m.pValue.toPrecision(3))}` : 'no test';
  const effect = Number.isFinite(m.effect) ? `, effect ${m.effect >= 0 ? '+' : ''}${Number(m.effect.toPrecision(3))}` : '';
  return `${m.metric} ${m.verdict} (${p}${effect})${m.critical ? ' [critical]' : ''}`;
}

/** Rows of `canary_judgements` for one report. */
export function judgementRows(input: JudgeCanaryInput, judgementId: string, report: JudgementReport, samples: Map<string, { baseline: { values: number[] }; canary: { values: number[] } }>, judgedAt: string) {
  return report.metrics.map((m) => ({
    rollout_id: input.rolloutId,
    judgement_id: judgementId,
    pipeline: input.pipeline,
    step: input.step,
    step_number: input.step + 1,
    epoch: input.epoch,
    baseline_version: input.baselineVersion,
    canary_version: input.canaryVersion,
    window_start: input.windowStart,
    window_end: input.windowEnd,
    outcome: report.outcome,
    score: report.score,
    pass_score: input.analysis.passScore,
    marginal_score: input.analysis.marginalScore,
    confidence: input.analysis.confidence,
    metric: m.metric,
    kind: m.kind,
    direction: m.direction,
    weight: m.weight,
    critical: m.critical ? 1 : 0,
    test: m.test,
    baseline_n: m.baselineN,
    canary_n: m.canaryN,
    baseline_hits: m.baselineHits,
    canary_hits: m.canaryHits,
    baseline_nan: m.baselineNaN,
    canary_nan: m.canaryNaN,
    baseline_center: jsonFloat(m.baselineCenter),
    canary_center: jsonFloat(m.canaryCenter),
    baseline_samples: (samples.get(m.metric)?.baseline.values ?? []).slice(0, storedSamplesCap).map(jsonFloat),
    canary_samples: (samples.get(m.metric)?.canary.values ?? []).slice(0, storedSamplesCap).map(jsonFloat),
    statistic: jsonFloat(m.statistic),
    p_value: jsonFloat(m.pValue),
    effect: jsonFloat(m.effect),
    tolerance: jsonFloat(m.tolerance),
    verdict: m.verdict,
    reason: m.reason,
    judged_at: judgedAt,
  }));
}

/** Builds the rollout activities. */
export function createRolloutActivities(deps: RolloutActivityDeps) {
  const { warehouse, temporal } = deps;
  const catalogue = deps.catalogue ?? treeProcessors;
  const analytics = deps.analytics ?? { pipelines: [] };
  const startContext: RolloutStartContext = { catalogue, analytics, requireRunningPipeline: deps.requireRunningPipeline ?? true };

  /**
   * The analysis with the step's aggregate and detector metrics: those named in `metrics`, plus,
   * with `aggregates.include: "declared"`, every declared aggregation measure and window detector
   * over the canary processor's outputs (defaults from `aggregates`). Adds their samples to `samples`.
   */
  async function withAggregateMetrics(input: JudgeCanaryInput, analysis: AnalysisConfig, samples: Map<string, MetricSamples>): Promise<AnalysisConfig> {
    const spec = analytics.pipelines.find((p) => p.pipeline === input.pipeline);
    const named = new Set(analysis.metrics.map((m) => m.name));
    const isAggregate = (name: string) => name.startsWith(aggregateMetricPrefix) || name.startsWith(detectorMetricPrefix);
    if (!spec || (analysis.aggregates.include === 'named' && ![...named].some(isAggregate))) return analysis;
    const step = await stepBatches(warehouse, input);
    const found = step ? lookupProcessor(step.canary.name, step.canary.version, catalogue) : null;
    if (!step || !found?.found) return analysis;
    const aggregations = judgeableAggregations(spec, found.processor);
    const implicit = analysis.aggregates.include === 'declared'
      ? declaredAggregateMetrics(spec, aggregations).filter((n) => !named.has(n)).map((n) => implicitAggregateMetric(n, analysis.aggregates))
      : [];
    const metrics = [...analysis.metrics, ...implicit];
    const wanted = metrics.map((m) => m.name).filter(isAggregate);
    const reject = samples.get('reject_rate');
    const events = { baseline: reject?.baseline.events ?? 0, canary: reject?.canary.events ?? 0 };
    for (const [name, sample] of await aggregateSamples(warehouse, spec, aggregations, wanted, step, events)) samples.set(name, sample);
    return { ...analysis, metrics };
  }

  return {
    /**
     * The start checks of `platform rollouts start` ({@link checkRolloutStart}), on this worker's
     * catalogue and analytics declarations: refuses a pipeline that is not running, a target that
     * is not a registered processor version of the catalogue, flags that version's flag schema
     * refuses, and an `aggregate:` or `detector:` metric (`metrics`, the names of
     * `analysis.metrics`) that names no declared aggregation measure or window detector over the
     * target's outputs. A refusal is a non-retryable `invalid_input` failure whose message names the
     * field (`canaryRollout input: input.pipeline: pipeline "orders" is not running ...`).
     * Returns the target and `baseline`, the processor the pipeline runs (`name@version`; absent
     * when it runs none), which the rollout records as its baseline instead of the word `current`.
     */
    async checkRolloutTarget(input: RolloutTargetInput): Promise<RolloutTarget & { baseline?: string }> {
      const check = await checkRolloutStart(temporal, startContext, input);
      if (!check.ok) throw ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `canaryRollout input: ${describeTargetRefusal(check)}` });
      return { ...check.target, ...(check.baseline ? { baseline: check.baseline } : {}) };
    },

    /**
     * Judges a window and stores the report. The judgement id is derived from rollout, step and
     * epoch, so a retried activity writes the same rows once (dedup token) and returns the same
     * outcome. Returns a summary small enough for workflow history.
     */
    async judgeCanary(input: JudgeCanaryInput): Promise<JudgementSummary & { reason: string }> {
      const analysis = analysisSchema.safeParse(input.analysis);
      if (!analysis.success) {
        throw ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `judgeCanary: ${describeZodError(analysis.error, 'analysis')}` });
      }
      const judgementId = `${input.rolloutId}/step-${input.stepNumber ?? input.step}/epoch-${input.epoch}/j${input.seq}`;
      const samples = await loadObservations(warehouse, { rolloutId: input.rolloutId, epoch: input.epoch, from: input.windowStart, to: input.windowEnd });
      const judged = await withAggregateMetrics(input, analysis.data, samples);
      const report = judge(judged, samples);
      await warehouse.insert({
        table: 'canary_judgements',
        format: 'JSONEachRow',
        values: judgementRows({ ...input, analysis: judged }, judgementId, report, samples, input.windowEnd),
        clickhouse_settings: { insert_deduplication_token: `judgement/${judgementId}`, date_time_input_format: 'best_effort' },
      });
      return {
        judgementId,
        step: input.step,
        epoch: input.epoch,
        outcome: report.outcome,
        score: Math.round(report.score * 100) / 100,
        metrics: report.metrics.map(metricLine),
        at: input.windowEnd,
        reason: report.reason,
      };
    },

    /** Appends audit events to `rollout_events` (idempotent per batch of sequence numbers). */
    async recordRolloutEvents(input: {
      rolloutId: string;
      pipeline: string;
      baselineVersion: string;
      canaryVersion: string;
      workflowId: string;
      runId: string;
      /** First run id of the workflow (the OpenLineage run); absent in runs recorded before lineage. */
      firstRunId?: string;
      events: (RolloutEvent & { status: RolloutStatus; routing: Routing })[];
    }): Promise<void> {
      if (input.events.length === 0) return;
      const lineage = deps.lineage;
      if (lineage) {
        // Off the hot path: the emitter queues and never blocks or throws. A retried activity re-sends
        // the same events (same run id, seq in the facet); consumers treat run events as idempotent.
        const ref = { rolloutId: input.rolloutId, firstRunId: input.firstRunId ?? input.runId, pipeline: input.pipeline, baselineVersion: input.baselineVersion, canaryVersion: input.canaryVersion };
        for (const e of input.events) lineage.enqueue(rolloutRunEvent(ref, e, lineage.location));
      }
      await warehouse.insert({
        table: 'rollout_events',
        format: 'JSONEachRow',
        values: input.events.map((e) => ({
          rollout_id: input.rolloutId,
          seq: e.seq,
          pipeline: input.pipeline,
          baseline_version: input.baselineVersion,
          canary_version: input.canaryVersion,
          event_time: e.at,
          event_type: e.type,
          step: e.step,
          // 1-based and at most the step count (the promotion after the last step is step N of N,
          // as in rollout_routing); events recorded before stepNumber existed: step + 1.
          step_number: e.stepNumber ?? e.step + 1,
          status: e.status,
          actor: e.by,
          reason: e.reason,
          routing_mode: e.routing.mode,
          routing_weight: e.routing.weightPercent,
          routing_epoch: e.routing.epoch,
          workflow_id: input.workflowId,
          run_id: input.runId,
        })),
        clickhouse_settings: {
          insert_deduplication_token: `rollout/${input.rolloutId}/e${input.events[0]!.seq}-e${input.events.at(-1)!.seq}`,
          date_time_input_format: 'best_effort',
        },
      });
    },

    /**
     * Publishes a routing change to the pipeline: one row of `rollout_routing` (idempotent per
     * rollout and epoch). The pipeline's planner reads the latest row of the pipeline at each batch
     * boundary and records it in the batch plan.
     */
    async publishRouting(input: PublishRoutingInput): Promise<void> {
      await warehouse.insert({
        table: 'rollout_routing',
        format: 'JSONEachRow',
        values: [
          {
            pipeline: input.pipeline,
            rollout_id: input.rolloutId,
            epoch: input.routing.epoch,
            step: input.step,
            step_number: input.step + 1,
            mode: input.routing.mode,
            percent: input.routing.weightPercent,
            baseline_version: input.routing.baselineVersion,
            canary_version: input.routing.canaryVersion,
            canary_flags: JSON.stringify(input.flags),
            fields: input.fields,
            final: input.final ? 1 : 0,
            status: input.status,
            published_at: input.publishedAt,
          },
        ],
        clickhouse_settings: { insert_deduplication_token: `routing/${input.rolloutId}/${input.routing.epoch}`, date_time_input_format: 'best_effort' },
      });
    },

    /**
     * Makes a promoted canary the pipeline's own processor through the pipeline's `setProcessor`
     * update (validated, audited in `processor_switches`, effective at each partition's next batch
     * boundary). Returns what happened in words; never throws for a pipeline that is not running
     * or refuses the version (the rollout records the words instead of failing).
     */
    async handOverProcessor(input: HandOverInput): Promise<string> {
      const handle = temporal.workflow.getHandle(pipelineWorkflowId(input.pipeline));
      let current: { processor: { name: string; version: number } | null };
      try {
        current = await handle.query<{ processor: { name: string; version: number } | null }>('processor');
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return `pipeline ${input.pipeline} is not running: its processor was not switched`;
        throw err;
      }
      if (!current.processor) return `pipeline ${input.pipeline} runs no processor: nothing to switch`;
      const target = canaryProcessorName(input.canaryVersion, current.processor.name);
      if (!target) return `version ${JSON.stringify(input.canaryVersion)} names no processor version (expected 3, v3 or name@3)`;
      if (target.name === current.processor.name && target.version === current.processor.version) return `pipeline ${input.pipeline} already runs ${target.name}@${target.version}`;
      try {
        await handle.executeUpdate('setProcessor', { args: [{ name: target.name, version: target.version, flags: input.flags, requestedBy: input.by, reason: input.reason.slice(0, 500) }] });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return `pipeline ${input.pipeline} is not running: its processor was not switched`;
        // A validator refusal (e.g. the version is unknown to the pipeline's workers) is final.
        if (err instanceof WorkflowUpdateFailedError) return `setProcessor refused: ${err.cause?.message ?? err.message}`;
        throw err;
      }
      return `pipeline ${input.pipeline} switched to ${target.name}@${target.version} (setProcessor)`;
    },

    /** Opens or repeats an incident through the alert workflow; returns its workflow id. */
    async fireRolloutAlert(firing: AlertFiring): Promise<string> {
      const valid = alertFiringSchema.safeParse(firing);
      if (!valid.success) {
        throw ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `fireRolloutAlert: ${describeZodError(valid.error, 'firing')}` });
      }
      return (await fireAlert(temporal, deps.taskQueue, valid.data)).workflowId;
    },

    /**
     * Resolves a rollout's open incident through the alert workflow's `clear` signal (the
     * incident says who acted and notifies its channels). Used when a rollout that waited for a
     * person goes on: the page would otherwise keep escalating and repeating. Returns whether an
     * incident was open.
     */
    async clearRolloutAlert(input: { detector: string; labels: Record<string, string>; note: string; clearedAt: string }): Promise<boolean> {
      return (await clearAlert(temporal, input.detector, input.labels, { detector: input.detector, note: input.note.slice(0, 1000), clearedAt: input.clearedAt })).cleared;
    },

    /** Workflow id of the rollout holding a pipeline's lock, or null when no lock is running. */
    async rolloutLockHolder(pipeline: string): Promise<string | null> {
      try {
        return await temporal.workflow.getHandle(rolloutLockWorkflowId(pipeline)).query<string>(lockHolderQueryName);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      }
    },

    /** Whether the latest run of a workflow id is still running (the lock's liveness check). */
    async isWorkflowRunning(workflowId: string): Promise<boolean> {
      try {
        return (await temporal.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
  };
}

/** The rollout activities, by name. */
export type RolloutActivities = ReturnType<typeof createRolloutActivities>;
