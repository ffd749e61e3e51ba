/**
 * The supervisor's view of its partition consumers: asks each `partitionConsumer` child for its
 * `progress` query and returns the numbers only (cursor, landed, rejected, lag, paused), so the
 * pipeline's own `progress` query can show every partition without a payload in history. A child
 * that does not answer (no worker, or just continued-as-new) is reported with `error` and null
 * numbers rather than failing the call.
 */
import type { Client } from '@temporalio/client';
import { partitionWorkflowId, type PartitionProgress, type PartitionSummary } from '../../schemas/ingest/pipeline.js';

/** Input of `partitionProgress`. */
export interface PartitionProgressInput {
  pipelineId: string;
  topic: string;
  partitions: number[];
}

/** Dependencies of {@link createPartitionProgressActivities}. */
export interface PartitionProgressDeps {
  temporal: Client;
  /** Per-child query deadline. @default 3000 ms */
  queryTimeoutMs?: number;
}

/** Creates the `partitionProgress` activity. */
export function createPartitionProgressActivities(deps: PartitionProgressDeps) {
  const timeoutMs = deps.queryTimeoutMs ?? 3000;
  return {
    /** Each partition consumer's progress, as numbers; see the module comment. */
    async partitionProgress(input: PartitionProgressInput): Promise<PartitionSummary[]> {
      return Promise.all(
        input.partitions.map(async (partition): Promise<PartitionSummary> => {
          const workflowId = partitionWorkflowId(input.pipelineId, input.topic, partition);
          try {
            const p = await deps.temporal.connection.withDeadline(Date.now() + timeoutMs, () => deps.temporal.workflow.getHandle(workflowId).query<PartitionProgress>('progress'));
            return { partition, cursor: p.cursor, landed: p.landed, rejected: p.rejected, lag: p.lag, paused: p.paused, batches: p.batches };
          } catch (err) {
            return { partition, cursor: null, landed: null, rejected: null, lag: null, paused: null, batches: null, error: (err instanceof Error ? err.message : String(err)).slice(0, 200) };
          }
        }),
      );
    },
  };
}
