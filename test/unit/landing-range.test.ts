/**
 * The activity interceptor reads the landed range from landBatch's argument in both shapes the
 * landing path uses: the flat range and a recorded batch plan (whose batch id then wins).
 */
import { describe, expect, it } from 'vitest';
import { landingRangeOf } from '../../activities/observability/interceptor.js';
import { batchRunId } from '../../activities/observability/openlineage.js';

describe('landingRangeOf', () => {
  it('reads the flat range and the recorded plan, and refuses anything else', () => {
    expect(landingRangeOf({ pipelineId: 'p', topic: 't', partition: 2, from: 10, to: 20, maxEventBytes: 1 })).toEqual({ pipelineId: 'p', topic: 't', partition: 2, from: 10, to: 20 });
    expect(landingRangeOf({ plan: { pipelineId: 'p', topic: 't', partition: 2, from: 10, to: 20, generation: 1, batchId: 'p/t/2/10-20/g1', steps: [] }, maxEventBytes: 1 })).toEqual({
      pipelineId: 'p',
      topic: 't',
      partition: 2,
      from: 10,
      to: 20,
      batchId: 'p/t/2/10-20/g1',
    });
    expect(landingRangeOf({ plan: { pipelineId: 'p' } })).toBeNull();
    expect(landingRangeOf(null)).toBeNull();
    expect(landingRangeOf('p/t/2/10-20')).toBeNull();
  });

  it('gives each batch id one stable name-based UUID', () => {
    const a = batchRunId('p/t/0/0-100');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(batchRunId('p/t/0/0-100')).toBe(a);
    expect(batchRunId('p/t/0/100-200')).not.toBe(a);
  });
});
