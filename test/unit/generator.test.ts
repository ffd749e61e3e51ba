/**
 * The generator's pure part: deterministic for a seed, the fractions it was asked for, every
 * record's expected outcome agreeing with the real validator, skewed services, and an incident
 * that really raises one service's error rate inside its window only.
 */
import { describe, expect, it } from 'vitest';
import { validateEvent } from '../../schemas/contracts/validate.js';
import { generateEvents, prng, summarize, type GeneratorOptions } from '../../workers/generator.js';

const base: GeneratorOptions = { count: 5000, rate: 100, invalid: 0.04, malformed: 0.02, seed: 11, startTime: Date.UTC(2026, 0, 1) };

describe('generator', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = [...generateEvents({ ...base, count: 200 })];
    const b = [...generateEvents({ ...base, count: 200 })];
    const c = [...generateEvents({ ...base, count: 200, seed: 12 })];
    expect(a).toEqual(b);
    expect(a.map((r) => r.value)).not.toEqual(c.map((r) => r.value));
  });

  it('prng stays in [0, 1)', () => {
    const r = prng(3);
    for (let i = 0; i < 10_000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  it('every record gets exactly the outcome it was built for from the real validator', () => {
    for (const record of generateEvents(base)) {
      const result = validateEvent(record.value, { maxBytes: 1 << 20 });
      if (record.expectedReason === null) {
        expect(result.ok, record.value).toBe(true);
      } else {
        expect(result.ok, record.value).toBe(false);
        if (!result.ok) expect(result.reason.code, record.value).toBe(record.expectedReason);
      }
    }
  });

  it('produces roughly the asked fractions, with several kinds of violation', () => {
    const s = summarize(base);
    expect(s.total).toBe(5000);
    expect(s.valid + s.rejected).toBe(5000);
    expect(s.byReason.malformed_json! / 5000).toBeGreaterThan(0.01);
    expect(s.byReason.malformed_json! / 5000).toBeLessThan(0.03);
    const invalid = s.rejected - s.byReason.malformed_json!;
    expect(invalid / 5000).toBeGreaterThan(0.03);
    expect(invalid / 5000).toBeLessThan(0.05);
    expect(Object.keys(s.byReason).sort()).toEqual(['contract_violation', 'malformed_json', 'not_an_object', 'unknown_subject', 'unknown_version']);
  });

  it('spaces event times by the rate and skews traffic towards a few services', () => {
    const records = [...generateEvents(base)];
    expect(records[0]!.time).toBe(base.startTime);
    expect(records[100]!.time).toBe(base.startTime! + 1000);
    const byService = new Map<string, number>();
    for (const r of records) if (r.data) byService.set(r.data.service, (byService.get(r.data.service) ?? 0) + 1);
    const shares = [...byService.values()].sort((x, y) => y - x);
    expect(shares[0]! + shares[1]!).toBeGreaterThan(0.45 * records.length);
    expect(shares.at(-1)!).toBeLessThan(0.05 * records.length);
  });

  it('an incident raises the error rate of its service inside its window only', () => {
    const options = { ...base, invalid: 0, malformed: 0, incidentAt: 10, incidentDuration: 20, incidentService: 'search', incidentErrorRate: 0.5 };
    const from = base.startTime! + 10_000;
    const to = from + 20_000;
    const rate = (inside: boolean): number => {
      const rs = [...generateEvents(options)].filter((r) => r.data?.service === 'search' && (r.time >= from && r.time < to) === inside);
      return rs.filter((r) => r.data!.status >= 500).length / rs.length;
    };
    expect(rate(true)).toBeGreaterThan(0.35);
    expect(rate(false)).toBeLessThan(0.05);
    expect(summarize(options).incidentErrors).toBeGreaterThan(0);
    expect(summarize({ ...options, incidentAt: undefined }).incidentErrors).toBe(0);
  });
});
