/**
 * Notification channels as one Temporal activity, `notify`: delivers one notification to one
 * receiver target (generic signed webhook, Slack-compatible incoming webhook, PagerDuty Events v2,
 * email over SMTP, or the log). The alert workflow decides when and whom and retries with backoff;
 * this side classifies failures: a rejection that retrying cannot fix (HTTP 4xx other than
 * 408/429, SMTP 5xx, bad config) is a non-retryable `ApplicationFailure`, everything transient is
 * retryable.
 *
 * Idempotency lives on the wire, not in memory (several workers may run): webhooks get
 * `Idempotency-Key: <notificationId>`, PagerDuty dedupes on `dedup_key = fingerprint`, email carries
 * a `Message-ID` derived from the notification id. `duplicate` is true only when the receiver says
 * so (`Idempotent-Replayed: true`).
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { notificationSchema, type Notification, type NotifiedAlert, type NotifyResult } from '../../schemas/alerting/notification.js';
import { channelTargetsSchema, type ChannelTargets, type ChannelTargetsInput, type Target } from '../../schemas/alerting/receivers.js';
import { ackUrl, signAckToken } from './ack-token.js';
import { ChannelError, channelFailure } from './channel-error.js';
import { PlatformError } from '../errors.js';
import { sendMail } from './email.js';
import { channelLimits, fit, measure, truncate, type FieldLimit } from './text-limits.js';

/** The logging surface the channels need; Temporal's activity `log` and `console` both fit. */
export interface NotifyLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

/** Dependencies of {@link createNotifyActivities}. */
export interface NotifyActivitiesOptions {
  /** The channel targets by id (parsed again here, so defaults apply even to raw config input). */
  targets: ChannelTargets | ChannelTargetsInput;
  /**
   * Where the secrets named in the config (`routingKeyEnv`, `urlEnv`, `passwordEnv`, ...) are
   * looked up; the worker passes its environment. Every named variable must be set, or creation fails.
   * @default {}
   */
  secrets?: Readonly<Record<string, string | undefined>>;
  /** HMAC key for ack links, and for webhook signatures unless a target names its own `secretEnv`. */
  signingSecret: string;
  /** Base URL of the platform's HTTP endpoint that ack links point at. */
  publicUrl: string;
  log: NotifyLog;
  /** Upper bound for any single HTTP request, whatever a target's `timeoutMs` says. @default no cap */
  fetchTimeoutMs?: number;
  /** How long an ack link stays valid. @default 86400000 (24 h) */
  ackLinkTtlMs?: number;
  /**
   * What to do with a target whose environment variables are not set: `refuse` (creation throws,
   * the worker does not start) or `disable` (warn once, naming the variables; every notification to
   * it is then skipped: returned with `skipped: true` and the reason, recorded in the incident's
   * timeline as skipped rather than failed, and escalation goes on).
   * `disable` lets a fresh checkout run with only the log channel configured.
   * @default "refuse"
   */
  missingSecrets?: 'refuse' | 'disable';
}

/** The activities returned by {@link createNotifyActivities}. */
export interface NotifyActivities {
  /** Delivers one notification to one target; throws an ApplicationFailure on failure. */
  notify(notification: Notification): Promise<NotifyResult>;
}

interface ResolvedSecrets {
  /** Why the target cannot be used (missing variables), when disabled. */
  disabled?: string;
  host?: string;
  webhookKey?: string;
  headers?: Record<string, string>;
  url?: string;
  routingKey?: string;
  auth?: { user: string; pass: string };
}

interface Delivery {
  detail: string;
  duplicate: boolean;
}

const maxAlertsShown = 10;

const severityWords: Record<NotifiedAlert['severity'], string> = {
  info: 'INFO',
  warning: 'WARNING',
  critical: 'CRITICAL',
  page: 'PAGE',
};

/** PagerDuty knows critical/error/warning/info; `page` is the top of our scale. */
const pagerDutySeverity: Record<NotifiedAlert['severity'], 'critical' | 'error' | 'warning' | 'info'> = {
  page: 'critical',
  critical: 'error',
  warning: 'warning',
  info: 'info',
};

const slackEmoji: Record<NotifiedAlert['severity'], string> = {
  info: ':information_source:',
  warning: ':warning:',
  critical: ':red_circle:',
  page: ':rotating_light:',
};

function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    // Called outside an activity (a script, a plain test): no attempt number, no cancellation.
    return undefined;
  }
}

/**
 * Resolves the env-named values of every target up front, so a missing one is found at start:
 * returns the resolved values per target id and the problems found, one per missing variable.
 */
function resolveSecrets(
  targets: ChannelTargets,
  env: Readonly<Record<string, string | undefined>>,
  signingSecret: string,
): { resolved: Map<string, ResolvedSecrets>; problems: Map<string, string[]> } {
  const problems = new Map<string, string[]>();
  const resolved = new Map<string, ResolvedSecrets>();
  const read = (id: string, field: string, name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') problems.set(id, [...(problems.get(id) ?? []), `${field} names environment variable ${name}, which is not set`]);
    return value ?? '';
  };
  for (const [id, target] of Object.entries(targets)) {
    const secrets: ResolvedSecrets = {};
    switch (target.type) {
      case 'webhook':
        secrets.webhookKey = target.secretEnv ? read(id, 'secretEnv', target.secretEnv) : signingSecret;
        secrets.headers = Object.fromEntries(Object.entries(target.headersFromEnv ?? {}).map(([h, name]) => [h, read(id, `headersFromEnv.${h}`, name)]));
        break;
      case 'slack':
        secrets.url = target.urlEnv ? read(id, 'urlEnv', target.urlEnv) : target.url!;
        if (target.urlEnv && secrets.url && !/^https?:\/\//.test(secrets.url)) problems.set(id, [`${target.urlEnv}: expected an http(s) URL (value not shown)`]);
        break;
      case 'pagerduty':
        secrets.routingKey = read(id, 'routingKeyEnv', target.routingKeyEnv);
        break;
      case 'email':
        secrets.host = target.hostEnv ? read(id, 'hostEnv', target.hostEnv) : target.host!;
        if (target.userEnv && target.passwordEnv) {
          secrets.auth = { user: read(id, 'userEnv', target.userEnv), pass: read(id, 'passwordEnv', target.passwordEnv) };
        }
        break;
      case 'log':
        break;
    }
    resolved.set(id, secrets);
  }
  return { resolved, problems };
}

/** Scheme, host and port only: webhook URLs (Slack's especially) carry secrets in path and query. */
function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

function excerpt(text: string, max = 300): string {
  return truncate(text.replace(/\s+/g, ' ').trim(), max, 'utf16', '...');
}

/** Retry-After as milliseconds (delta-seconds or HTTP date), capped so a hostile value cannot park a retry for days. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  return Math.min(ms, 10 * 60_000);
}

async function readExcerpt(response: Response, maxBytes = 4096): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}

interface HttpAnswer {
  status: number;
  body: string;
  headers: Headers;
}

/**
 * POSTs JSON and classifies the outcome: 2xx returns; 408, 429 and 5xx are retryable
 * (`channel_unavailable`, honouring Retry-After); redirects and other 4xx are final
 * (`channel_rejected`); network errors are retryable, timeouts are `channel_timeout`.
 */
async function postJson(
  channel: string,
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  cancel: AbortSignal | undefined,
): Promise<HttpAnswer> {
  const where = `${channel} ${safeOrigin(url)}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
  let response: Response;
  let text: string;
  try {
    // Redirects are not followed: a POST that moves is a config problem, and following it could
    // leak the signature headers to another host.
    // set() in order, case-insensitively: a configured header can never duplicate or override the
    // signature, idempotency or content-type headers that come last.
    const merged = new Headers({ 'content-type': 'application/json' });
    for (const [name, value] of Object.entries(headers)) merged.set(name, value);
    response = await fetch(url, { method: 'POST', body, headers: merged, redirect: 'manual', signal });
    text = await readExcerpt(response);
  } catch (error) {
    if (timeout.aborted) {
      throw new ChannelError('channel_timeout', `${where}: no complete response within ${timeoutMs} ms`, true, { cause: error, details: { timeoutMs } });
    }
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
    throw new ChannelError('channel_unavailable', `${where}: request failed (${cause})`, true, { cause: error });
  }
  const status = response.status;
  if (status >= 200 && status < 300) return { status, body: text, headers: response.headers };
  const details = { status, body: excerpt(text) };
  if (status === 408 || status === 429 || status >= 500) {
    const after = retryAfterMs(response.headers.get('retry-after'));
    throw new ChannelError('channel_unavailable', `${where}: expected 2xx, got HTTP ${status} (will retry): ${excerpt(text)}`, true, {
      details,
      ...(after === undefined ? {} : { retryAfterMs: after }),
    });
  }
  if (status >= 300 && status < 400) {
    throw new ChannelError('channel_rejected', `${where}: expected 2xx, got redirect ${status} to ${safeOrigin(response.headers.get('location') ?? '')}; configure the final URL`, false, { details });
  }
  throw new ChannelError('channel_rejected', `${where}: expected 2xx, got HTTP ${status} (not retried): ${excerpt(text)}`, false, { details });
}

function labelsText(labels: Record<string, string>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '(none)' : entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

function kindPhrase(notification: Notification): string {
  const first = notification.alerts[0]!;
  switch (notification.kind) {
    case 'trigger':
      return '';
    case 'repeat':
      return 'still firing: ';
    case 'escalate':
      return `escalated to level ${first.level + 1}: `;
    case 'acknowledge':
      return `acknowledged${first.acknowledgedBy ? ` by ${first.acknowledgedBy}` : ''}: `;
    case 'resolve':
      return 'resolved: ';
  }
}

/** The one-line subject of a notification (email subject, Slack header and fallback), within {@link channelLimits}.emailSubject. */
export function subjectOf(notification: Notification): string {
  const first = notification.alerts[0]!;
  const top = notification.alerts.reduce((worst, a) => (severityRank(a.severity) > severityRank(worst) ? a.severity : worst), first.severity);
  const what = notification.alerts.length === 1 ? first.summary : `${notification.alerts.length} alerts: ${first.summary}, ...`;
  const subject = `[${severityWords[top]}] ${kindPhrase(notification)}${what}`.replace(/[\r\n]+/g, ' ');
  return fit(subject, channelLimits.emailSubject);
}

function severityRank(severity: NotifiedAlert['severity']): number {
  return ['info', 'warning', 'critical', 'page'].indexOf(severity);
}

/** Plain-text rendering shared by email and the log; one block per alert, each with its ack link. */
function textBody(notification: Notification, links: Map<string, string>): string {
  const lines: string[] = [];
  const shown = notification.alerts.slice(0, maxAlertsShown);
  for (const alert of shown) {
    lines.push(`${severityWords[alert.severity]}: ${alert.summary}`);
    lines.push(`  Status: ${alert.status}, escalation level ${alert.level}, fired ${alert.count} time(s)`);
    lines.push(`  Detector: ${alert.detector}`);
    lines.push(`  Labels: ${labelsText(alert.labels)}`);
    lines.push(`  First seen: ${alert.firstSeen}, last seen: ${alert.lastSeen}`);
    if (alert.acknowledgedBy) lines.push(`  Acknowledged by: ${alert.acknowledgedBy}`);
    if (alert.pipeline) lines.push(`  Pipeline: ${alert.pipeline}`);
    if (alert.query) lines.push(`  Query: ${alert.query.replace(/\s+/g, ' ')}`);
    lines.push(`  Incident: ${alert.incidentId} (fingerprint ${alert.fingerprint})`);
    const link = links.get(alert.incidentId);
    if (link) lines.push('', `  Acknowledge: ${link}`);
    lines.push('');
  }
  if (notification.alerts.length > shown.length) lines.push(`... and ${notification.alerts.length - shown.length} more alert(s).`, '');
  lines.push('-- ', `streamwarden notification ${notification.notificationId} (${notification.kind}) to ${notification.target}`);
  return lines.join('\n');
}

function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Slack mrkdwn already escaped: cut to the field's limit without leaving half an entity (`&am…`). */
function fitEscaped(text: string, field: FieldLimit): string {
  const cut = fit(text, field);
  return cut === text ? cut : cut.replace(/&[a-z]*(?=…$)/, '');
}

/**
 * The generic webhook's JSON body (`type: "streamwarden.notification"`, version 1). It stays within
 * {@link channelLimits}.webhookBody (UTF-8 bytes): free-text fields are cut on grapheme boundaries
 * to `webhookField`, and when the batch is still too large, alerts are left off from the end and
 * `truncatedAlerts` counts them (as Alertmanager's webhook does with `max_alerts`).
 */
export function webhookBody(notification: Notification, links: Map<string, string>, sentAt: Date, maxBytes: number = channelLimits.webhookBody.limit): string {
  const firstLink = links.get(notification.alerts[0]!.incidentId);
  const alerts = notification.alerts.map((a) => ({
    ...a,
    summary: fit(a.summary, channelLimits.webhookField),
    ...(a.query !== undefined ? { query: fit(a.query, channelLimits.webhookField) } : {}),
    labels: Object.fromEntries(Object.entries(a.labels).map(([k, v]) => [k, truncate(v, 1024, 'utf16')])),
    ...(links.has(a.incidentId) ? { ackUrl: links.get(a.incidentId) } : {}),
  }));
  const render = (shown: number) =>
    JSON.stringify({
      type: 'streamwarden.notification',
      version: 1,
      sentAt: sentAt.toISOString(),
      notificationId: notification.notificationId,
      kind: notification.kind,
      receiver: notification.receiver,
      target: notification.target,
      ...(firstLink ? { ackUrl: firstLink } : {}),
      alerts: alerts.slice(0, shown),
      truncatedAlerts: alerts.length - shown,
    });
  const full = render(alerts.length);
  if (measure(full, 'utf8') <= maxBytes) return full;
  // The largest prefix of alerts that fits (binary search; at least one alert is always sent).
  let lo = 1;
  let hi = alerts.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (measure(render(mid), 'utf8') <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  return render(lo);
}

/** Slack incoming-webhook payload: `text` is the notification fallback, `blocks` the layout. */
export function slackPayload(notification: Notification, links: Map<string, string>): { text: string; blocks: unknown[] } {
  const blocks: unknown[] = [{ type: 'header', text: { type: 'plain_text', text: fit(subjectOf(notification), channelLimits.slackHeader), emoji: true } }];
  for (const alert of notification.alerts.slice(0, maxAlertsShown)) {
    const details = [
      `${slackEmoji[alert.severity]} *${slackEscape(truncate(alert.summary, 500, 'utf16'))}*`,
      `*Severity:* ${alert.severity}   *Status:* ${slackEscape(alert.status)}   *Level:* ${alert.level}   *Count:* ${alert.count}`,
      `*Labels:* ${slackEscape(truncate(labelsText(alert.labels), 1000, 'utf16'))}`,
      `*First seen:* ${slackEscape(alert.firstSeen)}   *Last seen:* ${slackEscape(alert.lastSeen)}`,
      ...(alert.acknowledgedBy ? [`*Acknowledged by:* ${slackEscape(alert.acknowledgedBy)}`] : []),
      ...(alert.pipeline ? [`*Pipeline:* ${slackEscape(alert.pipeline)}`] : []),
    ].join('\n');
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: fitEscaped(details, channelLimits.slackSection) } });
    const link = links.get(alert.incidentId);
    if (link) {
      blocks.push({
        type: 'actions',
        elements: [{ type: 'button', text: { type: 'plain_text', text: 'Acknowledge' }, style: 'primary', url: link, action_id: `ack-${alert.fingerprint}` }],
      });
    }
  }
  if (notification.alerts.length > maxAlertsShown) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `... and ${notification.alerts.length - maxAlertsShown} more alert(s).` } });
  }
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: fitEscaped(slackEscape(`${notification.alerts[0]!.incidentId} · notification ${notification.notificationId} (${notification.kind})`), channelLimits.slackContext) }],
  });
  const text = fit(`${subjectOf(notification)}${links.size > 0 ? ` Acknowledge: ${[...links.values()][0]}` : ''}`, channelLimits.slackText);
  return { text, blocks };
}

/** PagerDuty Events v2: trigger for trigger/repeat/escalate, acknowledge and resolve as such. */
export function pagerDutyEvent(notification: Notification, alert: NotifiedAlert, routingKey: string, link: string | undefined): Record<string, unknown> {
  const action = notification.kind === 'acknowledge' || notification.kind === 'resolve' ? notification.kind : 'trigger';
  const base = { routing_key: routingKey, event_action: action, dedup_key: alert.fingerprint };
  if (action !== 'trigger') return base;
  const timestamp = Number.isNaN(Date.parse(alert.lastSeen)) ? undefined : new Date(alert.lastSeen).toISOString();
  return {
    ...base,
    payload: {
      summary: fit(alert.summary, channelLimits.pagerDutySummary),
      source: `streamwarden:${alert.pipeline ?? alert.detector}`,
      severity: pagerDutySeverity[alert.severity],
      ...(timestamp ? { timestamp } : {}),
      component: alert.detector,
      ...(alert.pipeline ? { group: alert.pipeline } : {}),
      class: alert.detector,
      custom_details: {
        incident_id: alert.incidentId,
        notification_id: notification.notificationId,
        kind: notification.kind,
        status: alert.status,
        streamwarden_severity: alert.severity,
        level: alert.level,
        count: alert.count,
        first_seen: alert.firstSeen,
        last_seen: alert.lastSeen,
        labels: alert.labels,
        ...(alert.query ? { query: alert.query } : {}),
      },
    },
    client: 'streamwarden',
    // PagerDuty shows client_url as "View in streamwarden": the confirmation page of this incident.
    ...(link ? { client_url: link, links: [{ href: link, text: 'Acknowledge in streamwarden' }] } : {}),
  };
}

/** The repo's channel targets: how each target id used by infra/alerting/policy.json is reached. */
export const defaultChannelTargetsPath = fileURLToPath(new URL('../../infra/alerting/channels.json', import.meta.url));

/**
 * Reads and validates a channel targets file (JSON object: target id -> target). Errors name the
 * file and every bad field; the worker refuses to start on them.
 */
export async function loadChannelTargetsFile(path: string = defaultChannelTargetsPath): Promise<ChannelTargets> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ChannelError('channel_config', `${path}: expected a readable JSON file: ${error instanceof Error ? error.message : String(error)}`, false);
  }
  const parsed = channelTargetsSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    throw new ChannelError('channel_config', `${path}: invalid channel targets:\n  ${problems.join('\n  ')}`, false);
  }
  return parsed.data;
}

/** Creates the notification activities (see the module comment for the error and idempotency rules). */
export function createNotifyActivities(options: NotifyActivitiesOptions): NotifyActivities {
  const targets = channelTargetsSchema.parse(options.targets);
  const { resolved: secrets, problems } = resolveSecrets(targets, options.secrets ?? {}, options.signingSecret);
  if (problems.size > 0) {
    const lines = [...problems].flatMap(([id, list]) => list.map((p) => `${id}: ${p}`));
    if ((options.missingSecrets ?? 'refuse') === 'refuse') {
      throw new ChannelError('channel_config', `Channel targets are not usable:\n  ${lines.join('\n  ')}`, false);
    }
    for (const [id, list] of problems) secrets.get(id)!.disabled = list.join('; ');
    options.log.warn('channel targets disabled until their environment variables are set', { targets: [...problems.keys()], problems: lines });
  }
  const ttl = options.ackLinkTtlMs ?? 24 * 3600_000;
  const { log } = options;
  const timeoutFor = (ms: number): number => Math.min(ms, options.fetchTimeoutMs ?? ms);

  /** One link per incident in the notification, for the kinds where acknowledging still makes sense. */
  function ackLinks(notification: Notification): Map<string, string> {
    const links = new Map<string, string>();
    if (notification.kind === 'acknowledge' || notification.kind === 'resolve') return links;
    const expiresAt = Date.now() + ttl;
    for (const alert of notification.alerts) {
      if (links.has(alert.incidentId)) continue;
      // firstSeen marks the incident: a later incident under the same fingerprint-derived workflow
      // id has another one, so this link cannot acknowledge it.
      // The recipient is signed in: an acknowledgement through this link is recorded as this target's.
      const claims = { workflowId: alert.incidentId, incident: alert.firstSeen, action: 'acknowledge' as const, recipient: notification.target, expiresAt };
      links.set(alert.incidentId, ackUrl(options.publicUrl, signAckToken(claims, options.signingSecret)));
    }
    const first = notification.alerts[0]!.incidentId;
    if (notification.ackUrl) links.set(first, notification.ackUrl);
    return links;
  }

  async function deliver(notification: Notification, target: Target, resolved: ResolvedSecrets, links: Map<string, string>, cancel: AbortSignal | undefined): Promise<Delivery> {
    switch (target.type) {
      case 'webhook': {
        const sentAt = new Date();
        const body = webhookBody(notification, links, sentAt);
        const signature = createHmac('sha256', resolved.webhookKey!).update(body, 'utf8').digest('hex');
        const answer = await postJson(
          'webhook',
          target.url,
          body,
          {
            'user-agent': 'streamwarden',
            ...target.headers,
            ...resolved.headers,
            'content-type': 'application/json',
            'x-streamwarden-signature': `sha256=${signature}`,
            'x-streamwarden-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
            'idempotency-key': notification.notificationId,
          },
          timeoutFor(target.timeoutMs),
          cancel,
        );
        const duplicate = answer.headers.get('idempotent-replayed')?.toLowerCase() === 'true';
        return { detail: `HTTP ${answer.status}${answer.body ? ` ${excerpt(answer.body, 120)}` : ''}`, duplicate };
      }
      case 'slack': {
        const answer = await postJson('slack', resolved.url!, JSON.stringify(slackPayload(notification, links)), { 'user-agent': 'streamwarden' }, timeoutFor(target.timeoutMs), cancel);
        return { detail: `HTTP ${answer.status} ${excerpt(answer.body, 120)}`.trim(), duplicate: false };
      }
      case 'pagerduty': {
        const details: string[] = [];
        // One event per alert: PagerDuty's unit is the dedup_key, and a re-sent trigger for an open
        // dedup_key is merged by PagerDuty, so a retry after a partial failure is harmless.
        for (const alert of notification.alerts) {
          const event = pagerDutyEvent(notification, alert, resolved.routingKey!, links.get(alert.incidentId));
          const answer = await postJson('pagerduty', target.url, JSON.stringify(event), { 'user-agent': 'streamwarden' }, timeoutFor(target.timeoutMs), cancel);
          details.push(`${String(event.event_action)} ${alert.fingerprint}: HTTP ${answer.status}`);
        }
        return { detail: details.join('; '), duplicate: false };
      }
      case 'email': {
        const domain = /@([^>\s]+)>?\s*$/.exec(target.from)?.[1] ?? 'streamwarden.local';
        // Same notification to the same target -> same Message-ID, so mail systems and people can
        // recognise a redelivery after a retry.
        const id = createHash('sha256').update(`${notification.notificationId}\u0000${notification.target}`).digest('hex').slice(0, 32);
        const sent = await sendMail(
          {
            host: resolved.host!,
            port: target.port,
            secure: target.secure,
            startTls: target.startTls,
            rejectUnauthorized: target.tlsRejectUnauthorized,
            allowInsecureAuth: target.allowInsecureAuth,
            heloName: target.heloName,
            timeoutMs: target.timeoutMs,
            ...(resolved.auth ? { auth: resolved.auth } : {}),
            ...(cancel ? { signal: cancel } : {}),
          },
          {
            from: target.from,
            to: target.to,
            subject: subjectOf(notification),
            date: new Date(),
            messageId: `<${id}@${domain}>`,
            text: textBody(notification, links),
            headers: {
              'Auto-Submitted': 'auto-generated',
              'X-Streamwarden-Notification-Id': notification.notificationId,
              'X-Streamwarden-Incident': notification.alerts[0]!.incidentId,
            },
          },
        );
        return { detail: `SMTP ${sent.response}`, duplicate: false };
      }
      case 'log': {
        // The log is a delivery channel people chose: the line carries the ack link like a message would.
        log.info('alert notification', {
          channel: 'log',
          notificationId: notification.notificationId,
          kind: notification.kind,
          receiver: notification.receiver,
          target: notification.target,
          subject: subjectOf(notification),
          alerts: notification.alerts.map((a) => ({
            incidentId: a.incidentId,
            fingerprint: a.fingerprint,
            severity: a.severity,
            status: a.status,
            level: a.level,
            count: a.count,
            summary: a.summary,
            labels: a.labels,
            ...(a.acknowledgedBy ? { acknowledgedBy: a.acknowledgedBy } : {}),
            ...(links.has(a.incidentId) ? { ackUrl: links.get(a.incidentId) } : {}),
          })),
        });
        return { detail: 'logged', duplicate: false };
      }
    }
  }

  return {
    async notify(input: Notification): Promise<NotifyResult> {
      const parsed = notificationSchema.safeParse(input);
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
        throw ApplicationFailure.nonRetryable(`notify: invalid notification: ${problems}`, 'notification_invalid');
      }
      const notification = parsed.data;
      const context = currentActivity();
      const attempt = context?.info.attempt ?? 1;
      const where = { notificationId: notification.notificationId, receiver: notification.receiver, target: notification.target, attempt };
      try {
        const target = Object.hasOwn(targets, notification.target) ? targets[notification.target] : undefined;
        if (!target) {
          throw new ChannelError(
            'channel_config',
            `notify: target "${notification.target}" (receiver ${notification.receiver}) is not a configured channel target; expected one of ${Object.keys(targets).join(', ') || '(none)'}`,
            false,
          );
        }
        const resolved = secrets.get(notification.target)!;
        if (resolved.disabled) {
          // Not a failure: the worker was told to run without this target (warned once at start).
          // Throwing would count it as a failed notification and log an activity failure per page.
          return {
            notificationId: notification.notificationId,
            target: notification.target,
            delivered: false,
            duplicate: false,
            skipped: true,
            detail: `target disabled: ${resolved.disabled}`,
            attempts: attempt,
          };
        }
        const links = ackLinks(notification);
        const delivery = await deliver(notification, target, resolved, links, context?.cancellationSignal);
        log.info('notification delivered', { ...where, channel: target.type, detail: delivery.detail, duplicate: delivery.duplicate });
        return {
          notificationId: notification.notificationId,
          target: notification.target,
          delivered: true,
          duplicate: delivery.duplicate,
          detail: delivery.detail,
          attempts: attempt,
        };
      } catch (error) {
        const platform = error instanceof PlatformError ? error : undefined;
        log.warn('notification failed', {
          ...where,
          code: platform?.code ?? 'unexpected',
          retriable: platform?.retriable ?? true,
          error: error instanceof Error ? error.message : String(error),
        });
        throw channelFailure(error);
      }
    },
  };
}
