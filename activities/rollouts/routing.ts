/**
 * The pipeline side of a canary rollout: reading the routing the rollout workflow published
 * (`rollout_routing`) when a batch is planned, publishing it from the workflow, and turning what a
 * processor did on a landing step into `canary_observations` rows for the judge.
 *
 * Why a table and not a query of the rollout workflow: the planner runs every poll of every
 * partition; a row in ClickHouse is durable, costs one small indexed read, works while the
 * rollout's worker is down or the rollout has ended, and is readable with plain SQL. The routing
 * read is then recorded in the batch plan (history), so a retried batch is routed as first planned.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { lookupProcessor } from '../../schemas/processors/index.js';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import type { ProcessorSelection } from '../../schemas/processing/selection.js';
import { canaryProcessorName, type PlannedRouting } from '../../schemas/rollouts/routing.js';
import type { CanaryObservation } from './observations.js';
import type { ProcessedStep } from '../processing/runtime.js';
import type { Logger } from '../logger.js';

/** A row of `rollout_routing` as the planner reads it. */
export interface RoutingRow {
  rollout_id: string;
  epoch: number;
  step: number;
  mode: string;
  percent: number;
  canary_version: string;
  canary_flags: string;
  fields: string[];
  final: number;
}

/** The latest routing row of a pipeline, or null when no rollout ever published one. */
export async function latestRouting(warehouse: ClickHouseClient, pipeline: string): Promise<RoutingRow | null> {
  const result = await warehouse.query({
    query: `SELECT rollout_id, epoch, step, mode, percent, canary_version, canary_flags, fields, final
            FROM rollout_routing WHERE pipeline = {p:String}
            ORDER BY published_at DESC, epoch DESC LIMIT 1`,
    query_params: { p: pipeline },
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  const [row] = await result.json<RoutingRow>();
  return row ? { ...row, epoch: Number(row.epoch), step: Number(row.step), percent: Number(row.percent), final: Number(row.final) } : null;
}

/**
 * The routing of a batch of a pipeline running `processor` (the baseline), from the latest routing
 * row: null when there is none, when it is final (the rollout ended), when its mode is not shadow
 * or weight, or when the canary version cannot be resolved in `catalogue` (logged: the rollout then
 * sees no canary observations and its judgement is inconclusive, which asks a person).
 */
export function routingForBatch(row: RoutingRow | null, processor: ProcessorSelection, catalogue: readonly ProcessorFamily[], log: Logger): PlannedRouting | null {
  if (!row || row.final === 1 || (row.mode !== 'shadow' && row.mode !== 'weight')) return null;
  const named = canaryProcessorName(row.canary_version, processor.name);
  const found = named ? lookupProcessor(named.name, named.version, catalogue) : null;
  if (!named || !found?.found) {
    log.warn('rollout routing ignored: canary version unknown to this worker', { rolloutId: row.rollout_id, version: row.canary_version, reason: found && !found.found ? found.message : 'expected 3, v3 or name@3' });
    return null;
  }
  let flags: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(row.canary_flags || '{}') as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) flags = parsed as Record<string, unknown>;
  } catch {
    log.warn('rollout routing: canary flags are not JSON; using the version defaults', { rolloutId: row.rollout_id });
  }
  return {
    rolloutId: row.rollout_id,
    epoch: row.epoch,
    step: row.step,
    mode: row.mode,
    percent: row.mode === 'weight' ? Math.min(100, Math.max(0, row.percent)) : 0,
    canary: { name: named.name, version: named.version, flags },
    fields: row.fields.filter((f) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(f)),
  };
}

/** What one role (baseline or canary) did on one landing step. */
export interface RoleStep {
  role: 'baseline' | 'canary';
  /** `name@version`. */
  processorVersion: string;
  /** Validated events handed to this role. */
  events: number;
  processed: ProcessedStep;
}

/** Where the observations of a step come from. */
export interface ObservationScope {
  routing: PlannedRouting;
  pipeline: string;
  topic: string;
  partition: number;
  /** The step's token (unique per step and generation): the rows' `batch_id`. */
  stepId: string;
  from: number;
  to: number;
  observedAt: string;
}

/**
 * Observation rows of one landing step for the judge, per role:
 * - `reject_rate`: events handed to the role, hits = events the processor dead-lettered (any code);
 * - `processing_error_rate`: events that entered the stages, hits = processing_error + output_violation;
 * - `processing_time_ms`: one value per processed event, its time in stages (ms);
 * - `field:<column>` for each routed field: the column's value per emitted event (first output
 *   holding it), non-numeric or missing values as NaN (missing, never zero).
 * Contract-validation rejects happen before routing and are the same for both roles, so they are
 * not part of `reject_rate`.
 */
export function stepObservations(scope: ObservationScope, roles: readonly RoleStep[]): CanaryObservation[] {
  const out: CanaryObservation[] = [];
  for (const r of roles) {
    const base = {
      rolloutId: scope.routing.rolloutId,
      pipeline: scope.pipeline,
      epoch: scope.routing.epoch,
      role: r.role,
      processorVersion: r.processorVersion,
      batchId: scope.stepId,
      topic: scope.topic,
      partition: scope.partition,
      fromOffset: scope.from,
      toOffset: scope.to,
      observedAt: scope.observedAt,
    };
    out.push({ ...base, metric: 'reject_rate', events: r.events, hits: r.processed.failures.length });
    out.push({ ...base, metric: 'processing_error_rate', events: r.processed.processed, hits: r.processed.breakerFailures });
    out.push({ ...base, metric: 'processing_time_ms', events: r.processed.processed, values: [...r.processed.eventTimesMs] });
    for (const field of scope.routing.fields) {
      const byOffset = new Map<number, number>();
      for (const rows of r.processed.rows.values()) {
        for (const row of rows) {
          const offset = Number(row.offset);
          if (byOffset.has(offset) || !(field in row)) continue;
          const v = row[field];
          byOffset.set(offset, typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : Number.NaN);
        }
      }
      out.push({ ...base, metric: `field:${field}`, events: byOffset.size, values: [...byOffset.values()] });
    }
  }
  return out;
}
