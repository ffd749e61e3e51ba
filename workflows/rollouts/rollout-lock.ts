/**
 * `rolloutLock`: one per pipeline (id `rollout-lock-<pipeline>`), started by a rollout as an
 * abandoned child. While it runs, no other rollout of that pipeline can start: Temporal refuses a
 * second workflow with the same id, which is a race-free mutex (a visibility query is not).
 * It ends when its holder signals `release`, or when the holder is no longer running (a terminated
 * rollout cannot hold its pipeline forever).
 */
import { condition, continueAsNew, defineQuery, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RolloutActivities } from '../../activities/rollouts/rollout-activities.js';

/** Input of `rolloutLock`. */
export interface RolloutLockInput {
  pipeline: string;
  /** Workflow id of the rollout holding the lock. */
  holder: string;
  /** How often the holder's liveness is checked (ms). @default 10 minutes */
  checkEveryMs?: number;
}

/** Query `holder`: the workflow id of the rollout holding the lock. */
export const holderQuery = defineQuery<string>('holder');
/** Signal `release` from the holder (other senders are ignored). */
export const releaseSignal = defineSignal<[{ holder: string }]>('release');

const { isWorkflowRunning } = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '2s', maximumInterval: '1m' },
});

/** The lock workflow; completes when released. */
export async function rolloutLock(input: RolloutLockInput): Promise<void> {
  let released = false;
  setHandler(holderQuery, () => input.holder, { description: 'Workflow id of the rollout holding this pipeline.' });
  setHandler(
    releaseSignal,
    (r) => {
      if (r.holder === input.holder) released = true;
    },
    { description: 'Sent by the holder when its rollout ends.' },
  );
  const every = input.checkEveryMs ?? 600_000;
  while (!released) {
    if (await condition(() => released, every)) break;
    if (!(await isWorkflowRunning(input.holder))) break;
    if (workflowInfo().historyLength > 2_000) await continueAsNew<typeof rolloutLock>(input);
  }
}
