/**
 * Property test of schemas/analytics/step-windows.ts against a brute-force definition: for any
 * landed ranges (each event's windows from `hoppingWindows`) and any watermark move, the windows
 * the step derives from the ranges' event-time bounds include every window that the step must
 * recompute: one holding an event of the new ranges that is still open to revision, and one that
 * becomes final (for any earlier data in it). Listed starts are aligned to the slide and the list
 * is never longer than the limit. With the provisional refresh deferred (`openWindows: 'none'`) no
 * window still open after the step is listed, and `deferredOpen` says so whenever one had new
 * data; with `{ spans }` every open window overlapping a span (or touched) is listed, and no open
 * window that neither does. `mergeSpans` keeps every instant of the spans it merges.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeSpans, stepWindows, type TimeSpan } from '../../schemas/analytics/step-windows.js';
import { hoppingWindows } from '../../schemas/analytics/windows.js';

const contains = (r: NonNullable<ReturnType<typeof stepWindows>>, listed: Set<number>, s: number, slide: number) =>
  r.list ? listed.has(s) : s >= r.lo && s <= r.hi && (((s - r.lo) % slide) + slide) % slide === 0;

describe('stepWindows', () => {
  it('covers every window with new data open to revision and every window becoming final', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 200, max: 20_000 }),
        fc.array(fc.array(fc.integer({ min: -200_000, max: 200_000 }), { maxLength: 12 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: -200_000, max: 200_000 }), { maxLength: 30 }),
        fc.integer({ min: -150_000, max: 150_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 5, max: 1000 }),
        (size, slide, ranges, earlier, before, advance, lateness, limit) => {
          const after = before + advance;
          const got = stepWindows({
            sizeMs: size,
            slideMs: slide,
            ranges: ranges.map((r) => (r.length === 0 ? { minEventTimeMs: null, maxEventTimeMs: null } : { minEventTimeMs: Math.min(...r), maxEventTimeMs: Math.max(...r) })),
            watermarkBeforeMs: before,
            watermarkAfterMs: after,
            allowedLatenessMs: lateness,
            limit,
          });
          expect(got).not.toBeNull();
          const r = got!;
          const listed = new Set(r.list ?? []);
          if (r.list) {
            expect(r.list.length).toBeLessThanOrEqual(limit);
            expect(r.count).toBe(r.list.length);
            for (const s of r.list) expect(((s % slide) + slide) % slide).toBe(0);
          }
          for (const t of ranges.flat()) {
            for (const w of hoppingWindows(t, size, slide)) {
              if (w.endMs - 1 + lateness > before) expect(contains(r, listed, w.startMs, slide)).toBe(true);
            }
          }
          for (const t of [...earlier, ...ranges.flat()]) {
            for (const w of hoppingWindows(t, size, slide)) {
              if (w.endMs - 1 > before && w.endMs - 1 <= after) expect(contains(r, listed, w.startMs, slide)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('defers provisional windows (none) or lists the open ones touched or overlapping the pending spans', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 200, max: 20_000 }),
        fc.array(fc.array(fc.integer({ min: -200_000, max: 200_000 }), { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -150_000, max: 150_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.array(fc.tuple(fc.integer({ min: -200_000, max: 200_000 }), fc.integer({ min: 0, max: 20_000 })), { maxLength: 4 }),
        (size, slide, ranges, before, advance, lateness, pendingRaw) => {
          const after = before + advance;
          const base = {
            sizeMs: size,
            slideMs: slide,
            ranges: ranges.map((r) => ({ minEventTimeMs: Math.min(...r), maxEventTimeMs: Math.max(...r) })),
            watermarkBeforeMs: before,
            watermarkAfterMs: after,
            allowedLatenessMs: lateness,
            limit: 100_000,
          };
          const events = ranges.flat();
          const spans = pendingRaw.map(([a, w]): TimeSpan => [a, a + w]);
          const none = stepWindows({ ...base, openWindows: 'none' })!;
          const upto = stepWindows({ ...base, openWindows: { spans } })!;
          const noneSet = new Set(none.list);
          const uptoSet = new Set(upto.list);
          // Not deferred in either mode: final after the step, with new data open to revision, or becoming final.
          for (const t of events) {
            for (const w of hoppingWindows(t, size, slide)) {
              if (w.endMs - 1 <= after && w.endMs - 1 + lateness > before) {
                expect(noneSet.has(w.startMs)).toBe(true);
                expect(uptoSet.has(w.startMs)).toBe(true);
              }
              if (w.endMs - 1 > after) {
                expect(none.deferredOpen).toBe(true);
                expect(uptoSet.has(w.startMs)).toBe(true);
              }
            }
          }
          for (const s of none.list!) expect(s + size - 1).toBeLessThanOrEqual(after);
          // Open windows listed by the refresh: exactly those touched or overlapping a span (aligned starts).
          const overlaps = (s: number, [a, b]: readonly [number, number]) => s <= b && s + size > a;
          const touched = (s: number) => base.ranges.some((r) => overlaps(s, [r.minEventTimeMs, r.maxEventTimeMs]));
          for (const [a, b] of spans) {
            let s = Math.ceil((Math.max(a - size + 1, after - size + 2)) / slide) * slide;
            for (let n = 0; s <= b && n < 50; s += slide, n++) expect(uptoSet.has(s)).toBe(true);
          }
          for (const s of upto.list!) if (s + size - 1 > after) expect(touched(s) || spans.some((sp) => overlaps(s, sp))).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('mergeSpans keeps every instant, returns sorted disjoint spans, at most max of them', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 100 })), { maxLength: 12 }),
        fc.array(fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 100 })), { maxLength: 12 }),
        fc.integer({ min: 1, max: 6 }),
        (x, y, max) => {
          const a = x.map(([s, w]): TimeSpan => [s, s + w]);
          const b = y.map(([s, w]): TimeSpan => [s, s + w]);
          const out = mergeSpans(mergeSpans([], a, max), b, max);
          expect(out.length).toBeLessThanOrEqual(max);
          for (let i = 1; i < out.length; i++) expect(out[i]![0]).toBeGreaterThan(out[i - 1]![1] + 1);
          for (const [s, e] of [...a, ...b]) for (const t of [s, e, Math.floor((s + e) / 2)]) expect(out.some(([p, q]) => t >= p && t <= q)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses (null) when a range has only one bound, so the caller reads the rows instead', () => {
    expect(stepWindows({ sizeMs: 1000, slideMs: 1000, ranges: [{ minEventTimeMs: 5, maxEventTimeMs: null }], watermarkBeforeMs: 0, watermarkAfterMs: 10, allowedLatenessMs: 0, limit: 10 })).toBeNull();
  });
});
