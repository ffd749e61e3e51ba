/**
 * Which windows one aggregation step must recompute, computed from what the aggregator already
 * knows (the event-time bounds of the landed batches, from `lineage_batches`, and the watermark
 * before and after the step) instead of from a ClickHouse query over the landed rows. Pure.
 *
 * A step recomputes (see activities/analytics/aggregate-sql.ts):
 * - every window that an event of the new ranges may fall in and that is still open to revision
 *   (`end - 1 + allowedLateness > watermark before`, Flink's cleanup time): the windows
 *   overlapping each range's `[minEventTime, maxEventTime]`;
 * - every window that becomes final in the step: `end - 1` in `(watermark before, watermark after]`.
 *
 * The set is a superset of the windows with new data (a range's bounds cover all its events; a
 * window without rows yields no row), so recomputing from it gives the same rows as recomputing
 * exactly the touched windows (recomputation is idempotent). Returns null when the bounds do not
 * allow an answer (no watermark yet, or a range without bounds): the caller then asks ClickHouse.
 *
 * Windows still open after the step (`end - 1 > watermark after`, provisional) are what
 * `openWindows` decides: `'touched'` (default) recomputes those the ranges touch; `'none'` leaves
 * them for a later refresh (`deferredOpen` says whether any was left); `{ spans }` recomputes those
 * the ranges touch and every open window overlapping one of the event-time spans, the spans of
 * the ranges earlier steps left (see {@link mergeSpans}). Final and finalizing windows are
 * recomputed in every mode.
 */
import { windowStart } from './windows.js';

/** Event-time bounds of one landed range (ms); both null when the range had no valid events. */
export interface RangeEventTimes {
  minEventTimeMs: number | null;
  maxEventTimeMs: number | null;
}

/** Input of {@link stepWindows}. */
export interface StepWindowsInput {
  /** Window size and slide (ms); a tumbling window has slide = size. */
  sizeMs: number;
  slideMs: number;
  ranges: readonly RangeEventTimes[];
  /** Watermark before the step (ms). */
  watermarkBeforeMs: number;
  /** Watermark after the step (ms), null when there is none. */
  watermarkAfterMs: number | null;
  allowedLatenessMs: number;
  /** Above this many windows the answer is the span `[lo, hi]` (list null). */
  limit: number;
  /**
   * Which windows still open after the step to recompute (see the module comment). Without a
   * watermark after the step, `{ spans }` recomputes every window overlapping the spans. @default 'touched'
   */
  openWindows?: OpenWindows;
}

/** An event-time span `[fromMs, toMs]` (both inclusive, ms). */
export type TimeSpan = [number, number];

/** Which provisional windows a step recomputes: see {@link stepWindows}. */
export type OpenWindows = 'touched' | 'none' | { spans: readonly TimeSpan[] };

/** The windows to recompute, by start (ms). */
export interface StepWindows {
  count: number;
  /** First and last start; meaningless when `count` is 0. */
  lo: number;
  hi: number;
  /** Every start ascending, or null when more than `limit` (then every aligned start in `[lo, hi]`). */
  list: number[] | null;
  /** With `openWindows: 'none'`: whether a range touched a window that is left provisional. */
  deferredOpen?: boolean;
}

/** Aligned window starts in `[from, to]` (ms), ascending; stops after `cap + 1` of them. */
function alignedStarts(from: number, to: number, slideMs: number, cap: number): number[] {
  const out: number[] = [];
  if (from > to) return out;
  // First aligned start >= from.
  let s = windowStart(from, slideMs);
  if (s < from) s += slideMs;
  for (; s <= to && out.length <= cap; s += slideMs) out.push(s);
  return out;
}

/** Number of aligned starts in `[from, to]`, without enumerating them. */
function countStarts(from: number, to: number, slideMs: number): number {
  if (from > to) return 0;
  let first = windowStart(from, slideMs);
  if (first < from) first += slideMs;
  const last = windowStart(to, slideMs);
  return last < first ? 0 : (last - first) / slideMs + 1;
}

/**
 * The windows one step recomputes (see the module comment), or null when the caller must read
 * them from the landed rows instead. @throws RangeError when size or slide is not positive.
 */
export function stepWindows(input: StepWindowsInput): StepWindows | null {
  const { sizeMs, slideMs, watermarkBeforeMs: before, watermarkAfterMs: after, allowedLatenessMs: lateness } = input;
  if (!(sizeMs > 0) || !(slideMs > 0)) throw new RangeError(`stepWindows: expected size > 0 and slide > 0 ms, got ${sizeMs}, ${slideMs}`);
  const mode: OpenWindows = input.openWindows ?? 'touched';
  // Open to revision: s + size - 1 + lateness > before  <=>  s >= before - lateness - size + 2.
  const openFrom = before - lateness - sizeMs + 2;
  // Final after the step: s + size - 1 <= after  <=>  s <= after - size + 1 (no watermark: none is).
  const lastFinal = after === null ? -Infinity : after - sizeMs + 1;
  let deferredOpen = false;
  const spans: [number, number][] = [];
  for (const r of input.ranges) {
    if (r.minEventTimeMs === null || r.maxEventTimeMs === null) {
      if (r.minEventTimeMs !== r.maxEventTimeMs) return null;
      continue;
    }
    // Windows overlapping [min, max]: s <= max and s + size > min.
    const from = Math.max(r.minEventTimeMs - sizeMs + 1, openFrom);
    if (mode !== 'none') spans.push([from, r.maxEventTimeMs]);
    else {
      spans.push([from, Math.min(r.maxEventTimeMs, lastFinal)]);
      if (countStarts(Math.max(from, lastFinal + 1), r.maxEventTimeMs, slideMs) > 0) deferredOpen = true;
    }
  }
  // The refresh: the open windows overlapping each span earlier steps left.
  if (typeof mode === 'object') for (const [a, b] of mode.spans) spans.push([Math.max(a - sizeMs + 1, lastFinal + 1), b]);
  // Becoming final: before < s + size - 1 <= after.
  if (after !== null && after > before) spans.push([before - sizeMs + 2, after - sizeMs + 1]);
  const windows = listWindows(spans.filter(([a, b]) => a <= b), slideMs, input.limit);
  return mode === 'none' ? { ...windows, deferredOpen } : windows;
}

/** The union of the aligned starts in each span, listed up to `limit`, else as one span. */
function listWindows(live: [number, number][], slideMs: number, limit: number): StepWindows {
  if (live.length === 0) return { count: 0, lo: 0, hi: 0, list: [] };
  const total = live.reduce((n, [a, b]) => n + countStarts(a, b, slideMs), 0);
  if (total > limit) {
    // Too many to list (the sum over spans bounds the union from above): take the whole span.
    let lo = Infinity;
    let hi = -Infinity;
    for (const [a, b] of live) {
      const starts = countStarts(a, b, slideMs);
      if (starts === 0) continue;
      const first = windowStart(a, slideMs) < a ? windowStart(a, slideMs) + slideMs : windowStart(a, slideMs);
      lo = Math.min(lo, first);
      hi = Math.max(hi, windowStart(b, slideMs));
    }
    return { count: countStarts(lo, hi, slideMs), lo, hi, list: null };
  }
  const set = new Set<number>();
  for (const [a, b] of live) for (const s of alignedStarts(a, b, slideMs, limit)) set.add(s);
  const list = [...set].sort((x, y) => x - y);
  if (list.length === 0) return { count: 0, lo: 0, hi: 0, list: [] };
  return { count: list.length, lo: list[0]!, hi: list[list.length - 1]!, list };
}

/**
 * The union of two window sets of the same slide: listed when both are listed and the union has at
 * most `limit` starts, else the span from the lower `lo` to the higher `hi` (every aligned start in
 * it, a superset).
 */
export function unionWindows(a: StepWindows, b: StepWindows, slideMs: number, limit: number): StepWindows {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  if (a.list && b.list) {
    const list = [...new Set([...a.list, ...b.list])].sort((x, y) => x - y);
    if (list.length <= limit) return { count: list.length, lo: list[0]!, hi: list[list.length - 1]!, list };
  }
  const lo = Math.min(a.lo, b.lo);
  const hi = Math.max(a.hi, b.hi);
  return { count: countStarts(lo, hi, slideMs), lo, hi, list: null };
}

/**
 * Adds event-time spans to a list of disjoint ones, ascending, merging those that overlap or
 * touch; beyond `max` spans, the two closest are merged (a wider span only recomputes more
 * windows, never fewer). Pure; the aggregator keeps the spans of the ranges whose provisional
 * windows a step left, until the refresh. @default max 32
 */
export function mergeSpans(spans: readonly TimeSpan[], add: readonly TimeSpan[], max = 32): TimeSpan[] {
  const all = [...spans, ...add].map(([a, b]): TimeSpan => [a, b]).filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: TimeSpan[] = [];
  for (const [a, b] of all) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  while (out.length > Math.max(1, max)) {
    let at = 0;
    for (let i = 1; i < out.length - 1; i++) if (out[i + 1]![0] - out[i]![1] < out[at + 1]![0] - out[at]![1]) at = i;
    out.splice(at, 2, [out[at]![0], Math.max(out[at]![1], out[at + 1]![1])]);
  }
  return out;
}
