/**
 * Processing activities the workflows call directly: `openProcessorBreakerAlert` (the breaker has
 * paused a pipeline: open an incident through the alert workflow by signal-with-start, so a second
 * trip of the same processor on the same pipeline reaches the open incident) and
 * `prepareProcessor` (create/evolve the output tables of a version before its first batch, and
 * refuse a version the worker's catalogue does not hold).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import { processorSelectionSchema, resolveSelection, type ProcessorSelection } from '../../schemas/processing/selection.js';
import { fireAlert } from '../alerting/alert-firing.js';
import { InvalidInputError, toActivityFailure } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { applyOutputTables, type TableApplyResult } from './tables.js';

/** Detector name of breaker alerts (part of the alert fingerprint, shown in the UI). */
export const processorBreakerDetector = 'processor-breaker';

/** Input of `openProcessorBreakerAlert`. */
export interface BreakerAlertInput {
  pipelineId: string;
  topic: string;
  partition: number;
  processor: ProcessorSelection;
  /** Failure ratio of the last batch, 0..1. */
  ratio: number;
  threshold: number;
  consecutiveBatches: number;
  /** The last failing batch. */
  batchId: string;
  /** The sentence the pipeline shows in its current details. */
  reason: string;
}

/** Dependencies of {@link createProcessingActivities}. */
export interface ProcessingActivityDeps {
  warehouse: ClickHouseClient;
  temporal: Client;
  taskQueue: string;
  log?: Logger;
}

/** Builds the processing activities. */
export function createProcessingActivities(deps: ProcessingActivityDeps) {
  const log = deps.log ?? silentLogger;
  return {
    /** Opens (or reaches) the incident for a tripped processor breaker; returns its workflow id. */
    async openProcessorBreakerAlert(input: BreakerAlertInput): Promise<{ workflowId: string }> {
      const now = new Date().toISOString();
      const { workflowId } = await fireAlert(deps.temporal, deps.taskQueue, {
        detector: processorBreakerDetector,
        labels: { pipeline: input.pipelineId, processor: `${input.processor.name}@${input.processor.version}` },
        severity: 'critical',
        summary: input.reason,
        value: input.ratio,
        threshold: input.threshold,
        windowStart: now,
        windowEnd: now,
        pipeline: input.pipelineId,
        query: `SELECT reason_code, reason_message, count() AS n FROM dead_letters WHERE pipeline = '${input.pipelineId.replace(/'/g, '')}' AND reason_code IN ('processing_error', 'output_violation') GROUP BY reason_code, reason_message ORDER BY n DESC LIMIT 20`,
        firedAt: now,
      });
      log.warn('processor breaker tripped; alert opened', { workflowId, pipeline: input.pipelineId, partition: input.partition, batchId: input.batchId });
      return { workflowId };
    },

    /**
     * Checks a selection against the worker's catalogue and creates/evolves its output tables
     * (ADD COLUMN only). Non-retryable `invalid_input` when the version or flags are unknown.
     */
    async prepareProcessor(input: ProcessorSelection): Promise<TableApplyResult[]> {
      try {
        const selection = processorSelectionSchema.parse(input);
        let resolved;
        try {
          resolved = resolveSelection(selection);
        } catch (err) {
          throw new InvalidInputError((err as Error).message);
        }
        return await applyOutputTables(deps.warehouse, resolved.processor);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },
  };
}

/** The processing activities. */
export type ProcessingActivities = ReturnType<typeof createProcessingActivities>;
