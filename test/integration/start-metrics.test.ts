/**
 * `npm start` is observed like `npm run worker`: the real start process (workers/start.ts, with
 * `--no-stream`) serves the platform's /metrics on METRICS_PORT and the Temporal SDK's on
 * TEMPORAL_METRICS_PORT, and says where on its screen. Before, only `npm run worker` served them
 * (a new user found nothing listening on 9464/9465 while `npm start` ran).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { pipelineWorkflowId } from '../../schemas/ingest/pipeline.js';
import { connectTemporal } from '../../workers/connections.js';
import { freePort } from '../support/observability.js';
import { stackEndpoints, testConfig, uniqueId } from '../support/stack.js';

const repoDir = fileURLToPath(new URL('../..', import.meta.url));
const id = uniqueId('startm');
let child: ChildProcess | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGINT');
    await new Promise((resolve) => child!.once('exit', resolve));
  }
});

/** Resolves with the first stdout line matching `pattern` (bounded). */
function lineMatching(proc: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; screen so far:\n${text}`)), timeoutMs);
    proc.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = pattern.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
  });
}

describe('npm start serves metrics', () => {
  it('platform /metrics and the Temporal SDK metrics answer while it runs', { timeout: 240_000 }, async () => {
    const [metricsPort, sdkPort, ackPort] = [await freePort(), await freePort(), await freePort()];
    child = spawn(process.execPath, ['--import', 'tsx', 'workers/start.ts', '--no-stream'], {
      cwd: repoDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CLICKHOUSE_DATABASE: id,
        TEMPORAL_TASK_QUEUE: `start-metrics-${id}`,
        METRICS_PORT: String(metricsPort),
        TEMPORAL_METRICS_PORT: String(sdkPort),
        LOCAL_ACK_PORT: String(ackPort),
        LOG_LEVEL: 'warn',
      },
    });
    const match = await lineMatching(child, /metrics: (http:\/\/\S+), Temporal SDK metrics: (http:\/\/\S+)/, 180_000);
    expect(match[1]).toBe(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(match[2]).toBe(`http://127.0.0.1:${sdkPort}/metrics`);
    const platform = await (await fetch(match[1]!)).text();
    expect(platform).toMatch(/^# HELP streamwarden_/m);
    // The SDK's exporter fills in once the worker polls: wait for its first series.
    let sdk = '';
    for (let i = 0; i < 60 && !/temporal_/.test(sdk); i++) {
      sdk = await fetch(match[2]!).then((r) => r.text(), () => '');
      if (!/temporal_/.test(sdk)) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    expect(sdk).toMatch(/temporal_/);
    // Leave nothing running: stop the demo pipeline it started (its worker confirms the children's cancel).
    const temporal = await connectTemporal(testConfig(), stackEndpoints());
    try {
      // Bounded: on a developer's stack a `pipeline-demo` of an earlier run may sit on another
      // task queue with no worker, and its cancel would never finish.
      const handle = temporal.workflow.getHandle(pipelineWorkflowId('demo'));
      await handle.cancel().catch(() => undefined);
      await Promise.race([handle.result().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 30_000))]);
    } finally {
      await temporal.connection.close();
    }
  });
});
