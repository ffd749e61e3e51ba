/**
 * Lineage queries: the whole path of one landed row (source offsets, batch, contract and
 * processor versions, the aggregate windows that include it, the alerts that fired on those
 * windows), and the way back from an alert to the windows it read and the events and batches
 * behind them. Read-only SQL over `events`, `dead_letters`, `lineage_batches`, `rollups_1m`,
 * `alert_firing_inputs` and `alert_events`, values as query parameters only; firings of detectors
 * over declared aggregations are read from the alert workflow's Temporal history (their context
 * carries the aggregation, the group key and the reproduction query). Used by
 * `platform lineage trace`.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { AnalyticsFile } from '../../schemas/analytics/declarations.js';
import { windowSourceBatches } from '../analytics/aggregate-sql.js';
import { alertFiringsFromHistory } from './alert-firings.js';
import { requestTelemetrySubject } from '../../schemas/contracts/request-telemetry/v1.js';

/** How to find a row: its source position, or its event id. */
export type RowKey = { pipeline: string; topic: string; partition: number; offset: number } | { eventId: string; pipeline?: string };

/** The batch a row landed in (one `lineage_batches` row). */
export interface BatchLineage {
  batchId: string;
  topic: string;
  partition: number;
  /** `[fromOffset, toOffset)` */
  fromOffset: number;
  toOffset: number;
  /** Partition high watermark when planned; null for batches from before it was recorded. */
  highWatermark: number | null;
  validCount: number;
  rejectedCount: number;
  contractVersions: string[];
  /** Version of the platform worker that landed the batch (`processor_version` column, e.g. `0.1.0`). */
  processorVersion: string;
  /** The processor the batch was planned with, `name@version`; empty when the pipeline runs none. */
  processor: string;
  /** The flags it ran with (JSON text); empty without a processor. */
  flags: string;
  /** The canary routing of the batch when a rollout ran (null otherwise). */
  routing: { rolloutId: string; mode: string; percent: number; canary: string; canaryEvents: number } | null;
  workflowId: string;
  runId: string;
  activityAttempt: number;
  startedAt: string;
  finishedAt: string;
}

/** One aggregate window row that includes the traced event. */
export interface WindowLineage {
  table: string;
  windowStart: string;
  service: string;
  route: string;
  requests: number;
  errors: number;
  processorVersion: string;
  computedAt: string;
}

/** One alert firing that read one of those windows. */
export interface AlertLineage {
  alertWorkflowId: string;
  detector: string;
  firedAt: string;
  windowStart: string;
  service: string;
  route: string;
  value: number;
  threshold: number;
  /** Latest status from the audit trail (`alert_events`), null when not recorded yet. */
  status: string | null;
}

/** The path of one row. */
export type RowTrace =
  | {
      found: 'event';
      event: { pipeline: string; topic: string; partition: number; offset: number; eventId: string; subject: string; contractVersion: number; processorVersion: string; eventTime: string; kafkaTimestamp: string; ingestedAt: string };
      batch: BatchLineage | null;
      windows: WindowLineage[];
      alerts: AlertLineage[];
    }
  | {
      found: 'dead_letter';
      deadLetter: { pipeline: string; topic: string; partition: number; offset: number; reasonCode: string; reasonMessage: string; processorVersion: string; batchId: string };
      batch: BatchLineage | null;
    }
  | { found: 'none' };

/** Events of a window in one landing batch: the source range to re-read. */
export interface WindowBatch {
  batchId: string;
  topic: string;
  partition: number;
  events: number;
  minOffset: number;
  maxOffset: number;
  contractVersions: string[];
  processorVersion: string;
}

/** One firing of a detector over a declared aggregation, walked back to its windows and batches. */
export interface AggregateFiring {
  detector: string;
  severity: string;
  firedAt: string;
  /** The judged window, `[windowStart, windowEnd)` (ISO-8601). */
  windowStart: string;
  windowEnd: string;
  /** The detector's score and the threshold of the level it reached. */
  value: number;
  threshold: number;
  pipeline: string;
  aggregation: string;
  /** The aggregate table and the group key (`key_id`: values joined with `/`). */
  table: string;
  key: string;
  /** The reproduction query and its parameter values, exactly as the firing carried them. */
  query: string;
  queryParams: Record<string, string>;
  /** What the reproduction query returns now: the series around the judged window. */
  series: { windowStart: string; windowEnd: string; value: number | null; revision: number; final: boolean }[];
  /** Source rows of the judged window, per batch. */
  batches: WindowBatch[];
  events: number;
}

/** The way back from an alert. */
export interface AlertTrace {
  alertWorkflowId: string;
  status: string | null;
  /** Firings of the rollup detector (`alert_firing_inputs`). */
  firings: (AlertLineage & {
    /** Events of the window, per batch: the source ranges to re-read. */
    batches: WindowBatch[];
    events: number;
  })[];
  /** Firings of detectors over declared aggregations (from the alert workflow's history); empty without `temporal`. */
  aggregateFirings: AggregateFiring[];
}

/** What {@link traceAlert} needs to follow detectors over declared aggregations. */
export interface AlertTraceSources {
  /** Reads the alert workflow's history. */
  temporal: Client;
  /** The analytics declarations the detectors ran under (source table, group keys). */
  analytics: AnalyticsFile;
}

async function rows<T>(warehouse: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  return (await warehouse.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<T>();
}

async function batchOf(warehouse: ClickHouseClient, batchId: string): Promise<BatchLineage | null> {
  const [b] = await rows<Record<string, unknown>>(
    warehouse,
    `SELECT batch_id, topic, partition, from_offset, to_offset, high_watermark, valid_count, rejected_count, contract_versions, processor_version,
            processor, flags, rollout_id, routing_mode, routing_percent, canary_processor, canary_events,
            workflow_id, run_id, activity_attempt, toString(started_at) AS started_text, toString(finished_at) AS finished_text
     FROM lineage_batches FINAL WHERE batch_id = {batchId:String} LIMIT 1`,
    { batchId },
  );
  if (!b) return null;
  return {
    batchId: String(b.batch_id),
    topic: String(b.topic),
    partition: Number(b.partition),
    fromOffset: Number(b.from_offset),
    toOffset: Number(b.to_offset),
    highWatermark: b.high_watermark === null ? null : Number(b.high_watermark),
    validCount: Number(b.valid_count),
    rejectedCount: Number(b.rejected_count),
    contractVersions: b.contract_versions as string[],
    processorVersion: String(b.processor_version),
    processor: String(b.processor ?? ''),
    flags: String(b.flags ?? ''),
    routing: b.rollout_id
      ? { rolloutId: String(b.rollout_id), mode: String(b.routing_mode), percent: Number(b.routing_percent), canary: String(b.canary_processor), canaryEvents: Number(b.canary_events) }
      : null,
    workflowId: String(b.workflow_id),
    runId: String(b.run_id),
    activityAttempt: Number(b.activity_attempt),
    startedAt: String(b.started_text),
    finishedAt: String(b.finished_text),
  };
}

async function alertStatuses(warehouse: ClickHouseClient, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const r = await rows<{ workflow_id: string; status: string }>(
    warehouse,
    `SELECT workflow_id, argMax(status, (event_time, seq)) AS status FROM alert_events FINAL WHERE workflow_id IN {ids:Array(String)} GROUP BY workflow_id`,
    { ids },
  );
  return new Map(r.map((x) => [x.workflow_id, x.status]));
}

// Text aliases get names of their own: in ClickHouse an alias shadows the column in WHERE.
const alertColumns = `alert_workflow_id, detector, toString(fired_at) AS fired_text, toString(window_start) AS window_text, service, route, value, threshold`;

function toAlert(r: Record<string, unknown>, statuses: Map<string, string>): AlertLineage {
  const id = String(r.alert_workflow_id);
  return {
    alertWorkflowId: id,
    detector: String(r.detector),
    firedAt: String(r.fired_text),
    windowStart: String(r.window_text),
    service: String(r.service),
    route: String(r.route),
    value: Number(r.value),
    threshold: Number(r.threshold),
    status: statuses.get(id) ?? null,
  };
}

/** Traces one row from its source position or event id to batch, windows and alerts. */
export async function traceRow(warehouse: ClickHouseClient, key: RowKey): Promise<RowTrace> {
  const where =
    'eventId' in key
      ? { sql: 'event_id = {eventId:String}' + (key.pipeline ? ' AND pipeline = {pipeline:String}' : ''), params: { eventId: key.eventId, pipeline: key.pipeline ?? '' } }
      : { sql: 'pipeline = {pipeline:String} AND topic = {topic:String} AND partition = {partition:UInt32} AND offset = {offset:UInt64}', params: key };
  const [e] = await rows<Record<string, unknown>>(
    warehouse,
    `SELECT pipeline, topic, partition, offset, event_id, subject, contract_version, processor_version, batch_id,
            toString(event_time) AS event_time_text, toString(kafka_timestamp) AS kafka_time_text, toString(ingested_at) AS ingested_text,
            JSONExtractString(data, 'service') AS service, JSONExtractString(data, 'route') AS route
     FROM events WHERE ${where.sql} ORDER BY ingested_at LIMIT 1`,
    where.params,
  );
  if (!e) {
    if ('eventId' in key) return { found: 'none' };
    const [d] = await rows<Record<string, unknown>>(
      warehouse,
      `SELECT pipeline, topic, partition, offset, reason_code, reason_message, processor_version, batch_id FROM dead_letters WHERE ${where.sql} LIMIT 1`,
      where.params,
    );
    if (!d) return { found: 'none' };
    return {
      found: 'dead_letter',
      deadLetter: {
        pipeline: String(d.pipeline),
        topic: String(d.topic),
        partition: Number(d.partition),
        offset: Number(d.offset),
        reasonCode: String(d.reason_code),
        reasonMessage: String(d.reason_message),
        processorVersion: String(d.processor_version),
        batchId: String(d.batch_id),
      },
      batch: await batchOf(warehouse, String(d.batch_id)),
    };
  }
  const pipeline = String(e.pipeline);
  let windows: WindowLineage[] = [];
  let alerts: AlertLineage[] = [];
  // Today's aggregate is the request-telemetry rollup: a row is in its minute's (service, route) and (service, '*') windows.
  if (e.subject === requestTelemetrySubject) {
    const params = { pipeline, eventTime: e.event_time_text, service: e.service, route: e.route };
    const w = await rows<Record<string, unknown>>(
      warehouse,
      `SELECT toString(window_start) AS window_text, service, route, requests, errors, processor_version, toString(computed_at) AS computed_text
       FROM rollups_1m FINAL
       WHERE pipeline = {pipeline:String} AND window_start = toStartOfMinute(toDateTime64({eventTime:String}, 3, 'UTC'))
         AND service = {service:String} AND route IN ({route:String}, '*')
       ORDER BY route = '*', route`,
      params,
    );
    windows = w.map((r) => ({
      table: 'rollups_1m',
      windowStart: String(r.window_text),
      service: String(r.service),
      route: String(r.route),
      requests: Number(r.requests),
      errors: Number(r.errors),
      processorVersion: String(r.processor_version),
      computedAt: String(r.computed_text),
    }));
    const a = await rows<Record<string, unknown>>(
      warehouse,
      `SELECT ${alertColumns} FROM alert_firing_inputs FINAL
       WHERE pipeline = {pipeline:String} AND rollup_table = 'rollups_1m'
         AND window_start = toStartOfMinute(toDateTime64({eventTime:String}, 3, 'UTC'))
         AND service = {service:String} AND route IN ({route:String}, '*')
       ORDER BY fired_at`,
      params,
    );
    const statuses = await alertStatuses(warehouse, [...new Set(a.map((r) => String(r.alert_workflow_id)))]);
    alerts = a.map((r) => toAlert(r, statuses));
  }
  return {
    found: 'event',
    event: {
      pipeline,
      topic: String(e.topic),
      partition: Number(e.partition),
      offset: Number(e.offset),
      eventId: String(e.event_id),
      subject: String(e.subject),
      contractVersion: Number(e.contract_version),
      processorVersion: String(e.processor_version),
      eventTime: String(e.event_time_text),
      kafkaTimestamp: String(e.kafka_time_text),
      ingestedAt: String(e.ingested_text),
    },
    batch: await batchOf(warehouse, String(e.batch_id)),
    windows,
    alerts,
  };
}

/** Traces an alert (workflow id `alert-<fingerprint>` or the bare fingerprint) back to its windows, batches and events. */
export async function traceAlert(warehouse: ClickHouseClient, id: string, sources?: AlertTraceSources): Promise<AlertTrace> {
  const alertWorkflowId = id.startsWith('alert-') ? id : `alert-${id}`;
  const inputs = await rows<Record<string, unknown>>(
    warehouse,
    `SELECT ${alertColumns}, pipeline FROM alert_firing_inputs FINAL WHERE alert_workflow_id = {id:String} ORDER BY fired_at, alert_firing_inputs.window_start`,
    { id: alertWorkflowId },
  );
  const statuses = await alertStatuses(warehouse, [alertWorkflowId]);
  const firings: AlertTrace['firings'] = [];
  for (const r of inputs) {
    const batches = await rows<Record<string, unknown>>(
      warehouse,
      `SELECT e.batch_id AS batch_id, e.topic AS topic, e.partition AS partition, count() AS events, min(e.offset) AS min_offset, max(e.offset) AS max_offset,
              any(b.contract_versions) AS contract_versions, any(b.processor_version) AS processor_version
       FROM events AS e LEFT JOIN (SELECT batch_id, contract_versions, processor_version FROM lineage_batches FINAL) AS b ON b.batch_id = e.batch_id
       WHERE e.pipeline = {pipeline:String} AND e.subject = {subject:String}
         AND toStartOfMinute(e.event_time) = toDateTime({windowStart:String}, 'UTC')
         AND JSONExtractString(e.data, 'service') = {service:String}
         AND ({route:String} = '*' OR JSONExtractString(e.data, 'route') = {route:String})
       GROUP BY e.batch_id, e.topic, e.partition ORDER BY e.topic, e.partition, min_offset`,
      { pipeline: r.pipeline, subject: requestTelemetrySubject, windowStart: r.window_text, service: r.service, route: r.route },
    );
    const mapped = batches.map((b) => windowBatch(b, b));
    firings.push({ ...toAlert(r, statuses), batches: mapped, events: mapped.reduce((s, b) => s + b.events, 0) });
  }
  const aggregateFirings = sources ? await traceAggregateFirings(warehouse, alertWorkflowId, sources) : [];
  return { alertWorkflowId, status: statuses.get(alertWorkflowId) ?? null, firings, aggregateFirings };
}

/** A {@link WindowBatch} from a row of per-batch counts and the batch's `lineage_batches` columns (absent: empty). */
function windowBatch(b: Record<string, unknown>, lineage: Record<string, unknown> | undefined): WindowBatch {
  return {
    batchId: String(b.batch_id),
    topic: String(b.topic),
    partition: Number(b.partition),
    events: Number(b.events),
    minOffset: Number(b.min_offset),
    maxOffset: Number(b.max_offset),
    contractVersions: (lineage?.contract_versions as string[] | undefined) ?? [],
    processorVersion: String(lineage?.processor_version ?? ''),
  };
}

/** Firings of the alert whose context names a declared aggregation, with their series and source batches. */
async function traceAggregateFirings(warehouse: ClickHouseClient, alertWorkflowId: string, sources: AlertTraceSources): Promise<AggregateFiring[]> {
  const out: AggregateFiring[] = [];
  for (const f of await alertFiringsFromHistory(sources.temporal, alertWorkflowId)) {
    const params = f.context?.queryParams;
    if (!params?.aggregation || !params.table || f.query === undefined) continue;
    const pipeline = f.pipeline ?? params.pipeline ?? '';
    const spec = sources.analytics.pipelines.find((p) => p.pipeline === pipeline);
    const aggregation = spec?.aggregations.find((a) => a.name === params.aggregation);
    const series = (await rows<Record<string, unknown>>(warehouse, f.query, params)).map((r) => ({
      windowStart: String(r.window_start),
      windowEnd: String(r.window_end),
      value: r.value === null ? null : Number(r.value),
      revision: Number(r.revision),
      final: Number(r.final) === 1 || r.final === true,
    }));
    let batches: WindowBatch[] = [];
    if (spec && aggregation) {
      const built = windowSourceBatches(spec, aggregation, Date.parse(f.windowStart), Date.parse(f.windowEnd), params.key ?? '');
      const found = await rows<Record<string, unknown>>(warehouse, built.query, built.params);
      const ids = found.map((b) => String(b.batch_id));
      const lineage = new Map(
        (ids.length === 0 ? [] : await rows<Record<string, unknown>>(warehouse, `SELECT batch_id, contract_versions, processor_version FROM lineage_batches FINAL WHERE batch_id IN {ids:Array(String)}`, { ids })).map((b) => [String(b.batch_id), b]),
      );
      batches = found.map((b) => windowBatch(b, lineage.get(String(b.batch_id))));
    }
    out.push({
      detector: f.detector,
      severity: f.severity,
      firedAt: f.firedAt,
      windowStart: f.windowStart,
      windowEnd: f.windowEnd,
      value: f.value,
      threshold: f.threshold,
      pipeline,
      aggregation: params.aggregation,
      table: params.table,
      key: params.key ?? '',
      query: f.query,
      queryParams: params,
      series,
      batches,
      events: batches.reduce((s, b) => s + b.events, 0),
    });
  }
  return out;
}
