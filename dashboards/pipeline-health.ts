/**
 * Pipeline health: what landed, what was dead-lettered and why, how batches behave, and where each
 * partition's cursor stands. Reads events, dead_letters and lineage_batches
 * (infra/clickhouse/migrations/001-003); the panels that count a partition's flow read first
 * landings only (`generation = 0`, migration 076), so a replay does not count its range twice.
 */
import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_TAG, dashboardLinks, datasourceVariable, finishDashboard, pipelineVariable, statPanel, tablePanel, timeseriesPanel } from './panels.js';

/** Uid of the pipeline health dashboard (stable: links and the home dashboard use it). */
export const PIPELINE_HEALTH_UID = 'streamwarden-pipeline-health';

const pipelineFilter = 'pipeline IN (${pipeline:singlequote})';

/** Builds the pipeline health dashboard. */
export function pipelineHealthDashboard(): Dashboard {
  const builder = new DashboardBuilder('streamwarden / Pipeline health')
    .uid(PIPELINE_HEALTH_UID)
    .description('Events landed, dead letters by reason, batch throughput and latency, and the position of every partition.')
    .tags([DASHBOARD_TAG, 'pipeline'])
    .link(dashboardLinks())
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(pipelineVariable())

    .withRow(new RowBuilder('Overview'))
    .withPanel(
      statPanel({
        title: 'Events landed',
        description: 'Valid events written to the events table in the time range.',
        sql: `
          SELECT count() AS events
          FROM events
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Dead-lettered',
        description: 'Records rejected into dead_letters in the time range (malformed, contract violations, ...).',
        sql: `
          SELECT count() AS dead_letters
          FROM dead_letters
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Rejected share',
        description: 'Rejected records over all records read, from the lineage of the batches landed in the time range.',
        unit: 'percentunit',
        sql: `
          SELECT sum(rejected_count) / greatest(sum(valid_count) + sum(rejected_count), 1) AS rejected_ratio
          FROM lineage_batches FINAL
          WHERE $__timeFilter(finished_at) AND ${pipelineFilter} AND generation = 0`,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Last batch landed',
        description: 'When the most recent batch of the selected pipelines finished. A stale value means a stalled pipeline.',
        unit: 'dateTimeFromNow',
        sql: `
          SELECT toUnixTimestamp64Milli(max(finished_at)) AS last_batch_at
          FROM lineage_batches FINAL
          WHERE ${pipelineFilter}
          HAVING count() > 0`,
      }),
    )

    .withRow(new RowBuilder('Flow'))
    .withPanel(
      timeseriesPanel({
        title: 'Events landed per minute',
        description: 'Valid events landed per minute, by pipeline (by landing time).',
        unit: 'short',
        sql: `
          SELECT
            $__timeInterval(ingested_at) AS time,
            pipeline,
            count() * 60 / $__interval_s AS events_per_min
          FROM events
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}
          GROUP BY time, pipeline
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Dead letters per minute by reason',
        description: 'Rejected records per minute, by machine-readable reason code.',
        unit: 'short',
        sql: `
          SELECT
            $__timeInterval(ingested_at) AS time,
            reason_code,
            count() * 60 / $__interval_s AS dead_letters_per_min
          FROM dead_letters
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}
          GROUP BY time, reason_code
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Kafka-to-ClickHouse delay',
        description: 'Time from the Kafka record timestamp to the row landing in ClickHouse (p50, p95).',
        unit: 'ms',
        width: 24,
        sql: `
          SELECT
            $__timeInterval(ingested_at) AS time,
            quantile(0.5)(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) AS p50_ms,
            quantile(0.95)(toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) AS p95_ms
          FROM events
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}
          GROUP BY time
          ORDER BY time`,
      }),
    )

    .withRow(new RowBuilder('Batches'))
    .withPanel(
      timeseriesPanel({
        title: 'Batches per minute',
        description: 'Batches landed per minute, by pipeline (one lineage row per batch).',
        sql: `
          SELECT
            $__timeInterval(finished_at) AS time,
            pipeline,
            count() * 60 / $__interval_s AS batches_per_min
          FROM lineage_batches FINAL
          WHERE $__timeFilter(finished_at) AND ${pipelineFilter} AND generation = 0
          GROUP BY time, pipeline
          ORDER BY time`,
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: 'Batch latency',
        description: 'Time from the start to the end of landing a batch (fetch, validate, insert), p50 / p95 / max.',
        unit: 'ms',
        sql: `
          SELECT
            $__timeInterval(finished_at) AS time,
            quantile(0.5)(toUnixTimestamp64Milli(finished_at) - toUnixTimestamp64Milli(started_at)) AS p50_ms,
            quantile(0.95)(toUnixTimestamp64Milli(finished_at) - toUnixTimestamp64Milli(started_at)) AS p95_ms,
            max(toUnixTimestamp64Milli(finished_at) - toUnixTimestamp64Milli(started_at)) AS max_ms
          FROM lineage_batches FINAL
          WHERE $__timeFilter(finished_at) AND ${pipelineFilter}
          GROUP BY time
          ORDER BY time`,
      }),
    )

    .withRow(new RowBuilder('Partitions'))
    .withPanel(
      timeseriesPanel({
        title: 'Next offset per partition',
        description: 'The cursor of each partition (exclusive end of the last landed batch). A flat line on a busy topic is a stuck partition.',
        sql: `
          SELECT
            $__timeInterval(finished_at) AS time,
            concat(topic, '/', toString(partition)) AS topic_partition,
            max(to_offset) AS next_offset
          FROM lineage_batches FINAL
          WHERE $__timeFilter(finished_at) AND ${pipelineFilter} AND generation = 0
          GROUP BY time, topic_partition
          ORDER BY time`,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Partition positions',
        description: 'Where each partition stands: next offset to read, what was landed and rejected in the time range, and when its last batch finished.',
        sql: `
          SELECT
            pipeline,
            topic,
            partition,
            max(to_offset) AS next_offset,
            sumIf(valid_count, $__timeFilter(finished_at)) AS landed,
            sumIf(rejected_count, $__timeFilter(finished_at)) AS rejected,
            countIf($__timeFilter(finished_at)) AS batches,
            max(finished_at) AS last_batch_at
          FROM lineage_batches FINAL
          WHERE ${pipelineFilter} AND generation = 0
          GROUP BY pipeline, topic, partition
          ORDER BY pipeline, topic, partition`,
      }),
    )

    .withRow(new RowBuilder('Rejections'))
    .withPanel(
      tablePanel({
        title: 'Top rejected reasons',
        description: 'Reason codes of dead letters in the time range, most frequent first, with an example message. Query dead_letters for the raw records.',
        width: 24,
        sql: `
          SELECT
            reason_code,
            count() AS rejected,
            uniqExact(topic, partition) AS partitions,
            min(ingested_at) AS first_seen,
            max(ingested_at) AS last_seen,
            any(reason_message) AS example
          FROM dead_letters
          WHERE $__timeFilter(ingested_at) AND ${pipelineFilter}
          GROUP BY reason_code
          ORDER BY rejected DESC, reason_code
          LIMIT 20`,
      }),
    );
  return finishDashboard(builder);
}
