/**
 * Service telemetry from the one-minute rollups (rollups_1m, migration 004): requests, error rate
 * and latency per service, and the routes that hurt most. Rows with route = '*' are the whole
 * service; a window is recomputed in place, so every query reads with FINAL. Where a column is
 * aliased to its own name (`sum(requests) AS requests`), later expressions use the alias: ClickHouse
 * resolves a bare `requests` to the alias, so `sum(requests)` there would nest aggregates.
 */
import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_TAG, dashboardLinks, datasourceVariable, finishDashboard, pipelineVariable, queryVariable, statPanel, tablePanel, timeseriesPanel } from './panels.js';

/** Uid of the service telemetry dashboard. */
export const SERVICE_TELEMETRY_UID = 'streamwarden-service-telemetry';

const filters = "pipeline IN (${pipeline:singlequote}) AND service IN (${service:singlequote})";

/** Builds the service telemetry dashboard. */
export function serviceTelemetryDashboard(): Dashboard {
  const builder = new DashboardBuilder('streamwarden / Service telemetry')
    .uid(SERVICE_TELEMETRY_UID)
    .description('Requests, error rate and p95 latency per service, from the one-minute rollups computed by the pipelines.')
    .tags([DASHBOARD_TAG, 'services'])
    .link(dashboardLinks())
    .time({ from: 'now-3h', to: 'now' })
    .refresh('1m')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(pipelineVariable())
    .withVariable(
      queryVariable(
        'service',
        'Service',
        "SELECT DISTINCT service FROM rollups_1m WHERE pipeline IN (${pipeline:singlequote}) AND route = '*' ORDER BY service",
      ),
    )

    .withRow(new RowBuilder('Overview'))
    .withPanel(
      statPanel({
        title: 'Requests',
        description: 'Requests of the selected services in the time range.',
        width: 8,
        sql: `
          SELECT sum(requests) AS requests
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route = '*'`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Error rate',
        description: 'Server errors (status >= 500) over requests in the time range.',
        unit: 'percentunit',
        width: 8,
        sql: `
          SELECT sum(errors) / greatest(sum(requests), 1) AS error_rate
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route = '*'`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Worst p95 latency',
        description: 'The highest one-minute p95 latency of any selected service in the time range.',
        unit: 'ms',
        width: 8,
        sql: `
          SELECT max(duration_p95) AS worst_p95_ms
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route = '*'`,
      }),
    )

    .withRow(new RowBuilder('Per service'))
    .withPanel(
      timeseriesPanel({
        title: 'Requests per minute',
        description: 'Requests per minute, by service.',
        width: 8,
        sql: `
          SELECT
            $__timeInterval(window_start) AS time,
            service,
            sum(requests) * 60 / $__interval_s AS requests_per_min
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route = '*'
          GROUP BY time, service
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Error rate per service',
        description: 'Server errors (status >= 500) over requests, by service.',
        unit: 'percentunit',
        width: 8,
        sql: `
          SELECT
            $__timeInterval(window_start) AS time,
            service,
            sum(errors) / greatest(sum(requests), 1) AS error_rate
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route = '*'
          GROUP BY time, service
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'p95 latency',
        description: 'p95 request duration by service. Percentiles of different minutes cannot be merged, so a bucket wider than a minute shows its worst minute.',
        unit: 'ms',
        width: 8,
        sql: `
          SELECT
            $__timeInterval(window_start) AS time,
            service,
            max(duration_p95) AS p95_ms
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route = '*'
          GROUP BY time, service
          ORDER BY time`,
      }),
    )

    .withRow(new RowBuilder('Breakdown'))
    .withPanel(
      tablePanel({
        title: 'Services',
        description: 'Totals per service in the time range.',
        sql: `
          SELECT
            service,
            sum(requests) AS requests,
            sum(errors) AS server_errors,
            sum(client_errors) AS client_errors,
            server_errors / greatest(requests, 1) AS error_rate,
            max(duration_p95) AS worst_p95_ms,
            max(duration_p99) AS worst_p99_ms
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route = '*'
          GROUP BY service
          ORDER BY requests DESC, service`,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Routes with the most server errors',
        description: 'Per-route totals in the time range, most server errors first.',
        sql: `
          SELECT
            service,
            route,
            sum(requests) AS requests,
            sum(errors) AS server_errors,
            server_errors / greatest(requests, 1) AS error_rate,
            max(duration_p95) AS worst_p95_ms
          FROM rollups_1m FINAL
          WHERE $__timeFilter(window_start) AND ${filters} AND route != '*'
          GROUP BY service, route
          ORDER BY server_errors DESC, requests DESC, service, route
          LIMIT 20`,
      }),
    );
  return finishDashboard(builder);
}
