/**
 * `canary_observations`: per-batch observations of baseline and canary, written at batch
 * boundaries by whoever processed the batch (the pipeline's landing activity), read by the judge.
 * Values travel through the client's insert API; NaN is stored as NaN and read back as NaN, so
 * missing values stay missing.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { MetricSamples } from './judge.js';

/** One observation row: one batch, one role, one metric. */
export interface CanaryObservation {
  rolloutId: string;
  pipeline: string;
  epoch: number;
  role: 'baseline' | 'canary';
  processorVersion: string;
  metric: string;
  batchId: string;
  topic: string;
  partition: number;
  fromOffset: number;
  /** Exclusive. */
  toOffset: number;
  /** Events of the batch (proportions: denominator). */
  events: number;
  /** Events that hit (proportions: numerator). @default 0 */
  hits?: number;
  /** Values of a continuous metric. @default [] */
  values?: number[];
  /** ISO-8601 UTC. */
  observedAt: string;
}

/** A float as ClickHouse's JSON input reads it: NaN and infinities as strings, never null. */
export const jsonFloat = (v: number): number | string => (Number.isFinite(v) ? v : Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf');

/**
 * Inserts observations of one batch (all roles and metrics of it), idempotent per batch: the
 * insert_deduplication_token is `observations/<rollout>/<epoch>/<batch>`.
 */
export async function recordObservations(warehouse: ClickHouseClient, batch: CanaryObservation[]): Promise<void> {
  if (batch.length === 0) return;
  const first = batch[0]!;
  await warehouse.insert({
    table: 'canary_observations',
    format: 'JSONEachRow',
    values: batch.map((o) => ({
      rollout_id: o.rolloutId,
      pipeline: o.pipeline,
      epoch: o.epoch,
      role: o.role,
      processor_version: o.processorVersion,
      metric: o.metric,
      batch_id: o.batchId,
      topic: o.topic,
      partition: o.partition,
      from_offset: o.fromOffset,
      to_offset: o.toOffset,
      events: o.events,
      hits: o.hits ?? 0,
      values: (o.values ?? []).map(jsonFloat),
      observed_at: o.observedAt,
    })),
    clickhouse_settings: {
      insert_deduplication_token: `observations/${first.rolloutId}/${first.epoch}/${first.batchId}`,
      date_time_input_format: 'best_effort',
    },
  });
}

/** Window of observations a judgement covers. */
export interface ObservationWindow {
  rolloutId: string;
  epoch: number;
  /** ISO-8601, inclusive. */
  from: string;
  /** ISO-8601, exclusive. */
  to: string;
}

/** Pools the observations of a window per metric and role (FINAL: a re-landed batch counts once). */
export async function loadObservations(warehouse: ClickHouseClient, window: ObservationWindow): Promise<Map<string, MetricSamples>> {
  const result = await warehouse.query({
    query: `SELECT metric, toString(role) AS role, groupArrayArray(values) AS values, sum(events) AS events, sum(hits) AS hits
            FROM canary_observations FINAL
            WHERE rollout_id = {rollout:String} AND epoch = {epoch:UInt32}
              AND observed_at >= parseDateTime64BestEffort({from:String}, 3, 'UTC') AND observed_at < parseDateTime64BestEffort({to:String}, 3, 'UTC')
            GROUP BY metric, role`,
    query_params: { rollout: window.rolloutId, epoch: window.epoch, from: window.from, to: window.to },
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  const rows = await result.json<{ metric: string; role: 'baseline' | 'canary'; values: (number | null)[]; events: number; hits: number }>();
  const out = new Map<string, MetricSamples>();
  for (const row of rows) {
    const entry = out.get(row.metric) ?? { baseline: { values: [], events: 0, hits: 0 }, canary: { values: [], events: 0, hits: 0 } };
    // The JSON output writes NaN as null: it stays NaN (missing), never 0.
    entry[row.role] = { values: row.values.map((v) => (v === null ? Number.NaN : Number(v))), events: Number(row.events), hits: Number(row.hits) };
    out.set(row.metric, entry);
  }
  return out;
}
