/**
 * `platform pipeline start|stop|list|pause|resume|set-processor|set-flags`: thin wrappers over the Temporal client for
 * the `pipeline` workflow. Everything here can also be done with the Temporal CLI; the usage text
 * shows the equivalent commands.
 */
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { alertWorkflowType } from '../../schemas/alerting/alert.js';
import { resolveUpdate } from '../../workflows/alerting/alert.js';
import { partitionWorkflowId, pipelineWorkflowId, type PipelineInputRaw, type PipelineProgress } from '../../schemas/ingest/pipeline.js';
import { PipelineInputError, startPipeline } from '../pipelines.js';
import { loadConfig } from '../../schemas/config.js';
import { connectTemporal, createKafka } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';
import { renderTable } from './sql.js';
import { queryWithin, runningPipelinesQuery } from './temporal-query.js';
import type { ProcessorStatus } from '../../workflows/ingest/processor-control.js';

function strings(names: readonly string[]): Record<string, { type: 'string' }> {
  return Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));
}

/** The command line of `platform pipeline` (also checked against every README example). */
export const pipelineSpec: CommandSpec = {
  subcommands: {
    start: { options: strings(['id', 'topic', 'partitions', 'batch-max', 'start-from', 'processor', 'json']) },
    stop: { options: { ...strings(['id', 'by']), 'keep-incidents': { type: 'boolean' } } },
    list: { options: { all: { type: 'boolean' } } },
    pause: { options: strings(['id', 'partition', 'reason']) },
    resume: { options: strings(['id', 'partition']) },
    'set-processor': { options: strings(['id', 'processor', 'flags', 'reason', 'by']) },
    'set-flags': { options: strings(['id', 'flags', 'reason', 'by']) },
  },
};

/** The subcommand's string options (the spec declares only strings, and `--all` for list). */
function parse(args: string[], sub: string): { values: Partial<Record<string, string>>; all: boolean; keepIncidents: boolean } {
  const { values } = parseCommandLine(pipelineSpec, [sub, ...args]);
  const strings = Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { values: strings, all: values.all === true, keepIncidents: values['keep-incidents'] === true };
}

async function withClient<T>(fn: (client: Awaited<ReturnType<typeof connectTemporal>>, taskQueue: string) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const client = await connectTemporal(config, resolveEndpoints(config));
  try {
    return await fn(client, config.TEMPORAL_TASK_QUEUE);
  } finally {
    await client.connection.close();
  }
}

/**
 * `--partitions` applies only when the platform creates the topic: an existing topic keeps its
 * partitions (the platform never alters a topic). Says so on stderr when they differ, rather than
 * letting the option be silently ignored. A broker that cannot be asked is not an error here (the
 * pipeline itself waits for Kafka).
 */
async function warnExistingPartitions(topic: string, requested: number): Promise<void> {
  const config = loadConfig();
  const admin = createKafka(config, resolveEndpoints(config), '-cli', { retries: 1, quiet: true }).admin();
  try {
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => null);
    const existing = metadata?.topics[0]?.partitions.length;
    if (existing !== undefined && existing !== requested) {
      console.error(
        `warning: topic ${topic} already exists with ${existing} partitions; --partitions ${requested} applies only to a topic the platform creates. ` +
          `The pipeline consumes all ${existing}; to add partitions use Kafka's kafka-topics.sh --alter (keys then move to other partitions).`,
      );
    }
  } catch {
    // Kafka unreachable: the pipeline reports it; nothing to compare.
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function start(args: string[]): Promise<number> {
  const { values } = parse(args, 'start');
  let raw: Record<string, unknown> = {};
  if (typeof values.json === 'string') {
    try {
      raw = JSON.parse(values.json) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`--json: expected a JSON object, got ${(err as Error).message}`);
    }
  }
  if (typeof values.id === 'string') raw.pipelineId = values.id;
  if (typeof values.topic === 'string') raw.topic = values.topic;
  if (typeof values.partitions === 'string') raw.partitions = Number(values.partitions);
  if (typeof values['batch-max'] === 'string') raw.batchMaxEvents = Number(values['batch-max']);
  if (typeof values['start-from'] === 'string') raw.startFrom = values['start-from'];
  if (typeof values.processor === 'string') raw.processor = parseProcessorRef(values.processor, '--processor');
  if (typeof raw.partitions === 'number' && typeof raw.topic === 'string') await warnExistingPartitions(raw.topic, raw.partitions);
  return withClient(async (client, taskQueue) => {
    let result;
    try {
      result = await startPipeline(client, taskQueue, raw as PipelineInputRaw, { ifRunning: 'fail' });
    } catch (err) {
      if (err instanceof PipelineInputError) throw new UsageError(err.message);
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        console.error(`pipeline-${String(raw.pipelineId)} is already running; stop it first with: platform pipeline stop --id ${String(raw.pipelineId)}`);
        return 1;
      }
      throw err;
    }
    console.log(`started ${result.workflowId} on task queue ${taskQueue}`);
    return 0;
  });
}

async function stop(args: string[]): Promise<number> {
  const { values, keepIncidents } = parse(args, 'stop');
  if (typeof values.id !== 'string') throw new UsageError('--id: required');
  const pipelineId = values.id;
  const workflowId = pipelineWorkflowId(pipelineId);
  return withClient(async (client) => {
    await client.workflow.getHandle(workflowId).cancel();
    console.log(`cancel requested for ${workflowId}; its partition consumers finish their batch in flight and stop`);
    if (!keepIncidents) {
      const by = values.by ?? (userInfo().username || 'unknown');
      const resolved = await resolvePipelineIncidents(client, pipelineId, `platform pipeline stop (${by})`);
      if (resolved.length > 0) {
        console.log(`resolved ${resolved.length} open incident(s) of pipeline ${pipelineId}: its detectors stop with it, so nothing would ever clear them (--keep-incidents keeps them open)`);
      }
    }
    return 0;
  });
}

/**
 * Resolves the open incidents of a pipeline that is being stopped: the aggregator stops with the
 * pipeline, so their clear conditions are never evaluated again and they would escalate forever.
 * Alertmanager does the same when a source stops sending an alert (it resolves after
 * `resolve_timeout`). Each is resolved through its `resolve` update, recorded in its timeline with
 * `by` and the reason. An incident that closes meanwhile is skipped. Returns the workflow ids resolved.
 */
async function resolvePipelineIncidents(client: Awaited<ReturnType<typeof connectTemporal>>, pipelineId: string, by: string): Promise<string[]> {
  const query = `WorkflowType = "${alertWorkflowType}" AND ExecutionStatus = "Running" AND Pipeline = "${pipelineId.replace(/["\\]/g, '')}"`;
  const resolved: string[] = [];
  for await (const wf of client.workflow.list({ query })) {
    try {
      await client.workflow.getHandle(wf.workflowId, wf.runId).executeUpdate(resolveUpdate, { args: [{ by, note: `pipeline ${pipelineId} stopped; its detectors no longer run` }] });
      resolved.push(wf.workflowId);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) && !(err instanceof WorkflowUpdateFailedError)) throw err;
    }
  }
  return resolved;
}

async function updatePartitions(args: string[], update: 'pause' | 'resume'): Promise<number> {
  const { values } = parse(args, update);
  if (typeof values.id !== 'string') throw new UsageError('--id: required');
  const id = values.id;
  return withClient(async (client) => {
    const progress = await queryWithin<PipelineProgress>(client, pipelineWorkflowId(id), 'progress');
    const partitions = typeof values.partition === 'string' ? [Number(values.partition)] : progress.partitions;
    for (const p of partitions) {
      await client.workflow.getHandle(partitionWorkflowId(id, progress.topic, p)).executeUpdate(update, { args: [typeof values.reason === 'string' ? { reason: values.reason } : {}] });
    }
    console.log(`${update}d ${progress.topic} partitions ${partitions.join(', ')} of ${id}`);
    return 0;
  });
}

/** `request-enriched@2` -> `{ name, version }`. */
function parseProcessorRef(text: string, what: string): { name: string; version: number } {
  const m = /^([a-z][a-z0-9-]*)@v?(\d+)$/.exec(text);
  if (!m) throw new UsageError(`${what}: expected NAME@VERSION like request-enriched@2, got ${JSON.stringify(text)}`);
  return { name: m[1]!, version: Number(m[2]) };
}

function parseFlags(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--flags: expected a JSON object like '{"dropHealthChecks":false}', got ${(err as Error).message}`);
  }
}

/** `set-processor` / `set-flags`: the supervisor's updates, whose validators answer refusals. */
async function setProcessor(args: string[], which: 'setProcessor' | 'setFlags'): Promise<number> {
  const { values } = parse(args, which === 'setProcessor' ? 'set-processor' : 'set-flags');
  if (typeof values.id !== 'string') throw new UsageError('--id: required');
  if (typeof values.reason !== 'string') throw new UsageError('--reason: required (recorded in the audit table processor_switches)');
  const flags = parseFlags(values.flags);
  const requestedBy = values.by ?? `cli:${userInfo().username}`;
  let arg: Record<string, unknown>;
  if (which === 'setProcessor') {
    if (typeof values.processor !== 'string') throw new UsageError('--processor: required, NAME@VERSION');
    arg = { ...parseProcessorRef(values.processor, '--processor'), ...(flags ? { flags } : {}), requestedBy, reason: values.reason };
  } else {
    if (!flags) throw new UsageError('--flags: required');
    arg = { flags, requestedBy, reason: values.reason };
  }
  const id = values.id;
  return withClient(async (client) => {
    try {
      const status = await client.workflow.getHandle(pipelineWorkflowId(id)).executeUpdate<ProcessorStatus, [Record<string, unknown>]>(which, { args: [arg] });
      const p = status.processor;
      console.log(`${id}: processor ${p ? `${p.name} v${p.version} flags ${JSON.stringify(p.flags)}` : 'none'}; every partition switches at its next batch boundary`);
      return 0;
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      console.error(`${which} refused: ${cause ?? (err as Error).message}`);
      return 1;
    }
  });
}

async function list(args: string[]): Promise<number> {
  const { all } = parse(args, 'list');
  return withClient(async (client, taskQueue) => {
    const rows: string[][] = [];
    for await (const wf of client.workflow.list({ query: runningPipelinesQuery(taskQueue, all) })) {
      let detail = '';
      try {
        const p = await queryWithin<PipelineProgress>(client, wf.workflowId, 'progress', 3000, wf.runId);
        detail = `${p.topic} [${p.partitions.join(',')}] rollups ${p.rollupRuns}, alerts ${p.alertsFired}${p.lastError ? `, last error: ${p.lastError}` : ''}`;
      } catch (err) {
        detail = `(no answer: ${(err as Error).message})`;
      }
      rows.push([wf.workflowId, wf.taskQueue, wf.startTime.toISOString(), detail]);
    }
    if (rows.length === 0) console.log('no running pipelines');
    else console.log(renderTable([{ name: 'workflow', type: 'String' }, { name: 'task queue', type: 'String' }, { name: 'started', type: 'String' }, { name: 'detail', type: 'String' }], rows));
    return 0;
  });
}

const command: Command = {
  name: 'pipeline',
  summary: 'start, stop, list, pause or resume pipelines (Temporal workflows)',
  usage: [
    'Usage: platform pipeline <start|stop|list|pause|resume> [options]',
    '',
    '  start --id ID --topic TOPIC [--partitions N] [--batch-max N] [--start-from earliest|latest]',
    '        [--json \'{"rollup":{"intervalMs":5000},"detector":{"errorRateThreshold":0.05}}\']',
    '  stop --id ID [--by WHO] [--keep-incidents]',
    '                                   cancel the pipeline, its partition consumers and aggregator;',
    '                                   resolves its open incidents (nothing would clear them) unless --keep-incidents',
    '  list [--all]                     running pipelines (on TEMPORAL_TASK_QUEUE unless --all)',
    '  pause --id ID [--partition N] [--reason TEXT]',
    '  resume --id ID [--partition N]',
    '  set-processor --id ID --processor NAME@VERSION --reason TEXT [--flags JSON] [--by WHO]',
    '                                   switch at the next batch boundary of every partition (audited)',
    '  set-flags --id ID --flags JSON --reason TEXT [--by WHO]',
    '  (start also takes --processor NAME@VERSION)',
    '',
    'Temporal CLI equivalents:',
    '  temporal workflow start --type pipeline --task-queue streamwarden --workflow-id pipeline-demo \\',
    '    --input \'{"pipelineId":"demo","topic":"requests"}\'',
    '  temporal workflow query --workflow-id pipeline-demo-requests-0 --type progress',
    '  temporal workflow update execute --workflow-id pipeline-demo-requests-0 --name pause --input \'{"reason":"maintenance"}\'',
    '  temporal workflow cancel --workflow-id pipeline-demo',
    '',
    '-h, --help on any subcommand prints this text.',
    '  temporal workflow update execute --workflow-id pipeline-demo --name setProcessor \\',
    '    --input \'{"name":"request-enriched","version":2,"requestedBy":"ann","reason":"add protocol"}\'',
  ].join('\n'),
  spec: pipelineSpec,

  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'start':
        return start(rest);
      case 'stop':
        return stop(rest);
      case 'list':
        return list(rest);
      case 'pause':
      case 'resume':
        return updatePartitions(rest, sub);
      case 'set-processor':
        return setProcessor(rest, 'setProcessor');
      case 'set-flags':
        return setProcessor(rest, 'setFlags');
      default:
        // Names the unknown subcommand and the closest known one.
        parseCommandLine(pipelineSpec, args);
        throw new UsageError(`expected start, stop, list, pause, resume, set-processor or set-flags, got ${JSON.stringify(sub ?? '')}`);
    }
  },
};

export default command;
