/**
 * The contract between detectors and the alert workflow: what a detector sends when a rule fires.
 * Pure; importable from workflows.
 */
import { z } from 'zod';

/** Severity levels with progressive risk. */
export const severitySchema = z.enum(['info', 'warning', 'critical', 'page']);
export type Severity = z.infer<typeof severitySchema>;

/** One firing of a detector rule. Repeated firings of an open alert update it. */
export const alertFiringSchema = z.object({
  /** Detector (rule) name, e.g. `error_rate_high`. */
  detector: z.string().min(1).max(200),
  /** Identifying labels; with the detector they make the fingerprint. */
  labels: z.record(z.string(), z.string()),
  severity: severitySchema,
  /** One line for people: what fired. */
  summary: z.string().min(1).max(1000),
  /** Observed value and the threshold it crossed. */
  value: z.number(),
  threshold: z.number(),
  /** Window the value was computed on (ISO-8601 UTC). */
  windowStart: z.string().min(1),
  windowEnd: z.string().min(1),
  /** Links to the data: pipeline id and a ready-to-run SQL query. */
  pipeline: z.string().min(1).optional(),
  query: z.string().optional(),
  /** When the detector observed it (ISO-8601 UTC); detectors pass it because workflows must not read the clock for data. */
  firedAt: z.string().min(1),
});
export type AlertFiring = z.infer<typeof alertFiringSchema>;
