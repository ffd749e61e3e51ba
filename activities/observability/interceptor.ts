/**
 * Instruments every activity from the outside, as a Temporal ActivityInboundCallsInterceptor:
 * enters the data-path log context (pipeline, batch id, workflow id, run id), times the
 * execution into `streamwarden_activity_duration_seconds`, and turns the inputs and results of
 * the platform's activities into its metrics (landings, lag, rollups, detectors, alerts,
 * notifications) and OpenLineage run events. Nothing here can fail an activity: observation
 * errors are swallowed and the activity's own result or error passes through unchanged.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';
import { batchId } from '../../schemas/ingest/pipeline.js';
import type { BatchPlan, LandBatchResult, PlanBatchInput } from '../ingest/ingest.js';
import { withDataPathContext, type DataPathContext } from './log-context.js';
import type { PlatformMetrics } from './metrics.js';

/** The offset range one landing covers, whatever the shape of the landBatch input. */
export interface LandingRange {
  pipelineId: string;
  topic: string;
  partition: number;
  /** `[from, to)` */
  from: number;
  to: number;
  /** When the input carries it (a recorded plan); else derived from the range. */
  batchId?: string;
}

/**
 * Reads the range of a landBatch argument: the flat form `{ pipelineId, topic, partition, from, to }`
 * or a recorded plan `{ plan: { pipelineId, topic, partition, from, to, batchId } }`. Null when it
 * is neither (then nothing is recorded for it; the activity itself still runs and fails or not).
 */
export function landingRangeOf(arg: unknown): LandingRange | null {
  if (arg === null || typeof arg !== 'object') return null;
  const outer = arg as Record<string, unknown>;
  const a = (outer.plan !== null && typeof outer.plan === 'object' ? outer.plan : outer) as Record<string, unknown>;
  if (typeof a.pipelineId !== 'string' || typeof a.topic !== 'string' || typeof a.partition !== 'number' || typeof a.from !== 'number' || typeof a.to !== 'number') return null;
  return { pipelineId: a.pipelineId, topic: a.topic, partition: a.partition, from: a.from, to: a.to, ...(typeof a.batchId === 'string' ? { batchId: a.batchId } : {}) };
}

/** What a lineage emitter needs to hear about one landing attempt (see openlineage.ts). */
export interface LandingLineageSink {
  started(range: LandingRange, run: { workflowId: string; runId: string; attempt: number }): void;
  completed(range: LandingRange, run: { workflowId: string; runId: string; attempt: number }, result: LandBatchResult): void;
  failed(range: LandingRange, run: { workflowId: string; runId: string; attempt: number }, error: unknown): void;
}

/** Dependencies of {@link observabilityInterceptor}. */
export interface ObservabilityInterceptorDeps {
  metrics?: PlatformMetrics;
  lineage?: LandingLineageSink;
}

/** Fields the platform's activity inputs carry that identify the data path. */
function dataPathOf(activity: string, arg: unknown): Pick<DataPathContext, 'pipeline' | 'batchId'> {
  if (arg === null || typeof arg !== 'object') return {};
  const a = arg as Record<string, unknown>;
  if (activity === 'landBatch') {
    const range = landingRangeOf(arg);
    if (range) return { pipeline: range.pipelineId, batchId: range.batchId ?? batchId(range.pipelineId, range.topic, range.partition, range.from, range.to) };
  }
  const pipeline = typeof a.pipelineId === 'string' ? a.pipelineId : typeof a.pipeline === 'string' ? a.pipeline : undefined;
  return pipeline ? { pipeline } : {};
}

/** The channel type of a target id `<type>:<name>`, e.g. `webhook`. */
function channelOf(target: unknown): string {
  return typeof target === 'string' && target.includes(':') ? target.slice(0, target.indexOf(':')) : 'unknown';
}

/** Audit entry types that count as alert lifecycle events, and the metric's `event` label. */
const alertEventLabels: Record<string, string> = { opened: 'fired', acknowledged: 'acknowledged', resolved: 'resolved' };

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // Observation must never change an activity's outcome.
  }
}

/** Records what one finished activity means in the platform's metrics. */
function recordOutcome(metrics: PlatformMetrics, activity: string, arg: unknown, result: unknown, ok: boolean, seconds: number): void {
  const outcome = ok ? 'success' : 'failure';
  metrics.activityDuration.labels(activity, outcome).observe(seconds);
  switch (activity) {
    case 'landBatch': {
      const input = landingRangeOf(arg);
      if (!input) return;
      metrics.batches.labels(input.pipelineId, input.topic, outcome).inc();
      metrics.batchLandingDuration.labels(input.pipelineId, input.topic, outcome).observe(seconds);
      if (!ok) return;
      const r = result as LandBatchResult;
      metrics.batchSize.labels(input.pipelineId, input.topic).observe(input.to - input.from);
      metrics.eventsLanded.labels(input.pipelineId, input.topic).inc(r.valid);
      for (const [reason, n] of Object.entries(r.rejectCodes ?? {})) metrics.eventsRejected.labels(input.pipelineId, input.topic, reason).inc(n);
      return;
    }
    case 'planBatch': {
      if (!ok) return;
      const input = arg as PlanBatchInput;
      const plan = result as BatchPlan;
      metrics.consumerLag.labels(input.pipelineId, input.topic, String(input.partition)).set(Math.max(0, plan.highWatermark - plan.from));
      return;
    }
    case 'computeRollups':
      metrics.rollupDuration.labels(outcome).observe(seconds);
      return;
    case 'detectThresholds':
      metrics.detectorDuration.labels(outcome).observe(seconds);
      return;
    case 'recordAlertEvents': {
      if (!ok) return;
      const input = arg as { incident?: { severity?: string }; events?: { type?: string }[] };
      for (const e of input.events ?? []) {
        const label = e.type ? alertEventLabels[e.type] : undefined;
        if (label) metrics.alerts.labels(label, input.incident?.severity ?? 'unknown').inc();
      }
      return;
    }
    case 'notify': {
      const input = arg as { target?: string };
      const r = result as { delivered?: boolean; duplicate?: boolean } | undefined;
      const delivery = !ok ? 'error' : r?.duplicate ? 'duplicate' : r?.delivered ? 'delivered' : 'failed';
      metrics.notifications.labels(channelOf(input.target), delivery).inc();
      return;
    }
    default:
      return;
  }
}

/**
 * Builds the interceptor factory for `Worker.create({ interceptors: { activity: [...] } })`.
 * Put it after the OpenTelemetry interceptor so log lines see the `RunActivity` span.
 */
export function observabilityInterceptor(deps: ObservabilityInterceptorDeps): ActivityInterceptorsFactory {
  return (ctx: Context) => ({ inbound: inbound(ctx, deps) });
}

function inbound(ctx: Context, deps: ObservabilityInterceptorDeps): ActivityInboundCallsInterceptor {
  return {
    async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
      const info = ctx.info;
      const activity = info.activityType;
      const arg = input.args[0];
      const run = { workflowId: info.workflowExecution?.workflowId ?? '', runId: info.workflowExecution?.runId ?? '', attempt: info.attempt };
      const context: DataPathContext = { activity, ...dataPathOf(activity, arg), workflowId: run.workflowId, runId: run.runId, attempt: run.attempt };
      const range = activity === 'landBatch' ? landingRangeOf(arg) : null;
      const landing = range ? deps.lineage : undefined;
      if (landing && range) safely(() => landing.started(range, run));
      const began = performance.now();
      return withDataPathContext(context, async () => {
        try {
          const result = await next(input);
          const seconds = (performance.now() - began) / 1000;
          if (deps.metrics) {
            const metrics = deps.metrics;
            safely(() => recordOutcome(metrics, activity, arg, result, true, seconds));
          }
          if (landing && range) safely(() => landing.completed(range, run, result as LandBatchResult));
          return result;
        } catch (err) {
          const seconds = (performance.now() - began) / 1000;
          if (deps.metrics) {
            const metrics = deps.metrics;
            safely(() => recordOutcome(metrics, activity, arg, undefined, false, seconds));
          }
          if (landing && range) safely(() => landing.failed(range, run, err));
          throw err;
        }
      });
    },
  };
}
