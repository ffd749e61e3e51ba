/**
 * The routing a canary rollout gives its pipeline, as a batch plan records it, and the stable key
 * split of weight steps. The rollout workflow publishes its routing (table `rollout_routing`) each
 * time it changes; `planBatch` reads the latest row of the pipeline and puts the routing into the
 * batch plan, so it lands in history with the range and tokens: a retried batch is routed as first
 * planned, and promotion or rollback takes effect at the next batch boundary. Pure; importable
 * from workflows.
 */
import { z } from 'zod';
import { processorSelectionSchema } from '../processing/selection.js';

/**
 * The routing of one batch: which rollout, under which routing epoch and step, and how the canary
 * takes part. `shadow`: the canary also processes every event of the batch into shadow tables
 * (live outputs untouched); `weight`: events whose key falls in the first `percent` % of
 * {@link keyBucket} go to the canary in the live outputs, the others to the baseline (the batch
 * plan's `processor`).
 */
export const plannedRoutingSchema = z.strictObject({
  rolloutId: z.string().min(1),
  /** Routing epoch of the rollout (observations are tagged with it). */
  epoch: z.number().int().min(0),
  /** 0-based step index of the rollout when the routing was published. */
  step: z.number().int().min(0),
  mode: z.enum(['shadow', 'weight']),
  /** Share of keys on the canary in `weight` mode (1..99); 0 in `shadow` mode. */
  percent: z.number().int().min(0).max(100),
  /** The canary processor version and its flags. */
  canary: processorSelectionSchema,
  /** Numeric output columns observed per event for `field:<column>` metrics. @default [] */
  fields: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default([]),
});

/** The routing of a batch (see {@link plannedRoutingSchema}). */
export type PlannedRouting = z.output<typeof plannedRoutingSchema>;

/** Buckets of the key split: a bucket is `keyBucket(key)`, in [0, 10000) (0.01 % resolution). */
export const keyBuckets = 10_000;

/**
 * FNV-1a 32-bit hash of the UTF-8 bytes of `text` (Fowler, Noll, Vo; offset basis 2166136261,
 * prime 16777619, as in draft-eastlake-fnv). Stable across processes, versions and platforms.
 */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Bucket of an event key in [0, {@link keyBuckets}): `fnv1a32(key) mod 10000`. */
export function keyBucket(key: string): number {
  return fnv1a32(key) % keyBuckets;
}

/**
 * Whether an event with `key` goes to the canary at `percent` % (Flagger/Argo's weight, split by
 * key as a consistent canary): bucket < percent x 100. A key on the canary at p % stays on it at
 * every larger share, so raising the weight never moves a key back to the baseline, and per-key
 * order holds within one version.
 */
export function onCanary(key: string, percent: number): boolean {
  return keyBucket(key) < percent * (keyBuckets / 100);
}

/**
 * The processor version a rollout's `version` names, for a pipeline running processor `name`:
 * `"3"` or `"v3"` (the pipeline's processor at version 3), or `"request-enriched@3"`. Null when
 * the text is neither (the planner then leaves the batch unrouted and says why in its log).
 */
export function canaryProcessorName(version: string, pipelineProcessor: string): { name: string; version: number } | null {
  const plain = /^v?(\d{1,9})$/.exec(version);
  if (plain) return { name: pipelineProcessor, version: Number(plain[1]) };
  const named = /^([a-z][a-z0-9-]{0,62})@v?(\d{1,9})$/.exec(version);
  if (named) return { name: named[1]!, version: Number(named[2]) };
  return null;
}

/** Suffix of the shadow table of a live output table: `request_enriched_requests` -> `request_enriched_requests_shadow`. */
export const shadowTableSuffix = '_shadow';
