/**
 * Validation at workflow boundaries: a bad input, signal or query argument fails at once with a
 * non-retryable ApplicationFailure (type `invalid_input`) whose message names each field, the
 * expected form and what was found. Also the platform's search attribute keys, typed.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { describeInputError } from '../schemas/ingest/pipeline.js';

/** Parses `value` with `schema` or throws a non-retryable `invalid_input` failure. */
export function parseOrFail<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw ApplicationFailure.create({ type: 'invalid_input', message: describeInputError(what, parsed.error, value), nonRetryable: true });
}

/** Typed keys of the pipeline search attributes (names from schemas/search-attributes.ts). */
export const pipelineKey = defineSearchAttributeKey('Pipeline', SearchAttributeType.KEYWORD);
/** Typed key of the KafkaTopic search attribute. */
export const kafkaTopicKey = defineSearchAttributeKey('KafkaTopic', SearchAttributeType.KEYWORD);
