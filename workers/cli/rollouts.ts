/**
 * `platform rollouts`: canary rollouts from the command line, over the same interface the Temporal
 * UI uses: workflow `canaryRollout` (id `rollout-<pipeline>-<version>`), updates `promote`,
 * `pause`, `resume`, `abort` (validated in the workflow; who and why recorded), query `state`,
 * search attributes `RolloutStatus` / `RolloutPipeline`; judgements from `canary_judgements`.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { ClickHouseClient } from '@clickhouse/client';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { describeZodError } from '../../schemas/alerting/alert-incident.js';
import { loadConfig } from '../../schemas/config.js';
import { PlatformError } from '../../schemas/errors.js';
import { describeStep, rolloutInputSchema, rolloutLockWorkflowId, rolloutWorkflowId } from '../../schemas/rollouts/rollout.js';
import { rolloutStatusSchema, stepNumberOf, type RolloutState } from '../../schemas/rollouts/rollout-state.js';
import { abortUpdate, pauseUpdate, promoteUpdate, resumeUpdate } from '../../workflows/rollouts/canary-rollout.js';
import { connectTemporal, createWarehouse } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';
import { queryWithin } from './temporal-query.js';
import { checkRolloutStart, type RolloutStartContext } from '../../activities/rollouts/target.js';
import { AnalyticsConfigError, loadAnalyticsFile } from '../../activities/analytics/declarations-file.js';
import type { AnalyticsFile } from '../../schemas/analytics/declarations.js';
import { processors as treeProcessors } from '../../schemas/processors/index.js';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import { describeTargetRefusal } from '../../schemas/rollouts/target.js';

const usage = `Usage: platform rollouts <subcommand> [options]

  start --file input.json | --input '{"pipeline":"orders","version":"3"}' [--by NAME]
        Starts workflow canaryRollout with id rollout-<pipeline>-<version>. The input is validated
        first (a refusal names the field); a pipeline with a running rollout is refused, naming it.
  list [--pipeline P] [--status S] [--all] [--json]
        Rollouts from Temporal visibility (running only unless --all or a final --status).
        S: ${rolloutStatusSchema.options.join('|')}.
  show ID [--json]      State, steps, audit events and every judgement with its per-metric report.
  promote ID --by NAME --reason TEXT   Skip the remaining steps: canary to 100 % at the next batch boundary.
  pause ID --by NAME --reason TEXT     Hold at the current step (its timer stops).
  resume ID --by NAME --reason TEXT    Continue; after a pause() step or a marginal/inconclusive judgement, go on.
  abort ID --by NAME --reason TEXT     Roll back to the baseline; opens an incident.

ID is the workflow id (rollout-<pipeline>-<version>). --by defaults to your OS user name.
-h, --help on any subcommand prints this text.`;

/** A refused start: bad input or a pipeline that already has a rollout. */
export class RolloutRefusedError extends PlatformError {
  constructor(message: string) {
    super('rollout_refused', message, false);
    this.name = 'RolloutRefusedError';
  }
}

const quote = (v: string) => `"${v.replace(/["\\]/g, '')}"`;

/** The visibility query behind `rollouts list` (exported for tests and the README). */
export function listQuery(options: { pipeline?: string; status?: string; all?: boolean }): string {
  const parts = ['WorkflowType = "canaryRollout"'];
  if (options.pipeline) parts.push(`RolloutPipeline = ${quote(options.pipeline)}`);
  if (options.status) parts.push(`RolloutStatus = ${quote(options.status)}`);
  const finalStatus = options.status !== undefined && options.status !== 'progressing' && options.status !== 'paused';
  if (!options.all && !finalStatus) parts.push('ExecutionStatus = "Running"');
  return parts.join(' AND ');
}

/** What `startRollout` checks the input against (the tool's catalogue and analytics declarations). */
export interface StartRolloutOptions {
  /** Registered processor versions. @default the working tree's catalogue */
  catalogue?: readonly ProcessorFamily[];
  /** Analytics declarations (`aggregate:`/`detector:` metrics). @default infra/analytics/pipelines.json (the command passes ANALYTICS_FILE's, as the worker loads it) */
  analytics?: AnalyticsFile;
  /** See {@link RolloutStartContext.requireRunningPipeline}: `false` only for tests that play the pipeline. @default true */
  requireRunningPipeline?: boolean;
}

/**
 * Validates a hand-written rollout input and starts it; refuses (naming the field, or the running
 * rollout of the pipeline) before anything starts. The input passes the same start checks as the
 * workflow's `checkRolloutTarget` activity ({@link checkRolloutStart}): the pipeline is running, the
 * target `version` is a registered version (the pipeline's processor for a plain `3`), `flags`
 * parse with its flag schema, and every `aggregate:`/`detector:` metric names a declared one.
 * Returns the workflow id.
 */
export async function startRollout(client: Client, taskQueue: string, raw: unknown, requestedBy?: string, options: StartRolloutOptions = {}): Promise<string> {
  const withBy = requestedBy && typeof raw === 'object' && raw !== null && !('requestedBy' in raw) ? { ...raw, requestedBy } : raw;
  const parsed = rolloutInputSchema.safeParse(withBy);
  if (!parsed.success) throw new RolloutRefusedError(`canaryRollout input: ${describeZodError(parsed.error)}`);
  const { pipeline, version, baselineVersion, steps } = parsed.data;
  const context: RolloutStartContext = {
    catalogue: options.catalogue ?? treeProcessors,
    analytics: options.analytics ?? (await loadAnalyticsFile()),
    ...(options.requireRunningPipeline === undefined ? {} : { requireRunningPipeline: options.requireRunningPipeline }),
  };
  const check = await checkRolloutStart(client, context, { pipeline, version, flags: parsed.data.flags, metrics: parsed.data.analysis.metrics.map((m) => m.name) });
  if (!check.ok) throw new RolloutRefusedError(`canaryRollout input: ${describeTargetRefusal(check)}`);
  const lock = client.workflow.getHandle(rolloutLockWorkflowId(pipeline));
  try {
    if ((await lock.describe()).status.name === 'RUNNING') {
      const holder = await queryWithin<string>(client, lock.workflowId, 'holder', 5000);
      throw new RolloutRefusedError(`pipeline "${pipeline}" already has a running rollout: ${holder} (one rollout per pipeline at a time)`);
    }
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const workflowId = rolloutWorkflowId(pipeline, version);
  await client.workflow.start('canaryRollout', {
    workflowId,
    taskQueue,
    args: [withBy],
    staticSummary: `canary ${pipeline}: ${baselineVersion} -> ${version}`,
    staticDetails: `steps: ${steps.map(describeStep).join('; ')}`,
  });
  return workflowId;
}

/** One row of `canary_judgements` as `show` prints it. */
export interface JudgementRow {
  judgement_id: string;
  /** 1-based step number (column `step_number`), as every line people read counts steps. */
  step_number: number;
  outcome: string;
  score: number;
  metric: string;
  test: string;
  baseline_n: number;
  canary_n: number;
  p_value: number | null;
  effect: number | null;
  tolerance: number | null;
  verdict: string;
  reason: string;
  judged_at: string;
}

/** Every judgement of a rollout, per metric, oldest first. */
export async function judgementReports(warehouse: ClickHouseClient, rolloutId: string): Promise<JudgementRow[]> {
  const result = await warehouse.query({
    query: `SELECT judgement_id, step_number, outcome, score, metric, test, baseline_n, canary_n, p_value, effect, tolerance, verdict, reason, toString(judged_at) AS judged_at
            FROM canary_judgements FINAL WHERE rollout_id = {id:String} ORDER BY judged_at, judgement_id, metric`,
    query_params: { id: rolloutId },
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  return result.json<JudgementRow>();
}

function renderRows(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const num = (v: number | null) => (v === null || !Number.isFinite(v) ? '-' : Number(v.toPrecision(4)).toString());

/** The judgement report in words: one block per judgement, one line per metric. */
export function describeJudgements(rows: JudgementRow[]): string {
  const blocks: string[] = [];
  const ids = [...new Set(rows.map((r) => r.judgement_id))];
  for (const id of ids) {
    const metrics = rows.filter((r) => r.judgement_id === id);
    const head = metrics[0]!;
    blocks.push(
      `judgement ${id} (step ${head.step_number}, ${head.judged_at}): ${head.outcome.toUpperCase()}, score ${num(head.score)}\n` +
        renderRows(
          ['metric', 'verdict', 'test', 'n base', 'n canary', 'p-value', 'effect', 'tolerance', 'reason'],
          metrics.map((m) => [m.metric, m.verdict, m.test, String(m.baseline_n), String(m.canary_n), num(m.p_value), num(m.effect), num(m.tolerance), m.reason]),
        ),
    );
  }
  return blocks.join('\n\n') || '(no judgement yet)';
}

/** The rollout state in words. */
export function describeRollout(s: RolloutState): string {
  const lines = [
    `${s.rolloutId}  ${s.pipeline}: ${s.baselineVersion} -> ${s.version}  [${s.status}]`,
    `  ${s.details}`,
    `  routing ${s.routing.mode}${s.routing.mode === 'weight' ? ` ${s.routing.weightPercent} %` : ''} (epoch ${s.routing.epoch}); started ${s.startedAt}${s.finishedAt ? `, finished ${s.finishedAt}` : ''}`,
  ];
  if (s.publishedEpoch !== undefined) lines.push(`  published to the pipeline up to epoch ${s.publishedEpoch} (table rollout_routing; lineage_batches.routing_* per batch)`);
  if (s.handover) lines.push(`  hand-over: ${s.handover}`);
  if (s.pause) lines.push(`  paused by ${s.pause.by} at ${s.pause.at}: ${s.pause.reason}`);
  if (s.incident) lines.push(`  incident ${s.incident} (platform alerts show ${s.incident})`);
  lines.push('', renderRows(['seq', 'at', 'event', 'step', 'by', 'reason'], s.events.map((e) => [String(e.seq), e.at, e.type, String(e.stepNumber ?? stepNumberOf(e.step, s.stepCount)), e.by, e.reason])));
  return lines.join('\n');
}

function need(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`expected ${what}`);
  return value;
}

const first = (v: unknown) => (Array.isArray(v) ? String(v[0] ?? '') : v === undefined || v === null ? '' : String(v));

const byReason = { by: { type: 'string' }, reason: { type: 'string' } } as const;

/** The command line of `platform rollouts` (also checked against every README example). */
export const rolloutsSpec: CommandSpec = {
  subcommands: {
    start: { options: { file: { type: 'string' }, input: { type: 'string' }, by: { type: 'string' } } },
    list: { options: { pipeline: { type: 'string' }, status: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } } },
    show: { options: { json: { type: 'boolean' } }, positionals: [1, 1] },
    promote: { options: byReason, positionals: [1, 1] },
    pause: { options: byReason, positionals: [1, 1] },
    resume: { options: byReason, positionals: [1, 1] },
    abort: { options: byReason, positionals: [1, 1] },
  },
};

const command: Command = {
  name: 'rollouts',
  summary: 'start, list, show, promote, pause, resume, abort canary rollouts',
  usage,

  spec: rolloutsSpec,
  async run(args) {
    const parsed = parseCommandLine(rolloutsSpec, args);
    const sub = parsed.sub;
    const config = loadConfig();
    const withClient = async <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
      const client = await connectTemporal(config, resolveEndpoints(config));
      try {
        return await fn(client);
      } finally {
        await client.connection.close();
      }
    };
    switch (sub) {
      case 'start': {
        const { values } = parsed;
        let text: string;
        if (typeof values.file === 'string') text = await readFile(values.file, 'utf8');
        else text = need(values.input, "--file input.json or --input '<json>'");
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch (err) {
          throw new UsageError(`canaryRollout input: expected JSON, ${(err as Error).message}`);
        }
        const by = typeof values.by === 'string' ? values.by : userInfo().username;
        // The declarations the worker judges with (aggregate:/detector: metrics are checked against them).
        let analytics: AnalyticsFile;
        try {
          analytics = await loadAnalyticsFile(config.ANALYTICS_FILE);
        } catch (err) {
          if (err instanceof AnalyticsConfigError) {
            console.error(err.message);
            return 2;
          }
          throw err;
        }
        return withClient(async (client) => {
          try {
            const id = await startRollout(client, config.TEMPORAL_TASK_QUEUE, raw, by, { analytics });
            console.log(`started ${id}; follow it with: platform rollouts show ${id}`);
            return 0;
          } catch (err) {
            if (err instanceof RolloutRefusedError) {
              console.error(err.message);
              return 1;
            }
            throw err;
          }
        });
      }
      case 'list': {
        const { values } = parsed;
        const status = values.status === undefined ? undefined : rolloutStatusSchema.safeParse(values.status);
        if (status && !status.success) throw new UsageError(`--status: expected one of ${rolloutStatusSchema.options.join(', ')}, got "${String(values.status)}"`);
        const query = listQuery({ pipeline: values.pipeline as string | undefined, status: status?.data, all: values.all === true });
        return withClient(async (client) => {
          const rows: Record<string, string>[] = [];
          for await (const wf of client.workflow.list({ query })) {
            rows.push({ id: wf.workflowId, pipeline: first(wf.searchAttributes.RolloutPipeline), status: first(wf.searchAttributes.RolloutStatus), since: wf.startTime.toISOString(), run: wf.status.name });
          }
          if (values.json) console.log(JSON.stringify(rows, null, 2));
          else console.log(`# ${query}\n${renderRows(['id', 'pipeline', 'status', 'since', 'run'], rows.map((r) => Object.values(r)))}`);
          return 0;
        });
      }
      case 'show': {
        const { values, positionals } = parsed;
        const id = need(positionals[0], 'a rollout id (rollout-<pipeline>-<version>)');
        return withClient(async (client) => {
          const state = await queryWithin<RolloutState>(client, id, 'state', 5000);
          const warehouse = createWarehouse(config, resolveEndpoints(config));
          try {
            const judgements = await judgementReports(warehouse, id);
            if (values.json) console.log(JSON.stringify({ state, judgements }, null, 2));
            else console.log(`${describeRollout(state)}\n\n${describeJudgements(judgements)}`);
          } finally {
            await warehouse.close();
          }
          return 0;
        });
      }
      case 'promote':
      case 'pause':
      case 'resume':
      case 'abort': {
        const { values, positionals } = parsed;
        const id = need(positionals[0], 'a rollout id (rollout-<pipeline>-<version>)');
        const input = { by: typeof values.by === 'string' ? values.by : userInfo().username, reason: need(values.reason, '--reason TEXT') };
        const def = { promote: promoteUpdate, pause: pauseUpdate, resume: resumeUpdate, abort: abortUpdate }[sub];
        return withClient(async (client) => {
          try {
            const state = await client.workflow.getHandle(id).executeUpdate(def, { args: [input] });
            console.log(describeRollout(state));
            return 0;
          } catch (err) {
            if (err instanceof WorkflowUpdateFailedError) {
              console.error(err.cause?.message ?? err.message);
              return 1;
            }
            throw err;
          }
        });
      }
      default:
        throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'expected a subcommand');
    }
  },
};

export default command;
