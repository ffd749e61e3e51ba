/**
 * Hands detector transitions to the alert workflows: `fire` and `upgrade` become a firing sent by
 * signal-with-start (a higher severity upgrades the open incident), `resolve` becomes the `clear`
 * signal. Every firing carries its context (method, score, baseline, the recent final windows) and
 * a reproduction query whose values are ClickHouse query parameters, listed next to it.
 */
import type { Client } from '@temporalio/client';
import type { AlertFiring } from '../../schemas/alerting/alert.js';
import { aggregationTable, type AnalyticsFile } from '../../schemas/analytics/declarations.js';
import type { Detector, RiskLevel } from '../../schemas/analytics/detectors.js';
import { clearAlert, fireAlert } from '../alerting/alert-firing.js';
import { silentLogger, type Logger } from '../logger.js';
import { pipelineSpec } from './aggregate.js';

/** Dependencies of {@link createDetectionActivities}. */
export interface DetectionDeps {
  temporal: Client;
  /** Task queue of the alert workflows. */
  taskQueue: string;
  analytics: AnalyticsFile;
  log?: Logger;
}

/** One detector transition to hand to alerting. */
export interface DetectionEvent {
  detector: string;
  transition: 'fire' | 'upgrade' | 'resolve';
  /** Group key values of the series. */
  keys: Record<string, string>;
  key: string;
  level: RiskLevel | null;
  score: number;
  value: number;
  baseline: { center: number; spread: number; size: number } | null;
  windowStartMs: number;
  windowEndMs: number;
  recent: { startMs: number; endMs: number; value: number }[];
  /** Processing time of the judgement (ms), from the workflow. */
  observedAtMs: number;
}

const chTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** The labels of a series' alerts: pipeline plus the group key values. */
export function detectionLabels(pipeline: string, keys: Record<string, string>): Record<string, string> {
  return { pipeline, ...keys };
}

/** Parameterised SQL that shows the series around the judged window, and its parameter values. */
export function reproductionQuery(pipeline: string, table: string, d: Detector, key: string, fromMs: number, toMs: number): { query: string; params: Record<string, string> } {
  const ratio = d.ratioOf ? ` / nullIf(measures[{denominator:String}], 0)` : '';
  return {
    query:
      `SELECT window_start, window_end, keys, measures[{measure:String}]${ratio} AS value, revision, final ` +
      `FROM {table:Identifier} FINAL WHERE pipeline = {pipeline:String} AND aggregation = {aggregation:String} AND key_id = {key:String} ` +
      `AND window_start >= {from:DateTime64(3, 'UTC')} AND window_start < {to:DateTime64(3, 'UTC')} ORDER BY window_start`,
    params: { table, pipeline, aggregation: d.aggregation, key, measure: d.measure, ...(d.ratioOf ? { denominator: d.ratioOf } : {}), from: chTime(fromMs), to: chTime(toMs) },
  };
}

/** Builds the detection activities. */
export function createDetectionActivities(deps: DetectionDeps) {
  const log = deps.log ?? silentLogger;
  return {
    /**
     * Sends each transition to its alert workflow; returns the workflow ids signalled, in the
     * order of `events`. Transitions of different series (detector + keys, i.e. different
     * incidents) are sent concurrently; those of one series in their order, so a fire and the
     * resolve that follows it reach the incident in that order.
     */
    async signalDetections(input: { pipeline: string; events: DetectionEvent[] }): Promise<{ workflowIds: string[] }> {
      const spec = pipelineSpec(deps.analytics, input.pipeline);
      const workflowIds: (string | null)[] = input.events.map(() => null);
      const series = new Map<string, number[]>();
      input.events.forEach((e, i) => {
        const k = JSON.stringify([e.detector, e.key]);
        series.set(k, [...(series.get(k) ?? []), i]);
      });
      await Promise.all([...series.values()].map(async (indexes) => {
        for (const i of indexes) workflowIds[i] = await send(spec, input.events[i]!);
      }));
      return { workflowIds: workflowIds.filter((w): w is string => w !== null) };
    },
  };

  async function send(spec: ReturnType<typeof pipelineSpec>, e: DetectionEvent): Promise<string | null> {
    const d = spec.detectors.find((x) => x.name === e.detector);
    if (!d) return null;
    const labels = detectionLabels(spec.pipeline, e.keys);
    const what = d.ratioOf ? `${d.measure}/${d.ratioOf}` : d.measure;
    if (e.transition === 'resolve') {
      const r = await clearAlert(deps.temporal, d.name, labels, {
        detector: d.name,
        note: `${d.method.kind} score ${e.score.toFixed(3)} below ${d.clear.below} for ${d.clear.windows} window(s)`,
        clearedAt: new Date(e.observedAtMs).toISOString(),
      });
      return r.workflowId;
    }
    const aggregation = spec.aggregations.find((a) => a.name === d.aggregation)!;
    const table = aggregationTable(spec.pipeline, aggregation);
    const from = e.recent[0]?.startMs ?? e.windowStartMs;
    const repro = reproductionQuery(spec.pipeline, table, d, e.key, from, e.windowEndMs);
    const level = e.level ?? 'warning';
    const threshold = d.levels[level] ?? d.clear.below;
    const firing: AlertFiring = {
      detector: d.name,
      labels,
      severity: level,
      summary: `${what} ${d.method.kind} score ${e.score.toFixed(2)} (value ${Number(e.value.toPrecision(6))}${e.baseline ? `, baseline ${Number(e.baseline.center.toPrecision(6))}` : ''}) reached ${level} on ${e.key || spec.pipeline}, window ${new Date(e.windowStartMs).toISOString().slice(11, 19)} UTC`,
      value: e.score,
      threshold,
      windowStart: new Date(e.windowStartMs).toISOString(),
      windowEnd: new Date(e.windowEndMs).toISOString(),
      pipeline: spec.pipeline,
      query: repro.query,
      firedAt: new Date(e.observedAtMs).toISOString(),
      context: {
        method: d.method.kind,
        score: e.score,
        level,
        baseline: e.baseline,
        recent: e.recent.map((w) => ({ start: new Date(w.startMs).toISOString(), end: new Date(w.endMs).toISOString(), value: w.value })),
        queryParams: repro.params,
      },
    };
    const { workflowId } = await fireAlert(deps.temporal, deps.taskQueue, firing);
    log.info('detector fired', { detector: d.name, transition: e.transition, level, workflowId });
    return workflowId;
  }
}

/** The detection activities. */
export type DetectionActivities = ReturnType<typeof createDetectionActivities>;
