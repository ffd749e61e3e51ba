/**
 * Histories of `canaryRollout` recorded before the pipeline obeyed rollouts replay with today's
 * code: the routing publication and the promotion hand-over are behind
 * `patched('rollout-publishes-routing')`, so an old run's command sequence is unchanged.
 * The fixture was recorded on a real Temporal dev server with the code of commit 5d8c9b2 (steps
 * weight 10, pause 2s, weight 50, pause 1s; promoted), fetched with the client's `fetchHistory()`
 * and stored protobuf-encoded (the SDK's JSON helpers fail on this install: "type must be a Type").
 */
import { readFile } from 'node:fs/promises';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { bundlePlatformWorkflows } from '../../workers/worker.js';

const recordedWorkflowId = 'rollout-replay-recmx3aeq0h-2';

describe('canaryRollout replay', () => {
  it('replays a history recorded before routing was published', { timeout: 120_000 }, async () => {
    const bytes = await readFile(new URL('../fixtures/rollouts/history-before-routing.pb', import.meta.url));
    const history = proto.temporal.api.history.v1.History.decode(bytes);
    const types = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    // The old run scheduled no routing activity: only the audit trail and the lock's liveness.
    expect(types).not.toContain('publishRouting');
    expect(types).toContain('recordRolloutEvents');
    const bundle = await bundlePlatformWorkflows();
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, history, recordedWorkflowId)).resolves.toBeUndefined();
  });
});
