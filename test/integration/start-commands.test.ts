/**
 * The commands `npm start` prints under "Try:" work as pasted into a new shell: each one is run with
 * `bash -c` from `/`, with an environment holding only PATH and HOME (no $USER, none of the
 * platform variables, so this run's non-default ClickHouse port, state folder, database and task
 * queue must travel in the command itself), against a real worker, a real pipeline and a real
 * alert incident on the shared stack.
 */
import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireAlert } from '../../activities/alerting/alert-firing.js';
import { stateDir } from '../../infra/local/process.js';
import { alertingConfigSchema } from '../../schemas/alerting/alert-policy.js';
import { channelTargetsSchema } from '../../schemas/alerting/receivers.js';
import { pipelineWorkflowId, type PipelineProgress } from '../../schemas/ingest/pipeline.js';
import { createKafka, createWarehouse } from '../../workers/connections.js';
import { produceEvents } from '../../workers/generator.js';
import { startPipeline } from '../../workers/pipelines.js';
import { tryCommands, type TryCommands } from '../../workers/start-commands.js';
import { startWorker, type RunningWorker } from '../../workers/worker.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const repoDir = fileURLToPath(new URL('../..', import.meta.url));
const id = uniqueId('cmd');
const taskQueue = `start-commands-${id}`;
// What `npm start` would have been started with: this run's variables plus its own database and queue.
const env = { ...process.env, CLICKHOUSE_DATABASE: id, TEMPORAL_TASK_QUEUE: taskQueue, LOG_LEVEL: 'warn' };
const config = { ...testConfig(), CLICKHOUSE_DATABASE: id, TEMPORAL_TASK_QUEUE: taskQueue, LOG_LEVEL: 'warn' as const };
const pipelineId = `cmd-${id.slice(4).replace(/_/g, '-')}`;
const topic = `start-commands-${id}`;

let worker: RunningWorker;
let client: Client;
let alertId = '';
let commands: TryCommands;

/**
 * Runs a printed line the way a person pastes it: a new shell, in `/`, with a bare environment.
 * Asynchronous: the worker under test runs in this process and must keep answering meanwhile.
 */
function paste(line: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const bare = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', line], { cwd: '/', env: bare, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  const endpoints = stackEndpoints();
  const policy = alertingConfigSchema.parse({
    version: 1,
    receivers: { ops: { targets: ['log:ops'] } },
    policies: { critical: { levels: [{ receivers: [], delay: '0s' }, { receivers: ['ops'], delay: '1h' }], repeatInterval: '1h' } },
    route: { receiver: 'ops', policy: 'critical', groupBy: [], groupWait: '0s', groupInterval: '1m', repeatInterval: '1h' },
  });
  worker = await startWorker({
    config,
    endpoints,
    taskQueue,
    alerting: { policy, targets: channelTargetsSchema.parse({ 'log:ops': { type: 'log' } }), secrets: {}, signingSecret: 'start-commands-secret-0123456789', publicUrl: 'http://127.0.0.1:1', missingSecrets: 'disable' },
  });
  client = worker.temporal;
  const kafka = createKafka(config, endpoints, `-${id}`);
  // Some malformed records, so the printed dead-letter query has something to show.
  await produceEvents(kafka, { topic, partitions: 1, count: 40, rate: 1000, invalid: 0.1, malformed: 0.2, seed: 3 });
  const { handle } = await startPipeline(client, taskQueue, { pipelineId, topic, partitions: 1, startFrom: 'earliest', pollIntervalMs: 200, rollup: { intervalMs: 300 }, detector: { enabled: false } });
  const until = Date.now() + 120_000;
  for (;;) {
    const progress = await handle.query<PipelineProgress>('progress').catch(() => undefined);
    if (progress?.totals.rejected) break;
    if (Date.now() > until) throw new Error('the pipeline did not land the test records in time');
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  ({ workflowId: alertId } = await fireAlert(client, taskQueue, {
    detector: `start_commands_${id}`,
    labels: { pipeline: pipelineId },
    severity: 'critical',
    summary: 'error rate high (start-commands test)',
    value: 0.2,
    threshold: 0.05,
    windowStart: '2026-11-27T06:00:00Z',
    windowEnd: '2026-11-27T06:01:00Z',
    pipeline: pipelineId,
    firedAt: '2026-11-27T06:01:00.000Z',
  }));
  const temporalBin = join(stateDir(config), 'bin', 'temporal');
  commands = tryCommands({
    repoDir,
    env,
    config,
    endpoints,
    temporalCli: existsSync(temporalBin) ? temporalBin : '/work/main/.state/bin/temporal',
    pipelineWorkflowId: pipelineWorkflowId(pipelineId),
    pipelineId,
    alertWorkflowId: alertId,
  });
}, 300_000);

afterAll(async () => {
  for (const wid of [alertId, pipelineWorkflowId(pipelineId), `pipeline-${pipelineId}-${topic}-0`]) {
    if (wid) await client?.workflow.getHandle(wid).terminate('test over').catch(() => undefined);
  }
  await worker?.shutdown();
  const admin = createWarehouse(config, stackEndpoints(), 'default');
  await admin.command({ query: 'DROP DATABASE IF EXISTS {db:Identifier}', query_params: { db: id } });
  await admin.close();
});

describe('npm start: the printed commands work as pasted in a new shell', () => {
  it('carry no shell variables and this run\'s non-default settings', () => {
    for (const line of [commands.progress, commands.deadLetters, commands.ack, commands.ackWithTemporal]) expect(line).not.toMatch(/\$[A-Za-z{]/);
    expect(commands.ack).toContain(`CLICKHOUSE_DATABASE=${id}`);
    expect(commands.ack).toContain(`npm --prefix ${repoDir}`);
    if (process.env.LOCAL_CLICKHOUSE_PORT) expect(commands.ack).toContain(`LOCAL_CLICKHOUSE_PORT=${process.env.LOCAL_CLICKHOUSE_PORT}`);
  });

  it('the progress query answers with the pipeline\'s per-partition numbers', async () => {
    const run = await paste(commands.progress);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`"pipelineId":"${pipelineId}"`);
    expect(run.stdout).toMatch(/"partitionProgress":\[\{"batches":\d+,"cursor":40,"lag":0,"landed":\d+,"partition":0,"paused":false,"rejected":\d+\}\]/);
  });

  it('the curl line shows this pipeline\'s dead letters by reason from this run\'s ClickHouse', async () => {
    const run = await paste(commands.deadLetters);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/reason_code/);
    expect(run.stdout).toMatch(/malformed_json|schema_violation|invalid/);
  });

  it('the platform ack line acknowledges the incident as the OS user, with $USER unset', async () => {
    const run = await paste(commands.ack);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const state = await client.workflow.getHandle(alertId).query<{ status: string; acknowledgedBy?: string }>('state');
    expect(state).toMatchObject({ status: 'acknowledged', acknowledgedBy: userInfo().username });
  });

  it('the Temporal CLI ack line reaches the same incident', async () => {
    const run = await paste(commands.ackWithTemporal);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('acknowledged');
  });
});
