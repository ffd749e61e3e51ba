/**
 * The batch plan (pure): steps tile the range, tokens are the steps' batch-id form (generation 0
 * keeps the historical token; replays get `/g<N>`), sizing follows the recorded record size, and
 * a malformed plan is refused naming the field.
 */
import { describe, expect, it } from 'vitest';
import { batchPlanSchema, cutSteps, planBatchId, planRange, stepEventsFor } from '../../schemas/ingest/batch-plan.js';

describe('batch plan', () => {
  it('cuts a range into steps that tile it, each with its own token', () => {
    expect(cutSteps('p', 't', 1, 10, 25, 0, 6)).toEqual([
      { from: 10, to: 16, token: 'p/t/1/10-16' },
      { from: 16, to: 22, token: 'p/t/1/16-22' },
      { from: 22, to: 25, token: 'p/t/1/22-25' },
    ]);
    expect(cutSteps('p', 't', 1, 5, 5, 0, 6)).toEqual([]);
  });

  it('gives replays (generation > 0) tokens that differ from the first landing', () => {
    expect(planBatchId('p', 't', 0, 0, 10, 0)).toBe('p/t/0/0-10');
    expect(planBatchId('p', 't', 0, 0, 10, 2)).toBe('p/t/0/0-10/g2');
    const first = planRange('p', 't', 0, 0, 10, 0, 4).steps.map((s) => s.token);
    const replay = planRange('p', 't', 0, 0, 10, 1, 4).steps.map((s) => s.token);
    expect(first.some((t) => replay.includes(t))).toBe(false);
  });

  it('sizes steps from the recorded record size, at least one offset', () => {
    expect(stepEventsFor(8 * 1024 * 1024, null)).toBe(8192);
    expect(stepEventsFor(8000, 300)).toBe(26);
    expect(stepEventsFor(1024, 1 << 20)).toBe(1);
  });

  it('refuses a plan whose steps do not tile its range, naming the field', () => {
    const plan = planRange('p', 't', 0, 0, 10, 0, 5);
    expect(batchPlanSchema.safeParse(plan).success).toBe(true);
    const gap = batchPlanSchema.safeParse({ ...plan, steps: [plan.steps[1]] });
    expect(gap.success).toBe(false);
    expect(gap.error?.issues.map((i) => i.path.join('.'))).toContain('steps.0');
  });
});
