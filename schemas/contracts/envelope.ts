/**
 * The envelope every event on a platform topic carries, whatever its contract. The envelope says
 * which contract (`subject` + `version`) the `data` must satisfy; `time` is the event time used by
 * windowed rollups; `key` is the business key (also the Kafka message key by convention).
 * Pure; importable from workflows.
 */
import { z } from 'zod';

/** Largest contract version number accepted in an envelope. */
export const maxContractVersion = 10_000;

/** Fields every event carries, with `data` left for the contract to check. */
export const envelopeSchema = z.object({
  /** Producer-assigned unique id (UUID), used to spot duplicates. */
  id: z.uuid({ message: 'expected a UUID' }),
  /** Contract subject, e.g. `request-telemetry`. */
  subject: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,99}$/, 'expected a lowercase subject like request-telemetry'),
  /** Contract version (positive integer). */
  version: z.number().int('expected an integer version').min(1).max(maxContractVersion),
  /** Event time, ISO-8601 with an offset or Z, e.g. 2026-01-01T12:00:00.000Z. */
  time: z.iso.datetime({ offset: true, message: 'expected an ISO-8601 timestamp such as 2026-01-01T12:00:00Z' }),
  /** Business key (partitioning key). */
  key: z.string().min(1, 'expected a non-empty key').max(512),
  /** The contract-specific payload. */
  data: z.unknown(),
});

/** A parsed envelope with unchecked data. */
export type Envelope = z.infer<typeof envelopeSchema>;

/** An envelope whose data satisfied its contract. */
export interface ValidEvent<T = unknown> extends Omit<Envelope, 'data'> {
  data: T;
}
