/**
 * The incident workflow's public interface as data: its input, the arguments of its signals and
 * updates, its state and timeline as the `state` / `timeline` queries return them, and the audit
 * row shape. Pure; shared by the workflow, the audit activity and the `platform alerts` CLI.
 */
import { z } from 'zod';
import { alertFingerprint, alertFiringSchema, severitySchema } from './alert.js';
import { alertPlanSchema } from './alert-policy.js';
import { notifiedAlertSchema, notifyResultSchema } from './notification.js';

/** Lifecycle status; also the `AlertStatus` search attribute. */
export const incidentStatusSchema = z.enum(['firing', 'notified', 'acknowledged', 'snoozed', 'resolved']);
/** Lifecycle status of an incident. */
export type IncidentStatus = z.infer<typeof incidentStatusSchema>;

const who = z.string().trim().min(1, 'expected a non-empty name, e.g. "ann"').max(200);
const note = z.string().max(2000).optional();

/** `acknowledge` (update and signal): who takes the incident. */
export const acknowledgeInputSchema = z.object({ by: who, note });
/** `resolve` (update and signal). */
export const resolveInputSchema = z.object({ by: who, note });
/** `escalate` (update and signal): jump to the next level now. */
export const escalateInputSchema = z.object({ by: who, note });
/** `snooze` (update and signal): no notifications until `until`; then escalation resumes, unacknowledged. */
export const snoozeInputSchema = z.object({
  until: z.iso.datetime({ offset: true, message: 'expected an ISO-8601 time such as 2026-01-31T12:00:00Z' }),
  by: who,
  note,
});
/** Input of the acknowledge update/signal. */
export type AcknowledgeInput = z.infer<typeof acknowledgeInputSchema>;
/** Input of the resolve update/signal. */
export type ResolveInput = z.infer<typeof resolveInputSchema>;
/** Input of the escalate update/signal. */
export type EscalateInput = z.infer<typeof escalateInputSchema>;
/** Input of the snooze update/signal. */
export type SnoozeInput = z.infer<typeof snoozeInputSchema>;

/** What the group coordinator reports back after sending a batched (group_wait) notification. */
export const groupNotifiedInputSchema = z.object({
  notificationId: z.string().min(1),
  receiver: z.string().min(1),
  /** Number of alerts in the batch. */
  batchSize: z.number().int().min(1),
  results: z.array(notifyResultSchema),
});
/** Input of the internal `groupNotified` signal. */
export type GroupNotifiedInput = z.infer<typeof groupNotifiedInputSchema>;

/** Timeline entry kinds (also `alert_events.event_type`). */
export const timelineTypeSchema = z.enum([
  'opened',
  'fired_again',
  'notification',
  'queued_for_group',
  'suppressed',
  'escalated',
  'repeated',
  'acknowledged',
  'snoozed',
  'unsnoozed',
  'resolved',
  'signal_rejected',
  'suppression_check_failed',
  'continued_as_new',
  'upgraded',
]);

/** One recorded transition or notification attempt: who, when, why. */
export const timelineEntrySchema = z.object({
  seq: z.number().int().min(1),
  /** Workflow time, ISO-8601 UTC. */
  at: z.string(),
  type: timelineTypeSchema,
  /** Status after the entry. */
  status: incidentStatusSchema,
  level: z.number().int().min(0),
  /** A person, `policy` (timers), `detector`, or `group:<id>`. */
  by: z.string(),
  note: z.string(),
  receiver: z.string().optional(),
  target: z.string().optional(),
  notificationId: z.string().optional(),
  /** Notification kind for `notification` entries. */
  kind: z.string().optional(),
  delivered: z.boolean().optional(),
  /** True for a notification not sent because its target is disabled (see `NotifyResult.skipped`). */
  skipped: z.boolean().optional(),
  attempts: z.number().int().optional(),
  detail: z.string().optional(),
});
/** One timeline entry. */
export type TimelineEntry = z.infer<typeof timelineEntrySchema>;

/** The incident's state, as the `state` query and the updates return it. */
export const incidentStateSchema = z.object({
  /** `<workflowId>/<first run id>`: unique per incident, stable across continue-as-new. */
  incidentId: z.string(),
  workflowId: z.string(),
  fingerprint: z.string(),
  detector: z.string(),
  severity: severitySchema,
  summary: z.string(),
  labels: z.record(z.string(), z.string()),
  pipeline: z.string().optional(),
  query: z.string().optional(),
  status: incidentStatusSchema,
  level: z.number().int().min(0),
  count: z.number().int().min(0),
  firstSeen: z.string(),
  lastSeen: z.string(),
  openedAt: z.string(),
  acknowledgedBy: z.string().optional(),
  acknowledgedAt: z.string().optional(),
  resolvedBy: z.string().optional(),
  resolvedAt: z.string().optional(),
  snoozedUntil: z.string().optional(),
  /** When the next level (or repeat) fires if nobody acknowledges; workflow time. */
  nextEscalationAt: z.string().optional(),
  suppressedBy: z.array(z.string()).default([]),
  notificationsDelivered: z.number().int().min(0),
  notificationsFailed: z.number().int().min(0),
  /** Notifications not sent because their target is disabled; absent in states from before it was counted. */
  notificationsSkipped: z.number().int().min(0).optional(),
  plan: alertPlanSchema.optional(),
  /** Sequence counters, carried across continue-as-new so ids stay unique. */
  eventSeq: z.number().int().min(0),
  notificationSeq: z.number().int().min(0),
  /** Receivers that got a trigger/escalate/repeat, so acknowledge/resolve reach the same ones. */
  notifiedTargets: z.array(z.object({ receiver: z.string(), target: z.string() })),
  /** Latest entries (bounded; the complete trail is in ClickHouse alert_events). */
  timeline: z.array(timelineEntrySchema),
});
/** State of one incident. */
export type IncidentState = z.infer<typeof incidentStateSchema>;

/** Input of the `alert` workflow (what signal-with-start passes; `carried` only on continue-as-new). */
export const alertWorkflowInputSchema = z.object({
  fingerprint: z.string().regex(/^[0-9a-f]{16}$/, 'expected the 16-hex-digit fingerprint from alertFingerprint()'),
  firing: alertFiringSchema,
  carried: incidentStateSchema.optional(),
  /** History length at which the run continues as new, carrying its state. @default 5000 */
  historyLimit: z.number().int().min(50).max(50_000).optional(),
});
/** Input of the `alert` workflow. */
export type AlertWorkflowInput = z.infer<typeof alertWorkflowInputSchema>;

/** The incident fields every audit row repeats, so MTTA/MTTR need no joins. */
export interface AuditIncident {
  incidentId: string;
  workflowId: string;
  fingerprint: string;
  detector: string;
  severity: string;
  summary: string;
  labels: Record<string, string>;
  pipeline: string;
  /** The route's receiver: MTTA/MTTR "per receiver" groups by it. */
  routeReceiver: string;
  policy: string;
  configVersion: number;
}

/** Maximum timeline entries kept in workflow state (older ones stay in ClickHouse). */
export const timelineCap = 200;

/** Formats a zod error as `field: message; field: message` for ApplicationFailure messages. */
export function describeZodError(error: z.ZodError, root = 'input'): string {
  return error.issues
    .map((i) => `${[root, ...i.path.map(String)].join('.')}: ${i.message}`)
    .join('; ');
}

/** Workflow type of the group coordinator (group_wait / group_interval batching). */
export const alertGroupWorkflowType = 'alertGroup';

/** Input of the `alertGroup` workflow: one receiver and one group of its alerts. */
export const alertGroupInputSchema = z.object({
  receiver: z.string().min(1),
  targets: z.array(z.string().min(1)).min(1),
  groupKey: z.string(),
  groupWaitMs: z.number().int().min(0),
  groupIntervalMs: z.number().int().min(1),
});
/** Input of the `alertGroup` workflow. */
export type AlertGroupInput = z.infer<typeof alertGroupInputSchema>;

/** The `enqueue` signal of the group coordinator: an incident asks to be part of the next batch. */
export const groupEnqueueInputSchema = z.object({
  incidentWorkflowId: z.string().min(1),
  alert: notifiedAlertSchema,
  /**
   * When the alert reached the platform (the incident's `openedAt`, ISO-8601). group_wait counts
   * from the group's earliest arrival, as Alertmanager's aggregation group does from the alert's
   * receipt, not from when the coordinator got the signal. Absent (older incidents): the signal's time.
   */
  arrivedAt: z.iso.datetime({ offset: true }).optional(),
});
/** Input of the group coordinator's `enqueue` signal. */
export type GroupEnqueueInput = z.infer<typeof groupEnqueueInputSchema>;

/** Workflow id of the coordinator for (receiver, group key): `alert-group-<receiver>-<hash of key>`. */
export function alertGroupWorkflowId(receiver: string, key: string): string {
  return `alert-group-${receiver}-${alertFingerprint(`group:${receiver}`, { key })}`;
}
