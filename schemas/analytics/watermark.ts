/**
 * Event-time watermarks per partition, combined across partitions with idleness, as Flink's
 * `WatermarkStrategy.forBoundedOutOfOrderness(d).withIdleness(t)` and its `StatusWatermarkValve`:
 * - a partition's watermark is the largest event time it has delivered minus the allowed
 *   out-of-orderness (`BoundedOutOfOrdernessWatermarks`: `maxTimestamp - outOfOrderness - 1`;
 *   we drop Flink's `- 1` and instead treat a window as final when `watermark >= end - 1`, which
 *   gives the same firing point);
 * - the pipeline's watermark is the minimum over active partitions; a partition that has landed
 *   nothing for `idlenessMs` of processing time is idle and no longer holds it back; when every
 *   partition is idle the maximum is taken (Flink's valve does the same when the last channel goes
 *   idle);
 * - the combined watermark never moves back, even when an idle partition resumes behind it;
 * - a pause of the whole pipeline (no partition landed anything for `idlenessMs`: a stopped worker,
 *   an outage, the stream paused) restarts every partition's idleness clock at the first batch
 *   after it, as a restarted Flink job starts its idleness timers afresh. Without that, the
 *   downtime counted as idleness: the first partitions to land after a restart moved the watermark
 *   past the backlog of the others, whose events then went to `late_events`.
 * Pure and deterministic (processing time is passed in), so workflows keep it in their state.
 * Times are integer milliseconds since the epoch.
 */
import type { TimeWindow } from './windows.js';

/** What the watermark tracker keeps per partition: times and offsets only, never payloads. */
export interface PartitionMark {
  /** Largest event time landed so far (ms). */
  maxEventTimeMs: number;
  /** Processing time (ms) of the last landed batch that carried events. */
  lastActivityMs: number;
  /** Next offset not yet seen by the tracker (end of the last batch read). */
  nextOffset: number;
}

/** The watermark state of one pipeline (serialisable; carried across continue-as-new). */
export interface WatermarkState {
  partitions: Record<string, PartitionMark>;
  /** The combined watermark (ms), or null before any event. Never decreases. */
  watermarkMs: number | null;
  /** Processing time (ms) of the latest batch landed by any partition; absent in older states. */
  lastLandedMs?: number;
  /**
   * Processing time (ms) of the first batch after the latest pause of the whole pipeline: idleness
   * is counted from here at the earliest. Absent before any pause (and in older states).
   */
  resumedAtMs?: number;
}

/** A landed batch as the tracker sees it (from lineage_batches). */
export interface BatchMark {
  partition: number;
  toOffset: number;
  /** Null when the batch had no valid events. */
  maxEventTimeMs: number | null;
  /** When the batch finished landing (processing time, ms). */
  finishedAtMs: number;
}

/** Declared watermark behaviour. */
export interface WatermarkPolicy {
  /** Allowed out-of-orderness (ms) subtracted from the max event time. */
  outOfOrdernessMs: number;
  /** Processing time without events after which a partition is idle (ms). */
  idlenessMs: number;
}

/** An empty tracker. */
export function emptyWatermarkState(): WatermarkState {
  return { partitions: {}, watermarkMs: null };
}

/**
 * Folds landed batches into the per-partition marks (pure; returns a new state, watermark not yet
 * recombined). With `policy`, also notes a pause of the whole pipeline (see the module comment):
 * a batch that finished `idlenessMs` or more after the latest batch of any partition sets
 * `resumedAtMs`. Without it (the aggregator's pre-patch workflow path) no pause is noted, so old
 * histories replay unchanged.
 */
export function observeBatches(state: WatermarkState, batches: readonly BatchMark[], policy?: Pick<WatermarkPolicy, 'idlenessMs'>): WatermarkState {
  let { lastLandedMs, resumedAtMs } = state;
  if (policy) {
    for (const finished of batches.map((b) => b.finishedAtMs).sort((a, b) => a - b)) {
      if (lastLandedMs !== undefined && finished - lastLandedMs >= policy.idlenessMs) resumedAtMs = finished;
      lastLandedMs = lastLandedMs === undefined ? finished : Math.max(lastLandedMs, finished);
    }
  }
  const partitions: Record<string, PartitionMark> = {};
  for (const [k, v] of Object.entries(state.partitions)) partitions[k] = { ...v };
  for (const b of batches) {
    const key = String(b.partition);
    const prev = partitions[key];
    const mark: PartitionMark = prev ?? { maxEventTimeMs: Number.NEGATIVE_INFINITY, lastActivityMs: b.finishedAtMs, nextOffset: 0 };
    mark.nextOffset = Math.max(mark.nextOffset, b.toOffset);
    if (b.maxEventTimeMs !== null) {
      mark.maxEventTimeMs = Math.max(mark.maxEventTimeMs, b.maxEventTimeMs);
      mark.lastActivityMs = Math.max(mark.lastActivityMs, b.finishedAtMs);
    }
    partitions[key] = mark;
  }
  return {
    partitions,
    watermarkMs: state.watermarkMs,
    ...(lastLandedMs !== undefined ? { lastLandedMs } : {}),
    ...(resumedAtMs !== undefined ? { resumedAtMs } : {}),
  };
}

/** When a partition's idleness clock started: its last activity, or the pipeline's resumption if later. */
function activeSince(state: WatermarkState, mark: PartitionMark): number {
  return Math.max(mark.lastActivityMs, state.resumedAtMs ?? Number.NEGATIVE_INFINITY);
}

/** Partition ids that are idle at processing time `nowMs`. */
export function idlePartitions(state: WatermarkState, policy: WatermarkPolicy, nowMs: number): string[] {
  return Object.entries(state.partitions)
    .filter(([, m]) => nowMs - activeSince(state, m) >= policy.idlenessMs)
    .map(([k]) => k);
}

/**
 * Recombines the pipeline watermark at processing time `nowMs`: min over active partitions with
 * events, max over all when every partition is idle, never below the previous value.
 */
export function advanceWatermark(state: WatermarkState, policy: WatermarkPolicy, nowMs: number): WatermarkState {
  const marks = Object.values(state.partitions).filter((m) => Number.isFinite(m.maxEventTimeMs));
  if (marks.length === 0) return state;
  const active = marks.filter((m) => nowMs - activeSince(state, m) < policy.idlenessMs);
  const perPartition = (m: PartitionMark) => m.maxEventTimeMs - policy.outOfOrdernessMs;
  const candidate = active.length > 0 ? Math.min(...active.map(perPartition)) : Math.max(...marks.map(perPartition));
  const watermarkMs = state.watermarkMs === null ? candidate : Math.max(state.watermarkMs, candidate);
  return { ...state, watermarkMs };
}

/** True when the window is final under `watermarkMs` (Flink: `window.maxTimestamp() <= watermark`). */
export function isFinal(window: TimeWindow, watermarkMs: number | null): boolean {
  return watermarkMs !== null && window.endMs - 1 <= watermarkMs;
}

/**
 * True when an event for `window` arriving under `watermarkMs` is beyond the allowed lateness,
 * i.e. the window's state was already cleaned up (Flink: `maxTimestamp + allowedLateness <= watermark`).
 */
export function isBeyondLateness(window: TimeWindow, watermarkMs: number | null, allowedLatenessMs: number): boolean {
  return watermarkMs !== null && window.endMs - 1 + allowedLatenessMs <= watermarkMs;
}
