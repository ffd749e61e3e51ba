/**
 * Starting pipelines from code (`npm start`, the CLI, tests): validates the input with the same
 * schema the workflow uses, so mistakes are reported before anything is started, and treats an
 * already running pipeline as success when asked to.
 */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { describeInputError, pipelineInputSchema, pipelineWorkflowId, type PipelineInputRaw } from '../schemas/ingest/pipeline.js';
import { PlatformError } from '../schemas/errors.js';

/** Thrown when a pipeline input is invalid (message names each field). */
export class PipelineInputError extends PlatformError {
  constructor(message: string) {
    super('invalid_input', message, false);
    this.name = 'PipelineInputError';
  }
}

/** Result of {@link startPipeline}. */
export interface StartedPipeline {
  workflowId: string;
  /** False when it was already running and `ifRunning` is `keep`. */
  started: boolean;
  handle: WorkflowHandle;
}

/**
 * Starts the `pipeline` workflow `pipeline-<id>` on `taskQueue`. With `ifRunning: 'keep'` (the
 * default) a running one is left as is and returned; with `'fail'` that is an error.
 */
export async function startPipeline(
  client: Client,
  taskQueue: string,
  input: PipelineInputRaw,
  options: { ifRunning?: 'keep' | 'fail' } = {},
): Promise<StartedPipeline> {
  const parsed = pipelineInputSchema.safeParse(input);
  if (!parsed.success) throw new PipelineInputError(describeInputError('pipeline input', parsed.error, input));
  const workflowId = pipelineWorkflowId(parsed.data.pipelineId);
  try {
    const handle = await client.workflow.start('pipeline', { taskQueue, workflowId, args: [input] });
    return { workflowId, started: true, handle };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError && (options.ifRunning ?? 'keep') === 'keep') {
      return { workflowId, started: false, handle: client.workflow.getHandle(workflowId) };
    }
    throw err;
  }
}
