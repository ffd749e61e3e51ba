/**
 * Window assignment on event time, in integer milliseconds since the Unix epoch (negative before
 * 1970). Pure; the same math is used by workflows (which windows become final), by the
 * aggregation SQL builder (as ClickHouse expressions) and by tests.
 *
 * Semantics follow Apache Flink's window assigners: a window is the half-open interval
 * `[start, end)`; tumbling and hopping (Flink "sliding") windows start at multiples of the slide
 * shifted by `offsetMs` (`TimeWindow.getWindowStartWithOffset`), computed with floor division so
 * times before 1970 land in the window that contains them. A hopping window whose slide is longer
 * than its size leaves gaps: events in a gap belong to no window (Flink allows this too).
 * Session windows follow Flink's `EventTimeSessionWindows` / Kafka Streams' `SessionWindows`: each
 * event opens `[t, t + gap)`, and windows that overlap or touch merge, so two events exactly one
 * gap apart share a session. `maxDurationMs` (not in Flink) caps a session's span: an event more
 * than `maxDurationMs` after its session's first event starts a new session.
 */

/** A half-open event-time window `[startMs, endMs)`. */
export interface TimeWindow {
  startMs: number;
  endMs: number;
}

/** Floor modulo: the result has the sign of `m` (> 0), unlike `%`, so it works before 1970. */
export function floorMod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

/**
 * Start of the window of length `slideMs` (aligned to `offsetMs`) containing `t`, as Flink's
 * `TimeWindow.getWindowStartWithOffset(t, offset, slide)` but with floor semantics for `t < 0`.
 */
export function windowStart(t: number, slideMs: number, offsetMs = 0): number {
  return t - floorMod(t - offsetMs, slideMs);
}

/** The tumbling window of `sizeMs` containing `t`. @throws RangeError when sizeMs <= 0. */
export function tumblingWindow(t: number, sizeMs: number, offsetMs = 0): TimeWindow {
  if (!(sizeMs > 0)) throw new RangeError(`tumbling size: expected > 0 ms, got ${sizeMs}`);
  const startMs = windowStart(t, sizeMs, offsetMs);
  return { startMs, endMs: startMs + sizeMs };
}

/**
 * Every hopping window of `sizeMs` advancing by `slideMs` that contains `t`, latest first. The
 * count is `ceil(size / slide)` or one less; zero when `t` falls in a gap (slide > size).
 * @throws RangeError when size or slide is not positive.
 */
export function hoppingWindows(t: number, sizeMs: number, slideMs: number, offsetMs = 0): TimeWindow[] {
  if (!(sizeMs > 0) || !(slideMs > 0)) throw new RangeError(`hopping: expected size > 0 and slide > 0 ms, got ${sizeMs}, ${slideMs}`);
  const out: TimeWindow[] = [];
  for (let start = windowStart(t, slideMs, offsetMs); start > t - sizeMs; start -= slideMs) out.push({ startMs: start, endMs: start + sizeMs });
  return out;
}

/** A session: its window `[first, last + gap)` and the event times it holds. */
export interface Session extends TimeWindow {
  /** Event times of the session, ascending. */
  times: number[];
}

/**
 * Sessions of a set of event times (order of the input does not matter): sorted, then a new
 * session starts where the distance to the previous event exceeds `gapMs` (strictly: exactly one
 * gap apart still merges) or the event lies more than `maxDurationMs` after the session's first.
 */
export function sessionize(times: readonly number[], gapMs: number, maxDurationMs = Number.POSITIVE_INFINITY): Session[] {
  if (!(gapMs > 0)) throw new RangeError(`session gap: expected > 0 ms, got ${gapMs}`);
  const sorted = [...times].sort((a, b) => a - b);
  const sessions: Session[] = [];
  let current: Session | undefined;
  for (const t of sorted) {
    const last = current?.times[current.times.length - 1];
    if (current && last !== undefined && t - last <= gapMs && t - current.startMs <= maxDurationMs) {
      current.times.push(t);
      current.endMs = t + gapMs;
    } else {
      current = { startMs: t, endMs: t + gapMs, times: [t] };
      sessions.push(current);
    }
  }
  return sessions;
}

/**
 * Incremental session merging in arrival order, as Flink's `MergingWindowSet`: each event opens
 * `[t, t + gap)` and merges with every session it overlaps or touches (Flink's
 * `TimeWindow.intersects` is inclusive at both ends). Out-of-order arrival can bridge two
 * sessions into one. No `maxDuration` (merging cannot be undone once split).
 */
export class SessionMerger {
  private sessions: Session[] = [];
  constructor(private readonly gapMs: number) {
    if (!(gapMs > 0)) throw new RangeError(`session gap: expected > 0 ms, got ${gapMs}`);
  }

  /** Adds one event time; returns the session it ends up in. */
  add(t: number): Session {
    let merged: Session = { startMs: t, endMs: t + this.gapMs, times: [t] };
    const rest: Session[] = [];
    for (const s of this.sessions) {
      if (s.startMs <= merged.endMs && s.endMs >= merged.startMs) {
        merged = { startMs: Math.min(s.startMs, merged.startMs), endMs: Math.max(s.endMs, merged.endMs), times: [...s.times, ...merged.times] };
      } else rest.push(s);
    }
    merged.times.sort((a, b) => a - b);
    rest.push(merged);
    // A merge can make the merged window reach a session it skipped: repeat until stable.
    this.sessions = rest;
    for (;;) {
      const before = this.sessions.length;
      this.sessions = collapse(this.sessions);
      if (this.sessions.length === before) break;
    }
    return this.sessions.find((s) => s.startMs <= t && t < s.endMs)!;
  }

  /** Current sessions, by start. */
  current(): Session[] {
    return [...this.sessions].sort((a, b) => a.startMs - b.startMs);
  }
}

function collapse(sessions: Session[]): Session[] {
  const sorted = [...sessions].sort((a, b) => a.startMs - b.startMs);
  const out: Session[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s.startMs <= last.endMs) {
      last.endMs = Math.max(last.endMs, s.endMs);
      last.times = [...last.times, ...s.times].sort((a, b) => a - b);
    } else out.push({ ...s, times: [...s.times] });
  }
  return out;
}
