/**
 * A pipeline's supervisor (type `pipeline`, id `pipeline-<id>`): makes sure the topic exists,
 * runs one `partitionConsumer` child per partition, and every `rollup.intervalMs` recomputes the
 * touched 1-minute rollups and runs the error-rate detector. Children are abandoned on
 * continue-as-new (they keep running) and re-attached by id; cancelling the pipeline cancels them.
 *
 * Start from the CLI:
 * `temporal workflow start --type pipeline --task-queue streamwarden --workflow-id pipeline-demo
 *  --input '{"pipelineId":"demo","topic":"requests"}'`
 */
import {
  ActivityFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../../activities/index.js';
import {
  defaultConsumerGroup,
  partitionWorkflowId,
  pipelineInputSchema,
  type PartitionConsumerInputRaw,
  type PipelineInputRaw,
  type PipelineProgress,
} from '../../schemas/ingest/pipeline.js';
import { kafkaTopicKey, parseOrFail, pipelineKey } from '../boundary.js';
import { partitionConsumer } from './partition-consumer.js';

/** `progress`: partitions, rollup watermark, runs, alerts fired, last error. */
export const pipelineProgressQuery = defineQuery<PipelineProgress>('progress');

const nonRetryableErrorTypes = ['invalid_input'];

const { ensureTopic } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes },
});

// Rollups, detection and re-attaching are periodic: a failed run is logged and the next catches up.
const { computeRollups, detectThresholds, ensureTopic: ensureTopicBounded } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3, nonRetryableErrorTypes },
});

/** Rollup iterations per run before continue-as-new. */
const iterationsPerRun = 300;

/** Every this many rollup iterations the supervisor re-checks its partition consumers. */
const reattachEvery = 30;

/** Supervises one pipeline, forever (continue-as-new keeps history short). */
export async function pipeline(raw: PipelineInputRaw): Promise<void> {
  const input = parseOrFail(pipelineInputSchema, raw, 'pipeline input');
  const { pipelineId, topic } = input;
  const consumerGroup = input.consumerGroup ?? defaultConsumerGroup(pipelineId);
  upsertSearchAttributes([
    { key: pipelineKey, value: pipelineId },
    { key: kafkaTopicKey, value: topic },
  ]);
  const state = { rollupWatermark: input.state?.rollupWatermark ?? null, firedKeys: input.state?.firedKeys ?? [] };
  let partitions: number[] = [];
  let rollupRuns = 0;
  let alertsFired = 0;
  let lastError: string | null = null;

  setHandler(
    pipelineProgressQuery,
    () => ({ pipelineId, topic, partitions, consumerGroup, rollupWatermark: state.rollupWatermark, rollupRuns, alertsFired, lastError }),
    { description: 'Partitions supervised, rollup watermark and runs, alerts fired, last periodic-run error.' },
  );

  /**
   * Makes sure every partition of the topic has its consumer: at start, then every few rollup
   * runs, so a consumer that failed or was terminated comes back and partitions added to the
   * topic get one.
   */
  async function attachConsumers(ensure: typeof ensureTopic): Promise<void> {
    const ensured = await ensure({ topic, partitions: input.partitions, maxEventBytes: input.maxEventBytes });
    partitions = ensured.partitions;
    for (const partition of partitions) {
      const childInput: PartitionConsumerInputRaw = {
        pipelineId,
        topic,
        partition,
        consumerGroup,
        startFrom: input.startFrom,
        batchMaxEvents: input.batchMaxEvents,
        maxEventBytes: input.maxEventBytes,
        pollIntervalMs: input.pollIntervalMs,
      };
      try {
        await startChild(partitionConsumer, {
          workflowId: partitionWorkflowId(pipelineId, topic, partition),
          args: [childInput],
          // Survive the supervisor's continue-as-new; a stop cancels them explicitly.
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
      } catch (err) {
        // Already running (started by an earlier run of this supervisor): keep it.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  }

  await attachConsumers(ensureTopic);
  setCurrentDetails(`Consuming ${topic} partitions ${partitions.join(', ')} into pipeline ${pipelineId}.`);

  try {
    for (let iteration = 0; ; iteration++) {
      if (iteration >= iterationsPerRun || workflowInfo().continueAsNewSuggested) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof pipeline>({ ...input, consumerGroup, state: { rollupWatermark: state.rollupWatermark ?? undefined, firedKeys: state.firedKeys } });
      }
      await condition(() => false, input.rollup.intervalMs);
      try {
        if (iteration > 0 && iteration % reattachEvery === 0) await attachConsumers(ensureTopicBounded);
        const rollup = await computeRollups({ pipelineId, since: state.rollupWatermark, overlapSeconds: input.rollup.overlapSeconds });
        state.rollupWatermark = rollup.watermark;
        rollupRuns += 1;
        if (input.detector.enabled) {
          const detected = await detectThresholds({
            pipelineId,
            errorRateThreshold: input.detector.errorRateThreshold,
            minRequests: input.detector.minRequests,
            lookbackMinutes: input.detector.lookbackMinutes,
            alreadyFired: state.firedKeys,
          });
          state.firedKeys = detected.keep;
          alertsFired += detected.fired.length;
        }
        lastError = null;
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        lastError = err.cause?.message ?? err.message;
        log.warn('periodic run failed (re-attach, rollup or detect); the next run catches up', { error: lastError });
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      await Promise.allSettled(partitions.map((p) => getExternalWorkflowHandle(partitionWorkflowId(pipelineId, topic, p)).cancel()));
    });
    throw err;
  }
}
