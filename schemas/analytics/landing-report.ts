/**
 * The landing report a pipeline's aggregator receives: `batchLanded` `{partition, from, to}`, and
 * since session 10 the facts of the batch's lineage row (event-time bounds, finish time), so that
 * an aggregator iteration woken by reports can take its batches from them instead of reading
 * `lineage_batches` ({@link batchesFromReports}). Shared by the aggregator (which defines the
 * signal), the partition consumer and the landing activity (which send it), so the name and the
 * shape are written once.
 */
import { z } from 'zod';

/** Name of the aggregator's `batchLanded` signal. */
export const batchLandedSignalName = 'batchLanded';

/**
 * Argument of `batchLanded`: the landed range `[from, to)` of a partition and, when the landing
 * activity sent it, the values it wrote in the batch's `lineage_batches` row: `minEventTimeMs` /
 * `maxEventTimeMs` (ms since the epoch, null when the batch had no valid event) and `finishedAtMs`
 * (its `finished_at`, ms). Reports without them (from the partition consumer, or from workers
 * before session 10) only wake the aggregator.
 */
export const batchLandedSchema = z
  .object({
    partition: z.number().int().min(0),
    from: z.number().int().min(0),
    to: z.number().int().min(0),
    minEventTimeMs: z.number().int().nullable().optional(),
    maxEventTimeMs: z.number().int().nullable().optional(),
    finishedAtMs: z.number().int().optional(),
  })
  .strict();
/** Argument of `batchLanded`. */
export type BatchLanded = z.infer<typeof batchLandedSchema>;

/** A landed batch as the aggregator's cursor reads it (the columns of `lineage_batches` it uses). */
export interface ReportedBatch {
  partition: number;
  fromOffset: number;
  toOffset: number;
  /** Smallest event time of the batch (ms), null when it had no valid events. */
  minEventTimeMs: number | null;
  /** Largest event time of the batch (ms), null when it had no valid events. */
  maxEventTimeMs: number | null;
  /** `finished_at` of its lineage row (ms). */
  finishedAtMs: number;
}

/** Workflow id of a pipeline's aggregator: `aggregator-<pipeline>`. */
export function aggregatorWorkflowId(pipeline: string): string {
  return `aggregator-${pipeline}`;
}

/**
 * The batches after the cursor, from landing reports alone, or null when the reports cannot stand
 * for a read of `lineage_batches` after the cursor and the caller must read it.
 *
 * Reports are taken only when, for every partition they name, the cursor knows the partition
 * (`nextOffsets` has it: a partition not seen yet may start anywhere), each report carries the
 * lineage facts, and the reports after the cursor tile it without a gap or an overlap, starting at
 * the cursor: exactly what the lineage read would return for that partition, since first landings
 * tile each partition. Reports at or before the cursor (repeats of batches already read) are
 * skipped; a batch with no valid event sends no report, so it shows as a gap (the lineage read
 * takes it). Partitions without reports are left for a later iteration: their batches, if any,
 * are read when their reports arrive or at the aggregator's next lineage read.
 *
 * @param reports as received, in any order, repeats allowed.
 * @param nextOffsets the cursor: next offset per partition (`"0": 1200`).
 * @returns the batches ordered by partition and offset (empty when every report was a repeat), or null.
 */
export function batchesFromReports(reports: readonly BatchLanded[], nextOffsets: Readonly<Record<string, number>>): ReportedBatch[] | null {
  const byPartition = new Map<number, Map<number, BatchLanded>>();
  for (const r of reports) {
    const next = nextOffsets[String(r.partition)];
    if (next === undefined) return null;
    if (r.to <= next) continue;
    if (r.from < next || r.to <= r.from) return null;
    if (r.finishedAtMs === undefined || r.minEventTimeMs === undefined || r.maxEventTimeMs === undefined) return null;
    const seen = byPartition.get(r.partition) ?? new Map<number, BatchLanded>();
    const same = seen.get(r.from);
    if (same && same.to !== r.to) return null;
    // A retried landing reports the same range again; its lineage row is the first attempt's (the
    // insert is de-duplicated by token), so keep the earliest finish time, the one the row holds.
    if (!same || r.finishedAtMs < same.finishedAtMs!) seen.set(r.from, r);
    byPartition.set(r.partition, seen);
  }
  const out: ReportedBatch[] = [];
  for (const partition of [...byPartition.keys()].sort((a, b) => a - b)) {
    let at = nextOffsets[String(partition)]!;
    const ranges = [...byPartition.get(partition)!.values()].sort((a, b) => a.from - b.from);
    for (const r of ranges) {
      if (r.from !== at) return null;
      out.push({ partition, fromOffset: r.from, toOffset: r.to, minEventTimeMs: r.minEventTimeMs!, maxEventTimeMs: r.maxEventTimeMs!, finishedAtMs: r.finishedAtMs! });
      at = r.to;
    }
  }
  return out;
}
