/**
 * `platform alerts`: the incident workflows from the command line, over the same interface the
 * Temporal UI uses: visibility queries on the Alert* search attributes, the `acknowledge` /
 * `resolve` / `snooze` / `escalate` updates (which validate and return the new state), the
 * `state` / `timeline` queries; silences live in ClickHouse (`alert_silences`).
 */
import { hostname, userInfo } from 'node:os';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { createSilence, expireSilence, incidentSummaries, listSilences } from '../../activities/alerting/alert-audit.js';
import { alertWorkflowType } from '../../schemas/alerting/alert.js';
import { incidentStatusSchema, type IncidentState, type TimelineEntry } from '../../schemas/alerting/alert-incident.js';
import { parseDuration } from '../../schemas/alerting/alert-policy.js';
import { severitySchema } from '../../schemas/alerting/alert.js';
import { acknowledgeUpdate, escalateUpdate, resolveUpdate, snoozeUpdate } from '../../workflows/alerting/alert.js';
import { loadConfig } from '../../schemas/config.js';
import { connectTemporal, createWarehouse } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { parseCommandLine, stringOption, UsageError, type Command, type CommandSpec } from './command.js';
import { queryWithin } from './temporal-query.js';

const usage = `Usage: platform alerts <subcommand> [options]

  list [--status S] [--severity S] [--all] [--json]
        Incidents from Temporal visibility. S: firing|notified|acknowledged|snoozed|resolved,
        severity: info|warning|critical|page. Open incidents only unless --status resolved or --all.
  show ID [--json]                    State and timeline of one incident (ID: alert-<fingerprint> or the fingerprint).
  ack ID [--by NAME] [--note TEXT]    Acknowledge (stops escalation). Refused when already resolved.
  resolve ID [--by NAME] [--note TEXT]
                                      Close the incident.
  snooze ID --until ISO|+DURATION [--by NAME] [--note TEXT]
                                      No notifications until the ISO time, or for +30m, +2h, +1d from now;
                                      then escalation resumes, unacknowledged.
  escalate ID [--by NAME] [--note TEXT]
                                      Notify the next escalation level now.
  silence --matcher k=v [--matcher k!=v ...] --duration 1h [--by NAME] [--comment TEXT] [--starts ISO]
                                      Suppress notifications of matching alerts (they stay open and visible).
  silences [--json]                   Silences in force or scheduled.
  unsilence SILENCE_ID                Ends a silence now.

--by defaults to your OS user name (os.userInfo(); works as root, where $USER may be empty).
Matchers: name=value, name!=value, name=~regex, name!~regex over the alert's labels plus
alertname (the detector) and severity.
-h, --help on any subcommand prints this text.`;

const actOptions = { by: { type: 'string' }, note: { type: 'string' } } as const;

/** The command line of `platform alerts` (also checked against every README example). */
export const alertsSpec: CommandSpec = {
  subcommands: {
    list: { options: { status: { type: 'string' }, severity: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } } },
    show: { options: { json: { type: 'boolean' } }, positionals: [1, 1] },
    ack: { options: actOptions, positionals: [1, 1] },
    resolve: { options: actOptions, positionals: [1, 1] },
    escalate: { options: actOptions, positionals: [1, 1] },
    snooze: { options: { ...actOptions, until: { type: 'string' } }, positionals: [1, 1] },
    silence: { options: { matcher: { type: 'string', multiple: true }, duration: { type: 'string' }, by: { type: 'string' }, comment: { type: 'string' }, starts: { type: 'string' } } },
    silences: { options: { json: { type: 'boolean' } } },
    unsilence: { positionals: [1, 1] },
  },
};

/**
 * The caller's identity for CLI actions: `--by` when given, else the OS user name
 * (`os.userInfo().username`, which works as root and in shells where `$USER` is empty).
 */
export function callerName(by: string | undefined): string {
  if (by !== undefined) return need(by, '--by NAME');
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry for this uid (some containers): fall through.
  }
  return `uid-${process.getuid?.() ?? 'unknown'}@${hostname()}`;
}

function workflowIdOf(id: string): string {
  return /^[0-9a-f]{16}$/.test(id) ? `alert-${id}` : id;
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`;
}

/** The visibility query behind `alerts list` (exported for tests and the README). */
export function listQuery(options: { status?: string; severity?: string; all?: boolean }): string {
  const parts = [`WorkflowType = ${quote(alertWorkflowType)}`];
  if (options.status) parts.push(`AlertStatus = ${quote(options.status)}`);
  if (options.severity) parts.push(`AlertSeverity = ${quote(options.severity)}`);
  if (!options.all && options.status !== 'resolved') parts.push('ExecutionStatus = "Running"');
  return parts.join(' AND ');
}

function first(value: unknown): string {
  return Array.isArray(value) ? String(value[0] ?? '') : value === undefined || value === null ? '' : String(value);
}

function renderRows(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

function describeState(s: IncidentState): string {
  const lines = [
    `${s.workflowId}  [${s.severity}] ${s.detector}: ${s.summary}`,
    `  status ${s.status}, level ${s.level}${s.plan ? ` (of levels 0-${s.plan.levels.length - 1})` : ''}, fired ${s.count}x, first ${s.firstSeen}, last ${s.lastSeen}`,
    `  labels ${Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`,
  ];
  if (s.plan) lines.push(`  route ${s.plan.routePath} -> receiver ${s.plan.receiver}, policy ${s.plan.policy}`);
  if (s.acknowledgedBy) lines.push(`  acknowledged by ${s.acknowledgedBy} at ${s.acknowledgedAt}`);
  if (s.resolvedBy) lines.push(`  resolved by ${s.resolvedBy} at ${s.resolvedAt}`);
  if (s.snoozedUntil) lines.push(`  snoozed until ${s.snoozedUntil}`);
  if (s.nextEscalationAt && (s.status === 'firing' || s.status === 'notified')) lines.push(`  next escalation ${s.nextEscalationAt}`);
  if (s.suppressedBy.length > 0) lines.push(`  suppressed by ${s.suppressedBy.join(', ')}`);
  lines.push(`  notifications: ${s.notificationsDelivered} delivered, ${s.notificationsFailed} failed${s.notificationsSkipped ? `, ${s.notificationsSkipped} skipped (target disabled)` : ''}`);
  return lines.join('\n');
}

function describeTimeline(entries: TimelineEntry[]): string {
  return renderRows(
    ['at', 'event', 'status', 'lvl', 'by', 'detail'],
    entries.map((e) => [
      e.at,
      e.type === 'notification' ? `notify:${e.kind ?? ''}` : e.type,
      e.status,
      String(e.level),
      e.by,
      e.type === 'notification' ? `${e.target ?? ''} ${e.delivered ? 'delivered' : e.skipped ? 'skipped' : 'FAILED'} (${e.attempts ?? '?'} attempt(s)) ${e.detail ?? ''}` : e.note,
    ]),
  );
}

/** Runs an update, turning a refusal into a one-line message (exit code 1). */
async function update<T>(client: Client, id: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new Error(err.cause?.message ?? err.message);
    if (err instanceof WorkflowNotFoundError) throw new Error(await closedIncident(client, id));
    throw err;
  }
}

/** Why an update found no running incident: closed (with when and how it ended), or never opened. */
async function closedIncident(client: Client, id: string): Promise<string> {
  try {
    const d = await client.workflow.getHandle(id).describe();
    const ended = d.closeTime ? ` at ${d.closeTime.toISOString()}` : '';
    return `${id} is closed (${d.status.name.toLowerCase()}${ended}); nothing was changed. A new firing of the same alert opens a new incident under this id (see platform alerts show ${id}).`;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return `no incident ${id} (see platform alerts list --all)`;
    throw err;
  }
}

function need(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`expected ${what}`);
  return value;
}

/**
 * Fills each row's detector and summary from the audit trail in ClickHouse (visibility carries
 * only search attributes). When ClickHouse cannot be asked, says so in one line on stderr and
 * leaves them empty: the list itself comes from Temporal and stays useful.
 */
async function addSummaries(rows: Record<string, string>[]): Promise<void> {
  if (rows.length === 0) return;
  const config = loadConfig();
  const warehouse = createWarehouse(config, resolveEndpoints(config));
  try {
    const found = await incidentSummaries(warehouse, rows.map((r) => r.id!));
    for (const row of rows) {
      const about = found.get(row.id!);
      if (about) Object.assign(row, about);
    }
  } catch (err) {
    console.error(`(detector and summary not shown: ClickHouse's alert_events could not be read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  } finally {
    await warehouse.close();
  }
}

/** `text` cut to at most `max` characters, with an ellipsis when cut. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const client = await connectTemporal(config, resolveEndpoints(config));
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

const command: Command = {
  name: 'alerts',
  summary: 'list, show, ack, resolve, snooze, escalate incidents; silences',
  usage,
  spec: alertsSpec,

  async run(args) {
    const { sub, values, positionals } = parseCommandLine(alertsSpec, args);
    switch (sub) {
      case 'list': {
        const status = values.status === undefined ? undefined : incidentStatusSchema.safeParse(values.status);
        if (status && !status.success) throw new UsageError(`--status: expected one of ${incidentStatusSchema.options.join(', ')}, got "${String(values.status)}"`);
        const severity = values.severity === undefined ? undefined : severitySchema.safeParse(values.severity);
        if (severity && !severity.success) throw new UsageError(`--severity: expected one of ${severitySchema.options.join(', ')}, got "${String(values.severity)}"`);
        const query = listQuery({ status: status?.data, severity: severity?.data, all: values.all === true });
        return withClient(async (client) => {
          const rows: Record<string, string>[] = [];
          for await (const wf of client.workflow.list({ query })) {
            const sa = wf.searchAttributes;
            rows.push({
              id: wf.workflowId,
              severity: first(sa.AlertSeverity),
              status: first(sa.AlertStatus),
              level: first(sa.AlertLevel),
              detector: '',
              summary: '',
              acknowledgedBy: first(sa.AlertAcknowledgedBy),
              pipeline: first(sa.Pipeline),
              since: wf.startTime.toISOString(),
              execution: wf.status.name,
            });
          }
          await addSummaries(rows);
          if (values.json) console.log(JSON.stringify(rows.map((r) => ({ ...r, level: r.level === '' ? null : Number(r.level) })), null, 2));
          else {
            console.log(`# ${query}`);
            console.log(
              renderRows(
                ['id', 'severity', 'status', 'level', 'detector', 'summary', 'ack by', 'pipeline', 'since', 'run'],
                rows.map((r) => Object.values({ ...r, summary: clip(r.summary!, 60) })),
              ),
            );
          }
          return 0;
        });
      }
      case 'show': {
        const id = workflowIdOf(need(positionals[0], 'an incident ID (alert-<fingerprint>)'));
        return withClient(async (client) => {
          const state = await queryWithin<IncidentState>(client, id, 'state', 5000);
          if (values.json) console.log(JSON.stringify(state, null, 2));
          else console.log(`${describeState(state)}\n\n${describeTimeline(state.timeline)}`);
          return 0;
        });
      }
      case 'ack':
      case 'resolve':
      case 'escalate': {
        const id = workflowIdOf(need(positionals[0], 'an incident ID (alert-<fingerprint>)'));
        const note = stringOption(values, 'note');
        const input = { by: callerName(stringOption(values, 'by')), ...(note !== undefined ? { note } : {}) };
        const def = sub === 'ack' ? acknowledgeUpdate : sub === 'resolve' ? resolveUpdate : escalateUpdate;
        return withClient(async (client) => {
          const state = await update(client, id, () => client.workflow.getHandle(id).executeUpdate(def, { args: [input] }));
          console.log(describeState(state));
          return 0;
        });
      }
      case 'snooze': {
        const id = workflowIdOf(need(positionals[0], 'an incident ID (alert-<fingerprint>)'));
        const note = stringOption(values, 'note');
        const input = { until: snoozeUntil(need(values.until, '--until ISO-8601 time or +DURATION (+30m, +2h, +1d)')), by: callerName(stringOption(values, 'by')), ...(note !== undefined ? { note } : {}) };
        return withClient(async (client) => {
          const state = await update(client, id, () => client.workflow.getHandle(id).executeUpdate(snoozeUpdate, { args: [input] }));
          console.log(describeState(state));
          return 0;
        });
      }
      case 'silence': {
        const matchers = (values.matcher as string[] | undefined) ?? [];
        if (matchers.length === 0) throw new UsageError('expected at least one --matcher, e.g. --matcher pipeline=demo');
        let durationMs: number;
        try {
          durationMs = parseDuration(need(values.duration, '--duration like 30m or 2h'));
        } catch (err) {
          throw new UsageError(`--duration: ${(err as Error).message}`);
        }
        const startsAt = typeof values.starts === 'string' ? new Date(values.starts) : new Date();
        if (Number.isNaN(startsAt.getTime())) throw new UsageError(`--starts: expected an ISO-8601 time, got "${String(values.starts)}"`);
        const config = loadConfig();
        const warehouse = createWarehouse(config, resolveEndpoints(config));
        try {
          const silence = await createSilence(warehouse, {
            matchers,
            startsAt: startsAt.toISOString(),
            endsAt: new Date(startsAt.getTime() + durationMs).toISOString(),
            createdBy: callerName(stringOption(values, 'by')),
            comment: typeof values.comment === 'string' ? values.comment : '',
          });
          console.log(`silence ${silence.id}: ${silence.matchers.map((m) => m.text).join(', ')} from ${silence.startsAt} to ${silence.endsAt}`);
          return 0;
        } finally {
          await warehouse.close();
        }
      }
      case 'silences': {
        const config = loadConfig();
        const warehouse = createWarehouse(config, resolveEndpoints(config));
        try {
          const silences = await listSilences(warehouse, Date.now());
          if (values.json) console.log(JSON.stringify(silences, null, 2));
          else if (silences.length === 0) console.log('no silences in force or scheduled');
          else
            console.log(
              renderRows(
                ['id', 'matchers', 'starts', 'ends', 'by', 'comment'],
                silences.map((s) => [s.id, s.matchers.map((m) => m.text).join(' '), s.startsAt, s.endsAt, s.createdBy, s.comment]),
              ),
            );
          return 0;
        } finally {
          await warehouse.close();
        }
      }
      case 'unsilence': {
        const id = need(positionals[0], 'a silence id (see `platform alerts silences`)');
        const config = loadConfig();
        const warehouse = createWarehouse(config, resolveEndpoints(config));
        try {
          if (!(await expireSilence(warehouse, id))) {
            console.error(`no silence with id ${id}`);
            return 1;
          }
          console.log(`silence ${id} ended`);
          return 0;
        } finally {
          await warehouse.close();
        }
      }
      default:
        throw new UsageError(`unknown subcommand "${String(sub)}"`);
    }
  },
};

export default command;

/**
 * `--until` of `alerts snooze`: an ISO-8601 time passes through unchanged (the update validates
 * it); `+` and a duration of the alert policy's form (`+30m`, `+2h`, `+1d`, `+1h30m`; see
 * `parseDuration`) is that long from now, as an ISO time.
 */
export function snoozeUntil(value: string, now: number = Date.now()): string {
  const text = value.trim();
  if (!text.startsWith('+')) return value;
  try {
    return new Date(now + parseDuration(text.slice(1))).toISOString();
  } catch {
    return value;
  }
}
