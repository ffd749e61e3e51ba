/**
 * (h) The cost of one aggregation step as a pipeline's history grows, with and without the
 * event-time skip indexes of migration 052, side by side in one run.
 *
 * Two fresh databases get the same synthetic history of one pipeline: `events` rows of P Kafka
 * partitions at a steady total rate (event time following the offsets, with up to ±150 ms of
 * out-of-orderness), a few measures' worth of JSON, and one `lineage_batches` row per 2,000
 * offsets of a partition. One database keeps the indexes; the other drops them after migrating.
 * After each fill stage both tables are merged (`OPTIMIZE ... FINAL`), the state a long-running
 * pipeline reaches once background merges have built large parts.
 *
 * Then, alternating which database goes first, the real `aggregateStep` activity runs the step the
 * aggregator runs after the newest batch of every partition landed (1 s tumbling windows by
 * service, count and a filtered count; the windows of the newest batches recomputed, one becoming
 * final), and the aggregator's read of what landed after its cursor runs in two forms: the
 * per-partition cursor terms of {@link landedBatchesQuery} (what the activity runs) against the
 * per-row offset lookup it replaced. Reported: per stage, the medians and the ratios; the rows
 * ClickHouse read come from `EXPLAIN ESTIMATE` of the step's source scan.
 *
 * A measurement, not a test: `npm run bench:aggregation`, or step (h) of `npm run bench`.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { createAggregationActivities } from '../../activities/analytics/aggregate.js';
import { landedBatchesQuery } from '../../activities/analytics/aggregate-sql.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { analyticsFileSchema } from '../../schemas/analytics/declarations.js';
import type { Deadline } from './deadline.js';
import { percentiles, type Percentiles } from './detection-latency.js';
import { createDatabase, dropDatabase, rows } from './warehouse-util.js';

/** Options of {@link measureAggregationHistory}. */
export interface AggregationHistoryOptions {
  /** Cumulative `events` rows after each fill stage. @default [1_000_000, 4_000_000] */
  stages?: number[];
  /** Steps timed per database and stage. @default 12 */
  rounds?: number;
  /** Kafka partitions of the synthetic pipeline. @default 3 */
  partitions?: number;
  /** Events per second (all partitions) the history is spread at. @default 5000 */
  rate?: number;
  /** Keep the two databases for inspection. @default false */
  keep?: boolean;
}

/** One fill stage's figures. */
export interface AggregationHistoryStage {
  /** `events` rows of the pipeline (its history). */
  historyRows: number;
  /** Minutes of history at the configured rate. */
  historyMinutes: number;
  lineageBatches: number;
  /** Whole `aggregateStep` (ms), with / without the indexes. */
  stepWith: Percentiles;
  stepWithout: Percentiles;
  /** Its recompute statement alone (ms). */
  recomputeWith: Percentiles;
  recomputeWithout: Percentiles;
  /** Rows the step's source scan reads, by `EXPLAIN ESTIMATE`. */
  rowsReadWith: number;
  rowsReadWithout: number;
  /** The aggregator's read after its cursor (ms): per-partition terms (new) and the per-row lookup (old). */
  cursorRead: Percentiles;
  lookupRead: Percentiles;
  /** Rows each form returned (the same, or the bench fails). */
  cursorRows: number;
}

/** What (h) measured. */
export interface AggregationHistoryResult {
  partitions: number;
  rate: number;
  rounds: number;
  stages: AggregationHistoryStage[];
}

const batchOffsets = 2000;
const base = Date.UTC(2026, 10, 2); // history inside one month partition

/** The declarations of the synthetic pipeline (validated by the real schema). */
function declarations(pipeline: string) {
  return analyticsFileSchema.parse({
    pipelines: [{
      pipeline,
      fields: { service: { json: 'service' }, status: { json: 'status', type: 'number' } },
      watermark: { outOfOrderness: '200ms', idleness: '30s', allowedLateness: '5s' },
      aggregations: [{
        name: 'svc_1s', window: { type: 'tumbling', size: '1s' }, groupBy: ['service'],
        measures: [{ name: 'requests', kind: 'count' }, { name: 'errors', kind: 'count', where: [{ field: 'status', op: '>=', value: 500 }] }],
      }],
      detectors: [{
        name: 'bench_error_rate', aggregation: 'svc_1s', measure: 'errors', ratioOf: 'requests', method: { kind: 'threshold' },
        levels: { warning: 0.2 }, for: 1, clear: { below: 0.1, windows: 1 }, minCount: 20, minCountMeasure: 'requests',
      }],
    }],
  });
}

/** Event time (ms) of history row n, as SQL over `number` (n-th event overall, round-robin over partitions). */
const eventTimeSql = (rate: number) => `toInt64(${base} + intDiv(number * 1000, ${rate}) + toInt64(cityHash64(number) % 301) - 150)`;

async function fill(ch: ClickHouseClient, pipeline: string, from: number, to: number, partitions: number, rate: number): Promise<void> {
  await ch.command({
    query: `INSERT INTO events (pipeline, batch_id, topic, partition, offset, event_id, subject, contract_version, event_key, event_time, data, kafka_timestamp, processor_version)
SELECT {pipeline:String}, concat('b-', toString(number % {parts:UInt32}), '-', toString(intDiv(intDiv(number, {parts:UInt32}), {batch:UInt32}))), 'bench-history',
       toUInt32(number % {parts:UInt32}), intDiv(number, {parts:UInt32}), generateUUIDv4(number), 'bench', 1, toString(number % 1000),
       fromUnixTimestamp64Milli(${eventTimeSql(rate)}, 'UTC'),
       concat('{"service":"svc-', toString(number % 8), '","status":', if(number % 50 = 0, '500', '200'), ',"latency_ms":', toString(number % 997), '}'),
       fromUnixTimestamp64Milli(${eventTimeSql(rate)}, 'UTC'), 'bench'
FROM numbers({from:UInt64}, {count:UInt64})`,
    query_params: { pipeline, parts: partitions, batch: batchOffsets, from, count: to - from },
    clickhouse_settings: { max_insert_block_size: '1048576' },
  });
}

/** One lineage_batches row per 2,000 offsets of each partition, for the offsets of events rows [0, to). */
async function fillLineage(ch: ClickHouseClient, pipeline: string, fromRows: number, toRows: number, partitions: number, rate: number): Promise<number> {
  const perPartition = (n: number) => Math.ceil(n / partitions);
  const firstBatch = Math.floor(perPartition(fromRows) / batchOffsets);
  const lastBatch = Math.ceil(perPartition(toRows) / batchOffsets);
  if (lastBatch <= firstBatch) return 0;
  const count = (lastBatch - firstBatch) * partitions;
  // Event-time bounds of a batch: its first and last offsets' times (± the jitter).
  await ch.command({
    query: `INSERT INTO lineage_batches (pipeline, batch_id, topic, partition, from_offset, to_offset, valid_count, rejected_count, missing_count, bytes, contract_versions, reject_codes, min_event_time, max_event_time, processor_version, workflow_id, run_id, activity_attempt, started_at, finished_at)
SELECT {pipeline:String}, concat('b-', toString(p), '-', toString(b)), 'bench-history', p, b * {batch:UInt64}, (b + 1) * {batch:UInt64},
       {batch:UInt32}, 0, 0, 0, ['bench@1'], map(),
       fromUnixTimestamp64Milli(toInt64(${base} + intDiv((b * {batch:UInt64} * {parts:UInt32} + p) * 1000, ${rate}) - 150), 'UTC'),
       fromUnixTimestamp64Milli(toInt64(${base} + intDiv((((b + 1) * {batch:UInt64} - 1) * {parts:UInt32} + p) * 1000, ${rate}) + 150), 'UTC'),
       'bench', 'bench', 'bench', 1, now64(3), now64(3)
FROM (SELECT toUInt32(number % {parts:UInt32}) AS p, {first:UInt64} + intDiv(number, {parts:UInt32}) AS b FROM numbers({count:UInt64}))`,
    query_params: { pipeline, batch: batchOffsets, parts: partitions, first: firstBatch, count },
  });
  return count;
}

/** The old form of the cursor read (a per-row offset lookup): the baseline of the new one. */
function lookupQuery(pipeline: string, nextOffsets: Record<string, number>, limit: number) {
  const parts = Object.keys(nextOffsets).map(Number);
  return {
    query: `SELECT partition, from_offset, to_offset,
       if(isNull(max_event_time), NULL, toUnixTimestamp64Milli(assumeNotNull(max_event_time))) AS max_t,
       if(isNull(min_event_time), NULL, toUnixTimestamp64Milli(assumeNotNull(min_event_time))) AS min_t,
       toUnixTimestamp64Milli(finished_at) AS fin
FROM lineage_batches FINAL
WHERE pipeline = {pipeline:String}
  AND from_offset >= if(has({parts:Array(UInt32)}, partition), arrayElement({nexts:Array(UInt64)}, indexOf({parts:Array(UInt32)}, partition)), 0)
ORDER BY partition, from_offset
LIMIT {limit:UInt32}`,
    params: { pipeline, parts, nexts: parts.map((p) => nextOffsets[String(p)] ?? 0), limit },
  };
}

/** Median-of-rounds timing of `run`, in ms. */
async function timed(run: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await run();
  return performance.now() - t;
}

/** Runs (h); drops its databases unless `keep`. */
export async function measureAggregationHistory(
  admin: ClickHouseClient,
  createWarehouse: (database: string) => ClickHouseClient,
  deadline: Deadline,
  log: (line: string) => void,
  options: AggregationHistoryOptions = {},
): Promise<AggregationHistoryResult> {
  const stages = options.stages ?? [1_000_000, 4_000_000];
  const rounds = options.rounds ?? 12;
  const partitions = options.partitions ?? 3;
  const rate = options.rate ?? 5000;
  const id = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const pipeline = `agghist-${id}`;
  const names = { with: `bench_agg_idx_${id}`, without: `bench_agg_noidx_${id}` };
  const analytics = declarations(pipeline);
  const sides = {
    with: createWarehouse(names.with),
    without: createWarehouse(names.without),
  };
  const result: AggregationHistoryResult = { partitions, rate, rounds, stages: [] };
  try {
    for (const [side, db] of Object.entries(names)) {
      await createDatabase(admin, db);
      await migrate(sides[side as keyof typeof sides], db, { admin });
    }
    await sides.without.command({ query: 'ALTER TABLE events DROP INDEX IF EXISTS events_event_time_minmax' });
    await sides.without.command({ query: 'ALTER TABLE late_events DROP INDEX IF EXISTS late_events_window_start_minmax' });
    const indexes = await rows<{ database: string; name: string }>(admin, `SELECT database, name FROM system.data_skipping_indices WHERE database IN ({a:String}, {b:String}) AND name IN ('events_event_time_minmax', 'late_events_window_start_minmax')`, { a: names.with, b: names.without });
    if (indexes.length !== 2 || indexes.some((i) => i.database !== names.with)) throw new Error(`(h) expected the two indexes in ${names.with} only, found ${JSON.stringify(indexes)}`);
    const acts = { with: createAggregationActivities({ warehouse: sides.with, analytics }), without: createAggregationActivities({ warehouse: sides.without, analytics }) };
    for (const side of ['with', 'without'] as const) await acts[side].ensureAggregationTables({ pipeline });

    let filled = 0;
    for (const target of stages) {
      deadline.check('(h) aggregation history');
      const t0 = performance.now();
      let lineageBatches = 0;
      for (const side of ['with', 'without'] as const) {
        await fill(sides[side], pipeline, filled, target, partitions, rate);
        lineageBatches = await fillLineage(sides[side], pipeline, filled, target, partitions, rate);
        await sides[side].command({ query: 'OPTIMIZE TABLE events FINAL' });
        await sides[side].command({ query: 'OPTIMIZE TABLE lineage_batches FINAL' });
      }
      filled = target;
      const [counts] = await rows<{ n: string; b: string }>(sides.with, 'SELECT (SELECT count() FROM events WHERE pipeline = {p:String}) AS n, (SELECT count() FROM lineage_batches WHERE pipeline = {p:String}) AS b', { p: pipeline });
      log(`(h) history of ${Number(counts?.n).toLocaleString('en-US')} events, ${Number(counts?.b).toLocaleString('en-US')} batches per database, merged, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

      // Round r runs the step after the r-th newest batch of every partition landed (its windows
      // recomputed, one becoming final), so every round reads other windows: the query condition
      // cache of ClickHouse (on by default since 25.3) cannot serve a round from an earlier one.
      const recent = await rows<{ partition: number; from_offset: string; to_offset: string; min_t: string; max_t: string }>(
        sides.with,
        `SELECT partition, from_offset, to_offset, toUnixTimestamp64Milli(min_event_time) AS min_t, toUnixTimestamp64Milli(max_event_time) AS max_t
         FROM lineage_batches WHERE pipeline = {p:String} ORDER BY partition, from_offset DESC LIMIT {n:UInt32} BY partition`,
        { p: pipeline, n: rounds },
      );
      const stepOf = (round: number) => {
        const ranges = [...new Set(recent.map((b) => Number(b.partition)))].map((partition) => {
          const b = recent.filter((x) => Number(x.partition) === partition)[round]!;
          return { partition, from: Number(b.from_offset), to: Number(b.to_offset), minEventTimeMs: Number(b.min_t), maxEventTimeMs: Number(b.max_t) };
        });
        const maxT = Math.min(...ranges.map((r) => r.maxEventTimeMs));
        return { ranges, maxT, watermarkAfterMs: maxT - 200, watermarkBeforeMs: maxT - 1200, cursor: Object.fromEntries(ranges.map((r) => [String(r.partition), r.from])) };
      };
      const samples = { stepWith: [] as number[], stepWithout: [] as number[], recomputeWith: [] as number[], recomputeWithout: [] as number[], cursor: [] as number[], lookup: [] as number[] };
      let cursorRows = -1;
      for (let round = 0; round < rounds; round++) {
        deadline.check('(h) aggregation history');
        const { ranges, watermarkBeforeMs, watermarkAfterMs, cursor } = stepOf(round);
        const order = round % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const);
        for (const side of order) {
          let recompute = 0;
          const ms = await timed(async () => {
            const step = await acts[side].aggregateStep({ pipeline, ranges, watermarkBeforeMs, watermarkAfterMs, stepMs: Date.now(), returnFinalWindows: true });
            recompute = step.timingsMs.recompute ?? 0;
          });
          (side === 'with' ? samples.stepWith : samples.stepWithout).push(ms);
          (side === 'with' ? samples.recomputeWith : samples.recomputeWithout).push(recompute);
        }
        const found: Record<string, string> = {};
        for (const form of round % 2 === 0 ? (['cursor', 'lookup'] as const) : (['lookup', 'cursor'] as const)) {
          const q = form === 'cursor' ? landedBatchesQuery(pipeline, cursor, 500) : lookupQuery(pipeline, cursor, 500);
          let got: unknown[] = [];
          samples[form].push(await timed(async () => { got = await rows(sides.with, q.query, q.params); }));
          found[form] = JSON.stringify(got);
          if (form === 'cursor') cursorRows = got.length;
        }
        if (found.cursor !== found.lookup) throw new Error(`(h) the two forms of the cursor read disagree at round ${round}: ${found.cursor} against ${found.lookup}`);
      }
      const { watermarkBeforeMs, maxT } = stepOf(0);
      const estimate = async (side: 'with' | 'without'): Promise<number> => {
        const lo = Math.floor((watermarkBeforeMs - 1000) / 1000) * 1000;
        const hi = Math.ceil(maxT / 1000) * 1000 + 1000;
        const est = await rows<{ table: string; rows: string }>(sides[side], `EXPLAIN ESTIMATE SELECT count() FROM events WHERE pipeline = {p:String} AND event_time >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') AND event_time < fromUnixTimestamp64Milli({hi:Int64}, 'UTC')`, { p: pipeline, lo, hi });
        return est.reduce((n, r) => n + Number(r.rows), 0);
      };
      result.stages.push({
        historyRows: Number(counts?.n ?? 0),
        historyMinutes: Number(counts?.n ?? 0) / rate / 60,
        lineageBatches: Number(counts?.b ?? lineageBatches),
        stepWith: percentiles(samples.stepWith),
        stepWithout: percentiles(samples.stepWithout),
        recomputeWith: percentiles(samples.recomputeWith),
        recomputeWithout: percentiles(samples.recomputeWithout),
        rowsReadWith: await estimate('with'),
        rowsReadWithout: await estimate('without'),
        cursorRead: percentiles(samples.cursor),
        lookupRead: percentiles(samples.lookup),
        cursorRows,
      });
      log(`(h) ${formatStage(result.stages.at(-1)!)}`);
    }
    return result;
  } finally {
    for (const side of ['with', 'without'] as const) {
      if (!options.keep) await dropDatabase(admin, names[side]).catch(() => undefined);
      await sides[side].close().catch(() => undefined);
    }
    if (options.keep) log(`(h) kept databases ${names.with} (indexes) and ${names.without} (none)`);
  }
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const r2 = (a: number | null, b: number | null): string => (a && b ? (a / b).toFixed(2) : '-');

function formatStage(s: AggregationHistoryStage): string {
  return `${int(s.historyRows)} events (${s.historyMinutes.toFixed(1)} min at the rate), ${int(s.lineageBatches)} batches: step p50 ${int(s.stepWith.p50 ?? 0)} ms with the indexes vs ${int(s.stepWithout.p50 ?? 0)} ms without (with/without ${r2(s.stepWith.p50, s.stepWithout.p50)}), recompute ${int(s.recomputeWith.p50 ?? 0)} vs ${int(s.recomputeWithout.p50 ?? 0)} ms, rows read ${int(s.rowsReadWith)} vs ${int(s.rowsReadWithout)}; cursor read ${(s.cursorRead.p50 ?? 0).toFixed(1)} ms (per-partition terms) vs ${(s.lookupRead.p50 ?? 0).toFixed(1)} ms (per-row lookup), ratio ${r2(s.cursorRead.p50, s.lookupRead.p50)}`;
}

/** The printed lines of (h). */
export function formatAggregationHistory(h: AggregationHistoryResult): string {
  return [`(h) one aggregation step as the history grows (${h.partitions} partitions at ${int(h.rate)} events/s, merged, ${h.rounds} rounds alternating; medians):`, ...h.stages.map((s) => `    ${formatStage(s)}`)].join('\n');
}
