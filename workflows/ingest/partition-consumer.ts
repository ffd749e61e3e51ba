/**
 * One (topic, partition) of a pipeline as a durable loop (type `partitionConsumer`, id
 * `pipeline-<id>-<topic>-<partition>`). The workflow owns the cursor: it plans `[from, to)`, has
 * exactly that range landed, commits the offset to the pipeline's consumer group, advances.
 * The plan is recorded in history before landing, so a retried landing is the same batch and
 * its de-duplication token matches. History holds offsets and counts only.
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { BatchPlan, LandBatchResult } from '../../activities/ingest/ingest.js';
import {
  defaultConsumerGroup,
  partitionConsumerInputSchema,
  pauseArgsSchema,
  pipelineWorkflowId,
  type PartitionConsumerInputRaw,
  type PartitionProgress,
} from '../../schemas/ingest/pipeline.js';
import { kafkaTopicKey, parseOrFail, pipelineKey } from '../boundary.js';
import { landingActivityOptions, partitionStepActivityOptions } from './activity-options.js';
import { advanceBreaker, resolveSelection, type BreakerState, type ProcessorChange, type ProcessorSelection } from '../../schemas/processing/selection.js';
import { breakerPauseSignal, breakerTrippedSignal, processorChangedSignal } from './processor-control.js';
import { aggregatorWorkflowId, batchLandedSignal } from '../analytics/aggregator.js';

/** `progress`: cursor, totals, lag at the last plan, the batch in flight. */
export const progressQuery = defineQuery<PartitionProgress>('progress');
/**
 * `pause` (update): stop at the next step boundary of the batch in flight (the rest of the batch
 * lands after `resume`); optional `{ "reason": "..." }`. An update, not a signal, so a malformed
 * argument is rejected to the caller instead of failing the workflow.
 */
export const pauseUpdate = defineUpdate<PartitionProgress, [unknown?]>('pause');
/** `resume` (update): continue after a pause. */
export const resumeUpdate = defineUpdate<PartitionProgress, [unknown?]>('resume');

// Options of the data path's activities (heartbeat timeout 2 s, retries at most 2 s apart, a
// landing cancelled at step boundaries): one definition for every workflow that lands a range.
const { planBatch, commitProgress } = proxyActivities<Activities>(partitionStepActivityOptions);
const { landBatch } = proxyActivities<Activities>(landingActivityOptions);

/** Loop iterations per run before continue-as-new (history stays small). */
const iterationsPerRun = 500;

/** Batch size adapts to landing time: halve above the slow mark, double (up to the maximum) below the fast one. */
const slowBatchMs = 30_000;
const fastBatchMs = 5_000;
const minBatchEvents = 100;

/**
 * Sends `batchLanded` `{partition, from, to}` to the pipeline's aggregator, not awaited: a lost
 * report only delays the aggregator to its next poll, so a failure (no aggregator) is ignored.
 */
function reportLanding(pipelineId: string, partition: number, plan: { from: number; to: number }): void {
  getExternalWorkflowHandle(aggregatorWorkflowId(pipelineId))
    .signal(batchLandedSignal, { partition, from: plan.from, to: plan.to })
    .catch(() => undefined);
}

/** Consumes one partition of a pipeline, forever (continue-as-new keeps history short). */
export async function partitionConsumer(raw: PartitionConsumerInputRaw): Promise<void> {
  const input = parseOrFail(partitionConsumerInputSchema, raw, 'partitionConsumer input');
  const consumerGroup = input.consumerGroup ?? defaultConsumerGroup(input.pipelineId);
  const { pipelineId, topic, partition } = input;
  upsertSearchAttributes([
    { key: pipelineKey, value: pipelineId },
    { key: kafkaTopicKey, value: topic },
  ]);

  let cursor: number | null = input.cursor ?? null;
  const totals = { ...input.totals };
  let lag: number | null = null;
  let paused = input.paused;
  let inFlight: { from: number; to: number } | null = null;
  // The landing in flight, cancelled by a pause so it stops at its next step boundary.
  let landingScope: CancellationScope | null = null;
  // A plan whose landing a pause interrupted: landed again (same steps, same tokens) after resume.
  let pendingPlan: BatchPlan | null = null;
  // Starts at the maximum; the landing time recorded in history drives it, so replay agrees.
  let batchSize = input.batchMaxEvents;
  // Average record size of the last landing (from history): sizes the next plan's steps.
  let recordBytes: number | null = input.recordBytes ?? null;
  // The processor of the next plan, and the change (if any) its first batch records. A change
  // arriving mid-batch waits for the batch boundary: the batch in flight keeps its planned processor.
  let processor: ProcessorSelection | null = input.processor ?? null;
  let pendingChange: ProcessorChange | null = null;
  // The change recorded with the plan that a pause interrupted (landed again with it).
  let planChange: ProcessorChange | null = null;
  let breaker: BreakerState = { consecutive: 0 };
  let pausedBy: string | null = input.pausedBy ?? null;
  setHandler(processorChangedSignal, ({ processor: next, change }) => {
    processor = next;
    pendingChange = change;
    breaker = { consecutive: 0 };
    if (pausedBy !== null) {
      // A fixed version clears the breaker's pause.
      pausedBy = null;
      paused = false;
    }
  });
  setHandler(breakerPauseSignal, ({ reason }) => {
    if (pausedBy === null) pausedBy = reason;
    paused = true;
    landingScope?.cancel();
  });

  const progress = (): PartitionProgress => ({ pipelineId, topic, partition, cursor, ...totals, lag, paused, inFlight, batchSize });
  setHandler(progressQuery, progress, {
    description: 'Cursor (next offset), landed/rejected/batch totals, lag at the last plan, and the batch in flight.',
  });
  const validateArgs = (what: string) => (arg?: unknown) => void parseOrFail(pauseArgsSchema, arg ?? {}, what);
  setHandler(
    pauseUpdate,
    (arg) => {
      const { reason } = pauseArgsSchema.parse(arg ?? {});
      paused = true;
      landingScope?.cancel();
      log.info('paused', { reason });
      return progress();
    },
    { validator: validateArgs('pause update'), description: 'Stop consuming at the next landing step boundary. Optional {"reason": "..."}. Returns the progress.' },
  );
  setHandler(
    resumeUpdate,
    () => {
      paused = false;
      pausedBy = null;
      breaker = { consecutive: 0 };
      return progress();
    },
    { validator: validateArgs('resume update'), description: 'Continue consuming after a pause. Returns the progress.' },
  );

  for (let iteration = 0; ; iteration++) {
    if (iteration >= iterationsPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof partitionConsumer>({
        ...input,
        consumerGroup,
        cursor: cursor ?? undefined,
        totals,
        paused,
        recordBytes: recordBytes ?? undefined,
        processor: processor ?? undefined,
        pausedBy: pausedBy ?? undefined,
      });
    }
    if (paused) {
      setCurrentDetails(pausedBy === null ? `Paused at offset ${cursor ?? 'start'}.` : `Paused at offset ${cursor ?? 'start'} by the processor breaker: ${pausedBy}`);
      await condition(() => !paused);
    }
    // The plan (range, steps, tokens, generation) is recorded in history: every landing attempt
    // of this batch inserts exactly these steps, whatever worker runs it.
    let plan: BatchPlan;
    let change: ProcessorChange | null;
    if (pendingPlan) {
      plan = pendingPlan;
      change = planChange;
    } else {
      // The planner also records a running rollout's canary routing in the plan (processor = baseline).
      plan = await planBatch({ pipelineId, topic, partition, cursor, maxEvents: batchSize, consumerGroup, startFrom: input.startFrom, recordBytes, processor });
      // The batch boundary: the processor and flags of this batch are fixed here, in the plan that
      // history records for every landing attempt.
      if (plan.to > plan.from && processor) plan = { ...plan, processor };
      else if (plan.routing) {
        // The processor was switched off while planning: no baseline, so no canary either.
        const unrouted = { ...plan };
        delete unrouted.routing;
        plan = unrouted;
      }
      change = plan.to > plan.from ? pendingChange : null;
      if (change) pendingChange = null;
    }
    pendingPlan = null;
    planChange = null;
    cursor = plan.from;
    lag = Math.max(0, (plan.highWatermark ?? plan.to) - plan.from);
    if (plan.to <= plan.from) {
      setCurrentDetails(`Caught up at offset ${plan.from}; polling every ${input.pollIntervalMs} ms.`);
      await sleep(input.pollIntervalMs);
      continue;
    }
    inFlight = { from: plan.from, to: plan.to };
    // Cancellable at step boundaries: a workflow cancel (pipeline stop) or a pause stops the
    // landing after the step in flight; landed steps stay, and a later landing of the same
    // offsets skips them.
    const scope = new CancellationScope();
    landingScope = scope;
    let landed: LandBatchResult;
    const reportEarly = patched('landing-activity-reports-batch-landed');
    try {
      // Since the patch the landing activity reports the batch to the aggregator itself, as soon
      // as its lineage row is written (see reportLandingTo); the workflow reports only what the
      // activity could not deliver.
      const reportTo = reportEarly && input.reportLandings !== false ? { reportLandingTo: aggregatorWorkflowId(pipelineId) } : {};
      landed = await scope.run(() => landBatch({ plan, maxEventBytes: input.maxEventBytes, change, duplicateIdWindowMinutes: input.duplicateIdWindowMinutes, ...reportTo }));
    } catch (err) {
      if (isCancellation(err) && paused && !CancellationScope.current().consideredCancelled) {
        pendingPlan = plan;
        planChange = change;
        inFlight = null;
        continue;
      }
      throw err;
    } finally {
      landingScope = null;
    }
    // Tell the pipeline's aggregator at once (it judges windows the landing made final) instead of
    // letting it find the batch at its next poll. Not awaited: the command leaves in this workflow
    // task, with the commit's. Since the patch above, a report the landing activity did not deliver is
    // sent here, before the group offset commit, whose activity round trip it does not wait for
    // (the aggregator reads the landed rows and lineage, never the group offset). A pipeline
    // without analytics has no aggregator: the supervisor says so (reportLandings false) and
    // nothing is sent, instead of one failed signal per batch.
    if (reportEarly && landed.valid > 0 && input.reportLandings !== false && landed.reportedLanding !== true) reportLanding(pipelineId, partition, plan);
    // The batch landed: commit even if a stop arrives now, so group offset and warehouse agree.
    await CancellationScope.nonCancellable(async () => {
      await commitProgress({ consumerGroup, topic, partition, offset: plan.to });
    });
    totals.landed += landed.valid;
    totals.rejected += landed.rejected;
    totals.batches += 1;
    const read = landed.valid + landed.rejected;
    if (read > 0 && landed.bytes > 0) recordBytes = Math.ceil(landed.bytes / read);
    if (landed.durationMs > slowBatchMs && batchSize > minBatchEvents) {
      batchSize = Math.max(minBatchEvents, Math.floor(batchSize / 2));
      log.info('landing slow, smaller batches', { durationMs: landed.durationMs, batchSize });
    } else if (landed.durationMs < fastBatchMs && plan.to - plan.from === batchSize && batchSize < input.batchMaxEvents) {
      batchSize = Math.min(input.batchMaxEvents, batchSize * 2);
    }
    cursor = plan.to;
    lag = Math.max(0, (plan.highWatermark ?? plan.to) - plan.to);
    inFlight = null;
    // Runs started before the patch above report here, after the commit, as they did.
    if (!reportEarly && landed.valid > 0 && input.reportLandings !== false && patched('partition-reports-batch-landed')) reportLanding(pipelineId, partition, plan);
    if (plan.processor && landed.processing) {
      const settings = resolveSelection(plan.processor).processor.breaker;
      const judged = advanceBreaker(breaker, { processed: landed.processing.processed, failures: landed.processing.failures }, settings);
      breaker = judged.state;
      if (judged.tripped && pausedBy === null) {
        const ratio = judged.ratio ?? 1;
        pausedBy = `${plan.processor.name} v${plan.processor.version} failed ${Math.round(ratio * 100)}% of the events of ${settings.consecutiveBatches} batches in a row (threshold ${Math.round(settings.failureRatio * 100)}%, last batch ${plan.batchId}); see dead_letters reason processing_error / output_violation`;
        paused = true;
        log.warn('processor breaker tripped', { batchId: plan.batchId, ratio });
        try {
          await getExternalWorkflowHandle(pipelineWorkflowId(pipelineId)).signal(breakerTrippedSignal, { partition, reason: pausedBy, ratio, batchId: plan.batchId, processor: plan.processor });
        } catch (err) {
          // No supervisor (a partition run alone): this partition stays paused and says why.
          log.warn('breaker: could not reach the pipeline supervisor', { error: (err as Error).message });
        }
      }
    }
  }
}
