/**
 * How a pipeline names its processor (start input, `setProcessor` and `setFlags` updates) and the
 * checks behind their validators: the processor and version exist in the catalogue the worker was
 * built with, and the flags parse with the version's flag schema. Also the breaker's arithmetic.
 * Pure; importable from workflows (validators run there).
 */
import { z } from 'zod';
import { lookupProcessor, processors as treeProcessors } from '../processors/index.js';
import type { BreakerSettings, ProcessorDefinition, ProcessorFamily } from './define.js';

const flagsRecord = z.record(z.string(), z.unknown(), { message: 'expected an object of flag values, e.g. {"dropHealthChecks": false}' });

/** A processor choice as people write it: `{"name": "request-enriched", "version": 2, "flags": {...}}`. */
export const processorSelectionSchema = z.strictObject({
  name: z.string({ message: 'expected a processor name' }).regex(/^[a-z][a-z0-9-]{0,62}$/, 'expected a processor name like request-enriched'),
  version: z.number({ message: 'expected a version number' }).int('expected an integer version').min(1, 'expected a version >= 1'),
  /** Flag values; unset flags take the version's defaults. @default {} */
  flags: flagsRecord.default({}),
});

/** A processor choice after defaults. */
export type ProcessorSelection = z.output<typeof processorSelectionSchema>;

const who = {
  /** Who asks (recorded in the audit table). @default "unknown" */
  requestedBy: z.string().min(1).max(200).default('unknown'),
  /** Why (recorded in the audit table). */
  reason: z.string({ message: 'expected a reason (recorded in the audit table)' }).min(1, 'expected a reason (recorded in the audit table)').max(500),
};

/** Argument of the `setProcessor` update. */
export const setProcessorArgsSchema = z.strictObject({ ...processorSelectionSchema.shape, ...who });
/** Argument of the `setFlags` update. */
export const setFlagsArgsSchema = z.strictObject({ flags: flagsRecord, ...who });

/** A change waiting for the next batch boundary: what and who, for the audit row. */
export const processorChangeSchema = z.strictObject({
  change: z.enum(['processor', 'flags']),
  requestedBy: z.string(),
  reason: z.string(),
  /** ISO-8601, from the workflow's deterministic clock. */
  requestedAt: z.string(),
  from: processorSelectionSchema.nullable(),
});

/** A pending change (see {@link processorChangeSchema}). */
export type ProcessorChange = z.output<typeof processorChangeSchema>;

/**
 * Resolves a selection against a catalogue: the version's definition and its parsed flags. Throws
 * an Error whose message names the field (`version`, `flags.errorStatusFrom`) and what is expected.
 */
export function resolveSelection(selection: ProcessorSelection, catalogue: readonly ProcessorFamily[] = treeProcessors): { processor: ProcessorDefinition; flags: Record<string, unknown> } {
  const found = lookupProcessor(selection.name, selection.version, catalogue);
  if (!found.found) throw new Error(`processor: ${found.message}`);
  const parsed = found.processor.flags.safeParse(selection.flags);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `flags.${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    throw new Error(`${selection.name} v${selection.version}: ${issues.join('; ')}`);
  }
  return { processor: found.processor, flags: parsed.data as Record<string, unknown> };
}

/** The breaker's memory between batches of one partition. */
export interface BreakerState {
  /** Failing batches in a row so far. */
  readonly consecutive: number;
}

/** One batch's outcome as the breaker judges it. */
export interface BreakerInput {
  /** Events that entered the processor. */
  readonly processed: number;
  /** processing_error + output_violation dead letters. */
  readonly failures: number;
}

/**
 * Advances the breaker by one batch (after Hystrix/resilience4j's failure-rate breaker, counted over
 * consecutive batches): a batch with at least `minEvents` events and a failure ratio above
 * `failureRatio` counts as failing; a judged batch that is not failing resets the count; smaller
 * batches leave it as it is. Trips when the count reaches `consecutiveBatches`.
 */
export function advanceBreaker(state: BreakerState, batch: BreakerInput, settings: BreakerSettings): { state: BreakerState; tripped: boolean; ratio: number | null } {
  if (batch.processed < settings.minEvents) return { state, tripped: false, ratio: null };
  const ratio = batch.failures / batch.processed;
  const consecutive = ratio > settings.failureRatio ? state.consecutive + 1 : 0;
  return { state: { consecutive }, tripped: consecutive >= settings.consecutiveBatches, ratio };
}
