/**
 * Operations: latency, throughput, error rates, backlog (consumer lag per partition over time) and
 * freshness, from both sides: the ClickHouse rows the platform writes (lineage_batches with its
 * high watermark, events with their three timestamps) and the workers' Prometheus metrics
 * (prom-client, activities/observability/metrics.ts, and the Temporal SDK's own). Alert response
 * (MTTA/MTTR) is on the Alerts dashboard; throughput and dead letters by reason in detail on
 * Pipeline health.
 */
import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_TAG, dashboardLinks, datasourceVariable, finishDashboard, pipelineVariable, prometheusVariable, promTimeseriesPanel, timeseriesPanel } from './panels.js';

/** Uid of the operations dashboard. */
export const OPERATIONS_UID = 'streamwarden-operations';

const pipelineFilter = 'pipeline IN (${pipeline:singlequote})';
const pipelineLabel = 'pipeline=~"${pipeline:regex}"';

/** Builds the operations dashboard. */
export function operationsDashboard(): Dashboard {
  const builder = new DashboardBuilder('streamwarden / Operations')
    .uid(OPERATIONS_UID)
    .description('Backlog per partition, freshness, landing latency, throughput and error rates, from ClickHouse lineage and the workers\' Prometheus metrics.')
    .tags([DASHBOARD_TAG, 'operations'])
    .link(dashboardLinks())
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(prometheusVariable())
    .withVariable(pipelineVariable())

    .withRow(new RowBuilder('Backlog and freshness (ClickHouse)'))
    .withPanel(
      timeseriesPanel({
        title: 'Backlog per partition',
        description: 'Offsets not yet landed after each batch (high watermark when planned minus the batch end), the largest per partition and interval. Batches landed before the high watermark was recorded are left out.',
        sql: `
          SELECT $__timeInterval(finished_at) AS time, concat(topic, '[', toString(partition), ']') AS partition,
                 max(toInt64(assumeNotNull(high_watermark)) - toInt64(to_offset)) AS lag
          FROM lineage_batches FINAL
          WHERE $__timeFilter(finished_at) AND ${pipelineFilter} AND high_watermark IS NOT NULL
          GROUP BY time, partition
          ORDER BY time, partition`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Freshness: Kafka to queryable',
        description: 'Seconds from the Kafka record timestamp to the row being in ClickHouse (ingested_at), median and 95th percentile per interval.',
        unit: 's',
        sql: `
          SELECT $__timeInterval(ingested_at) AS time,
                 quantile(0.5)(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) / 1000 AS p50,
                 quantile(0.95)(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) / 1000 AS p95
          FROM events
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}
          GROUP BY time
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Freshness: event age at landing',
        description: 'Seconds from the event\'s own time (producer clock) to landing, median and 95th percentile per interval; late replays show up here.',
        unit: 's',
        sql: `
          SELECT $__timeInterval(ingested_at) AS time,
                 quantile(0.5)(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(event_time)) / 1000 AS p50,
                 quantile(0.95)(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(event_time)) / 1000 AS p95
          FROM events
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}
          GROUP BY time
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Landing latency (lineage)',
        description: 'Seconds from the start of a batch landing to its lineage row, 95th percentile and maximum per interval.',
        unit: 's',
        sql: `
          SELECT $__timeInterval(finished_at) AS time,
                 quantile(0.95)(toUnixTimestamp64Milli(finished_at) - toUnixTimestamp64Milli(started_at)) / 1000 AS p95,
                 max(toUnixTimestamp64Milli(finished_at) - toUnixTimestamp64Milli(started_at)) / 1000 AS max
          FROM lineage_batches FINAL
          WHERE $__timeFilter(finished_at) AND ${pipelineFilter}
          GROUP BY time
          ORDER BY time`,
      }),
    )

    .withRow(new RowBuilder('Workers (Prometheus)'))
    .withPanel(
      promTimeseriesPanel({
        title: 'Throughput',
        description: 'Events landed and rejected per second, per pipeline (streamwarden_events_landed_total, streamwarden_events_rejected_total).',
        unit: 'ops',
        targets: [
          { expr: `sum by (pipeline) (rate(streamwarden_events_landed_total{${pipelineLabel}}[$__rate_interval]))`, legend: '{{pipeline}} landed' },
          { expr: `sum by (pipeline) (rate(streamwarden_events_rejected_total{${pipelineLabel}}[$__rate_interval]))`, legend: '{{pipeline}} rejected' },
        ],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Rejections by reason',
        description: 'Dead letters per second by reason_code.',
        unit: 'ops',
        targets: [{ expr: `sum by (reason) (rate(streamwarden_events_rejected_total{${pipelineLabel}}[$__rate_interval]))`, legend: '{{reason}}' }],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Consumer lag per partition',
        description: 'High watermark minus the next offset to land, at each partition\'s last plan (streamwarden_consumer_lag_events).',
        targets: [{ expr: `max by (pipeline, topic, partition) (streamwarden_consumer_lag_events{${pipelineLabel}})`, legend: '{{pipeline}} {{topic}}[{{partition}}]' }],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Batch landing latency',
        description: '95th percentile of one landing attempt (streamwarden_batch_landing_duration_seconds), and the batch size median.',
        unit: 's',
        targets: [
          { expr: `histogram_quantile(0.95, sum by (le, pipeline) (rate(streamwarden_batch_landing_duration_seconds_bucket{${pipelineLabel}}[$__rate_interval])))`, legend: '{{pipeline}} p95' },
          { expr: `histogram_quantile(0.5, sum by (le, pipeline) (rate(streamwarden_batch_size_events_bucket{${pipelineLabel}}[$__rate_interval])))`, legend: '{{pipeline}} median batch (events)' },
        ],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Freshness (metrics)',
        description: '95th percentile of Kafka timestamp to queryable, and of event age at landing.',
        unit: 's',
        targets: [
          { expr: `histogram_quantile(0.95, sum by (le, pipeline) (rate(streamwarden_kafka_to_queryable_seconds_bucket{${pipelineLabel}}[$__rate_interval])))`, legend: '{{pipeline}} Kafka to queryable p95' },
          { expr: `histogram_quantile(0.95, sum by (le, pipeline) (rate(streamwarden_event_age_at_landing_seconds_bucket{${pipelineLabel}}[$__rate_interval])))`, legend: '{{pipeline}} event age p95' },
        ],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Activity error rate',
        description: 'Share of activity executions that failed, per activity (streamwarden_activity_duration_seconds_count by outcome).',
        unit: 'percentunit',
        targets: [
          {
            expr: 'sum by (activity) (rate(streamwarden_activity_duration_seconds_count{outcome="failure"}[$__rate_interval])) / sum by (activity) (rate(streamwarden_activity_duration_seconds_count[$__rate_interval]))',
            legend: '{{activity}}',
          },
        ],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Rollup and detector duration',
        description: '95th percentile of one rollup run and one detector run.',
        unit: 's',
        targets: [
          { expr: 'histogram_quantile(0.95, sum by (le) (rate(streamwarden_rollup_duration_seconds_bucket[$__rate_interval])))', legend: 'rollup p95' },
          { expr: 'histogram_quantile(0.95, sum by (le) (rate(streamwarden_detector_duration_seconds_bucket[$__rate_interval])))', legend: 'detector p95' },
        ],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Alerts and notifications',
        description: 'Alerts fired, acknowledged and resolved, and notification attempts by channel and outcome, per second.',
        unit: 'ops',
        targets: [
          { expr: 'sum by (event) (rate(streamwarden_alerts_total[$__rate_interval]))', legend: 'alerts {{event}}' },
          { expr: 'sum by (channel, outcome) (rate(streamwarden_notifications_total[$__rate_interval]))', legend: '{{channel}} {{outcome}}' },
        ],
      }),
    )
    .withPanel(
      promTimeseriesPanel({
        title: 'Temporal: activity schedule-to-start and execution',
        description: 'From the Temporal SDK\'s own metrics: 95th percentile of the time activities wait for a worker slot, and of their execution, per activity type.',
        unit: 's',
        targets: [
          { expr: 'histogram_quantile(0.95, sum by (le, activity_type) (rate(temporal_activity_schedule_to_start_latency_seconds_bucket[$__rate_interval])))', legend: '{{activity_type}} schedule-to-start p95' },
          { expr: 'histogram_quantile(0.95, sum by (le, activity_type) (rate(temporal_activity_execution_latency_seconds_bucket[$__rate_interval])))', legend: '{{activity_type}} execution p95' },
        ],
      }),
    );
  return finishDashboard(builder);
}
