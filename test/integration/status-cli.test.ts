/**
 * `platform status` when a pipeline runs but no worker serves its task queue: it says that no
 * pipeline answered and why, not "no running pipelines" next to a note that one is running (the
 * two contradicted each other; walkthrough finding).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { connectTemporal } from '../../workers/connections.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const id = uniqueId('statusp');
const taskQueue = `queue-${id}`;
const client = await connectTemporal(testConfig(), stackEndpoints());

afterAll(async () => {
  await client.workflow.getHandle(`pipeline-${id}`).terminate('test cleanup').catch(() => undefined);
  await client.connection.close();
});

async function status(): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, TEMPORAL_TASK_QUEUE: taskQueue, TEMPORAL_ADDRESS: stackEndpoints().temporalAddress, CLICKHOUSE_URL: stackEndpoints().clickhouseUrl };
  try {
    const { stdout, stderr } = await run('npx', ['tsx', 'workers/platform.ts', 'status'], { cwd: root, env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('platform status', () => {
  it('says a running pipeline did not answer, instead of "no running pipelines"', async () => {
    // A pipeline workflow on a task queue no worker polls.
    await client.workflow.start('pipeline', { taskQueue, workflowId: `pipeline-${id}`, args: [{ pipelineId: id, topic: `topic-${id}` }] });
    const deadline = Date.now() + 30_000;
    let result = await status();
    while (!result.stderr.includes(`pipeline-${id} is running`) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000)); // visibility is eventually consistent
      result = await status();
    }
    expect(result.stderr).toContain(`pipeline-${id} is running but did not answer its progress query`);
    expect(result.stdout).not.toContain('no running pipelines');
    expect(result.stdout).toContain('no pipeline answered (running pipelines need a worker: npm start or npm run worker)');
  });
});
