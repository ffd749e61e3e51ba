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
 * Thrown by {@link startPipeline} with `ifRunning: 'keep'` when the running pipeline is on another
 * task queue: joining it would leave it unserved by this worker (an earlier run with another
 * `TEMPORAL_TASK_QUEUE`), so it waits forever while the caller believes it is running.
 */
export class PipelineTaskQueueError extends PlatformError {
  constructor(
    message: string,
    /** The running pipeline's task queue. */
    readonly runningOn: string,
  ) {
    super('invalid_input', message, false);
    this.name = 'PipelineTaskQueueError';
  }
}

/**
 * Starts the `pipeline` workflow `pipeline-<id>` on `taskQueue`. With `ifRunning: 'keep'` (the
 * default) a running one on the same task queue is left as is and returned; with `'fail'` a running
 * one is an error (`WorkflowExecutionAlreadyStartedError`).
 *
 * @throws PipelineInputError when the input is invalid (names each field).
 * @throws PipelineTaskQueueError with `keep`, when the running one is on another task queue.
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
      const handle = client.workflow.getHandle(workflowId);
      const running = await handle.describe();
      if (running.taskQueue !== taskQueue) {
        throw new PipelineTaskQueueError(
          `${workflowId} is already running on task queue ${running.taskQueue}, which this worker does not serve (TEMPORAL_TASK_QUEUE=${taskQueue}); ` +
            `stop it with TEMPORAL_TASK_QUEUE=${running.taskQueue} npm run -s platform -- pipeline stop --id ${parsed.data.pipelineId}, or run with TEMPORAL_TASK_QUEUE=${running.taskQueue}`,
          running.taskQueue,
        );
      }
      return { workflowId, started: false, handle };
    }
    throw err;
  }
}
