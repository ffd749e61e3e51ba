/**
 * The contract between the alert workflow and the notification channels (activities).
 * The workflow decides *when* and *whom*; a channel activity delivers one notification, idempotent
 * per `notificationId`. Pure; importable from workflows.
 */
import { z } from 'zod';
import { severitySchema } from './alert.js';

/** Why a notification is sent; PagerDuty maps these to trigger / acknowledge / resolve. */
export const notificationKindSchema = z.enum(['trigger', 'repeat', 'escalate', 'acknowledge', 'resolve']);
export type NotificationKind = z.infer<typeof notificationKindSchema>;

/** The alert as a notification shows it. */
export const notifiedAlertSchema = z.object({
  /** Workflow id of the incident. */
  incidentId: z.string().min(1),
  fingerprint: z.string().min(1),
  detector: z.string().min(1),
  severity: severitySchema,
  status: z.string().min(1),
  summary: z.string(),
  labels: z.record(z.string(), z.string()),
  /** Escalation level (0-based) at the time of sending. */
  level: z.number().int().min(0),
  firstSeen: z.string(),
  lastSeen: z.string(),
  count: z.number().int().min(1),
  acknowledgedBy: z.string().optional(),
  pipeline: z.string().optional(),
  query: z.string().optional(),
});
export type NotifiedAlert = z.infer<typeof notifiedAlertSchema>;

/** One notification to one receiver target; possibly a group of alerts (group_wait batching). */
export const notificationSchema = z.object({
  /** Idempotency key: the same id is delivered at most once per target. Derived by the workflow (incident id + sequence). */
  notificationId: z.string().min(1),
  kind: notificationKindSchema,
  /** Name of the receiver (from the routing config) and one of its targets, e.g. `webhook:ops`, `email:oncall@example.com`. */
  receiver: z.string().min(1),
  target: z.string().min(1),
  alerts: z.array(notifiedAlertSchema).min(1),
  /** Signed acknowledge link for the first alert, when the platform's HTTP endpoint is configured. */
  ackUrl: z.string().optional(),
});
export type Notification = z.infer<typeof notificationSchema>;

/** What a delivery attempt reports back to the workflow (recorded in the timeline and alert_events). */
export const notifyResultSchema = z.object({
  notificationId: z.string(),
  target: z.string(),
  delivered: z.boolean(),
  /** True when this id had already been delivered (idempotent replay). */
  duplicate: z.boolean(),
  /** Channel detail: HTTP status, SMTP response, error text. */
  detail: z.string(),
  attempts: z.number().int().min(1),
  /**
   * True when nothing was sent because the target is disabled (its environment variables are not
   * set and the worker runs with `ALERT_CHANNELS_MISSING_SECRETS=disable`). A skipped notification
   * is neither delivered nor failed: escalation goes on, and the timeline says why.
   * @default false (absent)
   */
  skipped: z.boolean().optional(),
});
export type NotifyResult = z.infer<typeof notifyResultSchema>;
