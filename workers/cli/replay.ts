/**
 * `platform replay`: re-read an offset range of one partition (or only its dead letters) under
 * the current contracts and processor, as the `replay` workflow, and wait for its result.
 *
 *   platform replay --pipeline P --partition N --from A --to B [--topic T] [--only-dead-letters] [--reason R] [--by WHO] [--json '{...}']
 *
 * Exit codes: 0 replayed, 1 refused or failed (one line says why), 2 bad usage.
 */
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import { loadConfig } from '../../schemas/config.js';
import { describeInputError, pipelineWorkflowId, type PipelineProgress } from '../../schemas/ingest/pipeline.js';
import { replayInputSchema, replayWorkflowId, type ReplayResult } from '../../schemas/ingest/replay.js';
import type { ProcessorStatus } from '../../workflows/ingest/processor-control.js';
import { connectTemporal } from '../connections.js';
import { resolveEndpoints } from '../endpoints.js';
import { parseCommandLine, UsageError, type Command, type CommandSpec } from './command.js';

const usage = [
  'Usage: platform replay --pipeline P --partition N --from A --to B [--topic T] [--only-dead-letters] [--reason R] [--by WHO] [--json JSON]',
  '',
  'Re-reads offsets [A, B) of partition N (B at most the pipeline\'s committed offset) under the',
  'current contracts and processor, and lands what now passes exactly once under a new replay',
  'generation; offsets already landed are never inserted again. Marks the dead letters it resolved',
  '(dead_letter_resolutions, view open_dead_letters) and records the replay in lineage_replays.',
  'Runs the `replay` workflow (id replay-P-T-N, one at a time per partition) and waits for it.',
  '  --topic T              the pipeline\'s topic (default: asked from the running pipeline-P)',
  '  --only-dead-letters    re-read only the range\'s open dead letters',
  '  --reason R             why (recorded in lineage)',
  '  --by WHO               who (recorded in lineage; default: your OS user name)',
  '  --json JSON            further replay input fields, e.g. \'{"maxEventBytes": 2097152, "duplicateIdWindowMinutes": 60}\'',
  '  -h, --help             this text',
].join('\n');

/** The command line of `platform replay` (also checked against every README example). */
export const replaySpec: CommandSpec = {
  options: {
    pipeline: { type: 'string' },
    topic: { type: 'string' },
    partition: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    'only-dead-letters': { type: 'boolean' },
    reason: { type: 'string' },
    by: { type: 'string' },
    json: { type: 'string' },
  },
};

function offsetOption(name: string, value: unknown): number {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw new UsageError(`--${name}: expected a non-negative integer, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
  return Number(value);
}

/** What the running pipeline says about its topic and processor (null fields when it is not running). */
async function pipelineFacts(client: Client, pipelineId: string): Promise<{ topic: string | null; processor: ProcessorStatus['processor'] }> {
  const handle = client.workflow.getHandle(pipelineWorkflowId(pipelineId));
  try {
    const progress = await handle.query<PipelineProgress>('progress');
    const status = await handle.query<ProcessorStatus>('processor').catch(() => null);
    return { topic: progress.topic, processor: status?.processor ?? null };
  } catch {
    return { topic: null, processor: null };
  }
}

const command: Command = {
  name: 'replay',
  summary: 'replay an offset range (or its dead letters) after a contract or processor fix',
  usage,
  spec: replaySpec,
  async run(args) {
    const { values } = parseCommandLine(replaySpec, args);
    let raw: Record<string, unknown> = {};
    if (typeof values.json === 'string') {
      try {
        raw = JSON.parse(values.json) as Record<string, unknown>;
      } catch (err) {
        throw new UsageError(`--json: expected a JSON object, got ${(err as Error).message}`);
      }
    }
    if (typeof values.pipeline !== 'string') throw new UsageError('--pipeline: expected a pipeline id, got nothing');
    raw.pipelineId = values.pipeline;
    raw.partition = offsetOption('partition', values.partition);
    raw.from = offsetOption('from', values.from);
    raw.to = offsetOption('to', values.to);
    if (values['only-dead-letters'] === true) raw.onlyDeadLetters = true;
    if (typeof values.reason === 'string') raw.reason = values.reason;
    raw.by = typeof values.by === 'string' ? values.by : userInfo().username;
    const config = loadConfig();
    const client = await connectTemporal(config, resolveEndpoints(config));
    try {
      const facts = await pipelineFacts(client, values.pipeline);
      if (typeof values.topic === 'string') raw.topic = values.topic;
      else if (raw.topic === undefined) {
        if (facts.topic === null) throw new UsageError(`--topic: expected the pipeline's topic (${pipelineWorkflowId(values.pipeline)} is not running, so it cannot be asked)`);
        raw.topic = facts.topic;
      }
      if (raw.processor === undefined && facts.processor) raw.processor = facts.processor;
      const parsed = replayInputSchema.safeParse(raw);
      if (!parsed.success) throw new UsageError(describeInputError('replay input', parsed.error, raw));
      const input = parsed.data;
      const workflowId = replayWorkflowId(input.pipelineId, input.topic, input.partition);
      let handle;
      try {
        handle = await client.workflow.start('replay', { taskQueue: config.TEMPORAL_TASK_QUEUE, workflowId, args: [raw] });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          console.error(`${workflowId} is already running (one replay per partition at a time); follow it with: temporal workflow query --workflow-id ${workflowId} --name progress`);
          return 1;
        }
        throw err;
      }
      console.log(`started ${workflowId}; waiting for it`);
      try {
        const r = await handle.result() as ReplayResult;
        console.log(describeReplay(r));
        return 0;
      } catch (err) {
        if (err instanceof WorkflowFailedError) {
          // The innermost cause says why (an activity failure wraps the activity's own error).
          let cause: Error | undefined = err.cause;
          while (cause?.cause instanceof Error) cause = cause.cause;
          console.error(`${workflowId} failed: ${cause?.message ?? err.message}`);
          return 1;
        }
        throw err;
      }
    } finally {
      await client.connection.close();
    }
  },
};

export default command;

/**
 * One line that adds up: of the offsets read, the valid ones are split into landed now and landed
 * before (by the first landing or an earlier replay), and the rest are still rejected (their dead
 * letters stay open; `alreadyLanded` in the result counts both kinds of earlier rows, which is why
 * it is not printed as is).
 */
export function describeReplay(r: Pick<ReplayResult, 'generation' | 'pipelineId' | 'topic' | 'partition' | 'from' | 'to' | 'read' | 'landed' | 'rejected' | 'resolved'>): string {
  const valid = r.read - r.rejected;
  const range = r.from >= r.to ? `no offsets to re-read (no open dead letters in the range)` : `read ${r.read} offset(s) of [${r.from}, ${r.to})`;
  return (
    `replay generation ${r.generation} of ${r.pipelineId} ${r.topic}[${r.partition}]: ${range}: ` +
    `${valid} valid (${r.landed} landed now, ${valid - r.landed} already landed before), ` +
    `${r.rejected} still rejected (dead letters stay open); ${r.resolved} dead letter(s) resolved`
  );
}
