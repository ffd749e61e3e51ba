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

/** Workflow type of an incident, its start signal, and the id prefix: public names (CLI, UI). */
export const alertWorkflowType = 'alert';
export const fireSignalName = 'fire';

/**
 * Fingerprint of an alert: detector plus sorted labels, hashed (64-bit FNV-1a, hex). Pure and
 * stable across processes, so the same rule on the same labels always maps to the same incident.
 */
export function alertFingerprint(detector: string, labels: Record<string, string>): string {
  const canonical = [detector, ...Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`)].join('\u0000');
  let hash = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  for (const byte of new TextEncoder().encode(canonical)) {
    hash ^= BigInt(byte);
    hash = (hash * prime) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0');
}

/** Workflow id of the open incident for a fingerprint: `alert-<fingerprint>`. */
export function alertWorkflowId(fingerprint: string): string {
  return `alert-${fingerprint}`;
}
