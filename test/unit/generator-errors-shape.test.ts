/**
 * The generator's `errors` shape (an error burst, flapping with `every`): the shaped service fails
 * at the declared share inside each burst and at the base rate outside it; other services and the
 * events themselves are unchanged.
 */
import { describe, expect, it } from 'vitest';
import { errorShare, generateEvents, type IncidentShape } from '../../workers/generator.js';

const start = Date.parse('2026-03-01T00:00:00Z');

describe('errors shape', () => {
  it('flaps: a share of 5xx inside every other second, the base rate between', () => {
    const shapes: IncidentShape[] = [{ kind: 'errors', service: 'checkout', at: 2, duration: 1, every: 2, rate: 0.5 }];
    const perSecond = new Map<number, { n: number; errors: number }>();
    for (const r of generateEvents({ count: 40_000, rate: 2000, startTime: start, shapes })) {
      if (r.data?.service !== 'checkout') continue;
      const s = Math.floor((r.time - start) / 1000);
      const c = perSecond.get(s) ?? { n: 0, errors: 0 };
      c.n += 1;
      if (r.data.status >= 500) c.errors += 1;
      perSecond.set(s, c);
    }
    for (const [s, c] of perSecond) {
      const share = c.errors / c.n;
      if (s >= 2 && (s - 2) % 2 === 0) expect(share, `second ${s}`).toBeGreaterThan(0.4);
      else expect(share, `second ${s}`).toBeLessThan(0.05);
    }
    expect(perSecond.size).toBe(20);
  });

  it('a single burst without every; the largest share wins where bursts overlap', () => {
    const shapes: IncidentShape[] = [
      { kind: 'errors', service: 'search', at: 10, duration: 5, rate: 0.3 },
      { kind: 'errors', service: 'search', at: 12, duration: 1, rate: 0.9 },
    ];
    expect([9.9, 10, 12.5, 14.9, 15].map((t) => errorShare(shapes, 'search', t))).toEqual([0, 0.3, 0.9, 0.3, 0]);
    expect(errorShare(shapes, 'checkout', 12)).toBe(0);
  });

  it('leaves the other services byte for byte as without the shape', () => {
    const base = [...generateEvents({ count: 3000, startTime: start, shapes: [{ kind: 'late', fraction: 0, distribution: { type: 'uniform', maxMs: 1 } }] })];
    const shaped = [...generateEvents({ count: 3000, startTime: start, shapes: [{ kind: 'errors', service: 'payments', at: 0, duration: 100, rate: 1 }] })];
    const others = (rs: typeof base) => rs.filter((r) => r.data?.service !== 'payments').map((r) => r.value);
    expect(others(shaped)).toEqual(others(base));
    expect(shaped.filter((r) => r.data?.service === 'payments').every((r) => r.data!.status >= 500)).toBe(true);
  });
});
