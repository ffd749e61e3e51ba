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
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../../activities/index.js';
import type { ZodType, output as zOutput } from 'zod';
import {
  defaultConsumerGroup,
  partitionWorkflowId,
  describeInputError,
  pipelineInputSchema,
  type PartitionConsumerInputRaw,
  type PipelineInputRaw,
  type PartitionSummary,
  type PipelineProgress,
} from '../../schemas/ingest/pipeline.js';
import { kafkaTopicKey, parseOrFail, pipelineKey } from '../boundary.js';
import { partitionConsumer } from './partition-consumer.js';
import {
  processorSelectionSchema,
  resolveSelection,
  setFlagsArgsSchema,
  setProcessorArgsSchema,
  type ProcessorChange,
  type ProcessorSelection,
} from '../../schemas/processing/selection.js';
import {
  breakerPauseSignal,
  breakerTrippedSignal,
  processorChangedSignal,
  processorQuery,
  setFlagsUpdate,
  setProcessorUpdate,
  type BreakerTrippedArgs,
  type ProcessorStatus,
} from './processor-control.js';
import { aggregator, aggregatorWorkflowId } from '../analytics/aggregator.js';
import { analyticsTaskQueue } from '../../schemas/analytics/task-queue.js';
import { dataPathHeartbeatTimeout } from './activity-options.js';

/**
 * `progress`: partitions with each one's cursor, landed, rejected and lag (as last reported by its
 * consumer), totals, rollup watermark, runs, alerts fired, last error.
 */
export const pipelineProgressQuery = defineQuery<PipelineProgress>('progress');

const nonRetryableErrorTypes = ['invalid_input'];

// Every activity of the supervisor has the data path's 2 s heartbeat timeout and heartbeats while it
// runs (supervisorActivityNames in activities/index.ts): when a worker dies holding one, the next
// attempt starts within 2 s instead of after its start-to-close timeout (up to 5 minutes without
// rollups or detection: pipeline.test.ts, "pipeline with a worker killed mid-stream").

const { ensureTopic, pipelineDeclaresAnalytics } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: dataPathHeartbeatTimeout,
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes },
});

// Rollups, detection and re-attaching are periodic: a failed run is logged and the next catches up.
// Asking the children is best effort: a miss leaves the previous numbers until the next interval.
const { partitionProgress: askPartitions } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: dataPathHeartbeatTimeout,
  retry: { maximumAttempts: 1 },
});

/** Sum of a column, null when no partition reported it. */
function sumOf(rows: PartitionSummary[], key: 'landed' | 'rejected' | 'lag'): number | null {
  const known = rows.map((r) => r[key]).filter((v): v is number => v !== null);
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}

// Stopping the children must not be lost: retried until the server has accepted every cancel.
const { cancelWorkflows } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: dataPathHeartbeatTimeout,
  retry: { initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
});

const { openProcessorBreakerAlert, prepareProcessor } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: dataPathHeartbeatTimeout,
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes },
});

const { computeRollups, detectThresholds, ensureTopic: ensureTopicBounded } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: dataPathHeartbeatTimeout,
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
  // Whether consumers report landings to the aggregator (set from the declarations at start).
  let reportLandings: boolean | undefined;
  let rollupRuns = 0;
  let alertsFired = 0;
  let lastError: string | null = null;
  let partitionProgress: PartitionSummary[] = [];
  let partitionProgressAt: string | null = null;

  const status: ProcessorStatus = { processor: null, breaker: null, changes: [] };
  if (input.processor) {
    try {
      resolveSelection(input.processor);
    } catch (err) {
      throw ApplicationFailure.create({ type: 'invalid_input', message: `pipeline input: ${(err as Error).message}`, nonRetryable: true });
    }
    status.processor = input.processor;
  }
  setHandler(processorQuery, () => status, { description: 'The processor and flags the pipeline runs, the breaker state, and the changes of this run.' });

  /** Tells every partition to run `next` from its next batch boundary, and records the change. */
  async function applyChange(next: ProcessorSelection, change: Omit<ProcessorChange, 'from' | 'requestedAt'>): Promise<ProcessorStatus> {
    // Tables first: a new version's columns exist before any partition lands under it.
    await prepareProcessor(next);
    const full: ProcessorChange = { ...change, from: status.processor, requestedAt: new Date().toISOString() };
    status.processor = next;
    status.breaker = null;
    status.changes.push({ ...full, to: next });
    if (status.changes.length > 20) status.changes.shift();
    await Promise.all(partitions.map((p) => getExternalWorkflowHandle(partitionWorkflowId(pipelineId, topic, p)).signal(processorChangedSignal, { processor: next, change: full })));
    setCurrentDetails(details());
    return status;
  }
  const validated = <S extends ZodType>(schema: S, what: string, arg: unknown): zOutput<S> => {
    const parsed = schema.safeParse(arg);
    if (!parsed.success) throw new Error(describeInputError(what, parsed.error, arg));
    return parsed.data;
  };
  setHandler(
    setProcessorUpdate,
    async (arg) => {
      const a = setProcessorArgsSchema.parse(arg);
      return applyChange({ name: a.name, version: a.version, flags: a.flags }, { change: 'processor', requestedBy: a.requestedBy, reason: a.reason });
    },
    {
      validator: (arg) => {
        const a = validated(setProcessorArgsSchema, 'setProcessor', arg);
        resolveSelection(processorSelectionSchema.parse({ name: a.name, version: a.version, flags: a.flags }));
      },
      description: 'Switch the processor: {"name": "request-enriched", "version": 2, "flags": {}, "requestedBy": "ann", "reason": "..."}. Effective at the next batch boundary of every partition; recorded in processor_switches and lineage; clears a breaker pause.',
    },
  );
  setHandler(
    setFlagsUpdate,
    async (arg) => {
      const a = setFlagsArgsSchema.parse(arg);
      return applyChange({ ...status.processor!, flags: a.flags }, { change: 'flags', requestedBy: a.requestedBy, reason: a.reason });
    },
    {
      validator: (arg) => {
        const a = validated(setFlagsArgsSchema, 'setFlags', arg);
        if (!status.processor) throw new Error('setFlags: the pipeline runs no processor; use setProcessor first');
        resolveSelection({ ...status.processor, flags: a.flags });
      },
      description: 'Change the processor flags: {"flags": {...}, "requestedBy": "ann", "reason": "..."}. Validated by the version\'s flag schema; effective at the next batch boundary of every partition; every batch records its flags.',
    },
  );
  const trips: BreakerTrippedArgs[] = [];
  setHandler(breakerTrippedSignal, (args) => void trips.push(args));

  function details(): string {
    const running = status.processor ? ` with processor ${status.processor.name} v${status.processor.version}` : '';
    if (status.breaker) return `PAUSED by the processor breaker: ${status.breaker.reason}. Fix and switch with setProcessor (or resume each partition).`;
    return `Consuming ${topic} partitions ${partitions.join(', ')} into pipeline ${pipelineId}${running}.`;
  }

  /** A partition tripped: pause every partition, say why, open the alert (once per trip). */
  async function handleTrips(): Promise<void> {
    while (trips.length > 0) {
      const trip = trips.shift()!;
      if (status.breaker) continue; // already paused by an earlier trip
      const reason = `partition ${trip.partition}: ${trip.reason}`;
      status.breaker = { reason, partition: trip.partition, alertWorkflowId: null };
      setCurrentDetails(details());
      await Promise.all(partitions.map((p) => getExternalWorkflowHandle(partitionWorkflowId(pipelineId, topic, p)).signal(breakerPauseSignal, { reason })));
      const processor = processorSelectionSchema.parse(trip.processor);
      const settings = resolveSelection(processor).processor.breaker;
      const alert = await openProcessorBreakerAlert({
        pipelineId,
        topic,
        partition: trip.partition,
        processor,
        ratio: trip.ratio,
        threshold: settings.failureRatio,
        consecutiveBatches: settings.consecutiveBatches,
        batchId: trip.batchId,
        reason: `pipeline ${pipelineId} paused by the processor breaker: ${reason}`,
      });
      if (status.breaker) status.breaker.alertWorkflowId = alert.workflowId;
    }
  }

  setHandler(
    pipelineProgressQuery,
    () => ({
      pipelineId,
      topic,
      partitions,
      partitionProgress,
      totals: { landed: sumOf(partitionProgress, 'landed'), rejected: sumOf(partitionProgress, 'rejected'), lag: sumOf(partitionProgress, 'lag') },
      partitionProgressAt,
      consumerGroup,
      rollupWatermark: state.rollupWatermark,
      rollupRuns,
      alertsFired,
      lastError,
    }),
    {
      description:
        'Each partition: cursor, landed, rejected, lag (refreshed every rollup interval from the partition consumers), totals; rollup watermark and runs, alerts fired, last periodic-run error.',
    },
  );

  /** Refreshes the per-partition numbers from the children; a failure keeps the previous ones. */
  async function refreshPartitionProgress(): Promise<void> {
    // Runs started before this existed replay without it (workflow versioning).
    if (!patched('pipeline-partition-progress')) return;
    try {
      partitionProgress = await askPartitions({ pipelineId, topic, partitions });
      partitionProgressAt = new Date().toISOString();
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.warn('could not ask the partition consumers for their progress; keeping the previous numbers', { error: err.cause?.message ?? err.message });
    }
  }

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
        duplicateIdWindowMinutes: input.duplicateIdWindowMinutes,
        ...(status.processor ? { processor: status.processor } : {}),
        ...(reportLandings === undefined ? {} : { reportLandings }),
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

  /**
   * Starts the pipeline's `aggregator` (declared windows, watermarks, detectors) if it is not
   * running; it ends at once when the pipeline declares no analytics.
   */
  async function attachAggregator(): Promise<void> {
    try {
      // Since the patch the aggregator runs on the analytics task queue (`<queue>-analytics`),
      // polled by a Worker of its own (workers/worker.ts): its workflow tasks and activities no
      // longer wait behind the landings of the same queue. Runs started before keep the inherited queue.
      const ownQueue = patched('aggregator-own-task-queue');
      await startChild(aggregator, {
        workflowId: aggregatorWorkflowId(pipelineId),
        ...(ownQueue ? { taskQueue: analyticsTaskQueue(workflowInfo().taskQueue) } : {}),
        args: [{ pipeline: pipelineId }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  /** Starts (or re-joins) the processor, the partition consumers and the aggregator. */
  async function setUp(): Promise<void> {
    if (status.processor) await prepareProcessor(status.processor);
    // Whether the pipeline has an aggregator to report landings to; consumers of a pipeline without
    // analytics then send no batchLanded signal (it could only fail, once per batch). Asked once per
    // run: declarations are read at worker start. Consumers already running keep what they were told.
    if (patched('pipeline-tells-consumers-about-analytics')) reportLandings = (await pipelineDeclaresAnalytics({ pipeline: pipelineId })).declared;
    await attachConsumers(ensureTopic);
    // Runs started before the aggregator existed replay without it (workflow versioning).
    if (patched('pipeline-aggregator')) await attachAggregator();
    setCurrentDetails(details());
    await refreshPartitionProgress();
  }

  /**
   * Cancels the partition consumers and the aggregator (a cancel of the supervisor is a stop of the
   * pipeline). Runs in a non-cancellable scope; the caller rethrows the cancellation.
   */
  async function stopChildren(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      const children = [...partitions.map((p) => partitionWorkflowId(pipelineId, topic, p)), aggregatorWorkflowId(pipelineId)];
      // Commands issued in the same task as the completion could be dropped (see consumer-stop.ts):
      // the activity confirms each cancel with the server before the supervisor completes.
      if (patched('pipeline-confirmed-stop')) {
        await cancelWorkflows({ workflowIds: children });
        return;
      }
      await Promise.allSettled(children.map((id) => getExternalWorkflowHandle(id).cancel()));
    });
  }

  // A cancel that arrives while the supervisor is still setting up is a stop too. Before this patch
  // it escaped the stop below: the SDK's own cancel requests to the children were issued in the
  // task that completed the supervisor, which the server drops, so the partition consumers kept
  // running (test/workflows/pipeline-boundary.test.ts, "cancelling the supervisor ...").
  if (patched('pipeline-stops-children-during-set-up')) {
    try {
      await setUp();
    } catch (err) {
      if (isCancellation(err)) await stopChildren();
      throw err;
    }
  } else {
    await setUp();
  }

  try {
    for (let iteration = 0; ; iteration++) {
      if (iteration >= iterationsPerRun || workflowInfo().continueAsNewSuggested) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof pipeline>({
          ...input,
          consumerGroup,
          processor: status.processor ?? undefined,
          state: { rollupWatermark: state.rollupWatermark ?? undefined, firedKeys: state.firedKeys },
        });
      }
      await condition(() => trips.length > 0, input.rollup.intervalMs);
      if (trips.length > 0) {
        await handleTrips();
        continue;
      }
      await refreshPartitionProgress();
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
        // A dependency outage is already one start and one end line in the worker's log
        // (type `dependency_unavailable`, workers/observability/outage-interceptor.ts): debug here.
        const outage = err.cause instanceof ApplicationFailure && err.cause.type === 'dependency_unavailable';
        log[outage ? 'debug' : 'warn']('periodic run failed (re-attach, rollup or detect); the next run catches up', { error: lastError });
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await stopChildren();
    throw err;
  }
}
