/**
 * Starting a pipeline that is already running: `npm start` joins a run on its own task queue, and
 * refuses, naming both task queues and the way out, a run on another one. Before, it joined a
 * pipeline left running by an earlier session with another TEMPORAL_TASK_QUEUE, which no worker
 * served, and the screen said the demo was running while nothing landed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectTemporal } from '../../workers/connections.js';
import { PipelineTaskQueueError, startPipeline } from '../../workers/pipelines.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const id = uniqueId('startp');
const client = await connectTemporal(testConfig(), stackEndpoints());

afterAll(async () => {
  await client.workflow.getHandle(`pipeline-${id}`).terminate('test cleanup').catch(() => undefined);
  await client.connection.close();
});

describe('startPipeline with a pipeline already running', () => {
  it('joins a run on its own task queue and refuses one on another, naming it', async () => {
    const input = { pipelineId: id, topic: `topic-${id}` };
    const first = await startPipeline(client, `queue-a-${id}`, input);
    expect(first.started).toBe(true);

    const again = await startPipeline(client, `queue-a-${id}`, input);
    expect(again).toMatchObject({ started: false, workflowId: `pipeline-${id}` });

    const elsewhere = await startPipeline(client, `queue-b-${id}`, input).catch((e: unknown) => e);
    expect(elsewhere).toBeInstanceOf(PipelineTaskQueueError);
    expect(elsewhere).toMatchObject({ runningOn: `queue-a-${id}` });
    expect((elsewhere as Error).message).toContain(`already running on task queue queue-a-${id}`);
    expect((elsewhere as Error).message).toContain(`TEMPORAL_TASK_QUEUE=queue-b-${id}`);
    expect((elsewhere as Error).message).toContain(`pipeline stop --id ${id}`);
  });
});
