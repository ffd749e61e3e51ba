/**
 * Landing reports standing for a read of lineage_batches (schemas/analytics/landing-report.ts):
 * `batchesFromReports` takes reports only when they tile the aggregator's cursor exactly, and
 * `lineageFacts` gives the values the lineage row holds, or nothing when the row would not say it.
 */
import { describe, expect, it } from 'vitest';
import { lineageFacts } from '../../activities/ingest/ingest.js';
import { batchesFromReports, batchLandedSchema, type BatchLanded } from '../../schemas/analytics/landing-report.js';

const report = (partition: number, from: number, to: number, extra: Partial<BatchLanded> = {}): BatchLanded => ({
  partition, from, to, minEventTimeMs: 1_000 + from, maxEventTimeMs: 1_000 + to - 1, finishedAtMs: 50_000 + to, ...extra,
});

describe('batchesFromReports', () => {
  it('returns the batches after the cursor, in partition and offset order, whatever the arrival order', () => {
    const got = batchesFromReports([report(1, 10, 20), report(0, 5, 9), report(0, 0, 5), report(1, 20, 30)], { '0': 0, '1': 10 });
    expect(got).toEqual([
      { partition: 0, fromOffset: 0, toOffset: 5, minEventTimeMs: 1_000, maxEventTimeMs: 1_004, finishedAtMs: 50_005 },
      { partition: 0, fromOffset: 5, toOffset: 9, minEventTimeMs: 1_005, maxEventTimeMs: 1_008, finishedAtMs: 50_009 },
      { partition: 1, fromOffset: 10, toOffset: 20, minEventTimeMs: 1_010, maxEventTimeMs: 1_019, finishedAtMs: 50_020 },
      { partition: 1, fromOffset: 20, toOffset: 30, minEventTimeMs: 1_020, maxEventTimeMs: 1_029, finishedAtMs: 50_030 },
    ]);
  });

  it('skips repeats of batches already read, and keeps the first finish time of a range reported twice', () => {
    expect(batchesFromReports([report(0, 0, 5), report(0, 5, 9)], { '0': 9 })).toEqual([]);
    const got = batchesFromReports([report(0, 9, 12, { finishedAtMs: 70_000 }), report(0, 9, 12, { finishedAtMs: 60_000 })], { '0': 9 });
    expect(got?.map((b) => b.finishedAtMs)).toEqual([60_000]);
  });

  it('leaves partitions without reports to a later read', () => {
    expect(batchesFromReports([report(2, 7, 8)], { '0': 100, '1': 3, '2': 7 })?.map((b) => b.partition)).toEqual([2]);
  });

  it('refuses (null: read lineage_batches) a gap, an overlap, a range straddling the cursor, an unknown partition, or a report without facts', () => {
    expect(batchesFromReports([report(0, 6, 9)], { '0': 5 })).toBeNull(); // gap: [5, 6) unreported (e.g. no valid event)
    expect(batchesFromReports([report(0, 5, 9), report(0, 11, 12)], { '0': 5 })).toBeNull();
    expect(batchesFromReports([report(0, 5, 9), report(0, 7, 12)], { '0': 5 })).toBeNull();
    expect(batchesFromReports([report(0, 5, 9), report(0, 5, 10)], { '0': 5 })).toBeNull();
    expect(batchesFromReports([report(0, 3, 9)], { '0': 5 })).toBeNull();
    expect(batchesFromReports([report(3, 0, 9)], { '0': 5 })).toBeNull();
    expect(batchesFromReports([{ partition: 0, from: 5, to: 9 }], { '0': 5 })).toBeNull();
    expect(batchesFromReports([report(0, 5, 9, { finishedAtMs: undefined })], { '0': 5 })).toBeNull();
  });

  it('keeps batches without valid events (null bounds) when reported with facts', () => {
    expect(batchesFromReports([report(0, 5, 9, { minEventTimeMs: null, maxEventTimeMs: null })], { '0': 5 })?.[0]).toMatchObject({ minEventTimeMs: null, maxEventTimeMs: null });
  });
});

describe('the batchLanded argument', () => {
  it('accepts the bare range (older senders) and the range with facts; refuses unknown fields', () => {
    expect(batchLandedSchema.safeParse({ partition: 0, from: 1, to: 2 }).success).toBe(true);
    expect(batchLandedSchema.safeParse(report(0, 1, 2)).success).toBe(true);
    expect(batchLandedSchema.safeParse({ partition: 0, from: 1, to: 2, extra: 1 }).success).toBe(false);
  });
});

describe('lineageFacts', () => {
  it('reads the row\'s UTC strings back to the milliseconds ClickHouse returns', () => {
    expect(lineageFacts('2026-12-01 16:50:01.234', '2026-12-01 16:50:59.999', 42)).toEqual({
      minEventTimeMs: Date.UTC(2026, 11, 1, 16, 50, 1, 234), maxEventTimeMs: Date.UTC(2026, 11, 1, 16, 50, 59, 999), finishedAtMs: 42,
    });
    expect(lineageFacts('1969-07-20 20:17:40.000', '1969-07-20 20:17:40.000', 1)).toMatchObject({ minEventTimeMs: Date.UTC(1969, 6, 20, 20, 17, 40) });
    expect(lineageFacts(null, null, 7)).toEqual({ minEventTimeMs: null, maxEventTimeMs: null, finishedAtMs: 7 });
  });

  it('gives nothing for a bound outside DateTime64(3) (the row holds it clamped) or unparsable', () => {
    expect(lineageFacts('1899-12-31 23:59:59.999', '2000-01-01 00:00:00.000', 1)).toEqual({});
    expect(lineageFacts('2000-01-01 00:00:00.000', '+010000-01-01 00:00:00.000', 1)).toEqual({});
    expect(lineageFacts('yesterday', '2000-01-01 00:00:00.000', 1)).toEqual({});
  });
});
