/**
 * Custom search attributes of the platform. They are part of the public interface: people type
 * them in Temporal UI / CLI visibility queries (`AlertStatus = "firing"`), so names are chosen once.
 * The local stack registers them at start; production clusters register them with
 * `temporal operator search-attribute create`.
 */
export const searchAttributes = {
  /** Pipeline id a workflow belongs to. */
  Pipeline: 'Keyword',
  /** Kafka topic a consumer workflow reads. */
  KafkaTopic: 'Keyword',
  /** Alert lifecycle status: firing, notified, acknowledged, snoozed, resolved. */
  AlertStatus: 'Keyword',
  /** Alert severity: info, warning, critical, page. */
  AlertSeverity: 'Keyword',
  /** Alert fingerprint (detector + sorted labels, hashed). */
  AlertFingerprint: 'Keyword',
  /** Who acknowledged the alert. */
  AlertAcknowledgedBy: 'Keyword',
  /** Current escalation level (0-based). */
  AlertLevel: 'Int',
  /** Canary rollout status: progressing, paused, promoted, rolled_back, aborted, refused. */
  RolloutStatus: 'Keyword',
  /** Pipeline a canary rollout changes (one running rollout per pipeline). */
  RolloutPipeline: 'Keyword',
} as const;

/** A search attribute name. */
export type SearchAttributeName = keyof typeof searchAttributes;
