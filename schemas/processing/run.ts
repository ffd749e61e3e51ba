/**
 * Runs a processor's ordered stages over a micro-batch of events. Stages run one after the other
 * over the whole micro-batch (so a stage may use `applyBatch`), and every event keeps its identity
 * (its index in the input) so that its fate can be traced to its source offset. A stage that throws
 * on an event turns that event, and only it, into a `processing_error` dead letter naming the stage
 * and the message; the rest of the micro-batch flows on. Pure except for the optional async
 * `beforeStage` hook, through which the runtime loads reference data and deduplication state.
 */
import type { AnyStage, StageContext, StageOutcome } from './stage.js';

/** The fate of one input event after all stages. */
export type EventFate =
  | { readonly kind: 'emitted'; readonly index: number; readonly value: unknown; readonly outputs: readonly string[] | null }
  | { readonly kind: 'dropped'; readonly index: number; readonly stage: string; readonly reason: string }
  | { readonly kind: 'dead_letter'; readonly index: number; readonly stage: string; readonly code: string; readonly message: string };

/** Called before each stage with the values about to enter it (the runtime prepares the context). */
export type BeforeStage = (stage: AnyStage, values: readonly unknown[], indices: readonly number[]) => Promise<void> | void;

interface Live {
  index: number;
  value: unknown;
  outputs: readonly string[] | null;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function applyOne(stage: AnyStage, value: unknown, ctx: StageContext): StageOutcome<unknown> | { kind: 'thrown'; message: string } {
  try {
    return stage.apply(value, ctx) as StageOutcome<unknown>;
  } catch (err) {
    return { kind: 'thrown', message: message(err) };
  }
}

/** Runs `stage` over `values`; per-event outcomes, with exceptions isolated to their event. */
export function runStage(stage: AnyStage, values: readonly unknown[], ctx: StageContext): (StageOutcome<unknown> | { kind: 'thrown'; message: string })[] {
  if (stage.applyBatch) {
    try {
      const outcomes = stage.applyBatch(values, ctx) as StageOutcome<unknown>[];
      if (outcomes.length !== values.length) throw new Error(`applyBatch returned ${outcomes.length} outcomes for ${values.length} events`);
      return outcomes;
    } catch {
      // Isolate the event that throws: the per-event path gives the same outcomes by contract.
    }
  }
  return values.map((v) => applyOne(stage, v, ctx));
}

/**
 * Per-event processing time: pass a monotonic `clock` (ms, e.g. `performance.now`); `perEvent[i]`
 * receives the time event `i` spent in stages (a batch stage's time is shared evenly among the
 * events entering it). The time of `beforeStage` (loading reference data or dedupe state) is not
 * counted: it is I/O of the micro-batch, not processing of an event.
 */
export interface StageTimings {
  readonly clock: () => number;
  readonly perEvent: number[];
}

/** Runs one stage, timing each event into `timings` when given. */
function runStageTimed(stage: AnyStage, values: readonly unknown[], ctx: StageContext, timings: StageTimings, indices: readonly number[]): (StageOutcome<unknown> | { kind: 'thrown'; message: string })[] {
  const { clock, perEvent } = timings;
  if (stage.applyBatch) {
    const began = clock();
    const outcomes = runStage(stage, values, ctx);
    const share = (clock() - began) / Math.max(1, values.length);
    for (const i of indices) perEvent[i] = (perEvent[i] ?? 0) + share;
    return outcomes;
  }
  return values.map((v, k) => {
    const began = clock();
    const outcome = applyOne(stage, v, ctx);
    const i = indices[k]!;
    perEvent[i] = (perEvent[i] ?? 0) + (clock() - began);
    return outcome;
  });
}

/**
 * Runs `stages` over `events` with `ctx`; returns one fate per input event, in input order.
 * `beforeStage` runs before each stage with the values entering it and their input indices;
 * `timings`, when given, collects per-event processing time (see {@link StageTimings}).
 */
export async function runStages(stages: readonly AnyStage[], events: readonly unknown[], ctx: StageContext, beforeStage?: BeforeStage, timings?: StageTimings): Promise<EventFate[]> {
  const fates: EventFate[] = new Array<EventFate>(events.length);
  let live: Live[] = events.map((value, index) => ({ index, value, outputs: null }));
  for (const stage of stages) {
    if (live.length === 0) break;
    const values = live.map((l) => l.value);
    const indices = live.map((l) => l.index);
    if (beforeStage) await beforeStage(stage, values, indices);
    const outcomes = timings ? runStageTimed(stage, values, ctx, timings, indices) : runStage(stage, values, ctx);
    const next: Live[] = [];
    live.forEach((l, i) => {
      const o = outcomes[i]!;
      switch (o.kind) {
        case 'emit':
          next.push({ index: l.index, value: o.value, outputs: o.outputs ?? l.outputs });
          break;
        case 'drop':
          fates[l.index] = { kind: 'dropped', index: l.index, stage: stage.name, reason: o.reason };
          break;
        case 'dead_letter':
          fates[l.index] = { kind: 'dead_letter', index: l.index, stage: stage.name, code: o.code, message: o.message };
          break;
        case 'thrown':
          fates[l.index] = { kind: 'dead_letter', index: l.index, stage: stage.name, code: 'processing_error', message: o.message };
          break;
      }
    });
    live = next;
  }
  for (const l of live) fates[l.index] = { kind: 'emitted', index: l.index, value: l.value, outputs: l.outputs };
  return fates;
}
