/**
 * `replay` (workflow type; id `replay-<pipeline>-<topic>-<partition>`): re-reads an offset range
 * of one partition, or only its open dead letters, under the worker's current contracts and the
 * given processor, and lands what now passes exactly once under a NEW replay generation (batch ids
 * and tokens end in `/g<generation>`, so they differ from the first landing's and ClickHouse does
 * not drop the inserts as repeats). Landing is the one landing path, `landBatch`: offsets already
 * in `events` are never inserted again, so a replay of valid rows never doubles them. The dead
 * letters it resolved are marked (`dead_letter_resolutions`), and the replay is recorded in
 * `lineage_replays` (who, when, why, range, generation, counts). History holds offsets and counts.
 */
import { ApplicationFailure, defineQuery, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { planRange, stepEventsFor } from '../../schemas/ingest/batch-plan.js';
import { defaultConsumerGroup } from '../../schemas/ingest/pipeline.js';
import { replayInputSchema, replayWorkflowId, type ReplayInputRaw, type ReplayResult } from '../../schemas/ingest/replay.js';
import { kafkaTopicKey, parseOrFail, pipelineKey } from '../boundary.js';
import { dataPathHeartbeatTimeout, dataPathNonRetryableErrorTypes, landingActivityOptions } from './activity-options.js';

/** `progress` (query): the replay's generation, range and counts so far. */
export const replayProgressQuery = defineQuery<ReplayResult>('progress');

// The replay's bookkeeping keeps its 60 s bound and its patient retries (up to 30 s apart), but has
// the data path's heartbeat timeout: an attempt lost in a Temporal outage is retried within 2 s.
const { planReplay, resolveDeadLetters, recordReplay } = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  heartbeatTimeout: dataPathHeartbeatTimeout,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', nonRetryableErrorTypes: dataPathNonRetryableErrorTypes },
});

// The partition consumer's landing options (heartbeat timeout 2 s, retry from 100 ms up to 2 s
// apart, cancellation at step boundaries): a replay's landing recovers from a dead worker or an
// outage as fast as the partition's own.
const { landBatch } = proxyActivities<Activities>(landingActivityOptions);

/**
 * Offsets per replay landing step: 8 MiB of records at the 1 KiB estimate. A constant of the
 * workflow code, so every attempt of a replay batch has the same steps and tokens.
 */
const replayStepEvents = stepEventsFor(8 * 1024 * 1024, null);

/** Replays a range of one partition; see the module comment. Returns what it did. */
export async function replay(raw: ReplayInputRaw): Promise<ReplayResult> {
  const input = parseOrFail(replayInputSchema, raw, 'replay input');
  const { pipelineId, topic, partition } = input;
  const expectedId = replayWorkflowId(pipelineId, topic, partition);
  if (workflowInfo().workflowId !== expectedId) {
    throw ApplicationFailure.create({
      type: 'invalid_input',
      nonRetryable: true,
      message: `replay workflow id: expected ${expectedId} (one replay per partition at a time, so two replays never land the same offsets at once), got ${workflowInfo().workflowId}`,
    });
  }
  upsertSearchAttributes([
    { key: pipelineKey, value: pipelineId },
    { key: kafkaTopicKey, value: topic },
  ]);
  const state: ReplayResult = { pipelineId, topic, partition, generation: 0, from: input.from, to: input.to, read: 0, landed: 0, alreadyLanded: 0, rejected: 0, resolved: 0, batches: 0, state: 'planning' };
  setHandler(replayProgressQuery, () => state, { description: 'The replay generation, the range re-read, and the counts so far (read, landed now, already landed, rejected, dead letters resolved).' });
  const requestedAt = workflowInfo().startTime.toISOString();
  const who = { by: input.by, reason: input.reason };
  const plan = await planReplay({
    pipelineId,
    topic,
    partition,
    from: input.from,
    to: input.to,
    onlyDeadLetters: input.onlyDeadLetters,
    consumerGroup: input.consumerGroup ?? defaultConsumerGroup(pipelineId),
    requestedAt,
    ...who,
  });
  Object.assign(state, { generation: plan.generation, from: plan.from, to: plan.to, state: 'landing' });
  const batchIds: string[] = [];
  for (let from = plan.from; from < plan.to; from += input.batchMaxEvents) {
    const to = Math.min(plan.to, from + input.batchMaxEvents);
    setCurrentDetails(`Replay generation ${plan.generation} of ${topic}[${partition}] [${plan.from}, ${plan.to}): at offset ${from}; landed ${state.landed}, resolved ${state.resolved}.`);
    const batch = { ...planRange(pipelineId, topic, partition, from, to, plan.generation, replayStepEvents), ...(input.processor ? { processor: input.processor } : {}) };
    const landed = await landBatch({ plan: batch, maxEventBytes: input.maxEventBytes, duplicateIdWindowMinutes: input.duplicateIdWindowMinutes });
    const { resolved } = await resolveDeadLetters({ pipelineId, topic, partition, batchId: batch.batchId, generation: plan.generation, ...who });
    batchIds.push(batch.batchId);
    state.read += landed.valid + landed.rejected;
    state.landed += landed.insertedEvents;
    state.alreadyLanded += landed.alreadyLanded;
    state.rejected += landed.rejected;
    state.resolved += resolved;
    state.batches += 1;
  }
  await recordReplay({
    pipelineId,
    topic,
    partition,
    from: plan.from,
    to: plan.to,
    onlyDeadLetters: input.onlyDeadLetters,
    requestedAt,
    ...who,
    generation: plan.generation,
    batchIds,
    landed: state.landed,
    alreadyLanded: state.alreadyLanded,
    rejected: state.rejected,
    resolved: state.resolved,
  });
  state.state = 'completed';
  setCurrentDetails(`Replay generation ${plan.generation} done: [${plan.from}, ${plan.to}) read ${state.read}, landed ${state.landed}, resolved ${state.resolved}, still rejected ${state.rejected}.`);
  return state;
}
