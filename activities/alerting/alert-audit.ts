/**
 * Audit and suppression lookups of the alert workflow, against ClickHouse:
 * - `recordAlertEvents` appends timeline entries to `alert_events`, idempotent per batch of event
 *   ids (insert_deduplication_token) with the table's (incident_id, seq) key as second guard;
 * - `checkSuppression` answers "is this alert silenced or inhibited right now?" from the silences
 *   table and the open incidents recorded in `alert_events`.
 * Also the silence store used by `platform alerts silence` (plain functions, not activities).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { inhibitRuleSchema, inhibits, routingLabels, silenceApplies, silenceSchema, type Silence } from '../../schemas/alerting/alert-policy.js';
import { timelineEntrySchema, type AuditIncident, type TimelineEntry } from '../../schemas/alerting/alert-incident.js';
import { severitySchema } from '../../schemas/alerting/alert.js';
import { z } from 'zod';

/** Dependencies of {@link createAlertAuditActivities}. */
export interface AlertAuditDeps {
  /** Client bound to the platform's database (alert_events, alert_silences). */
  warehouse: ClickHouseClient;
  /**
   * How far back an incident counts as possibly open for inhibition (an incident with no event
   * for this long is ignored, so a terminated run cannot mute others forever).
   * @default 7 days
   */
  openIncidentHorizonMs?: number;
}

/** Input of `recordAlertEvents`. */
export interface RecordAlertEventsInput {
  incident: AuditIncident;
  events: TimelineEntry[];
}

/** Input of `checkSuppression`: the alert's routing labels, its own incident id, the time to evaluate at, and the plan's inhibition rules. */
export interface CheckSuppressionInput {
  incidentId: string;
  detector: string;
  severity: string;
  labels: Record<string, string>;
  /** Workflow time (ms since epoch): silences are evaluated at the incident's clock, not the worker's. */
  atMs: number;
  inhibitRules: { sourceMatchers: string[]; targetMatchers: string[]; equal: string[] }[];
}

/** Why an alert is not notified now; both empty means notify. */
export interface SuppressionResult {
  /** Silence ids in force that match. */
  silencedBy: string[];
  /** Workflow ids of open incidents that inhibit this one. */
  inhibitedBy: string[];
}

const toRow = (incident: AuditIncident, e: TimelineEntry) => ({
  event_id: `${incident.incidentId}/e${e.seq}`,
  incident_id: incident.incidentId,
  workflow_id: incident.workflowId,
  fingerprint: incident.fingerprint,
  seq: e.seq,
  event_time: e.at,
  event_type: e.type,
  status: e.status,
  severity: incident.severity,
  level: e.level,
  actor: e.by,
  note: e.note,
  detector: incident.detector,
  summary: incident.summary,
  labels: incident.labels,
  pipeline: incident.pipeline,
  route_receiver: incident.routeReceiver,
  policy: incident.policy,
  config_version: incident.configVersion,
  receiver: e.receiver ?? '',
  target: e.target ?? '',
  notification_id: e.notificationId ?? '',
  notification_kind: e.kind ?? '',
  delivered: e.delivered === undefined ? null : e.delivered ? 1 : 0,
  attempts: e.attempts ?? 0,
  detail: e.detail ?? '',
});

/** Builds the audit activities. */
export function createAlertAuditActivities(deps: AlertAuditDeps) {
  const { warehouse } = deps;
  const horizonMs = deps.openIncidentHorizonMs ?? 7 * 86_400_000;

  return {
    /** Appends timeline entries to alert_events; replays of the same batch are de-duplicated. */
    async recordAlertEvents(input: RecordAlertEventsInput): Promise<{ inserted: number }> {
      const events = z.array(timelineEntrySchema).safeParse(input.events);
      if (!events.success || events.data.length === 0) {
        throw ApplicationFailure.create({
          type: 'invalid_input',
          nonRetryable: true,
          message: `recordAlertEvents: expected a non-empty array of timeline entries, got ${events.success ? 'an empty array' : events.error.message}`,
        });
      }
      const first = events.data[0]!.seq;
      const last = events.data[events.data.length - 1]!.seq;
      await warehouse.insert({
        table: 'alert_events',
        values: events.data.map((e) => toRow(input.incident, e)),
        format: 'JSONEachRow',
        clickhouse_settings: {
          insert_deduplication_token: `${input.incident.incidentId}/e${first}-e${last}`,
          date_time_input_format: 'best_effort',
        },
      });
      return { inserted: events.data.length };
    },

    /** Silences in force and open inhibiting incidents for one alert, at the workflow's time. */
    async checkSuppression(input: CheckSuppressionInput): Promise<SuppressionResult> {
      const labels = routingLabels({ detector: input.detector, labels: input.labels, severity: severitySchema.parse(input.severity) });
      const silences = await activeSilences(warehouse, input.atMs);
      const silencedBy = silences.filter((s) => silenceApplies(s, labels, input.atMs)).map((s) => s.id);

      const rules = input.inhibitRules.map((r) => inhibitRuleSchema.parse(r));
      const inhibitedBy: string[] = [];
      if (rules.length > 0) {
        const open = await (
          await warehouse.query({
            query: `SELECT workflow_id, any(detector) AS detector, any(severity) AS severity,
                           argMax(labels, seq) AS labels, argMax(status, seq) AS status
                    FROM alert_events
                    WHERE incident_id != {self:String}
                      AND event_time >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                      AND event_time <= fromUnixTimestamp64Milli({at:Int64}, 'UTC')
                    GROUP BY incident_id, workflow_id
                    HAVING status != 'resolved'`,
            query_params: { self: input.incidentId, since: input.atMs - horizonMs, at: input.atMs },
            format: 'JSONEachRow',
          })
        ).json<{ workflow_id: string; detector: string; severity: string; labels: Record<string, string>; status: string }>();
        for (const source of open) {
          const severity = severitySchema.safeParse(source.severity);
          if (!severity.success) continue;
          const sourceLabels = routingLabels({ detector: source.detector, labels: source.labels, severity: severity.data });
          if (rules.some((rule) => inhibits(rule, sourceLabels, labels))) inhibitedBy.push(source.workflow_id);
        }
      }
      return { silencedBy, inhibitedBy: [...new Set(inhibitedBy)].sort() };
    },
  };
}

/** The audit activities' type, for `proxyActivities<AlertAuditActivities>`. */
export type AlertAuditActivities = ReturnType<typeof createAlertAuditActivities>;

interface SilenceRow {
  silence_id: string;
  matchers: string[];
  starts_at: string;
  ends_at: string;
  created_by: string;
  comment: string;
}

const fromRow = (r: SilenceRow): Silence =>
  silenceSchema.parse({
    id: r.silence_id,
    matchers: r.matchers,
    startsAt: `${r.starts_at.replace(' ', 'T')}Z`,
    endsAt: `${r.ends_at.replace(' ', 'T')}Z`,
    createdBy: r.created_by,
    comment: r.comment,
  });

/** Silences whose window contains `atMs` (latest version of each). */
export async function activeSilences(warehouse: ClickHouseClient, atMs: number): Promise<Silence[]> {
  const rows = await (
    await warehouse.query({
      query: `SELECT silence_id, matchers, starts_at, ends_at, created_by, comment
              FROM alert_silences FINAL
              WHERE starts_at <= fromUnixTimestamp64Milli({at:Int64}, 'UTC')
                AND ends_at > fromUnixTimestamp64Milli({at:Int64}, 'UTC')
              ORDER BY starts_at`,
      query_params: { at: atMs },
      format: 'JSONEachRow',
    })
  ).json<SilenceRow>();
  return rows.map(fromRow);
}

/** All silences not yet ended at `atMs`, including future ones. */
export async function listSilences(warehouse: ClickHouseClient, atMs: number): Promise<Silence[]> {
  const rows = await (
    await warehouse.query({
      query: `SELECT silence_id, matchers, starts_at, ends_at, created_by, comment
              FROM alert_silences FINAL
              WHERE ends_at > fromUnixTimestamp64Milli({at:Int64}, 'UTC')
              ORDER BY starts_at`,
      query_params: { at: atMs },
      format: 'JSONEachRow',
    })
  ).json<SilenceRow>();
  return rows.map(fromRow);
}

/** What the audit trail says an incident is about: its detector and its latest summary. */
export interface IncidentSummary {
  detector: string;
  summary: string;
}

/**
 * The detector and latest summary of each incident workflow in `workflowIds`, from `alert_events`
 * (the row with the greatest event time and sequence wins, so an upgraded incident shows its new
 * summary). Incidents with no audit row yet are absent from the map. Used by `alerts list`, whose
 * visibility query carries only search attributes.
 * @throws the ClickHouse client's error when the query fails.
 */
export async function incidentSummaries(warehouse: ClickHouseClient, workflowIds: readonly string[]): Promise<Map<string, IncidentSummary>> {
  if (workflowIds.length === 0) return new Map();
  const rows = await (
    await warehouse.query({
      query: `SELECT workflow_id, argMax(detector, (event_time, seq)) AS detector, argMax(summary, (event_time, seq)) AS summary
              FROM alert_events
              WHERE workflow_id IN {ids:Array(String)}
              GROUP BY workflow_id`,
      query_params: { ids: [...workflowIds] },
      format: 'JSONEachRow',
    })
  ).json<{ workflow_id: string; detector: string; summary: string }>();
  return new Map(rows.map((r) => [r.workflow_id, { detector: r.detector, summary: r.summary }]));
}

/** Stores a new silence (validated); returns it with its id. */
export async function createSilence(
  warehouse: ClickHouseClient,
  input: Omit<z.input<typeof silenceSchema>, 'id'> & { id?: string },
): Promise<Silence> {
  const silence = silenceSchema.parse({ ...input, id: input.id ?? randomUUID() });
  if (Date.parse(silence.endsAt) <= Date.parse(silence.startsAt)) {
    throw new Error(`silence: expected endsAt after startsAt, got ${silence.startsAt} .. ${silence.endsAt}`);
  }
  await writeSilence(warehouse, silence, 1);
  return silence;
}

/** Ends a silence now (a newer version of the same id); returns false when no such silence exists. */
export async function expireSilence(warehouse: ClickHouseClient, id: string, atMs: number = Date.now()): Promise<boolean> {
  const rows = await (
    await warehouse.query({
      query: `SELECT silence_id, matchers, starts_at, ends_at, created_by, comment, version
              FROM alert_silences FINAL WHERE silence_id = {id:String}`,
      query_params: { id },
      format: 'JSONEachRow',
    })
  ).json<SilenceRow & { version: string | number }>();
  const row = rows[0];
  if (!row) return false;
  const silence = fromRow(row);
  const endsAt = new Date(Math.min(atMs, Date.parse(silence.endsAt))).toISOString();
  await writeSilence(warehouse, { ...silence, endsAt }, Number(row.version) + 1);
  return true;
}

async function writeSilence(warehouse: ClickHouseClient, silence: Silence, version: number): Promise<void> {
  await warehouse.insert({
    table: 'alert_silences',
    values: [
      {
        silence_id: silence.id,
        matchers: silence.matchers.map((m) => m.text),
        starts_at: silence.startsAt,
        ends_at: silence.endsAt,
        created_by: silence.createdBy,
        comment: silence.comment,
        version,
      },
    ],
    format: 'JSONEachRow',
    clickhouse_settings: { insert_deduplication_token: `${silence.id}/v${version}`, date_time_input_format: 'best_effort' },
  });
}

/**
 * MTTA / MTTR over alert_events, grouped by `severity` or `route_receiver` (the route's receiver,
 * i.e. the owning team). Time to acknowledge counts acknowledged incidents only; time to resolve,
 * resolved ones only. Parameter `{days:UInt32}`: incidents opened in the last N days. Plain SQL,
 * valid on any current ClickHouse server; the README shows it for copy-paste.
 */
export function alertResponseTimesSql(by: 'severity' | 'route_receiver'): string {
  return `WITH incidents AS (
  SELECT incident_id,
         any(${by}) AS ${by},
         minIf(event_time, event_type = 'opened') AS opened_at,
         minIf(event_time, event_type = 'acknowledged') AS acked_at,
         minIf(event_time, event_type = 'resolved') AS resolved_at,
         countIf(event_type = 'acknowledged') > 0 AS was_acked,
         countIf(event_type = 'resolved') > 0 AS was_resolved
  FROM alert_events FINAL
  GROUP BY incident_id
  HAVING countIf(event_type = 'opened') > 0
     AND opened_at >= now64(3) - toIntervalDay({days:UInt32})
)
SELECT ${by},
       count() AS incidents,
       countIf(was_acked) AS acknowledged,
       round(avgIf((toUnixTimestamp64Milli(acked_at) - toUnixTimestamp64Milli(opened_at)) / 1000, was_acked), 1) AS mtta_s,
       round(quantileIf(0.9)((toUnixTimestamp64Milli(acked_at) - toUnixTimestamp64Milli(opened_at)) / 1000, was_acked), 1) AS p90_tta_s,
       countIf(was_resolved) AS resolved,
       round(avgIf((toUnixTimestamp64Milli(resolved_at) - toUnixTimestamp64Milli(opened_at)) / 1000, was_resolved), 1) AS mttr_s
FROM incidents
GROUP BY ${by}
ORDER BY ${by}`;
}
