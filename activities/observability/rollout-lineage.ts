/**
 * OpenLineage run events of canary rollouts (spec 2-0-2, validated against the pinned schemas in
 * schemas/openlineage/ like the batch events): one run per rollout, whose run id is a name-based
 * UUID of the workflow id and its first run id (stable across continue-as-new and every worker;
 * a later rollout with the same workflow id is another run). START when the rollout starts,
 * RUNNING for each step change (step entered, routing change, judgement, pause, resume, reminder),
 * COMPLETE on promotion, FAIL on a rollback by the judge, ABORT on a person's abort or a refusal.
 * Each event carries the custom run facet `rolloutStep` (step, routing kind, weight, epoch,
 * status, verdict, who and why; schema schemas/openlineage/streamwarden/RolloutStepRunFacet.json).
 * The job is `<pipeline>.canaryRollout`, and the output dataset the pipeline's routing table.
 */
import type { RolloutEvent, RolloutStatus, Routing } from '../../schemas/rollouts/rollout-state.js';
import { batchRunId, openLineageSchemaUrl, type LineageLocation, type RunEvent } from './openlineage.js';

/** `_schemaURL` of the rollout step facet. */
export const rolloutStepFacetSchemaUrl = 'https://github.com/streamwarden/streamwarden/blob/main/schemas/openlineage/streamwarden/RolloutStepRunFacet.json#/$defs/RolloutStepRunFacet';
const jobTypeUrl = 'https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet';

/** Where rollout events go: anything with a never-blocking `enqueue` (the platform's {@link OpenLineageEmitter}). */
export interface RolloutLineageSink {
  enqueue(event: RunEvent): void;
  readonly location: LineageLocation;
}

/** One audit event of a rollout with what it changed. */
export type RolloutAuditEvent = RolloutEvent & { status: RolloutStatus; routing: Routing };

/** What identifies the rollout run. */
export interface RolloutRunRef {
  rolloutId: string;
  /** First run id of the workflow (stable across continue-as-new). */
  firstRunId: string;
  pipeline: string;
  baselineVersion: string;
  canaryVersion: string;
}

/** OpenLineage run id of a rollout: UUID v5 layout of `rollout/<workflow id>/<first run id>`. */
export function rolloutRunId(ref: Pick<RolloutRunRef, 'rolloutId' | 'firstRunId'>): string {
  return batchRunId(`rollout/${ref.rolloutId}/${ref.firstRunId}`);
}

const eventTypes: Partial<Record<RolloutEvent['type'], RunEvent['eventType']>> = {
  started: 'START',
  promoted: 'COMPLETE',
  rolled_back: 'FAIL',
  aborted: 'ABORT',
  refused: 'ABORT',
};

/** The run event of one audit event (RUNNING unless it starts or ends the rollout). */
export function rolloutRunEvent(ref: RolloutRunRef, e: RolloutAuditEvent, where: LineageLocation): RunEvent {
  const producer = where.producer;
  const verdict = e.type === 'judgement' ? /^(pass|marginal|inconclusive|fail)\b/.exec(e.reason)?.[1] : undefined;
  const ch = new URL(where.clickhouseUrl);
  return {
    eventType: eventTypes[e.type] ?? 'RUNNING',
    eventTime: e.at,
    producer,
    schemaURL: openLineageSchemaUrl,
    run: {
      runId: rolloutRunId(ref),
      facets: {
        rolloutStep: {
          _producer: producer,
          _schemaURL: rolloutStepFacetSchemaUrl,
          seq: e.seq,
          event: e.type,
          step: e.stepNumber ?? e.step + 1,
          kind: e.routing.mode,
          weight: e.routing.mode === 'canary' ? 100 : e.routing.weightPercent,
          epoch: e.routing.epoch,
          status: e.status,
          ...(verdict ? { verdict } : {}),
          by: e.by,
          reason: e.reason,
          pipeline: ref.pipeline,
          baselineVersion: ref.baselineVersion,
          canaryVersion: ref.canaryVersion,
        },
      },
    },
    job: {
      namespace: where.namespace,
      name: `${ref.pipeline}.canaryRollout`,
      facets: { jobType: { _producer: producer, _schemaURL: jobTypeUrl, processingType: 'STREAMING', integration: 'STREAMWARDEN', jobType: 'ROLLOUT' } },
    },
    inputs: [],
    outputs: [{ namespace: `clickhouse://${ch.hostname}:${ch.port || (ch.protocol === 'https:' ? '8443' : '8123')}`, name: `${where.database}.rollout_routing` }],
  };
}
