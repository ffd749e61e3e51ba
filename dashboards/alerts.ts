/**
 * Alerts: what is open now, how fast people acknowledge (MTTA) and resolve (MTTR) per severity,
 * and how the notification channels behave. Reads the incident audit trail alert_events
 * (migration 020): one row per transition or notification attempt, each repeating the incident's
 * severity, so the aggregates need no joins. An incident's current state is its row with the
 * highest `seq`; notification counts read with FINAL because a re-batched audit insert may repeat
 * rows until the (incident_id, seq) key merges them.
 */
import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_TAG, dashboardLinks, datasourceVariable, finishDashboard, queryVariable, statPanel, tablePanel, timeseriesPanel } from './panels.js';

/** Uid of the alerts dashboard. */
export const ALERTS_UID = 'streamwarden-alerts';

const severityFilter = 'severity IN (${severity:singlequote})';

/** Per incident: severity, when it opened, was first acknowledged and first resolved (NULL if not yet). */
const incidentTimes = `
            SELECT
              incident_id,
              any(severity) AS severity,
              minIf(event_time, event_type = 'opened') AS opened_at,
              minIf(toNullable(event_time), event_type = 'acknowledged') AS acknowledged_at,
              minIf(toNullable(event_time), event_type = 'resolved') AS resolved_at
            FROM alert_events
            GROUP BY incident_id
            HAVING countIf(event_type = 'opened') > 0`;

/** Channel of a notification target id `<type>:<name>` (webhook, email, slack, pagerduty...). */
const channel = "splitByChar(':', target)[1]";

/** Severities from the most to the least urgent, for ordering. */
const severityOrder = "indexOf(['page', 'critical', 'warning', 'info'], severity)";

/** Builds the alerts dashboard. */
export function alertsDashboard(): Dashboard {
  const builder = new DashboardBuilder('streamwarden / Alerts')
    .uid(ALERTS_UID)
    .description('Open alerts, MTTA / MTTR per severity and notification delivery per channel, from the alert audit trail.')
    .tags([DASHBOARD_TAG, 'alerts'])
    .link(dashboardLinks())
    .time({ from: 'now-24h', to: 'now' })
    .refresh('1m')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('severity', 'Severity', `SELECT DISTINCT severity FROM alert_events ORDER BY ${severityOrder}`))

    .withRow(new RowBuilder('Now'))
    .withPanel(
      statPanel({
        title: 'Open, not acknowledged',
        description: 'Incidents whose latest status is firing or notified: someone should be looking at them.',
        sql: `
          SELECT countIf(status IN ('firing', 'notified')) AS unacknowledged
          FROM (
            SELECT incident_id, any(severity) AS severity, argMax(status, seq) AS status
            FROM alert_events
            GROUP BY incident_id
          )
          WHERE ${severityFilter}`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Open, acknowledged',
        description: 'Incidents acknowledged or snoozed and not resolved yet.',
        sql: `
          SELECT countIf(status IN ('acknowledged', 'snoozed')) AS acknowledged_open
          FROM (
            SELECT incident_id, any(severity) AS severity, argMax(status, seq) AS status
            FROM alert_events
            GROUP BY incident_id
          )
          WHERE ${severityFilter}`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'MTTA',
        description: 'Mean time from opening to the first acknowledgement, for incidents opened in the time range.',
        unit: 's',
        sql: `
          SELECT avg(toUnixTimestamp64Milli(acknowledged_at) - toUnixTimestamp64Milli(opened_at)) / 1000 AS mtta_s
          FROM (${incidentTimes}
          )
          WHERE $__timeFilter(opened_at) AND ${severityFilter}`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'MTTR',
        description: 'Mean time from opening to resolution, for incidents opened in the time range.',
        unit: 's',
        sql: `
          SELECT avg(toUnixTimestamp64Milli(resolved_at) - toUnixTimestamp64Milli(opened_at)) / 1000 AS mttr_s
          FROM (${incidentTimes}
          )
          WHERE $__timeFilter(opened_at) AND ${severityFilter}`,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Open alerts',
        description: 'Incidents not resolved, oldest first. Acknowledge with the link in the notification or `platform alerts ack <workflow id>`.',
        width: 24,
        sql: `
          SELECT workflow_id, severity, status, level, detector, summary, opened_at, last_event_at, acknowledged_by
          FROM (
            SELECT
              incident_id,
              any(workflow_id) AS workflow_id,
              any(severity) AS severity,
              argMax(status, seq) AS status,
              argMax(level, seq) AS level,
              any(detector) AS detector,
              argMax(summary, seq) AS summary,
              min(event_time) AS opened_at,
              max(event_time) AS last_event_at,
              argMaxIf(actor, seq, event_type = 'acknowledged') AS acknowledged_by
            FROM alert_events
            GROUP BY incident_id
          )
          WHERE status != 'resolved' AND ${severityFilter}
          ORDER BY ${severityOrder}, opened_at`,
      }),
    )

    .withRow(new RowBuilder('Response times'))
    .withPanel(
      tablePanel({
        title: 'MTTA / MTTR per severity',
        description: 'Incidents opened in the time range, per severity: how many, how many were acknowledged and resolved, mean and worst times.',
        sql: `
          SELECT
            severity,
            count() AS incidents,
            count(acknowledged_at) AS acknowledged,
            count(resolved_at) AS resolved,
            avg(toUnixTimestamp64Milli(acknowledged_at) - toUnixTimestamp64Milli(opened_at)) / 1000 AS mtta_s,
            max(toUnixTimestamp64Milli(acknowledged_at) - toUnixTimestamp64Milli(opened_at)) / 1000 AS worst_tta_s,
            avg(toUnixTimestamp64Milli(resolved_at) - toUnixTimestamp64Milli(opened_at)) / 1000 AS mttr_s,
            max(toUnixTimestamp64Milli(resolved_at) - toUnixTimestamp64Milli(opened_at)) / 1000 AS worst_ttr_s
          FROM (${incidentTimes}
          )
          WHERE $__timeFilter(opened_at) AND ${severityFilter}
          GROUP BY severity
          ORDER BY ${severityOrder}`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Alerts opened',
        description: 'Incidents opened per interval, by severity.',
        sql: `
          SELECT
            $__timeInterval(event_time) AS time,
            severity,
            count() AS opened
          FROM alert_events FINAL
          WHERE $__timeFilter(event_time) AND event_type = 'opened' AND ${severityFilter}
          GROUP BY time, severity
          ORDER BY time`,
      }),
    )

    .withRow(new RowBuilder('Notifications'))
    .withPanel(
      timeseriesPanel({
        title: 'Notifications per channel',
        description: 'Notification attempts per interval, by channel (the type part of the target id, e.g. webhook, email).',
        sql: `
          SELECT
            $__timeInterval(event_time) AS time,
            ${channel} AS channel,
            count() AS notifications
          FROM alert_events FINAL
          WHERE $__timeFilter(event_time) AND event_type = 'notification' AND ${severityFilter}
          GROUP BY time, channel
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Failed notifications per channel',
        description: 'Notifications that were not delivered after their retries, by channel.',
        sql: `
          SELECT
            $__timeInterval(event_time) AS time,
            ${channel} AS channel,
            count() AS failed
          FROM alert_events FINAL
          WHERE $__timeFilter(event_time) AND event_type = 'notification' AND delivered = 0 AND ${severityFilter}
          GROUP BY time, channel
          ORDER BY time`,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Notification delivery by target',
        description: 'Per channel and target in the time range: attempts, delivered, failed, failure rate, mean delivery attempts and the last failure.',
        width: 24,
        sql: `
          SELECT
            ${channel} AS channel,
            target,
            count() AS notifications,
            countIf(delivered = 1) AS delivered_ok,
            countIf(delivered = 0) AS failed,
            failed / notifications AS failure_rate,
            avg(attempts) AS mean_attempts,
            argMaxIf(detail, event_time, delivered = 0) AS last_failure
          FROM alert_events FINAL
          WHERE $__timeFilter(event_time) AND event_type = 'notification' AND ${severityFilter}
          GROUP BY channel, target
          ORDER BY failed DESC, notifications DESC, channel, target`,
      }),
    );
  return finishDashboard(builder);
}
