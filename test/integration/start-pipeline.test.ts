/**
 * Starting a pipeline that is already running: `npm start` joins a run on its own task queue, and
 * refuses, naming both task queues and the way out, a run on another one. Before, it joined a
 * pipeline left running by an earlier session with another TEMPORAL_TASK_QUEUE, which no worker
 * served, and the screen said the demo was running while nothing landed.
 */
import { execFile } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { connectTemporal, createKafka } from '../../workers/connections.js';
import { PipelineTaskQueueError, startPipeline } from '../../workers/pipelines.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const id = uniqueId('startp');
const client = await connectTemporal(testConfig(), stackEndpoints());

const cliId = `${id}-cli`;

afterAll(async () => {
  for (const p of [id, cliId]) await client.workflow.getHandle(`pipeline-${p}`).terminate('test cleanup').catch(() => undefined);
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

/** Runs `platform pipeline ARGS` against the test stack. */
function pipelineCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'workers/platform.ts', 'pipeline', ...args],
      { env: { ...process.env, TEMPORAL_TASK_QUEUE: `queue-cli-${id}` }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('platform pipeline start --partitions on an existing topic', () => {
  it('says the topic keeps its partitions instead of ignoring the option silently', async () => {
    const topic = `topic-${cliId}`;
    const admin = createKafka(testConfig(), stackEndpoints(), '-test').admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const run = await pipelineCli(['start', '--id', cliId, '--topic', topic, '--partitions', '5']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`started pipeline-${cliId}`);
    expect(run.stderr).toContain(`topic ${topic} already exists with 2 partitions; --partitions 5 applies only to a topic the platform creates`);
  });
});
