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
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import {
  defaultConsumerGroup,
  partitionConsumerInputSchema,
  pauseArgsSchema,
  type PartitionConsumerInputRaw,
  type PartitionProgress,
} from '../../schemas/ingest/pipeline.js';
import { kafkaTopicKey, parseOrFail, pipelineKey } from '../boundary.js';

/** `progress`: cursor, totals, lag at the last plan, the batch in flight. */
export const progressQuery = defineQuery<PartitionProgress>('progress');
/**
 * `pause` (update): stop after the batch in flight; optional `{ "reason": "..." }`. An update, not
 * a signal, so a malformed argument is rejected to the caller instead of failing the workflow.
 */
export const pauseUpdate = defineUpdate<PartitionProgress, [unknown?]>('pause');
/** `resume` (update): continue after a pause. */
export const resumeUpdate = defineUpdate<PartitionProgress, [unknown?]>('resume');

/** Error types no retry can fix. */
const nonRetryableErrorTypes = ['invalid_input', 'range_invalid'];

const { planBatch, commitProgress } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', nonRetryableErrorTypes },
});

const { landBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  // A worker that dies mid-batch is noticed within this and the same batch retried elsewhere.
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes },
});

/** Loop iterations per run before continue-as-new (history stays small). */
const iterationsPerRun = 500;

/** Batch size adapts to landing time: halve above the slow mark, double (up to the maximum) below the fast one. */
const slowBatchMs = 30_000;
const fastBatchMs = 5_000;
const minBatchEvents = 100;

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
  // Starts at the maximum; the landing time recorded in history drives it, so replay agrees.
  let batchSize = input.batchMaxEvents;

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
      log.info('paused', { reason });
      return progress();
    },
    { validator: validateArgs('pause update'), description: 'Stop consuming after the batch in flight. Optional {"reason": "..."}. Returns the progress.' },
  );
  setHandler(
    resumeUpdate,
    () => {
      paused = false;
      return progress();
    },
    { validator: validateArgs('resume update'), description: 'Continue consuming after a pause. Returns the progress.' },
  );

  for (let iteration = 0; ; iteration++) {
    if (iteration >= iterationsPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof partitionConsumer>({ ...input, consumerGroup, cursor: cursor ?? undefined, totals, paused });
    }
    if (paused) {
      setCurrentDetails(`Paused at offset ${cursor ?? 'start'}.`);
      await condition(() => !paused);
    }
    const plan = await planBatch({ pipelineId, topic, partition, cursor, maxEvents: batchSize, consumerGroup, startFrom: input.startFrom });
    cursor = plan.from;
    lag = Math.max(0, plan.highWatermark - plan.from);
    if (plan.to <= plan.from) {
      setCurrentDetails(`Caught up at offset ${plan.from}; polling every ${input.pollIntervalMs} ms.`);
      await sleep(input.pollIntervalMs);
      continue;
    }
    inFlight = { from: plan.from, to: plan.to };
    // A stop request lets the batch in flight land and commit, so the group offset and the
    // warehouse agree and a restart resumes at a batch boundary.
    await CancellationScope.nonCancellable(async () => {
      const landed = await landBatch({ pipelineId, topic, partition, from: plan.from, to: plan.to, maxEventBytes: input.maxEventBytes, highWatermark: plan.highWatermark });
      await commitProgress({ consumerGroup, topic, partition, offset: plan.to });
      totals.landed += landed.valid;
      totals.rejected += landed.rejected;
      totals.batches += 1;
      if (landed.durationMs > slowBatchMs && batchSize > minBatchEvents) {
        batchSize = Math.max(minBatchEvents, Math.floor(batchSize / 2));
        log.info('landing slow, smaller batches', { durationMs: landed.durationMs, batchSize });
      } else if (landed.durationMs < fastBatchMs && plan.to - plan.from === batchSize && batchSize < input.batchMaxEvents) {
        batchSize = Math.min(input.batchMaxEvents, batchSize * 2);
      }
    });
    cursor = plan.to;
    lag = Math.max(0, plan.highWatermark - plan.to);
    inFlight = null;
  }
}
