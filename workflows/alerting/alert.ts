/**
 * One alert incident as a durable workflow (type `alert`, id `alert-<fingerprint>`): routed and
 * planned at open, notified at level 0 (batched through the group coordinator when group_wait is
 * set), escalated level by level while nobody acknowledges, repeated at the last level, and closed
 * on resolve. Repeated `fire` signals update the open incident; a firing after resolution starts a
 * new run, i.e. a new incident. People steer it with the updates/signals below (Temporal UI, CLI,
 * signed links); every transition and notification attempt lands in the timeline and alert_events.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, type SearchAttributeUpdatePair } from '@temporalio/common';
import type { AlertAuditActivities } from '../../activities/alerting/alert-audit.js';
import type { AlertRoutingActivities } from '../../activities/alerting/alert-routing.js';
import type { NotifyActivities } from '../../activities/alerting/notify.js';
import { alertClearSchema, alertFiringSchema, clearSignalName, fireSignalName, severityRank, type AlertClear, type AlertFiring } from '../../schemas/alerting/alert.js';
import {
  acknowledgeInputSchema,
  alertGroupWorkflowId,
  alertWorkflowInputSchema,
  describeZodError,
  escalateInputSchema,
  groupNotifiedInputSchema,
  resolveInputSchema,
  snoozeInputSchema,
  timelineCap,
  type AcknowledgeInput,
  type AlertWorkflowInput,
  type EscalateInput,
  type GroupNotifiedInput,
  type IncidentState,
  type IncidentStatus,
  type ResolveInput,
  type SnoozeInput,
  type TimelineEntry,
} from '../../schemas/alerting/alert-incident.js';
import type { AlertPlan } from '../../schemas/alerting/alert-policy.js';
import type { NotificationKind, NotifiedAlert, NotifyResult } from '../../schemas/alerting/notification.js';
import { notifyNonRetryableErrorTypes } from '../../schemas/alerting/receivers.js';
import type { z } from 'zod';

/** `fire` (signal): a detector saw the condition again; the open incident counts it (signal-with-start target). */
export const fireSignal = defineSignal<[AlertFiring]>(fireSignalName);
/** `clear` (signal): the detector's clear condition held; the incident resolves by itself (timeline + resolve notices). */
export const clearSignal = defineSignal<[AlertClear]>(clearSignalName);
/** `acknowledge` (update): someone takes the incident; escalation stops. Returns the new state. */
export const acknowledgeUpdate = defineUpdate<IncidentState, [AcknowledgeInput]>('acknowledge');
/** `acknowledge` (signal): same as the update, for the Temporal UI's signal form. */
export const acknowledgeSignal = defineSignal<[AcknowledgeInput]>('acknowledge');
/** `resolve` (update): closes the incident. Returns the final state. */
export const resolveUpdate = defineUpdate<IncidentState, [ResolveInput]>('resolve');
/** `resolve` (signal). */
export const resolveSignal = defineSignal<[ResolveInput]>('resolve');
/** `snooze` (update): no notifications until `until`, then escalation resumes unacknowledged. */
export const snoozeUpdate = defineUpdate<IncidentState, [SnoozeInput]>('snooze');
/** `snooze` (signal). */
export const snoozeSignal = defineSignal<[SnoozeInput]>('snooze');
/**
 * `escalate` (update): jump to the next level now (or re-notify the last one). On an acknowledged or
 * snoozed incident it takes the acknowledgement or snooze back (status `notified`), as PagerDuty's
 * escalate-after-acknowledge does; the timeline keeps both entries.
 */
export const escalateUpdate = defineUpdate<IncidentState, [EscalateInput]>('escalate');
/** `escalate` (signal). */
export const escalateSignal = defineSignal<[EscalateInput]>('escalate');
/** `groupNotified` (signal, internal): the group coordinator reports a batched level-0 delivery. */
export const groupNotifiedSignal = defineSignal<[GroupNotifiedInput]>('groupNotified');
/** `state` (query): the incident's current state. */
export const stateQuery = defineQuery<IncidentState>('state');
/** `timeline` (query): the latest transitions and notification attempts, oldest first. */
export const timelineQuery = defineQuery<TimelineEntry[]>('timeline');

/** Search attribute keys the incident upserts on every transition. */
export const alertSearchAttributes = {
  status: defineSearchAttributeKey('AlertStatus', 'KEYWORD'),
  severity: defineSearchAttributeKey('AlertSeverity', 'KEYWORD'),
  fingerprint: defineSearchAttributeKey('AlertFingerprint', 'KEYWORD'),
  acknowledgedBy: defineSearchAttributeKey('AlertAcknowledgedBy', 'KEYWORD'),
  level: defineSearchAttributeKey('AlertLevel', 'INT'),
  pipeline: defineSearchAttributeKey('Pipeline', 'KEYWORD'),
};

/** Notify retry policy: bounded, so a dead channel is recorded as failed and never holds up the next level. */
export const notifyRetry = {
  initialInterval: '5s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  maximumAttempts: 4,
  nonRetryableErrorTypes: [...notifyNonRetryableErrorTypes],
};

const channels = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '1m',
  scheduleToCloseTimeout: '10m',
  retry: notifyRetry,
});
const routing = proxyActivities<AlertRoutingActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: ['invalid_input'] },
});
// Suppression is checked with few attempts: when ClickHouse is down the incident notifies anyway
// (better a notification too many than a page missed), and records that it could not check.
const suppression = proxyActivities<AlertAuditActivities>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '2s', maximumAttempts: 3, nonRetryableErrorTypes: ['invalid_input'] },
});
// The audit trail must land eventually, but never blocks escalation: it is written by a background
// loop with unlimited retries, and drained before the run closes or continues as new.
const audit = proxyActivities<AlertAuditActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '2s', maximumInterval: '5m', nonRetryableErrorTypes: ['invalid_input'] },
});

/** Default history length after which a long-repeating incident continues as new (input `historyLimit`). */
const historyCap = 5_000;

function invalid(where: string, error: z.ZodError): ApplicationFailure {
  return ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `${where}: ${describeZodError(error)}` });
}

function fmtDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The incident workflow. Input `{ fingerprint, firing }` (validated; a bad one fails the run with a
 * non-retryable error naming the field). Returns the final state when resolved.
 */
export async function alert(rawInput: AlertWorkflowInput): Promise<IncidentState> {
  const parsed = alertWorkflowInputSchema.safeParse(rawInput);
  if (!parsed.success) throw invalid('alert input', parsed.error);
  const input = parsed.data;
  const info = workflowInfo();
  let latestFiring = input.firing;
  let refiredAfterResolve: AlertFiring | undefined;

  const s: IncidentState = input.carried ?? {
    // The run that opens the incident names it; continue-as-new carries it, and a firing after
    // resolution (a new run, possibly of the same chain) gets a new one.
    incidentId: `${info.workflowId}/${info.runId}`,
    workflowId: info.workflowId,
    fingerprint: input.fingerprint,
    detector: input.firing.detector,
    severity: input.firing.severity,
    summary: input.firing.summary,
    labels: input.firing.labels,
    ...(input.firing.pipeline !== undefined ? { pipeline: input.firing.pipeline } : {}),
    ...(input.firing.query !== undefined ? { query: input.firing.query } : {}),
    status: 'firing',
    level: 0,
    count: 0,
    firstSeen: input.firing.firedAt,
    lastSeen: input.firing.firedAt,
    openedAt: iso(Date.now()),
    suppressedBy: [],
    notificationsDelivered: 0,
    notificationsFailed: 0,
    eventSeq: 0,
    notificationSeq: 0,
    notifiedTargets: [],
    timeline: [],
  };

  const runKey = s.incidentId.slice(s.incidentId.lastIndexOf('/') + 1, s.incidentId.lastIndexOf('/') + 9);
  /** Bumped by every handler so the main loop wakes up. */
  let version = 0;
  const auditQueue: TimelineEntry[] = [];
  const inflight = new Set<Promise<void>>();
  const pendingNotices: { kind: NotificationKind; level: number }[] = [];
  let pendingEscalation: number | undefined;
  /** Set when a firing of a higher severity arrived: the main loop re-plans routing and notifies. */
  let pendingUpgrade = false;
  let lastAttributes = '';

  const plan = (): AlertPlan => {
    if (!s.plan) throw ApplicationFailure.create({ type: 'internal', message: 'alert: plan used before it was loaded' });
    return s.plan;
  };
  const lastLevel = () => plan().levels.length - 1;
  // A function, not an inline test: handlers change the status while the main loop awaits.
  const isResolved = () => s.status === 'resolved';
  const delayAfter = (level: number) => plan().levels[level + 1]?.delayMs ?? plan().repeatIntervalMs;

  function publish(): void {
    const attributes: SearchAttributeUpdatePair[] = [
      { key: alertSearchAttributes.status, value: s.status },
      { key: alertSearchAttributes.severity, value: s.severity },
      { key: alertSearchAttributes.fingerprint, value: s.fingerprint },
      { key: alertSearchAttributes.level, value: s.level },
      { key: alertSearchAttributes.acknowledgedBy, value: s.acknowledgedBy ?? null },
      ...(s.pipeline !== undefined ? [{ key: alertSearchAttributes.pipeline, value: s.pipeline }] : []),
    ];
    const signature = JSON.stringify(attributes.map((a) => a.value));
    if (signature !== lastAttributes) {
      upsertSearchAttributes(attributes);
      lastAttributes = signature;
    }
    const levels = s.plan ? ` (of levels 0-${s.plan.levels.length - 1})` : '';
    const lines = [
      `**${s.severity.toUpperCase()}** ${s.detector}: ${s.summary}`,
      `Status **${s.status}**, level ${s.level}${levels}; fired ${s.count}x since ${s.firstSeen} (last ${s.lastSeen}).`,
    ];
    if (s.acknowledgedBy) lines.push(`Acknowledged by ${s.acknowledgedBy} at ${s.acknowledgedAt}.`);
    if (s.resolvedBy) lines.push(`Resolved by ${s.resolvedBy} at ${s.resolvedAt}.`);
    if (s.snoozedUntil) lines.push(`Snoozed until ${s.snoozedUntil}.`);
    if (s.nextEscalationAt && (s.status === 'firing' || s.status === 'notified')) lines.push(`Next escalation at ${s.nextEscalationAt}.`);
    if (s.suppressedBy.length > 0) lines.push(`Notifications suppressed by ${s.suppressedBy.join(', ')}.`);
    if (s.plan) lines.push(`Route ${s.plan.routePath} -> receiver ${s.plan.receiver}, policy ${s.plan.policy}.`);
    setCurrentDetails(lines.join('\n'));
  }

  function record(entry: Omit<TimelineEntry, 'seq' | 'at' | 'status' | 'level'> & { status?: IncidentStatus; level?: number }): TimelineEntry {
    const full: TimelineEntry = { ...entry, seq: ++s.eventSeq, at: iso(Date.now()), status: entry.status ?? s.status, level: entry.level ?? s.level };
    s.timeline.push(full);
    if (s.timeline.length > timelineCap) s.timeline.splice(0, s.timeline.length - timelineCap);
    auditQueue.push(full);
    version++;
    return full;
  }

  function recordResult(kind: NotificationKind, receiver: string, result: NotifyResult, by: string, note: string): void {
    if (result.delivered) s.notificationsDelivered++;
    else if (result.skipped) s.notificationsSkipped = (s.notificationsSkipped ?? 0) + 1;
    else s.notificationsFailed++;
    if (result.delivered && s.status === 'firing') s.status = 'notified';
    record({
      type: 'notification',
      by,
      note: result.skipped ? `${note} skipped (target disabled)` : note,
      ...(result.skipped ? { skipped: true } : {}),
      receiver,
      target: result.target,
      notificationId: result.notificationId,
      kind,
      delivered: result.delivered,
      attempts: result.attempts,
      detail: result.detail,
    });
  }

  function notifiedAlert(): NotifiedAlert {
    return {
      incidentId: s.workflowId,
      fingerprint: s.fingerprint,
      detector: s.detector,
      severity: s.severity,
      status: s.status,
      summary: s.summary,
      labels: s.labels,
      level: s.level,
      firstSeen: s.firstSeen,
      lastSeen: s.lastSeen,
      count: Math.max(1, s.count),
      ...(s.acknowledgedBy !== undefined ? { acknowledgedBy: s.acknowledgedBy } : {}),
      ...(s.pipeline !== undefined ? { pipeline: s.pipeline } : {}),
      ...(s.query !== undefined ? { query: s.query } : {}),
    };
  }

  /** Sends one notification to every target of the receivers, in the background. */
  function dispatch(kind: NotificationKind, receivers: { receiver: string; targets: string[] }[]): void {
    const notificationId = `${s.workflowId}/${runKey}/n${++s.notificationSeq}`;
    const alerts = [notifiedAlert()];
    // A target shared by two receivers of the same level (e.g. a log) gets this notification once.
    const sent = new Set<string>();
    for (const { receiver, targets } of receivers) {
      for (const target of targets) {
        if (sent.has(target)) continue;
        sent.add(target);
        if (kind !== 'acknowledge' && kind !== 'resolve' && !s.notifiedTargets.some((t) => t.receiver === receiver && t.target === target)) {
          s.notifiedTargets.push({ receiver, target });
        }
        const attempt = channels
          .notify({ notificationId, kind, receiver, target, alerts })
          .then(
            (result) => recordResult(kind, receiver, result, 'policy', `${kind} to ${receiver}`),
            (err: unknown) => recordResult(kind, receiver, failedResult(notificationId, target, err), 'policy', `${kind} to ${receiver} failed`),
          );
        inflight.add(attempt);
        void attempt.finally(() => inflight.delete(attempt));
      }
    }
  }

  /** Notifies a level (trigger/escalate/repeat), unless a silence or an inhibiting incident applies. */
  async function notifyLevel(level: number, kind: 'trigger' | 'escalate' | 'repeat', checkSuppression = true): Promise<void> {
    const planned = plan().levels[level]!;
    if (checkSuppression) {
      try {
        const found = await suppression.checkSuppression({
          incidentId: s.incidentId,
          detector: s.detector,
          severity: s.severity,
          labels: s.labels,
          atMs: Date.now(),
          inhibitRules: plan().inhibitRules,
        });
        s.suppressedBy = [...found.silencedBy.map((id) => `silence ${id}`), ...found.inhibitedBy.map((id) => `incident ${id}`)];
        if (s.suppressedBy.length > 0) {
          record({ type: 'suppressed', by: 'policy', note: `${kind} of level ${level} not sent: ${s.suppressedBy.join(', ')}`, kind });
          return;
        }
      } catch (err) {
        s.suppressedBy = [];
        record({ type: 'suppression_check_failed', by: 'policy', note: `could not check silences/inhibition, notifying anyway: ${errorText(err)}`, kind });
      }
    }
    // Someone may have acknowledged, snoozed or resolved while the check ran: then nobody is paged.
    if (s.status !== 'firing' && s.status !== 'notified') return;
    const p = plan();
    if (kind === 'trigger' && p.groupWaitMs > 0) {
      for (const { receiver, targets } of planned.receivers) {
        const groupWorkflowId = alertGroupWorkflowId(receiver, p.groupKey);
        for (const target of targets) {
          if (!s.notifiedTargets.some((t) => t.receiver === receiver && t.target === target)) s.notifiedTargets.push({ receiver, target });
        }
        await routing.enqueueGroupAlert({
          groupWorkflowId,
          group: { receiver, targets, groupKey: p.groupKey, groupWaitMs: p.groupWaitMs, groupIntervalMs: Math.max(1, p.groupIntervalMs) },
          item: { incidentWorkflowId: s.workflowId, alert: notifiedAlert(), arrivedAt: s.openedAt },
        });
        record({ type: 'queued_for_group', by: 'policy', note: `batched by ${groupWorkflowId} (group_wait ${fmtDuration(p.groupWaitMs)})`, receiver, kind });
      }
      return;
    }
    dispatch(kind, planned.receivers);
  }

  /** Acknowledge/resolve notices go to every target that was paged, so PagerDuty & co. stop too. */
  function sendNotices(): void {
    while (pendingNotices.length > 0) {
      const notice = pendingNotices.shift()!;
      const byReceiver = new Map<string, string[]>();
      for (const t of s.notifiedTargets) byReceiver.set(t.receiver, [...(byReceiver.get(t.receiver) ?? []), t.target]);
      if (byReceiver.size > 0) dispatch(notice.kind, [...byReceiver].map(([receiver, targets]) => ({ receiver, targets })));
    }
  }

  // ---- handlers: synchronous transitions; side effects are left to the main loop ----

  const refuseWhenResolved = (action: string) => {
    if (s.status === 'resolved') {
      throw ApplicationFailure.create({
        type: 'incident_resolved',
        nonRetryable: true,
        message: `${action}: incident ${s.workflowId} is already resolved (by ${s.resolvedBy ?? '?'} at ${s.resolvedAt ?? '?'}); nothing to ${action}`,
      });
    }
  };

  function acknowledge(a: AcknowledgeInput): IncidentState {
    if (s.status === 'acknowledged') return s;
    s.status = 'acknowledged';
    s.acknowledgedBy = a.by;
    s.acknowledgedAt = iso(Date.now());
    delete s.snoozedUntil;
    record({ type: 'acknowledged', by: a.by, note: a.note ?? '' });
    pendingNotices.push({ kind: 'acknowledge', level: s.level });
    return s;
  }
  function resolve(r: ResolveInput): IncidentState {
    s.status = 'resolved';
    s.resolvedBy = r.by;
    s.resolvedAt = iso(Date.now());
    delete s.snoozedUntil;
    delete s.nextEscalationAt;
    record({ type: 'resolved', by: r.by, note: r.note ?? '' });
    pendingNotices.push({ kind: 'resolve', level: s.level });
    return s;
  }
  function snooze(z: SnoozeInput): IncidentState {
    s.status = 'snoozed';
    s.snoozedUntil = iso(Date.parse(z.until));
    delete s.acknowledgedBy;
    delete s.acknowledgedAt;
    record({ type: 'snoozed', by: z.by, note: z.note ?? `until ${s.snoozedUntil}` });
    return s;
  }
  function escalate(e: EscalateInput): IncidentState {
    const from = s.level;
    s.level = Math.min(s.level + 1, s.plan ? lastLevel() : s.level);
    s.status = 'notified';
    delete s.acknowledgedBy;
    delete s.acknowledgedAt;
    delete s.snoozedUntil;
    record({ type: 'escalated', by: e.by, note: e.note ?? `manual escalation from level ${from}` });
    pendingEscalation = s.level;
    return s;
  }

  function validated<T>(name: string, schema: z.ZodType<T>, raw: unknown): T {
    const result = schema.safeParse(raw);
    if (!result.success) throw invalid(name, result.error);
    return result.data;
  }
  function validateSnooze(raw: unknown): SnoozeInput {
    const v = validated('snooze', snoozeInputSchema, raw);
    if (Date.parse(v.until) <= Date.now()) {
      throw ApplicationFailure.create({ type: 'invalid_input', nonRetryable: true, message: `snooze: input.until: expected a time after now (${iso(Date.now())}), got ${v.until}` });
    }
    return v;
  }

  /** A signal cannot be refused like an update; a bad one is recorded in the timeline instead of failing the incident. */
  function viaSignal(name: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      log.warn(`signal ${name} rejected`, { error: errorText(err) });
      record({ type: 'signal_rejected', by: 'signal', note: `${name}: ${errorText(err)}` });
    }
  }

  setHandler(
    fireSignal,
    (raw) => {
      const firing = alertFiringSchema.safeParse(raw);
      if (!firing.success) {
        record({ type: 'signal_rejected', by: 'signal', note: `fire: ${describeZodError(firing.error)}` });
        return;
      }
      if (s.status === 'resolved') {
        // The run is closing; this firing belongs to a new incident (see the end of the main function).
        refiredAfterResolve = firing.data;
        version++;
        return;
      }
      latestFiring = firing.data;
      s.count++;
      if (Date.parse(firing.data.firedAt) > Date.parse(s.lastSeen)) s.lastSeen = firing.data.firedAt;
      if (severityRank(firing.data.severity) > severityRank(s.severity)) {
        // Progressive risk: the open incident is upgraded in place (routing re-planned by the main loop).
        const from = s.severity;
        s.severity = firing.data.severity;
        s.summary = firing.data.summary;
        if (firing.data.query !== undefined) s.query = firing.data.query;
        pendingUpgrade = true;
        record({ type: 'upgraded', by: `detector:${firing.data.detector}`, note: `severity ${from} -> ${s.severity}: value ${firing.data.value} vs threshold ${firing.data.threshold}` });
        return;
      }
      if (s.count > 1) {
        const severityNote = firing.data.severity !== s.severity ? ` (reported severity ${firing.data.severity}; the incident keeps ${s.severity})` : '';
        record({ type: 'fired_again', by: `detector:${firing.data.detector}`, note: `count ${s.count}, value ${firing.data.value} vs threshold ${firing.data.threshold}${severityNote}` });
      }
    },
    { description: 'A detector saw the condition again: count + 1, last seen updated (no new incident).' },
  );
  setHandler(
    clearSignal,
    (raw) => {
      const clear = alertClearSchema.safeParse(raw);
      if (!clear.success) {
        record({ type: 'signal_rejected', by: 'signal', note: `clear: ${describeZodError(clear.error)}` });
        return;
      }
      // Already closed (by a person or an earlier clear): nothing to do.
      if (s.status === 'resolved') return;
      resolve({ by: `detector:${clear.data.detector}`, note: `auto-resolved: ${clear.data.note}` });
    },
    { description: 'The detector\'s clear condition held: resolves the incident by itself and tells the paged channels.' },
  );
  setHandler(acknowledgeUpdate, (a) => acknowledge(a), {
    validator: (raw) => {
      validated('acknowledge', acknowledgeInputSchema, raw);
      refuseWhenResolved('acknowledge');
    },
    description: 'Take the incident: { "by": "ann", "note": "looking" }. Stops escalation; returns the new state. Refused when resolved.',
  });
  setHandler(acknowledgeSignal, (raw) => viaSignal('acknowledge', () => {
    const a = validated('acknowledge', acknowledgeInputSchema, raw);
    refuseWhenResolved('acknowledge');
    acknowledge(a);
  }), { description: 'Take the incident: { "by": "ann", "note": "looking" }. Stops escalation.' });
  setHandler(resolveUpdate, (r) => resolve(r), {
    validator: (raw) => {
      validated('resolve', resolveInputSchema, raw);
      refuseWhenResolved('resolve');
    },
    description: 'Close the incident: { "by": "ann", "note": "fixed" }. Returns the final state.',
  });
  setHandler(resolveSignal, (raw) => viaSignal('resolve', () => {
    const r = validated('resolve', resolveInputSchema, raw);
    refuseWhenResolved('resolve');
    resolve(r);
  }), { description: 'Close the incident: { "by": "ann", "note": "fixed" }.' });
  setHandler(snoozeUpdate, (z) => snooze(z), {
    validator: (raw) => {
      validateSnooze(raw);
      refuseWhenResolved('snooze');
    },
    description: 'Silence this incident until a time: { "until": "2026-01-31T12:00:00Z", "by": "ann" }; then it escalates again, unacknowledged.',
  });
  setHandler(snoozeSignal, (raw) => viaSignal('snooze', () => {
    const z = validateSnooze(raw);
    refuseWhenResolved('snooze');
    snooze(z);
  }), { description: 'Silence this incident until a time: { "until": "2026-01-31T12:00:00Z", "by": "ann" }.' });
  setHandler(escalateUpdate, (e) => escalate(e), {
    validator: (raw) => {
      validated('escalate', escalateInputSchema, raw);
      refuseWhenResolved('escalate');
    },
    description: 'Escalate now to the next level: { "by": "ann", "note": "need help" }; takes back an acknowledgement or snooze. Returns the new state.',
  });
  setHandler(escalateSignal, (raw) => viaSignal('escalate', () => {
    const e = validated('escalate', escalateInputSchema, raw);
    refuseWhenResolved('escalate');
    escalate(e);
  }), { description: 'Escalate now to the next level: { "by": "ann", "note": "need help" }.' });
  setHandler(
    groupNotifiedSignal,
    (raw) => {
      const g = groupNotifiedInputSchema.safeParse(raw);
      if (!g.success) {
        record({ type: 'signal_rejected', by: 'signal', note: `groupNotified: ${describeZodError(g.error)}` });
        return;
      }
      for (const result of g.data.results) {
        recordResult('trigger', g.data.receiver, result, 'group', `trigger to ${g.data.receiver}, batched with ${g.data.batchSize - 1} other alert(s)`);
      }
    },
    { description: 'Internal: the group coordinator reports the delivery of a batched first notification.' },
  );
  setHandler(stateQuery, () => s, { description: 'Current state: status, level, count, who acknowledged, next escalation.' });
  setHandler(timelineQuery, () => s.timeline, { description: 'Transitions and notification attempts (who, when, why), oldest first.' });

  // ---- command discipline ----
  // Every command (activity, timer, search attributes) is issued by the main coroutine below.
  // Handlers and activity/timer completions only change state and bump `version`. Two coroutines
  // woken by the same event would order their commands by promise wake-up order, and a cancelled
  // `condition` timeout races with the waiter's next command: replays on a fresh worker have been
  // seen to order those differently (nondeterminism). Timers are therefore never cancelled: a
  // timer that is no longer wanted fires into a flag nobody reads.

  let auditInFlight = false;
  /** Starts the next audit batch unless one is running; its completion only updates state. */
  function kickAudit(): void {
    if (auditInFlight || auditQueue.length === 0 || !s.plan) return;
    auditInFlight = true;
    const batch = auditQueue.slice(0, 100);
    const p = s.plan;
    void audit
      .recordAlertEvents({
        incident: {
          incidentId: s.incidentId,
          workflowId: s.workflowId,
          fingerprint: s.fingerprint,
          detector: s.detector,
          severity: s.severity,
          summary: s.summary,
          labels: s.labels,
          pipeline: s.pipeline ?? '',
          routeReceiver: p.receiver,
          policy: p.policy,
          configVersion: p.configVersion,
        },
        events: batch,
      })
      .catch((err: unknown) => {
        // Only a non-retryable failure gets here (rows refused); keep the incident going and say so.
        log.error('alert audit batch refused', { error: errorText(err), firstSeq: batch[0]?.seq });
      })
      .then(() => {
        auditQueue.splice(0, batch.length);
        auditInFlight = false;
        version++;
      });
  }

  const armed = new Set<number>();
  const fired = new Set<number>();
  /** A timer for an instant (workflow time), started at most once; its firing is a flag. */
  function arm(instant: number): void {
    if (armed.has(instant) || instant <= Date.now()) return;
    armed.add(instant);
    void sleep(instant - Date.now()).then(() => {
      fired.add(instant);
      version++;
    });
  }
  const reached = (instant: number) => instant <= Date.now() || fired.has(instant);

  /** The main coroutine's housekeeping: pending notices, search attributes, audit. */
  function housekeeping(): void {
    sendNotices();
    publish();
    kickAudit();
  }

  /** Waits for any state change, doing housekeeping first. */
  async function nextChange(): Promise<void> {
    housekeeping();
    const seen = version;
    await condition(() => version !== seen);
  }

  /** Until nothing is pending: notices sent, their outcomes recorded, the audit written, handlers done. */
  async function drain(): Promise<void> {
    for (;;) {
      housekeeping();
      const idle = inflight.size === 0 && auditQueue.length === 0 && !auditInFlight && pendingNotices.length === 0;
      if (idle && allHandlersFinished()) return;
      if (idle) await condition(allHandlersFinished);
      else await nextChange();
    }
  }

  // ---- main ----

  if (!input.carried) {
    // Signal-with-start delivers the firing as a `fire` signal too (counted by the handler above);
    // a plain start (CLI `temporal workflow start`) has no signal, so the input counts once.
    if (s.count === 0) s.count = 1;
    s.plan = await routing.planAlert({ detector: s.detector, labels: s.labels, severity: s.severity });
    const p = plan();
    s.nextEscalationAt = iso(Date.parse(s.openedAt) + p.groupWaitMs + delayAfter(0));
    record({
      type: 'opened',
      by: `detector:${s.detector}`,
      note: `${s.summary} (value ${input.firing.value}, threshold ${input.firing.threshold}); route ${p.routePath} -> ${p.receiver}, policy ${p.policy}`,
    });
    if (s.status === 'firing') await notifyLevel(0, 'trigger');
  }

  while (s.status !== 'resolved') {
    housekeeping();
    const historyFull = workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (input.historyLimit ?? historyCap);
    if (historyFull && pendingEscalation === undefined && !pendingUpgrade) {
      await drain();
      // A person may have escalated or resolved while draining: handle that in this run first.
      if (pendingEscalation !== undefined || pendingUpgrade || isResolved()) continue;
      return await continueAsNew<typeof alert>({
        fingerprint: s.fingerprint,
        firing: latestFiring,
        carried: s,
        ...(input.historyLimit !== undefined ? { historyLimit: input.historyLimit } : {}),
      });
    }
    if (pendingUpgrade && s.plan) {
      pendingUpgrade = false;
      // Routing may depend on severity: re-plan, then restart escalation at level 0 of the new
      // plan. An acknowledged incident keeps its owner (no re-page); a snoozed one stays snoozed.
      s.plan = await routing.planAlert({ detector: s.detector, labels: s.labels, severity: s.severity });
      if (isResolved()) continue;
      s.level = 0;
      if (s.status === 'firing' || s.status === 'notified') {
        s.nextEscalationAt = iso(Date.now() + delayAfter(0));
        await notifyLevel(0, 'escalate');
      }
      continue;
    }
    if (pendingEscalation !== undefined) {
      const level = pendingEscalation;
      pendingEscalation = undefined;
      s.nextEscalationAt = iso(Date.now() + delayAfter(level));
      await notifyLevel(level, 'escalate', false);
      continue;
    }
    if (s.status === 'snoozed') {
      const until = Date.parse(s.snoozedUntil!);
      if (!reached(until)) {
        arm(until);
        await nextChange();
        continue;
      }
      s.status = 'notified';
      delete s.snoozedUntil;
      s.nextEscalationAt = iso(Date.now() + delayAfter(s.level));
      record({ type: 'unsnoozed', by: 'policy', note: `snooze ended; re-notifying level ${s.level}` });
      await notifyLevel(s.level, 'repeat');
      continue;
    }
    if (s.status === 'acknowledged') {
      await nextChange();
      continue;
    }
    const due = Date.parse(s.nextEscalationAt!);
    if (!reached(due)) {
      arm(due);
      await nextChange();
      continue;
    }
    if (s.level < lastLevel()) {
      const delay = plan().levels[s.level + 1]!.delayMs;
      s.level++;
      s.nextEscalationAt = iso(due + delayAfter(s.level));
      record({ type: 'escalated', by: 'policy', note: `not acknowledged within ${fmtDuration(delay)}; level ${s.level}` });
      await notifyLevel(s.level, 'escalate');
    } else {
      s.nextEscalationAt = iso(due + plan().repeatIntervalMs);
      record({ type: 'repeated', by: 'policy', note: `still not acknowledged; repeating level ${s.level} every ${fmtDuration(plan().repeatIntervalMs)}` });
      await notifyLevel(s.level, 'repeat');
    }
  }

  await drain();
  if (refiredAfterResolve) {
    // A firing that reached this run after it was resolved opens the next incident (a new run).
    return await continueAsNew<typeof alert>({ fingerprint: s.fingerprint, firing: refiredAfterResolve });
  }
  return s;
}

function errorText(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return errorText(err.cause);
  if (err instanceof ApplicationFailure) return `${err.type ?? 'error'}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

function failedResult(notificationId: string, target: string, err: unknown): NotifyResult {
  let attempts = 1;
  if (err instanceof ActivityFailure) {
    // MAXIMUM_ATTEMPTS_REACHED = every attempt of the retry policy was used.
    attempts = String(err.retryState) === 'MAXIMUM_ATTEMPTS_REACHED' ? notifyRetry.maximumAttempts : 1;
  }
  return { notificationId, target, delivered: false, duplicate: false, detail: errorText(err), attempts };
}
