/**
 * A rollout's target must be a registered processor version: `3`, `v3` (the pipeline's processor)
 * or `name@3`, with flags its flag schema accepts. Refusals name the input field. Checked against
 * the working tree's catalogue (request-enriched 1, 2) and the test catalogue (adds 3, 4).
 */
import { describe, expect, it } from 'vitest';
import { processors as tree } from '../../schemas/processors/index.js';
import { describeTargetRefusal, resolveRolloutTarget, type RolloutTargetCheck } from '../../schemas/rollouts/target.js';
import { processors as regressed } from '../fixtures/processors/regressed.js';

const refusal = (c: RolloutTargetCheck) => (c.ok ? 'accepted' : describeTargetRefusal(c));

describe('rollout target', () => {
  it('resolves 2, v2 and request-enriched@2 to the registered version, flags parsed with defaults', () => {
    for (const v of ['2', 'v2', 'request-enriched@2']) {
      expect(resolveRolloutTarget(v, {}, 'request-enriched', tree)).toEqual({
        ok: true,
        target: { name: 'request-enriched', version: 2, flags: { dropHealthChecks: true, excludeServices: [], errorStatusFrom: 500 } },
      });
    }
    expect(resolveRolloutTarget('3', {}, 'request-enriched', regressed)).toMatchObject({ ok: true, target: { version: 3 } });
  });

  it('refuses a version that is not registered, naming input.version and the known versions', () => {
    expect(refusal(resolveRolloutTarget('9', {}, 'request-enriched', tree))).toBe('input.version: processor request-enriched has versions 1, 2, 3, not 9 (expected a registered version: 3, v3 or name@3)');
    expect(refusal(resolveRolloutTarget('4', {}, 'request-enriched', tree))).toMatch(/^input\.version: processor request-enriched has versions 1, 2, 3, not 4/);
    expect(refusal(resolveRolloutTarget('orders-enriched@2', {}, 'request-enriched', tree))).toMatch(/^input\.version: no processor named "orders-enriched"; known: request-enriched/);
    expect(refusal(resolveRolloutTarget('latest', {}, 'request-enriched', tree))).toBe('input.version: "latest" names no processor version (expected a registered version: 3, v3 or name@3)');
  });

  it('a pipeline without a processor: a plain version must name exactly one registered family', () => {
    expect(resolveRolloutTarget('v2', {}, null, tree)).toMatchObject({ ok: true, target: { name: 'request-enriched', version: 2 } });
    expect(refusal(resolveRolloutTarget('v7', {}, null, tree))).toBe('input.version: "v7": the pipeline runs no processor, and no registered processor has that version (registered: request-enriched 1, 2, 3)');
  });

  it('refuses flags the target version does not accept, naming input.flags.<flag>', () => {
    expect(refusal(resolveRolloutTarget('2', { errorStatusFrom: 200 }, 'request-enriched', tree))).toMatch(/^input\.flags\.errorStatusFrom: .*400.* \(flags of request-enriched v2\)$/);
    expect(refusal(resolveRolloutTarget('2', { nope: true }, 'request-enriched', tree))).toMatch(/^input\.flags: .*nope.* \(flags of request-enriched v2\)$/);
  });
});
