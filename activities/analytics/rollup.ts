/**
 * One-minute rollups and the error-rate detector. Rollups are recomputed (never incremented)
 * for every window touched by rows ingested since the last run, so late and re-landed data are
 * handled and a recomputation replaces the window (ReplacingMergeTree(computed_at)). The
 * detector judges complete windows and sends breaches to the alert workflow.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Client } from '@temporalio/client';
import type { AlertFiring } from '../../schemas/alerting/alert.js';
import { requestTelemetrySubject } from '../../schemas/contracts/request-telemetry/v1.js';
import { clearAlert, fireAlert } from '../alerting/alert-firing.js';
import { silentLogger, type Logger } from '../logger.js';

/** Dependencies of {@link createRollupActivities}. */
export interface RollupDeps {
  warehouse: ClickHouseClient;
  /** Temporal client used to signal-with-start alert workflows. */
  temporal: Client;
  /** Task queue of the alert workflows. */
  taskQueue: string;
  processorVersion: string;
  log?: Logger;
}

/** Input of computeRollups. */
export interface ComputeRollupsInput {
  pipelineId: string;
  /** Ingestion watermark of the previous run (ClickHouse DateTime64 text); null: the last day. */
  since: string | null;
  /** Overlap before `since`, seconds (inserts become visible out of order). */
  overlapSeconds: number;
}

/** Result of computeRollups. */
export interface ComputeRollupsResult {
  /** Windows recomputed. */
  windows: number;
  /** Largest ingested_at seen, to pass as `since` next time. */
  watermark: string | null;
}

/** Input of detectThresholds. */
export interface DetectThresholdsInput {
  pipelineId: string;
  errorRateThreshold: number;
  minRequests: number;
  lookbackMinutes: number;
  /** Keys (`service@windowStart`) already fired, so a window fires once. */
  alreadyFired: string[];
  /**
   * Complete one-minute windows after a service's latest breach before its incident is cleared
   * (auto-resolved through the alert workflow's `clear` signal). @default 3
   */
  clearWindows?: number;
}

/** Result of detectThresholds. */
export interface DetectThresholdsResult {
  /** Breaching (service, window) pairs found, fired before or not. */
  breaches: number;
  /** Keys fired by this run. */
  fired: string[];
  /** Keys to pass next time (fired ones still inside the lookback). */
  keep: string[];
  /** Alert workflow ids signalled by this run. */
  alertWorkflowIds: string[];
  /** Services whose open incident this run cleared (their latest breach is `clearWindows` windows old). */
  cleared: string[];
}

/** Name of the detector rule; part of every alert fingerprint it produces. */
export const errorRateDetector = 'error_rate_high';

/** `2026-01-01 12:03:00` (ClickHouse, UTC) -> `2026-01-01T12:03:00.000Z`. */
export function clickhouseTimeToIso(value: string): string {
  return new Date(`${value.replace(' ', 'T')}Z`).toISOString();
}

const rollupSql = `
INSERT INTO rollups_1m
  (pipeline, window_start, service, route, requests, errors, client_errors,
   duration_p50, duration_p95, duration_p99, bytes_out, processor_version, computed_at)
SELECT
  {pipeline:String}, w, svc, if(grouping(rt) = 1, '*', rt),
  count(), countIf(st >= 500), countIf(st >= 400 AND st < 500),
  quantileExact(0.5)(dur), quantileExact(0.95)(dur), quantileExact(0.99)(dur),
  sum(bo), {processorVersion:String}, now64(3)
FROM
(
  SELECT
    toStartOfMinute(event_time) AS w,
    JSONExtractString(data, 'service') AS svc,
    JSONExtractString(data, 'route') AS rt,
    JSONExtractUInt(data, 'status') AS st,
    JSONExtractFloat(data, 'duration_ms') AS dur,
    JSONExtractUInt(data, 'bytes_out') AS bo
  FROM events FINAL
  WHERE pipeline = {pipeline:String}
    AND subject = {subject:String}
    AND toStartOfMinute(event_time) IN
    (
      SELECT DISTINCT toStartOfMinute(event_time)
      FROM events
      WHERE pipeline = {pipeline:String} AND ingested_at >= {since:DateTime64(3, 'UTC')}
    )
)
GROUP BY GROUPING SETS ((w, svc, rt), (w, svc))
`;

/**
 * The query an error-rate firing carries: the failed requests of one service in its 1-minute
 * window, by route, status and error code. Values only as query parameters: `pipeline`, `service`,
 * `from` (the window start, `YYYY-MM-DD hh:mm:ss.sss` UTC).
 */
export const errorBreakdownQuery = `SELECT JSONExtractString(data, 'route') AS route, JSONExtractUInt(data, 'status') AS status, JSONExtractString(data, 'error_code') AS error_code, count() AS n
FROM events
WHERE pipeline = {pipeline:String} AND JSONExtractString(data, 'service') = {service:String}
  AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {from:DateTime64(3, 'UTC')} + INTERVAL 1 MINUTE
GROUP BY route, status, error_code
ORDER BY n DESC`;

/** Builds the rollup and detector activities. */
export function createRollupActivities(deps: RollupDeps) {
  const log = deps.log ?? silentLogger;

  async function rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    return (await deps.warehouse.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
  }

  /**
   * The clear path of the error-rate rule (it had none: its incidents stayed open until someone
   * resolved them). A service whose latest fired window ended `clearWindows` complete windows ago
   * had no breach since (any would have fired and become its latest), so its incident is cleared
   * through the alert workflow's `clear` signal, which resolves it and tells the paged channels.
   * Sent on every run while the key is kept; once the incident is closed the signal finds no
   * running workflow and is a no-op. Processing time, like the rule's own `now()` bound.
   */
  async function clearRecovered(keep: readonly string[], input: DetectThresholdsInput): Promise<string[]> {
    const clearWindows = input.clearWindows ?? 3;
    const latest = new Map<string, number>();
    for (const k of keep) {
      const at = k.lastIndexOf('@');
      const service = k.slice(0, at);
      latest.set(service, Math.max(latest.get(service) ?? Number.NEGATIVE_INFINITY, Date.parse(k.slice(at + 1))));
    }
    const cleared: string[] = [];
    for (const [service, windowStartMs] of latest) {
      if (Date.now() - (windowStartMs + 60_000) < clearWindows * 60_000) continue;
      const note = `error rate at or below ${(input.errorRateThreshold * 100).toFixed(1)}% for ${clearWindows} complete windows after ${new Date(windowStartMs).toISOString().slice(11, 16)} UTC`;
      const result = await clearAlert(deps.temporal, errorRateDetector, { pipeline: input.pipelineId, service }, { detector: errorRateDetector, note, clearedAt: new Date().toISOString() });
      if (result.cleared) cleared.push(service);
    }
    return cleared;
  }

  return {
    /** Recomputes every 1-minute window touched by rows ingested since `since` (minus the overlap). */
    async computeRollups(input: ComputeRollupsInput): Promise<ComputeRollupsResult> {
      // The recomputed windows are those with rows ingested from `since` minus the overlap.
      const [mark] = await rows<{ from: string; watermark: string | null; windows: string }>(
        `WITH if({hasSince:UInt8} = 1, {since:DateTime64(3, 'UTC')}, now64(3) - INTERVAL 1 DAY) - toIntervalSecond({overlap:UInt32}) AS lower
         SELECT toString(any(lower)) AS from, toString(max(ingested_at)) AS watermark, uniqExact(toStartOfMinute(event_time)) AS windows
         FROM events
         WHERE pipeline = {pipeline:String} AND ingested_at >= lower`,
        { pipeline: input.pipelineId, hasSince: input.since === null ? 0 : 1, since: input.since ?? '1970-01-01 00:00:00.000', overlap: input.overlapSeconds },
      );
      const windows = Number(mark?.windows ?? 0);
      if (windows === 0 || !mark?.watermark) return { windows: 0, watermark: input.since };
      await deps.warehouse.command({
        query: rollupSql,
        query_params: { pipeline: input.pipelineId, subject: requestTelemetrySubject, since: mark.from, processorVersion: deps.processorVersion },
        // No skip indexes under FINAL (the event-time minmax index of migration 052 is for the
        // aggregator's reads, which use no FINAL): in session 3 this FINAL query undercounted in
        // the pipeline test while an event_time index existed. Not reproduced since (ClickHouse
        // 26.7's exact mode for skip indexes under FINAL is on by default), kept out to be sure.
        clickhouse_settings: { use_skip_indexes_if_final: 0 },
      });
      log.debug('rollups recomputed', { pipeline: input.pipelineId, windows, since: mark.from });
      return { windows, watermark: mark.watermark };
    },

    /**
     * Finds complete 1-minute windows within the lookback where a service's error rate (5xx /
     * requests) exceeds the threshold with at least `minRequests` requests, and fires one alert
     * per (service, window) not fired before.
     */
    async detectThresholds(input: DetectThresholdsInput): Promise<DetectThresholdsResult> {
      const breaches = await rows<{ window: string; service: string; requests: string; errors: string }>(
        `SELECT toString(window_start) AS window, service, requests, errors
         FROM rollups_1m FINAL
         WHERE pipeline = {pipeline:String} AND route = '*'
           AND window_start >= now() - toIntervalMinute({lookback:UInt32})
           AND window_start + INTERVAL 1 MINUTE <= now()
           AND requests >= {minRequests:UInt64}
           AND errors / requests > {threshold:Float64}
         ORDER BY window_start, service`,
        { pipeline: input.pipelineId, lookback: input.lookbackMinutes, minRequests: input.minRequests, threshold: input.errorRateThreshold },
      );
      const already = new Set(input.alreadyFired);
      const fired: string[] = [];
      const alertWorkflowIds: string[] = [];
      for (const b of breaches) {
        const windowStart = clickhouseTimeToIso(b.window);
        const key = `${b.service}@${windowStart}`;
        if (already.has(key)) continue;
        const requests = Number(b.requests);
        const errors = Number(b.errors);
        const rate = errors / requests;
        const windowEnd = new Date(Date.parse(windowStart) + 60_000).toISOString();
        const firing: AlertFiring = {
          detector: errorRateDetector,
          labels: { pipeline: input.pipelineId, service: b.service },
          severity: 'critical',
          summary: `${b.service}: error rate ${(rate * 100).toFixed(1)}% above ${(input.errorRateThreshold * 100).toFixed(1)}% (${errors} of ${requests} requests failed, window ${windowStart.slice(11, 16)} UTC)`,
          value: rate,
          threshold: input.errorRateThreshold,
          windowStart,
          windowEnd,
          pipeline: input.pipelineId,
          // For people to run (never executed here), with its values as query parameters, not
          // inlined: `clickhouse client --param_pipeline=... --param_service=... --param_from=...`,
          // or the HTTP interface's `param_<name>` (context.queryParams holds them).
          query: errorBreakdownQuery,
          context: {
            method: 'threshold',
            score: rate,
            level: 'critical',
            baseline: null,
            recent: [{ start: windowStart, end: windowEnd, value: rate }],
            queryParams: { pipeline: input.pipelineId, service: b.service, from: windowStart.replace('T', ' ').replace('Z', '') },
          },
          firedAt: new Date().toISOString(),
        };
        const { workflowId } = await fireAlert(deps.temporal, deps.taskQueue, firing);
        // Lineage: the aggregate row this firing read (ReplacingMergeTree: a retried run writes the same key).
        await deps.warehouse.insert({
          table: 'alert_firing_inputs',
          values: [{ alert_workflow_id: workflowId, detector: errorRateDetector, fired_at: firing.firedAt.replace('T', ' ').replace('Z', ''), pipeline: input.pipelineId, rollup_table: 'rollups_1m', window_start: b.window, window_end: windowEnd.slice(0, 19).replace('T', ' '), service: b.service, route: '*', requests, errors, value: rate, threshold: input.errorRateThreshold }],
          format: 'JSONEachRow',
        });
        log.info('alert fired', { workflowId, service: b.service, windowStart, rate });
        fired.push(key);
        alertWorkflowIds.push(workflowId);
      }
      const horizon = Date.now() - input.lookbackMinutes * 60_000 - 60_000;
      const keep = [...new Set([...input.alreadyFired, ...fired])].filter((k) => Date.parse(k.slice(k.lastIndexOf('@') + 1)) >= horizon);
      const cleared = await clearRecovered(keep, input);
      return { breaches: breaches.length, fired, keep, alertWorkflowIds, cleared };
    },
  };
}

/** The rollup and detector activities. */
export type RollupActivities = ReturnType<typeof createRollupActivities>;
