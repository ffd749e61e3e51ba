/**
 * `platform lineage trace` prints what ran on a row's batch: the worker version, the processor with
 * its flags, and the canary routing when a rollout ran, each under its own name. A walkthrough found
 * the worker's version (`0.1.0`) printed as "processor" while the batch ran request-enriched@1.
 */
import { describe, expect, it } from 'vitest';
import type { RowTrace } from '../../activities/lineage/lineage-trace.js';
import { renderRowTrace } from '../../workers/cli/lineage.js';

const batch = {
  batchId: 'demo/requests/0/100-200/g0',
  topic: 'requests',
  partition: 0,
  fromOffset: 100,
  toOffset: 200,
  highWatermark: 250,
  validCount: 98,
  rejectedCount: 2,
  contractVersions: ['request-telemetry@2'],
  processorVersion: '0.1.0',
  processor: 'request-enriched@1',
  flags: '{"dropHealthChecks":true}',
  routing: { rolloutId: 'rollout-demo-2', mode: 'weight', percent: 25, canary: 'request-enriched@2', canaryEvents: 24 },
  workflowId: 'partition-demo-requests-0',
  runId: 'r1',
  activityAttempt: 1,
  startedAt: '2026-11-30 12:00:00.000',
  finishedAt: '2026-11-30 12:00:01.000',
};

const trace: RowTrace = {
  found: 'event',
  event: { pipeline: 'demo', topic: 'requests', partition: 0, offset: 150, eventId: 'e1', subject: 'request-telemetry', contractVersion: 2, processorVersion: '0.1.0', eventTime: 't', kafkaTimestamp: 'k', ingestedAt: 'i' },
  batch,
  windows: [],
  alerts: [],
};

describe('lineage trace rendering', () => {
  it('names the worker version, the processor with its flags and the rollout routing', () => {
    const text = renderRowTrace(trace);
    expect(text).toContain('  worker     0.1.0');
    expect(text).toContain('  processor  request-enriched@1  flags {"dropHealthChecks":true}');
    expect(text).toContain('  rollout    rollout-demo-2: weight 25 % of keys on canary request-enriched@2 (24 events)');
    expect(text).not.toMatch(/processor\s+0\.1\.0/);
  });

  it('says when a batch ran no processor and no rollout', () => {
    const text = renderRowTrace({ ...trace, batch: { ...batch, processor: '', flags: '', routing: null } });
    expect(text).toContain('  processor  (none: events only)');
    expect(text).not.toContain('rollout ');
  });
});
