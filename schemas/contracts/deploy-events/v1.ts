/**
 * `deploy-events` v1: one state change of a deployment (started, succeeded, failed, rolled back).
 * Detectors correlate error-rate and latency changes in request telemetry with the deploys of the
 * same service and region. Pure; importable from workflows.
 */
import { z } from 'zod';

/** Subject name of this contract. */
export const deployEventsSubject = 'deploy-events';

/** Deployment states, in the order a deploy normally goes through them. */
export const deployStates = ['started', 'succeeded', 'failed', 'rolled_back'] as const;

/** The `data` of a deploy-events v1 event. */
export const deployEventsV1 = z.object({
  /** Deployment id, shared by every state change of one deploy. */
  deploy_id: z.string().min(1).max(128),
  /** Service being deployed, e.g. `checkout` (same naming as request-telemetry). */
  service: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'expected a lowercase service name like checkout'),
  /** Environment, e.g. `production`. */
  environment: z.enum(['development', 'staging', 'production']),
  /** Cloud region, e.g. `eu-west-1`; absent for global deploys. */
  region: z.string().regex(/^[a-z]{2}-[a-z]+-\d$/, 'expected a region like eu-west-1').optional(),
  /** The new state of the deploy. */
  state: z.enum(deployStates),
  /** Version being rolled out (tag or semver). */
  version: z.string().min(1).max(128),
  /** Version it replaces, when known. */
  previous_version: z.string().min(1).max(128).optional(),
  /** Git commit (7 to 40 hex digits). */
  commit_sha: z.string().regex(/^[0-9a-f]{7,40}$/, 'expected 7 to 40 lowercase hex digits').optional(),
  /** Who or what triggered the deploy, e.g. `ci` or a user name. */
  actor: z.string().min(1).max(256),
  /** Share of traffic on the new version, 0-100 (canary steps). @default 100 */
  traffic_percent: z.number().min(0).max(100).default(100),
});

/** A deploy-events v1 payload. */
export type DeployEventsV1 = z.infer<typeof deployEventsV1>;
