/**
 * Input of the `canaryRollout` workflow: the pipeline, the processor version rolling out, the steps,
 * and the judgement (metrics, thresholds). Written by hand as JSON (Temporal CLI `--input`,
 * `platform rollouts start --file`), so everything with a sensible value has a default and every
 * refusal names the field. Pure; importable from workflows.
 *
 * The step kinds follow Argo Rollouts (setWeight, pause, analysis) with one addition Kafka makes
 * possible: `shadow`, the canary processing the same offset ranges as the baseline into shadow tables.
 */
import { z } from 'zod';
import { durationSchema } from '../alerting/alert-policy.js';
import { severitySchema } from '../alerting/alert.js';

/** Workflow type of a rollout (public name: Temporal CLI, UI). */
export const canaryRolloutWorkflowType = 'canaryRollout';

/**
 * Workflow id of a rollout: `rollout-<pipeline>-<version number>`, e.g. `rollout-orders-3` for a
 * version written `3` or `v3`, `rollout-orders-request-enriched@3` for `request-enriched@v3`; so the
 * same target always gets the same id, whichever way it was written.
 */
export function rolloutWorkflowId(pipeline: string, version: string): string {
  const normalized = version.replace(/^v(\d+)$/, '$1').replace(/@v(\d+)$/, '@$1');
  return `rollout-${pipeline}-${normalized}`;
}

/** The id a rollout got before ids were numbered (`rollout-<pipeline>-<version as written>`): runs started then replay with it. */
export function legacyRolloutWorkflowId(pipeline: string, version: string): string {
  return `rollout-${pipeline}-${version}`;
}

/** Workflow type and id of the per-pipeline lock that makes one rollout per pipeline at a time. */
export const rolloutLockWorkflowType = 'rolloutLock';
/** Workflow id of a pipeline's rollout lock: `rollout-lock-<pipeline>`. */
export function rolloutLockWorkflowId(pipeline: string): string {
  return `rollout-lock-${pipeline}`;
}

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected letters, digits, ".", "_" or "-" (1-100, starting with a letter or digit)');

/**
 * One step, written the way people write Argo steps:
 * - `{"shadow": "10m"}`: the canary processes the same offset ranges as the baseline into shadow
 *   tables for 10 minutes (live outputs untouched), then the window is judged;
 * - `{"weight": 25}`: 25 % of keys (stable hash of the event key) go to the canary in the live outputs;
 * - `{"pause": "5m"}` waits 5 minutes; `{"pause": {}}` or `"pause"` waits for a person (`resume`/`promote`);
 * - `"analysis"` (or `{"analysis": {}}`): judge the window since the last shadow/weight step now.
 */
export const stepSchema = z.union([
  z.object({ shadow: durationSchema }).strict(),
  z.object({ weight: z.number().int('expected a whole percentage').min(1, 'expected 1..99').max(99, 'expected 1..99 (100 % is promotion)') }).strict(),
  z.object({ pause: z.union([durationSchema, z.object({}).strict()]) }).strict(),
  z.literal('pause').transform(() => ({ pause: {} as Record<string, never> })),
  z.literal('analysis').transform(() => ({ analysis: {} as Record<string, never> })),
  z.object({ analysis: z.object({}).strict() }).strict(),
], { error: 'expected {"shadow": "10m"}, {"weight": 25}, {"pause": "5m"}, {"pause": {}}, "pause" or "analysis"' });
/** A parsed step (durations in milliseconds). */
export type RolloutStep = z.infer<typeof stepSchema>;

/** Kind of a step, for display and state. */
export function stepKind(step: RolloutStep): 'shadow' | 'weight' | 'pause' | 'analysis' {
  if ('shadow' in step) return 'shadow';
  if ('weight' in step) return 'weight';
  if ('pause' in step) return 'pause';
  return 'analysis';
}

/** A step in words: `shadow 10m`, `weight 25 %`, `pause 5m`, `pause (until resumed)`, `analysis`. */
export function describeStep(step: RolloutStep): string {
  if ('shadow' in step) return `shadow ${formatDuration(step.shadow)}`;
  if ('weight' in step) return `weight ${step.weight} %`;
  if ('pause' in step) return typeof step.pause === 'number' ? `pause ${formatDuration(step.pause)}` : 'pause (until resumed)';
  return 'analysis';
}

/** Milliseconds in words: `1h30m`, `4m`, `45s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join('');
}

/** A UTC instant as a clock reading: `02:41:10Z`, or `2026-12-02 02:41:10Z` when not on the day of `nowMs`. */
export function formatClock(atMs: number, nowMs: number): string {
  const at = new Date(atMs).toISOString();
  const clock = `${at.slice(11, 19)}Z`;
  return at.slice(0, 10) === new Date(nowMs).toISOString().slice(0, 10) ? clock : `${at.slice(0, 10)} ${clock}`;
}

/**
 * When the next judgement is due, in words that stay right whenever they are read:
 * `judging at 02:41:10Z (in about 2m, as of 02:39:10Z)`. The workflow writes its details at events
 * only (a step change, a judgement, a person's action), so a countdown alone ("judging in 2m")
 * went stale between them (it still said 2m seconds before the judgement). The absolute time is
 * always right; the countdown says when it was computed. Chosen over refreshing the details on a
 * timer: a timer every 30 s adds a timer and a workflow task to the history twice a minute for as
 * long as the rollout runs (thousands of events a day), for a line that is read now and then.
 */
export function describeJudgingAt(atMs: number, nowMs: number): string {
  const left = Math.max(0, atMs - nowMs);
  const about = left >= 60_000 ? formatDuration(Math.round(left / 60_000) * 60_000) : formatDuration(left);
  return `judging at ${formatClock(atMs, nowMs)} (in about ${about}, as of ${formatClock(nowMs, nowMs)})`;
}

/** How a metric is compared. */
export const metricKindSchema = z.enum(['continuous', 'proportion']);

/**
 * One metric of the judgement. `continuous`: per-observation values (per-event processing time, an
 * output field), compared with the two-sided Mann–Whitney U test and the Hodges–Lehmann shift.
 * `proportion`: per-batch hits out of events (rejects, processing errors, detector firings),
 * pooled into a 2x2 table and compared with Fisher's exact test.
 */
export const metricSchema = z
  .object({
    /** Name the pipeline writes into `canary_observations.metric`, e.g. `reject_rate`, `processing_time_ms`, `field:amount`. */
    name: z.string().regex(/^[A-Za-z0-9_:.-]{1,100}$/, 'expected a metric name like reject_rate, processing_time_ms or field:amount'),
    kind: metricKindSchema,
    /**
     * Which change is harmful: `increase`, `decrease` or `either`.
     * @default "increase" for proportions, "either" for continuous metrics
     */
    direction: z.enum(['increase', 'decrease', 'either']).optional(),
    /** Largest harmless change in metric units (shift for continuous, rate difference for proportions). @default 0 */
    tolerance: z.number().min(0).default(0),
    /** Largest harmless change as a fraction of the baseline (median or rate); the larger of both tolerances applies. @default 0 */
    relativeTolerance: z.number().min(0).default(0),
    /** Weight in the score. @default 1 */
    weight: z.number().positive().default(1),
    /** A critical metric that fails fails the whole judgement; one that is inconclusive makes it inconclusive. @default false */
    critical: z.boolean().default(false),
    /** Minimum observations per side (continuous) or events per side (proportion). @default analysis.minSamples */
    minSamples: z.number().int().positive().optional(),
  })
  .strict()
  .transform((m) => ({ ...m, direction: m.direction ?? (m.kind === 'proportion' ? 'increase' : 'either') }));
/** A parsed metric (defaults applied). */
export type MetricConfig = z.infer<typeof metricSchema>;

/** The metrics judged when the input names none. */
export const defaultMetrics: z.input<typeof metricSchema>[] = [
  { name: 'reject_rate', kind: 'proportion', critical: true, tolerance: 0.001 },
  { name: 'processing_error_rate', kind: 'proportion', critical: true, tolerance: 0.001 },
  { name: 'processing_time_ms', kind: 'continuous', direction: 'increase', relativeTolerance: 0.25 },
];

/**
 * Smallest two-sided p-value any test of the judge can reach with `n` observations per side,
 * `2 / C(2n, n)`: the Mann–Whitney exact test with complete separation, and Fisher's test of the
 * table [[n, 0], [0, n]]. Pure (product form), so input validation in workflow code can use it.
 */
export function smallestTwoSidedP(n: number): number {
  let p = 2;
  for (let k = 1; k <= n; k++) p *= k / (n + k);
  return Math.min(1, p);
}

/** Smallest n per side whose {@link smallestTwoSidedP} is below `alpha`. */
export function smallestUsefulSampleSize(alpha: number): number {
  let n = 1;
  while (smallestTwoSidedP(n) >= alpha && n < 1000) n++;
  return n;
}

/** Prefix of an aggregate metric: `aggregate:<aggregation>.<measure>` (a declared aggregation's measure, per window). */
export const aggregateMetricPrefix = 'aggregate:';
/** Prefix of a detector metric: `detector:<detector>` (windows in which a declared window detector fires, out of windows judged). */
export const detectorMetricPrefix = 'detector:';

/** The declared aggregation and measure an `aggregate:<aggregation>.<measure>` metric names, or null. */
export function parseAggregateMetric(name: string): { aggregation: string; measure: string } | null {
  const m = /^aggregate:([a-z][a-z0-9_]{0,62})\.([a-z][a-z0-9_]{0,62})$/.exec(name);
  return m ? { aggregation: m[1]!, measure: m[2]! } : null;
}

/** The declared detector a `detector:<detector>` metric names, or null. */
export function parseDetectorMetric(name: string): string | null {
  return /^detector:([a-z][a-z0-9_]{0,62})$/.exec(name)?.[1] ?? null;
}

const metricDefaults = z
  .object({
    direction: z.enum(['increase', 'decrease', 'either']).optional(),
    tolerance: z.number().min(0).optional(),
    relativeTolerance: z.number().min(0).optional(),
    weight: z.number().positive().optional(),
    critical: z.boolean().optional(),
    minSamples: z.number().int().positive().optional(),
  })
  .strict();

/**
 * Aggregate values and detector firings in the judgement: the pipeline's declared aggregations
 * (`infra/analytics/pipelines.json`) whose source is an output table of the processor rolling out,
 * computed per window over the baseline's rows and over the canary's rows of the step, and the
 * declared window detectors over them run on both series.
 * - `include: "declared"` judges every measure of every such aggregation (`aggregate:<aggregation>.<measure>`,
 *   continuous: the per-window values of each group) and every window detector on them
 *   (`detector:<name>`, proportion: windows firing / windows judged), with the defaults below,
 *   besides the metrics named in `metrics`; `"named"` judges only those named in `metrics`.
 * - `measures` / `detectors`: defaults of the implicit metrics (a metric named in `metrics` uses its own values).
 */
export const aggregatesSchema = z
  .object({
    /** @default "declared" */
    include: z.enum(['declared', 'named']).default('declared'),
    /** @default either direction, relativeTolerance 0.1, weight 1, not critical, minSamples analysis.minSamples */
    measures: metricDefaults.default({}),
    /** @default direction increase, tolerance 0.05 (5 percentage points of windows firing), weight 1, not critical */
    detectors: metricDefaults.default({}),
  })
  .strict();
/** Parsed aggregate configuration. */
export type AggregatesConfig = z.infer<typeof aggregatesSchema>;

/**
 * The metric configuration of an implicit aggregate (`aggregate:...`) or detector (`detector:...`)
 * metric from the rollout's `analysis.aggregates` defaults.
 */
export function implicitAggregateMetric(name: string, aggregates: AggregatesConfig): MetricConfig {
  const detector = name.startsWith(detectorMetricPrefix);
  const d = detector ? aggregates.detectors : aggregates.measures;
  return metricSchema.parse({
    name,
    kind: detector ? 'proportion' : 'continuous',
    direction: d.direction ?? (detector ? 'increase' : 'either'),
    tolerance: d.tolerance ?? (detector ? 0.05 : 0),
    relativeTolerance: d.relativeTolerance ?? (detector ? 0 : 0.1),
    weight: d.weight ?? 1,
    critical: d.critical ?? false,
    ...(d.minSamples !== undefined ? { minSamples: d.minSamples } : {}),
  });
}

/** The judgement: confidence, minimum sample size, metrics, and the score thresholds (Kayenta's shape). */
export const analysisSchema = z
  .object({
    /** Confidence of every test: a change is significant when p < 1 - confidence. @default 0.98 (Kayenta's) */
    confidence: z.number().gt(0.5, 'expected a confidence in (0.5, 1), e.g. 0.98').lt(1, 'expected a confidence in (0.5, 1), e.g. 0.98').default(0.98),
    /** Minimum observations (or events, for proportions) per side below which a metric is inconclusive. @default 20 */
    minSamples: z.number().int().positive().default(20),
    /** Score (0-100, weighted share of passing metrics) at or above which the judgement passes. @default 95 */
    passScore: z.number().min(0).max(100).default(95),
    /** Score at or above which a judgement that does not pass is marginal (below: fail). @default 75 */
    marginalScore: z.number().min(0).max(100).default(75),
    /** @default reject_rate and processing_error_rate (proportions, critical), processing_time_ms (continuous, increase, 25 % tolerance) */
    metrics: z.array(metricSchema).min(1, 'expected at least one metric').default(() => defaultMetrics.map((m) => metricSchema.parse(m))),
    /** Aggregate values and detector firings (see {@link aggregatesSchema}). @default include every declared aggregation and detector over the processor's outputs */
    aggregates: aggregatesSchema.prefault({}),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.marginalScore > a.passScore) ctx.addIssue({ code: 'custom', path: ['marginalScore'], message: `expected at most passScore (${a.passScore}), got ${a.marginalScore}` });
    const alpha = 1 - a.confidence;
    const check = (n: number, path: (string | number)[]) => {
      const pMin = smallestTwoSidedP(n);
      if (pMin >= alpha) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `${n} per side could never reject at confidence ${a.confidence}: the smallest two-sided p-value is ${pMin.toPrecision(3)} >= ${alpha.toPrecision(3)}; use at least ${smallestUsefulSampleSize(alpha)}`,
        });
      }
    };
    check(a.minSamples, ['minSamples']);
    for (const group of ['measures', 'detectors'] as const) {
      const n = a.aggregates[group].minSamples;
      if (n !== undefined) check(n, ['aggregates', group, 'minSamples']);
    }
    const seen = new Set<string>();
    a.metrics.forEach((m, i) => {
      if (m.minSamples !== undefined) check(m.minSamples, ['metrics', i, 'minSamples']);
      if (seen.has(m.name)) ctx.addIssue({ code: 'custom', path: ['metrics', i, 'name'], message: `duplicate metric "${m.name}"` });
      if (m.name.startsWith(aggregateMetricPrefix)) {
        if (!parseAggregateMetric(m.name)) ctx.addIssue({ code: 'custom', path: ['metrics', i, 'name'], message: `expected aggregate:<aggregation>.<measure> (lowercase identifiers), got "${m.name}"` });
        else if (m.kind !== 'continuous') ctx.addIssue({ code: 'custom', path: ['metrics', i, 'kind'], message: `expected "continuous" for an aggregate metric (its samples are per-window values), got "${m.kind}"` });
      }
      if (m.name.startsWith(detectorMetricPrefix)) {
        if (!parseDetectorMetric(m.name)) ctx.addIssue({ code: 'custom', path: ['metrics', i, 'name'], message: `expected detector:<detector> (a lowercase identifier), got "${m.name}"` });
        else if (m.kind !== 'proportion') ctx.addIssue({ code: 'custom', path: ['metrics', i, 'kind'], message: `expected "proportion" for a detector metric (windows firing out of windows judged), got "${m.kind}"` });
      }
      seen.add(m.name);
    });
  });
/** A parsed analysis configuration. */
export type AnalysisConfig = z.infer<typeof analysisSchema>;

/** The steps used when the input names none: shadow, then 10 % and 50 % of keys, each judged. */
export const defaultSteps: z.input<typeof stepSchema>[] = [
  { shadow: '10m' },
  { weight: 10 },
  { pause: '10m' },
  'analysis',
  { weight: 50 },
  { pause: '10m' },
  'analysis',
];

/** The input of `canaryRollout`. */
export const rolloutInputSchema = z
  .object({
    /** Pipeline id whose processor version rolls out. */
    pipeline: name,
    /** Target processor version (the canary): `3`, `v3` (the pipeline's processor at 3) or `name@3`; must be registered (checked on the worker). */
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/, 'expected a processor version: 3, v3 or name@3'),
    /** Version it replaces (the baseline), for the record. @default "current" */
    baselineVersion: name.default('current'),
    /** Processor flags of the canary. @default {} */
    flags: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    /** @default shadow 10m; weight 10; pause 10m; analysis; weight 50; pause 10m; analysis */
    steps: z.array(stepSchema).min(1, 'expected at least one step').default(() => defaultSteps.map((s) => stepSchema.parse(s))),
    analysis: analysisSchema.default(() => analysisSchema.parse({})),
    /** Alerts: severity of a failed or aborted rollout, and how often a rollout waiting for a person reminds. */
    notify: z
      .object({
        /** @default "critical" */
        severity: severitySchema.default('critical'),
        /** @default "1h" */
        remindEvery: durationSchema.default(3_600_000),
      })
      .strict()
      .default({ severity: 'critical', remindEvery: 3_600_000 }),
    /** Who started it (recorded). @default "unknown" */
    requestedBy: z.string().min(1).max(200).default('unknown'),
    /** Continue-as-new once history has this many events (tests lower it). @default 5000 */
    historyLimit: z.number().int().min(20).optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    let traffic = false;
    input.steps.forEach((step, i) => {
      if ('analysis' in step && !traffic) {
        ctx.addIssue({ code: 'custom', path: ['steps', i], message: 'an analysis step needs a shadow or weight step before it (nothing to judge yet)' });
      }
      if ('shadow' in step || 'weight' in step) traffic = true;
    });
  });
/** Input as written (before defaults). */
export type RolloutInputJson = z.input<typeof rolloutInputSchema>;
/** Parsed input (defaults applied, durations in ms). */
export type RolloutInput = z.infer<typeof rolloutInputSchema>;
