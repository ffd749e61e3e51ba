/**
 * What a running rollout shows (query `state`, CLI, continue-as-new carry-over) and the inputs of
 * its updates. Pure; importable from workflows.
 */
import { z } from 'zod';

/**
 * Lifecycle of a rollout (search attribute `RolloutStatus`):
 * `progressing` (stepping), `paused` (waiting for a person: pause step, marginal or inconclusive
 * judgement, or a person paused it), `promoted` (canary at 100 %), `rolled_back` (a judgement
 * failed), `aborted` (a person aborted), `refused` (another rollout holds the pipeline).
 */
export const rolloutStatusSchema = z.enum(['progressing', 'paused', 'promoted', 'rolled_back', 'aborted', 'refused']);
/** A rollout status. */
export type RolloutStatus = z.infer<typeof rolloutStatusSchema>;

/** Statuses after which nothing changes any more. */
export const finalRolloutStatuses: readonly RolloutStatus[] = ['promoted', 'rolled_back', 'aborted', 'refused'];

/**
 * The routing a rollout gives its pipeline, applied at batch boundaries. `epoch` increases with
 * every change so that observations and landed batches can name the routing they ran under.
 * `baseline`: canary off; `shadow`: the canary also processes every batch into shadow tables;
 * `weight`: `weightPercent` of keys (stable hash of the event key) on the canary; `canary`: all keys.
 */
export interface Routing {
  mode: 'baseline' | 'shadow' | 'weight' | 'canary';
  baselineVersion: string;
  canaryVersion: string;
  weightPercent: number;
  epoch: number;
}

/** Outcome of a judgement (Kayenta's classification plus inconclusive). */
export type JudgementOutcome = 'pass' | 'marginal' | 'inconclusive' | 'fail';

/** A judgement as the workflow keeps it (the full report is in `canary_judgements`). */
export interface JudgementSummary {
  judgementId: string;
  /** Index of the judged step (0-based, internal; kept for compatibility). */
  step: number;
  /**
   * The judged step as people count it: 1-based (`step + 1`), as the details line, `platform
   * rollouts show` and column `step_number` say. Absent in states recorded before it existed.
   */
  stepNumber?: number;
  epoch: number;
  outcome: JudgementOutcome;
  score: number;
  /** One line per metric: `reject_rate fail (p=0.0001, +2.5 pp)`. */
  metrics: string[];
  at: string;
}

/** One entry of the rollout's audit trail (also a row of `rollout_events`). */
export interface RolloutEvent {
  seq: number;
  at: string;
  type: 'started' | 'step' | 'routing' | 'judgement' | 'paused' | 'resumed' | 'promoted' | 'rolled_back' | 'aborted' | 'reminded' | 'refused' | 'continued';
  /** Index of the step the rollout was at (0-based, internal; equals the step count once all steps ran). */
  step: number;
  /**
   * The step as people count it: 1-based and at most the step count (`step 4 of 4`; an event after
   * the last step, such as the promotion that follows it, belongs to the last step). Written to
   * column `step_number` of `rollout_events`. Absent in states recorded before it existed.
   */
  stepNumber?: number;
  by: string;
  reason: string;
}

/** Everything the `state` query returns and continue-as-new carries. */
export interface RolloutState {
  rolloutId: string;
  pipeline: string;
  version: string;
  baselineVersion: string;
  status: RolloutStatus;
  /** Index of the current step (0-based); equals `stepCount` once all steps ran. */
  step: number;
  /**
   * The current step as people count it: 1-based, `step N of stepCount` (the details line,
   * `platform rollouts show`, column `step_number` of the rollout tables); at most `stepCount`.
   * Absent in states published before it existed.
   */
  stepNumber?: number;
  stepCount: number;
  /** Current step in words, e.g. `weight 25 %`. */
  stepDescription: string;
  routing: Routing;
  /** When the current step began (ISO). */
  stepStartedAt: string;
  /** When the current timed step ends (ISO), unless paused. */
  stepEndsAt?: string;
  /** Time left of a timed step that a person paused (ms). */
  remainingMs?: number;
  /** Start of the window the next judgement covers (ISO): when the current routing took effect. */
  windowStartedAt: string;
  /** Why it is paused, and who paused it (`judgement`, `step`, or a person). */
  pause?: { by: string; reason: string; at: string; cause: 'person' | 'step' | 'judgement' };
  judgements: JudgementSummary[];
  /** Last events of the audit trail (the whole trail is in `rollout_events`). */
  events: RolloutEvent[];
  eventSeq: number;
  /** Workflow id of the incident opened or reminded through the alert workflow. */
  incident?: string;
  /**
   * Run id of the rollout's first run (continue-as-new keeps it), carried by its incidents as the
   * `run` label, so a later rollout under the same id (the same version tried again) opens incidents
   * of its own instead of re-firing the earlier one's. Absent in rollouts started before it existed,
   * whose incidents keep the labels `pipeline` and `rollout` only.
   */
  incidentRun?: string;
  /** Workflow id of the open `canary_rollout_waiting` incident; cleared (resolved) once the rollout no longer waits for a person. */
  waitingIncident?: string;
  lockHeld: boolean;
  /** Whether the current step's entry actions (routing change, timer) ran. */
  stepEntered: boolean;
  startedAt: string;
  finishedAt?: string;
  /** The last line of the current details, in words. */
  details: string;
  /** Routing epoch last published to the pipeline (`rollout_routing`). @default 0 (none) */
  publishedEpoch?: number;
  /** What the promotion hand-over to the pipeline's `setProcessor` did, in words. */
  handover?: string;
}

/** Events kept in workflow state (older ones are only in ClickHouse). */
export const rolloutEventCap = 50;

/** Input of every human control: who and why (both recorded). */
export const controlInputSchema = z
  .object({
    by: z.string().trim().min(1, 'expected who is acting, e.g. "alice"').max(200),
    reason: z.string().trim().min(1, 'expected why, e.g. "latency looks fine on the dashboard"').max(2000),
  })
  .strict();
/** Input of promote / pause / resume / abort. */
export type ControlInput = z.infer<typeof controlInputSchema>;

/**
 * A step index as people count it: 1-based and at most `stepCount`. The index runs one past the
 * last step once all steps ran (the promotion that follows); that moment belongs to the last step
 * (`step 4 of 4`), never to a step `stepCount + 1` that does not exist. The details line, query
 * `state` (`stepNumber` of the state, its events and judgements), `rollout_events.step_number` and
 * `rollout_routing.step_number` all use it, so they agree.
 */
export function stepNumberOf(step: number, stepCount: number): number {
  return Math.max(1, Math.min(step + 1, stepCount));
}
