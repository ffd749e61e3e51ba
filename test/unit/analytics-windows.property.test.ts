/**
 * Property tests (fast-check) of the window and watermark math against brute-force definitions:
 * an event belongs to exactly the windows [start, end) that contain it (tumbling, hopping with a
 * size that is not a multiple of the slide, slide longer than size, times before 1970); sessions
 * do not depend on arrival order and events exactly one gap apart share one (Flink, Kafka
 * Streams); the watermark never moves back.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hoppingWindows, sessionize, SessionMerger, tumblingWindow } from '../../schemas/analytics/windows.js';
import { advanceWatermark, emptyWatermarkState, isFinal, observeBatches, type BatchMark } from '../../schemas/analytics/watermark.js';

const time = fc.integer({ min: -4_000_000_000_000, max: 4_000_000_000_000 });
const offsetFor = (slide: number) => fc.integer({ min: 0, max: slide - 1 });

/** Brute force: every aligned start s (s ≡ offset mod slide) with s <= t < s + size, scanned around t. */
function bruteForce(t: number, size: number, slide: number, offset: number): number[] {
  const starts: number[] = [];
  // The aligned start at or below t - size, found by stepping (no modulo arithmetic).
  let s = offset + Math.floor((t - size - offset) / slide) * slide - slide;
  while (s <= t) {
    if (t >= s && t < s + size) starts.push(s);
    s += slide;
  }
  return starts.sort((a, b) => b - a);
}

describe('window assignment', () => {
  it('tumbling: exactly one window, containing t, aligned to the size', () => {
    fc.assert(
      fc.property(time, fc.integer({ min: 1, max: 86_400_000 }), (t, size) => {
        const w = tumblingWindow(t, size);
        expect(w.startMs <= t && t < w.endMs).toBe(true);
        expect(w.endMs - w.startMs).toBe(size);
        expect(((w.startMs % size) + size) % size).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('hopping: exactly the windows containing t, including size not a multiple of slide, slide > size, pre-1970', () => {
    fc.assert(
      // At most 40 windows per event keeps the brute force fast; sizes above and below the slide.
      fc.property(time, fc.integer({ min: 1, max: 100_000 }).chain((slide) => fc.tuple(fc.constant(slide), offsetFor(slide), fc.integer({ min: 1, max: slide * 40 }))), (t, [slide, offset, size]) => {
        const got = hoppingWindows(t, size, slide, offset).map((w) => w.startMs);
        expect(got).toEqual(bruteForce(t, size, slide, offset));
        for (const s of got) expect(t >= s && t < s + size).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('hopping: named edge cases', () => {
    // size 5 s, slide 2 s: 3 windows or 2 depending on the phase; -1 ms is in [-2000, 3000), [-4000, 1000).
    expect(hoppingWindows(-1, 5000, 2000).map((w) => w.startMs)).toEqual([-2000, -4000]);
    expect(hoppingWindows(0, 5000, 2000).map((w) => w.startMs)).toEqual([0, -2000, -4000]);
    // slide 10 s > size 3 s: t = 4 s is in a gap.
    expect(hoppingWindows(4000, 3000, 10_000)).toEqual([]);
    expect(hoppingWindows(12_999, 3000, 10_000)).toEqual([{ startMs: 10_000, endMs: 13_000 }]);
  });
});

describe('session windows', () => {
  const times = fc.array(fc.integer({ min: -1_000_000, max: 1_000_000 }), { minLength: 1, maxLength: 60 });

  it('every event is in exactly one session; the result does not depend on arrival order', () => {
    fc.assert(
      fc.property(times, fc.integer({ min: 1, max: 50_000 }), fc.integer({ min: 1, max: 500_000 }), (ts, gap, maxDuration) => {
        const a = sessionize(ts, gap, maxDuration);
        const b = sessionize([...ts].reverse(), gap, maxDuration);
        expect(a).toEqual(b);
        expect(a.flatMap((s) => s.times).sort((x, y) => x - y)).toEqual([...ts].sort((x, y) => x - y));
        for (const s of a) {
          expect(s.times[s.times.length - 1]! - s.startMs).toBeLessThanOrEqual(maxDuration);
          expect(s.endMs).toBe(s.times[s.times.length - 1]! + gap);
        }
        // Consecutive sessions are split for a reason: a gap larger than `gap`, or the duration cap.
        for (let i = 1; i < a.length; i++) {
          const prev = a[i - 1]!;
          const last = prev.times[prev.times.length - 1]!;
          const first = a[i]!.times[0]!;
          expect(first - last > gap || first - prev.startMs > maxDuration).toBe(true);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('merge and split under out-of-order arrival: incremental merging (Flink MergingWindowSet) equals the sorted result', () => {
    fc.assert(
      fc.property(times, fc.integer({ min: 1, max: 50_000 }), (ts, gap) => {
        const shuffled = fc.sample(fc.shuffledSubarray(ts, { minLength: ts.length, maxLength: ts.length }), 1)[0]!;
        const merger = new SessionMerger(gap);
        for (const t of shuffled) merger.add(t);
        expect(merger.current()).toEqual(sessionize(ts, gap));
      }),
      { numRuns: 1500 },
    );
  });

  it('events exactly one gap apart share a session; one millisecond more splits it', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e12, max: 1e12 }), fc.integer({ min: 1, max: 1e6 }), (t, gap) => {
        expect(sessionize([t, t + gap], gap)).toHaveLength(1);
        expect(sessionize([t, t + gap + 1], gap)).toHaveLength(2);
        const m = new SessionMerger(gap);
        m.add(t + gap);
        m.add(t);
        expect(m.current()).toHaveLength(1);
      }),
    );
  });

  it('a late event bridging two sessions merges them', () => {
    const m = new SessionMerger(13);
    m.add(0);
    m.add(25);
    expect(m.current()).toHaveLength(2);
    m.add(12);
    expect(m.current()).toEqual([{ startMs: 0, endMs: 38, times: [0, 12, 25] }]);
  });
});

describe('watermark', () => {
  const batch = fc.record({
    partition: fc.integer({ min: 0, max: 3 }),
    toOffset: fc.nat(1_000_000),
    maxEventTimeMs: fc.option(fc.integer({ min: -1e12, max: 1e12 }), { nil: null }),
    finishedAtMs: fc.integer({ min: 0, max: 1e7 }),
  });

  it('never moves back, whatever batches arrive, in any order, with partitions going idle and resuming', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(batch, { maxLength: 5 }), fc.integer({ min: 0, max: 1e7 })), { maxLength: 40 }), fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 1, max: 1e6 }), (steps, ooo, idle) => {
        let state = emptyWatermarkState();
        let previous: number | null = null;
        let now = 0;
        for (const [batches, advance] of steps) {
          now += advance;
          state = advanceWatermark(observeBatches(state, batches as BatchMark[], { idlenessMs: idle }), { outOfOrdernessMs: ooo, idlenessMs: idle }, now);
          if (previous !== null) expect(state.watermarkMs).not.toBeNull();
          if (previous !== null) expect(state.watermarkMs!).toBeGreaterThanOrEqual(previous);
          previous = state.watermarkMs;
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('is the minimum over active partitions; an idle partition stops holding it back after the timeout', () => {
    const policy = { outOfOrdernessMs: 1000, idlenessMs: 30_000 };
    let s = observeBatches(emptyWatermarkState(), [
      { partition: 0, toOffset: 10, maxEventTimeMs: 100_000, finishedAtMs: 0 },
      { partition: 1, toOffset: 10, maxEventTimeMs: 50_000, finishedAtMs: 0 },
    ]);
    s = advanceWatermark(s, policy, 1000);
    expect(s.watermarkMs).toBe(49_000);
    expect(isFinal({ startMs: 0, endMs: 60_000 }, s.watermarkMs)).toBe(false);
    // Partition 0 keeps landing; partition 1 goes silent.
    s = advanceWatermark(observeBatches(s, [{ partition: 0, toOffset: 20, maxEventTimeMs: 130_000, finishedAtMs: 29_000 }]), policy, 29_999);
    expect(s.watermarkMs).toBe(49_000);
    s = advanceWatermark(s, policy, 30_000);
    expect(s.watermarkMs).toBe(129_000);
    expect(isFinal({ startMs: 60_000, endMs: 120_000 }, s.watermarkMs)).toBe(true);
    // Partition 1 resumes behind: the watermark holds, it does not go back.
    s = advanceWatermark(observeBatches(s, [{ partition: 1, toOffset: 20, maxEventTimeMs: 60_000, finishedAtMs: 31_000 }]), policy, 31_000);
    expect(s.watermarkMs).toBe(129_000);
  });

  it('a pause of the whole pipeline is not idleness: after a restart the first partitions to land do not pass the backlog of the others', () => {
    // Walkthrough finding: npm start stopped for ~1 min; after the restart partitions 1 and 2 landed
    // first, partition 0 counted as idle (its last batch was before the downtime), the watermark
    // jumped a minute ahead, and partition 0's backlog went to late_events.
    const policy = { outOfOrdernessMs: 5_000, idlenessMs: 30_000 };
    const step = (s: ReturnType<typeof emptyWatermarkState>, batches: BatchMark[], nowMs: number) => advanceWatermark(observeBatches(s, batches, policy), policy, nowMs);
    let s = step(emptyWatermarkState(), [0, 1, 2].map((p) => ({ partition: p, toOffset: 100, maxEventTimeMs: 1_000_000, finishedAtMs: 1_000_500 })), 1_001_000);
    expect(s.watermarkMs).toBe(995_000);
    // 60 s of downtime, then partitions 1 and 2 land events 61 s later in event time.
    s = step(s, [1, 2].map((p) => ({ partition: p, toOffset: 200, maxEventTimeMs: 1_061_000, finishedAtMs: 1_061_000 })), 1_061_500);
    expect(s.resumedAtMs).toBe(1_061_000);
    expect(s.watermarkMs).toBe(995_000); // partition 0 holds it: its idleness clock restarted at the resumption
    const window = { startMs: 1_000_000, endMs: 1_010_000 };
    expect(isFinal(window, s.watermarkMs)).toBe(false);
    // Partition 0's backlog lands: its events are on time, and the watermark moves on.
    s = step(s, [{ partition: 0, toOffset: 150, maxEventTimeMs: 1_001_500, finishedAtMs: 1_070_000 }], 1_070_000);
    expect(s.watermarkMs).toBe(996_500);
    // A partition that stays silent after the resumption is idle again after the timeout.
    s = step(s, [1, 2].map((p) => ({ partition: p, toOffset: 300, maxEventTimeMs: 1_100_000, finishedAtMs: 1_099_000 })), 1_100_001);
    expect(s.watermarkMs).toBe(1_095_000);
    // The old workflow path (no policy) notes no pause, as before.
    const old = advanceWatermark(observeBatches(observeBatches(emptyWatermarkState(), [0, 1].map((p) => ({ partition: p, toOffset: 1, maxEventTimeMs: 0, finishedAtMs: 0 }))), [{ partition: 1, toOffset: 2, maxEventTimeMs: 90_000, finishedAtMs: 90_000 }]), policy, 90_000);
    expect(old.resumedAtMs).toBeUndefined();
    expect(old.watermarkMs).toBe(85_000);
  });
});
