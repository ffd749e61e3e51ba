import { describe, expect, it } from 'vitest';
import { advanceBreaker, processorSelectionSchema, resolveSelection, setProcessorArgsSchema } from '../../schemas/processing/selection.js';

describe('processor selection', () => {
  it('resolves a catalogue version with its flags, defaults filled', () => {
    const { processor, flags } = resolveSelection(processorSelectionSchema.parse({ name: 'request-enriched', version: 2, flags: { dropHealthChecks: false } }));
    expect(processor.version).toBe(2);
    expect(flags).toEqual({ dropHealthChecks: false, excludeServices: [], errorStatusFrom: 500 });
  });

  it('refuses an unknown processor, an unknown version and a bad flag, naming the field', () => {
    expect(() => resolveSelection({ name: 'nope', version: 1, flags: {} })).toThrow(/processor: no processor named "nope"; known: request-enriched/);
    expect(() => resolveSelection({ name: 'request-enriched', version: 9, flags: {} })).toThrow(/processor request-enriched has versions 1, 2, 3, not 9/);
    expect(() => resolveSelection({ name: 'request-enriched', version: 1, flags: { errorStatusFrom: 42 } })).toThrow(/flags\.errorStatusFrom: .*>=400/);
    expect(() => resolveSelection({ name: 'request-enriched', version: 1, flags: { typo: true } })).toThrow(/flags\.\(root\): Unrecognized key: "typo"/);
  });

  it('setProcessor arguments need a reason', () => {
    const r = setProcessorArgsSchema.safeParse({ name: 'request-enriched', version: 2 });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['reason']);
  });
});

describe('breaker', () => {
  const settings = { failureRatio: 0.5, consecutiveBatches: 3, minEvents: 10 };
  it('trips after N consecutive batches above the ratio; a healthy batch resets; small batches are not judged', () => {
    let state = { consecutive: 0 };
    const step = (processed: number, failures: number) => {
      const r = advanceBreaker(state, { processed, failures }, settings);
      state = r.state;
      return r.tripped;
    };
    expect([step(100, 90), step(100, 60)]).toEqual([false, false]);
    expect(step(100, 10)).toBe(false);
    expect(state.consecutive).toBe(0);
    expect([step(100, 51), step(5, 5), step(100, 100)]).toEqual([false, false, false]);
    expect(state.consecutive).toBe(2);
    expect(step(100, 100)).toBe(true);
    expect(advanceBreaker({ consecutive: 0 }, { processed: 100, failures: 50 }, settings).state.consecutive).toBe(0); // not above
  });
});
