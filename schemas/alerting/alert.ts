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
  /** Why it fired, for people and tools: method, score, baseline, recent windows, and the values of the query's parameters. */
  context: z
    .object({
      method: z.string(),
      score: z.number(),
      level: severitySchema.optional(),
      baseline: z.object({ center: z.number(), spread: z.number(), size: z.number() }).nullable(),
      recent: z.array(z.object({ start: z.string(), end: z.string(), value: z.number() })).max(100),
      queryParams: z.record(z.string(), z.string()),
    })
    .optional(),
});
export type AlertFiring = z.infer<typeof alertFiringSchema>;

/** Workflow type of an incident, its start signal, and the id prefix: public names (CLI, UI). */
export const alertWorkflowType = 'alert';
export const fireSignalName = 'fire';
/** Signal a detector sends when its clear condition held: the open incident resolves by itself. */
export const clearSignalName = 'clear';

/** Rank of a severity (info 0 … page 3): a firing of a higher rank upgrades the open incident. */
export function severityRank(severity: Severity): number {
  return severitySchema.options.indexOf(severity);
}

/** `clear` signal input: the detector's clear condition held (score below its clear threshold long enough). */
export const alertClearSchema = z.object({
  detector: z.string().min(1).max(200),
  /** One line for the timeline: why it cleared. */
  note: z.string().min(1).max(1000),
  /** When the detector observed it (ISO-8601 UTC). */
  clearedAt: z.string().min(1),
});
/** Input of the `clear` signal. */
export type AlertClear = z.infer<typeof alertClearSchema>;

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
