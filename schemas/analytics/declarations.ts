/**
 * Analytics declared per pipeline: where the rows come from (a source table and how to read its
 * columns), the watermark policy, the aggregations (window, group-by fields, measures, each into
 * its own ClickHouse table) and the detectors over them. Validated with zod at worker start; an
 * error names the file and the field (`pipelines.0.aggregations.1.window.size: ...`).
 *
 * Nothing here is SQL text: fields are a column name or a JSON path, filters are
 * `{ field, op, value }`, so the SQL builder passes every name as an Identifier parameter and
 * every value as a typed parameter. The source defaults to the landed `events` table (payload in
 * `data`), and can name a processor's output table instead.
 */
import { z } from 'zod';
import { durationSchema } from '../alerting/alert-policy.js';
import { detectorSchema } from './detectors.js';
import { pipelineIdSchema } from '../ingest/pipeline.js';

const identifier = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'expected a lowercase identifier ([a-z][a-z0-9_]*)');
const columnName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'expected a column name');

/** A field read from the source: a column, or a path in the source's JSON column. */
export const fieldSchema = z.union([
  z.object({ column: columnName, type: z.enum(['string', 'number']).default('string') }).strict(),
  z.object({ json: z.string().min(1).max(200), type: z.enum(['string', 'number']).default('string') }).strict(),
]);
/** A source field (parsed). */
export type Field = z.infer<typeof fieldSchema>;

/** A filter on a declared field: `{ "field": "status", "op": ">=", "value": 500 }`. */
export const conditionSchema = z
  .object({ field: identifier, op: z.enum(['=', '!=', '<', '<=', '>', '>=']), value: z.union([z.number().finite(), z.string().max(1000)]) })
  .strict();
/** A filter (parsed). */
export type Condition = z.infer<typeof conditionSchema>;

/** The table rows are read from, and the names of its lineage columns. Defaults: the `events` table. */
export const sourceSchema = z
  .object({
    table: columnName.default('events'),
    pipelineColumn: columnName.default('pipeline'),
    topicColumn: columnName.default('topic'),
    partitionColumn: columnName.default('partition'),
    offsetColumn: columnName.default('offset'),
    batchColumn: columnName.default('batch_id'),
    ingestedAtColumn: columnName.default('ingested_at'),
    /** The JSON column `json` fields are read from. @default 'data' */
    jsonColumn: columnName.default('data'),
    /** A DateTime64 column holding the event time. @default 'event_time' */
    eventTimeColumn: columnName.default('event_time'),
    /** Row filters applied before everything (e.g. one contract subject), on `fields` of the pipeline. */
    where: z.array(conditionSchema).default([]),
  })
  .strict();

/** Window of an aggregation: `tumbling(size)`, `hopping(size, slide)`, `session(gap, maxDuration)`. */
export const windowSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('tumbling'), size: durationSchema }).strict(),
  z.object({ type: z.literal('hopping'), size: durationSchema, slide: durationSchema }).strict(),
  z.object({ type: z.literal('session'), gap: durationSchema, maxDuration: durationSchema }).strict(),
]);
/** A window (parsed; durations in ms). */
export type WindowSpec = z.infer<typeof windowSchema>;

/** Measure kinds: aggregates over a field (count needs none), quantiles p50/p90/p95/p99. */
export const measureKinds = ['count', 'sum', 'min', 'max', 'avg', 'uniq', 'p50', 'p90', 'p95', 'p99'] as const;

/** A measure: `{ "name": "errors", "kind": "count", "where": [{ "field": "status", "op": ">=", "value": 500 }] }`. */
export const measureSchema = z
  .object({ name: identifier, kind: z.enum(measureKinds), field: identifier.optional(), where: z.array(conditionSchema).default([]) })
  .strict()
  .refine((m) => m.kind === 'count' || m.field !== undefined, { message: 'expected a field for every kind except count', path: ['field'] });
/** A measure (parsed). */
export type Measure = z.infer<typeof measureSchema>;

/** One aggregation: lands in its own table. */
export const aggregationSchema = z
  .object({
    name: identifier,
    /** ClickHouse table of its windows (created if missing). @default `agg_<pipeline>_<name>` */
    table: identifier.optional(),
    window: windowSchema,
    groupBy: z.array(identifier).max(8).default([]),
    measures: z.array(measureSchema).min(1),
  })
  .strict();
/** An aggregation (parsed). */
export type Aggregation = z.infer<typeof aggregationSchema>;

/** Watermark and lateness policy of a pipeline (Flink names). */
export const watermarkPolicySchema = z
  .object({
    /** Allowed out-of-orderness (bounded out-of-orderness watermarks). @default 5s */
    outOfOrderness: durationSchema.default(5000),
    /** A partition with no data for this long stops holding the watermark (Flink `withIdleness`). @default 1m */
    idleness: durationSchema.default(60_000),
    /** After a window is final, events for it still revise it for this long (event time). @default 1m */
    allowedLateness: durationSchema.default(60_000),
  })
  .strict();

/** Analytics of one pipeline. */
export const pipelineAnalyticsSchema = z
  .object({
    pipeline: pipelineIdSchema,
    source: sourceSchema.prefault({}),
    /** Named fields read from the source, used by groupBy, measures and filters. */
    fields: z.record(identifier, fieldSchema).default({}),
    watermark: watermarkPolicySchema.prefault({}),
    aggregations: z.array(aggregationSchema).min(1),
    detectors: z.array(detectorSchema).default([]),
    /** How often the aggregator looks for newly landed batches. @default 2s */
    pollInterval: durationSchema.default(2000),
    /**
     * How often provisional windows (not yet final) are refreshed. An aggregator step recomputes
     * the provisional windows its data touched only when this long has passed since the last
     * refresh, and not when it moves the watermark (it judges the windows becoming final first)
     * unless twice this long has passed; a pending refresh wakes the aggregator when due. Under
     * steady load a provisional row is thus at most about twice this old. Final windows,
     * revisions and newly final windows are recomputed in every step, in full. `0s` refreshes
     * them in every step. Session windows are always refreshed.
     * @default 1s
     */
    provisionalRefresh: durationSchema.default(1000),
  })
  .strict()
  .superRefine((p, ctx) => {
    const declared = new Set(Object.keys(p.fields));
    const need = (field: string | undefined, path: (string | number)[]) => {
      if (field !== undefined && !declared.has(field)) ctx.addIssue({ code: 'custom', path, message: `unknown field "${field}"; declare it under fields (known: ${[...declared].join(', ') || 'none'})` });
    };
    p.source.where.forEach((c, i) => need(c.field, ['source', 'where', i, 'field']));
    const aggs = new Map<string, Aggregation>();
    p.aggregations.forEach((a, i) => {
      if (aggs.has(a.name)) ctx.addIssue({ code: 'custom', path: ['aggregations', i, 'name'], message: `duplicate aggregation "${a.name}"` });
      aggs.set(a.name, a);
      a.groupBy.forEach((g, j) => need(g, ['aggregations', i, 'groupBy', j]));
      const names = new Set<string>();
      a.measures.forEach((m, j) => {
        if (names.has(m.name)) ctx.addIssue({ code: 'custom', path: ['aggregations', i, 'measures', j, 'name'], message: `duplicate measure "${m.name}"` });
        names.add(m.name);
        need(m.field, ['aggregations', i, 'measures', j, 'field']);
        m.where.forEach((c, k) => need(c.field, ['aggregations', i, 'measures', j, 'where', k, 'field']));
      });
    });
    p.detectors.forEach((d, i) => {
      const a = aggs.get(d.aggregation);
      if (!a) {
        ctx.addIssue({ code: 'custom', path: ['detectors', i, 'aggregation'], message: `unknown aggregation "${d.aggregation}" (known: ${[...aggs.keys()].join(', ')})` });
        return;
      }
      const measures = new Set(a.measures.map((m) => m.name));
      for (const [key, value] of [['measure', d.measure], ['ratioOf', d.ratioOf], ['minCountMeasure', d.minCountMeasure]] as const) {
        if (value !== undefined && !measures.has(value)) ctx.addIssue({ code: 'custom', path: ['detectors', i, key], message: `unknown measure "${value}" of aggregation ${a.name} (known: ${[...measures].join(', ')})` });
      }
      if (d.method.kind === 'seasonal' && a.window.type !== 'session') {
        const step = a.window.type === 'hopping' ? a.window.slide : a.window.size;
        if (d.method.period % step !== 0) ctx.addIssue({ code: 'custom', path: ['detectors', i, 'method', 'period'], message: `expected a multiple of the window step (${step} ms), got ${d.method.period} ms` });
      }
      // Over sessions, a key's series is its sessions in start order, judged once final and past
      // the allowed lateness. A seasonal baseline needs "the same window one period ago", which
      // sessions (no fixed grid) do not have; every other kind compares with earlier sessions.
      if (d.method.kind === 'seasonal' && a.window.type === 'session') ctx.addIssue({ code: 'custom', path: ['detectors', i, 'method', 'kind'], message: `a seasonal detector compares a window with the same window one period earlier, which session windows (aggregation ${a.name}) do not have; use threshold, rate_of_change, ewma, mad or absence` });
    });
  });
/** Analytics of one pipeline (parsed). */
export type PipelineAnalytics = z.infer<typeof pipelineAnalyticsSchema>;
/** Analytics of one pipeline as written. */
export type PipelineAnalyticsInput = z.input<typeof pipelineAnalyticsSchema>;

/** The declarations file: `{ "pipelines": [ ... ] }`. */
export const analyticsFileSchema = z
  .object({ pipelines: z.array(pipelineAnalyticsSchema) })
  .strict()
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.pipelines.forEach((p, i) => {
      if (seen.has(p.pipeline)) ctx.addIssue({ code: 'custom', path: ['pipelines', i, 'pipeline'], message: `duplicate pipeline "${p.pipeline}"` });
      seen.add(p.pipeline);
    });
  });
/** The declarations file as written. */
export type AnalyticsFileInput = z.input<typeof analyticsFileSchema>;
/** The declarations file (parsed). */
export type AnalyticsFile = z.infer<typeof analyticsFileSchema>;

/** Table of an aggregation: declared, or `agg_<pipeline>_<name>` (dashes become underscores). */
export function aggregationTable(pipeline: string, a: Pick<Aggregation, 'name' | 'table'>): string {
  return a.table ?? `agg_${pipeline.replace(/-/g, '_')}_${a.name}`;
}

/** The window step: the slide of hopping windows, the size of tumbling ones. */
export function windowStepMs(w: WindowSpec): number {
  return w.type === 'hopping' ? w.slide : w.type === 'tumbling' ? w.size : w.gap;
}
