/**
 * Property test of schemas/analytics/step-windows.ts against a brute-force definition: for any
 * landed ranges (each event's windows from `hoppingWindows`) and any watermark move, the windows
 * the step derives from the ranges' event-time bounds include every window that the step must
 * recompute: one holding an event of the new ranges that is still open to revision, and one that
 * becomes final (for any earlier data in it). Listed starts are aligned to the slide and the list
 * is never longer than the limit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stepWindows } from '../../schemas/analytics/step-windows.js';
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

  it('refuses (null) when a range has only one bound, so the caller reads the rows instead', () => {
    expect(stepWindows({ sizeMs: 1000, slideMs: 1000, ranges: [{ minEventTimeMs: 5, maxEventTimeMs: null }], watermarkBeforeMs: 0, watermarkAfterMs: 10, allowedLatenessMs: 0, limit: 10 })).toBeNull();
  });
});
