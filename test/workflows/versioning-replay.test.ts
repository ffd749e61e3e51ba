/**
 * Workflow changes of issues 11 and 7 are versioned: histories recorded with the code before each change
 * replay with today's code (a missing `patched()` guard fails here with a nondeterminism error).
 *
 * Ingest: histories recorded before the supervisor told its partition consumers whether the pipeline
 * declares analytics (`reportLandings`) replay with today's code: the supervisor's new activity is
 * behind `patched('pipeline-tells-consumers-about-analytics')`, and a consumer whose input lacks
 * the field reports landings as before. Recorded on the local Temporal dev server with the code
 * of commit 346a26b (a pipeline without analytics; its partition's history holds the failed
 * `batchLanded` signals this change removes) by test/fixtures/histories/record.ts.
 *
 * Aggregator: histories recorded while signalDetections was a task-queue activity (before
 * `patched('aggregator-signals-from-local-activity')`): one with the code of commit ec6609b from
 * test/integration/analytics-aggregator.test.ts (fire, upgrade and resolve signalled), one under
 * load from `npm run bench:latency -- --seconds 30` with the code of 346a26b.
 */
import { readFile } from 'node:fs/promises';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundlePlatformWorkflows } from '../../workers/worker.js';

type Bundle = Awaited<ReturnType<typeof bundlePlatformWorkflows>>;
let bundle: Bundle;

async function history(name: string) {
  return proto.temporal.api.history.v1.History.decode(await readFile(new URL(`../fixtures/histories/${name}`, import.meta.url)));
}

beforeAll(async () => {
  bundle = await bundlePlatformWorkflows();
}, 120_000);

describe('ingest workflows replay histories recorded before reportLandings', () => {
  it('a partition consumer that signalled a missing aggregator after each batch', { timeout: 60_000 }, async () => {
    const h = await history('partition-before-report-flag.pb');
    const failed = (h.events ?? []).filter((e) => e.signalExternalWorkflowExecutionFailedEventAttributes);
    expect(failed.length).toBeGreaterThan(0);
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, h, 'recorded-partition')).resolves.toBeUndefined();
  });

  it('a pipeline supervisor that started its consumers without the flag', { timeout: 60_000 }, async () => {
    const h = await history('pipeline-before-report-flag.pb');
    const types = (h.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(types).not.toContain('pipelineDeclaresAnalytics');
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, h, 'recorded-pipeline')).resolves.toBeUndefined();
  });
});

describe('aggregator replays histories recorded before signalDetections became a local activity', () => {
  it('sequential aggregateLanded / signalDetections', { timeout: 60_000 }, async () => {
    const h = await history('aggregator-task-queue-signal.pb');
    const types = (h.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(types.filter((t) => t === 'signalDetections').length).toBeGreaterThanOrEqual(3);
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, h, 'recorded-aggregator')).resolves.toBeUndefined();
  });

  it('under load, where landings were reported while detections were being signalled', { timeout: 60_000 }, async () => {
    // 29 signalling iterations, landings reported while detections were being signalled.
    const h = await history('aggregator-task-queue-signal-loaded.pb');
    const types = (h.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(types.filter((t) => t === 'signalDetections').length).toBeGreaterThanOrEqual(10);
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, h, 'recorded-aggregator-loaded')).resolves.toBeUndefined();
  });
});

describe('partition consumer replays a history recorded before its short activities had a heartbeat timeout', () => {
  // Recorded with the code of commit 8257630 by test/faults/temporal-outage.test.ts (the slow run,
  // from the database file it kept): planBatch and commitProgress scheduled with a 30 s
  // start-to-close timeout only, a commitProgress attempt lost in the Temporal outage and retried
  // after that timeout. Activity options are not part of the replay check, so the change needs
  // no patched() guard; this proves it.
  it('with the lost commitProgress attempt retried by its START_TO_CLOSE timeout', { timeout: 60_000 }, async () => {
    const h = await history('partition-temporal-outage-before-heartbeats.pb');
    const events = h.events ?? [];
    const scheduled = events.map((e) => e.activityTaskScheduledEventAttributes).filter((a) => a?.activityType?.name === 'planBatch');
    expect(scheduled.length).toBeGreaterThan(10);
    expect(scheduled.map((a) => Number(a?.heartbeatTimeout?.seconds ?? 0) + (a?.heartbeatTimeout?.nanos ?? 0))).toEqual(scheduled.map(() => 0));
    const retried = events.map((e) => e.activityTaskStartedEventAttributes).find((a) => Number(a?.attempt) === 2);
    expect(retried?.lastFailure?.timeoutFailureInfo?.timeoutType).toBe(proto.temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE);
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, h, 'recorded-partition-outage')).resolves.toBeUndefined();
  });
});
