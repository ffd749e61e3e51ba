/**
 * One aggregation step of a session-window aggregation (called by `aggregateStep`).
 *
 * Recomputation, as for tumbling and hopping windows, but per group key from the last point its
 * sessions cannot have changed: events are split into sessions greedily in event-time order
 * (schemas/analytics/windows.ts `sessionize`, the reference the tests compare with), so the
 * sessions before the one in progress at a key's earliest new event `tmin` stay as they are. For
 * each key with new (not late) rows the step:
 * 1. finds where to restart: the start of the stored session of that key with the latest start
 *    `<= tmin` if its last event is within one gap of `tmin` (the new event may join it, or a
 *    later split point may move), else `tmin`;
 * 2. reads the key's event times from there and sessionizes them (gap, maxDuration);
 * 3. measures each session in ClickHouse (every measure kind, filters included) and writes it;
 *    stored sessions of the key from the restart point that no longer exist get a tombstone.
 * Sessions of other keys whose end the watermark passes in this step are rewritten as final.
 *
 * Lateness: an event whose own session window `[t, t + gap)` is past the allowed lateness
 * (`t + gap - 1 + allowedLateness <= watermark`) goes to late_events and counts in no session.
 * Flink would still accept it if it merged into a session that is not late; here the rule is per
 * event, so the side output does not depend on what arrives later.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { PipelineAnalytics } from '../../schemas/analytics/declarations.js';
import { sessionize } from '../../schemas/analytics/windows.js';
import { toClickHouseTime } from '../ingest/ingest.js';
import type { StepInput } from './aggregate-sql.js';
import { liveSessionsQuery, sessionMeasuresQuery, sessionTimesQuery, sessionTouchedKeysQuery, type MeasuredSession, type StoredSession } from './session-sql.js';

/** What {@link sessionStep} needs from the activity. */
export interface SessionStepContext {
  warehouse: ClickHouseClient;
  rows: <T>(query: string, params: Record<string, unknown>) => Promise<T[]>;
  timed: <T>(what: string, run: () => Promise<T>) => Promise<T>;
}

/** Result of {@link sessionStep}: sessions that first became final in this step (starts, ms). */
export interface SessionStepResult {
  finalized: number[];
  /** Sessions written (live rows) and tombstoned. */
  written: number;
  tombstoned: number;
}

/** Runs the session part of one aggregation step (the late side output is done by the caller). */
export async function sessionStep(ctx: SessionStepContext, spec: PipelineAnalytics, step: StepInput): Promise<SessionStepResult> {
  const a = step.aggregation;
  if (a.window.type !== 'session') throw new Error(`sessionStep: ${a.name} is not a session aggregation`);
  const { gap, maxDuration } = a.window;
  const after = step.watermarkAfterMs;
  const isFinal = (endMs: number) => after !== null && endMs - 1 <= after;

  const touched = step.ranges.length === 0 ? [] : await ctx.timed('sessionKeys', async () => {
    const q = sessionTouchedKeysQuery(spec, step);
    return ctx.rows<{ k: string; tmin: string }>(q.query, q.params);
  });
  const tmin = new Map(touched.map((r) => [r.k, Number(r.tmin)]));
  const lowest = touched.length === 0 ? 0 : Math.min(...tmin.values()) - gap - maxDuration;
  const stored = await ctx.timed('sessionsRead', () => {
    const q = liveSessionsQuery(spec, step, [...tmin.keys()], lowest);
    return ctx.rows<StoredSession>(q.query, q.params);
  });

  // 1. Where each touched key restarts.
  const restart = new Map<string, number>();
  for (const [k, t] of tmin) {
    let from = t;
    let latest: StoredSession | undefined;
    for (const s of stored) if (s.key_id === k && Number(s.ws) <= t && (!latest || Number(s.ws) > Number(latest.ws))) latest = s;
    if (latest && Number(latest.we) - gap >= t - gap) from = Number(latest.ws);
    restart.set(k, from);
  }

  const rows: Record<string, unknown>[] = [];
  const finalized: number[] = [];
  const live = new Set<string>();
  let tombstoned = 0;
  const id = (k: string, ws: number, we: number) => `${k}\u0000${ws}\u0000${we}`;
  // A session keeps its first finalisation across recomputations that keep its start (it may
  // grow by late events within the allowed lateness, which changes its end).
  const storedByStart = new Map(stored.map((s) => [`${s.key_id}\u0000${s.ws}`, s]));
  const row = (k: string, keys: Record<string, string>, ws: number, we: number, fields: { measures: Record<string, number>; events: string; revision: number; final: boolean; fin: number }, deleted = 0) => ({
    pipeline: spec.pipeline,
    aggregation: a.name,
    window_start: toClickHouseTime(ws),
    window_end: toClickHouseTime(we),
    key_id: k,
    keys,
    measures: fields.measures,
    events: fields.events,
    final: fields.final ? 1 : 0,
    revision: fields.revision,
    finalized_at_ms: fields.fin,
    version: step.stepMs,
    is_deleted: deleted,
  });

  if (restart.size > 0) {
    const keys = [...restart.keys()];
    const times = await ctx.timed('sessionTimes', () => {
      const q = sessionTimesQuery(spec, step, keys, keys.map((k) => restart.get(k)!));
      return ctx.rows<{ k: string; keys_map: Record<string, string>; times: string[] }>(q.query, q.params);
    });
    // 2. Sessionize each key from its restart point.
    const spans = { keys: [] as string[], starts: [] as number[], lasts: [] as number[], finalizedAt: [] as number[] };
    const keyMaps: Record<string, string>[] = [];
    for (const r of times) {
      for (const s of sessionize(r.times.map(Number), gap, maxDuration)) {
        const last = s.times[s.times.length - 1]!;
        const previous = storedByStart.get(`${r.k}\u0000${s.startMs}`);
        const fin = previous && Number(previous.finalized_at_ms) > 0 ? Number(previous.finalized_at_ms) : isFinal(last + gap) ? step.stepMs : 0;
        spans.keys.push(r.k);
        spans.starts.push(s.startMs);
        spans.lasts.push(last);
        spans.finalizedAt.push(fin);
        keyMaps.push(r.keys_map);
      }
    }
    // 3. Measure and write them; tombstone what they replace.
    if (spans.keys.length > 0) {
      const measured = await ctx.timed('sessionMeasures', () => {
        const q = sessionMeasuresQuery(spec, step, spans);
        return ctx.rows<MeasuredSession>(q.query, q.params);
      });
      for (const m of measured) {
        const i = Number(m.idx) - 1;
        const k = spans.keys[i]!;
        const ws = spans.starts[i]!;
        const we = spans.lasts[i]! + gap;
        const fin = spans.finalizedAt[i]!;
        live.add(id(k, ws, we));
        rows.push(row(k, keyMaps[i]!, ws, we, { measures: Object.fromEntries(Object.entries(m.measures).map(([n, v]) => [n, Number(v)])), events: m.events, revision: Number(m.revision), final: isFinal(we), fin }));
        if (isFinal(we) && fin === step.stepMs) finalized.push(ws);
      }
    }
    for (const s of stored) {
      const from = restart.get(s.key_id);
      if (from === undefined || Number(s.ws) < from || live.has(id(s.key_id, Number(s.ws), Number(s.we)))) continue;
      rows.push(row(s.key_id, s.keys, Number(s.ws), Number(s.we), { measures: s.measures, events: s.events, revision: s.revision, final: Number(s.final) === 1, fin: Number(s.finalized_at_ms) }, 1));
      tombstoned++;
    }
  }
  // Sessions whose end the watermark passes now and that were not recomputed above (keys without
  // new data, and sessions of a key with new data that end before its restart point, e.g. the
  // previous session of a key whose new events opened a new one): rewritten as final.
  for (const s of stored) {
    const from = restart.get(s.key_id);
    if ((from !== undefined && Number(s.ws) >= from) || Number(s.final) === 1 || !isFinal(Number(s.we))) continue;
    rows.push(row(s.key_id, s.keys, Number(s.ws), Number(s.we), { measures: s.measures, events: s.events, revision: s.revision, final: true, fin: step.stepMs }));
    finalized.push(Number(s.ws));
  }
  if (rows.length > 0) await ctx.timed('insert', () => ctx.warehouse.insert({ table: step.table, format: 'JSONEachRow', values: rows }));
  return { finalized: [...new Set(finalized)].sort((x, y) => x - y), written: rows.length - tombstoned, tombstoned };
}
