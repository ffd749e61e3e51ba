/**
 * The processor control surface of pipelines: the supervisor's `setProcessor` and `setFlags`
 * updates and `processor` query, and the signals between the supervisor and its partition
 * consumers (a change to apply at the next batch boundary; a breaker trip; a breaker pause). Names
 * are public (Temporal CLI, UI). Pure definitions; importable from workflows.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ProcessorChange, ProcessorSelection } from '../../schemas/processing/selection.js';

/** What the `processor` query and the updates return. */
export interface ProcessorStatus {
  /** The processor the pipeline runs (each partition switches at its next batch boundary). */
  processor: ProcessorSelection | null;
  /** Set while the breaker holds the pipeline paused: why. */
  breaker: { reason: string; partition: number; alertWorkflowId: string | null } | null;
  /** Changes applied so far in this run, newest last. */
  changes: (ProcessorChange & { to: ProcessorSelection })[];
}

/**
 * `setProcessor` (update): `{"name": "request-enriched", "version": 2, "flags": {}, "requestedBy": "ann",
 * "reason": "..."}`. Validated against the worker's catalogue; effective at the next batch boundary
 * of every partition; clears a breaker pause.
 */
export const setProcessorUpdate = defineUpdate<ProcessorStatus, [unknown]>('setProcessor');
/** `setFlags` (update): `{"flags": {...}, "requestedBy": "ann", "reason": "..."}`; validated by the current version's flag schema. */
export const setFlagsUpdate = defineUpdate<ProcessorStatus, [unknown]>('setFlags');
/** `processor` (query): the current processor, flags, breaker state and changes. */
export const processorQuery = defineQuery<ProcessorStatus>('processor');

/** Supervisor -> partition: run `processor` from the next batch on; `change` is recorded with that batch. */
export interface ProcessorChangedArgs {
  processor: ProcessorSelection | null;
  change: ProcessorChange;
}
/** Supervisor -> partition consumer signal (internal, but visible in history). */
export const processorChangedSignal = defineSignal<[ProcessorChangedArgs]>('processorChanged');

/** Partition -> supervisor: the breaker of one partition tripped. */
export interface BreakerTrippedArgs {
  partition: number;
  reason: string;
  ratio: number;
  batchId: string;
  processor: ProcessorSelection;
}
/** Partition consumer -> supervisor signal. */
export const breakerTrippedSignal = defineSignal<[BreakerTrippedArgs]>('breakerTripped');
/** Supervisor -> partition consumer: pause because the pipeline's breaker tripped. */
export const breakerPauseSignal = defineSignal<[{ reason: string }]>('breakerPause');
