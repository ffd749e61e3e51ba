/**
 * A worker started while ClickHouse, Kafka and Temporal are down (issue 7, point 7) waits for them with
 * capped backoff instead of exiting, logs one `dependency down` line per dependency when it starts
 * waiting and one `dependency up` line (with how long it was down) when it answers, then serves
 * workflows: same PID throughout. Runs on a ClickHouse endpoint, a Kafka broker and a Temporal dev
 * server this test starts itself on free ports (never the shared ones).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { clickhouseServerMain } from '../../infra/local/clickhouse/component.js';
import { ensureKafkaJars, kafkaComponent, libsDir } from '../../infra/local/kafka.js';
import { portOpen } from '../../infra/local/process.js';
import { temporalBinary, temporalComponent } from '../../infra/local/temporal.js';
import { freePort } from '../support/observability.js';
import { testConfig, uniqueId } from '../support/stack.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const config = testConfig();
const id = uniqueId('t');
const children: ChildProcess[] = [];
const dirs: string[] = [];

interface LogLine {
  msg: string;
  dependency?: string;
  downForMs?: number;
  failedProbes?: number;
  at: number;
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

afterAll(async () => {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          r(null);
        }, 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          r(null);
        });
      });
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('a worker started while its dependencies are down', () => {
  it('waits, logs one line per state change, and serves once they are up (same PID)', { timeout: 240_000 }, async () => {
    await temporalComponent.install(config, () => undefined);
    await ensureKafkaJars(config, () => undefined);
    const [chPort, temporalPort, uiPort, ackPort, kafkaPort, controllerPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const taskQueue = `recovery-${id}`;
    const lines: LogLine[] = [];
    const other: string[] = [];
    const worker = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
      cwd: root,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
        KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
        CLICKHOUSE_URL: `http://127.0.0.1:${chPort}`,
        CLICKHOUSE_DATABASE: id,
        TEMPORAL_TASK_QUEUE: taskQueue,
        LOG_LEVEL: 'info',
        LOCAL_ACK_PORT: String(ackPort),
        METRICS_PORT: '0',
        TEMPORAL_METRICS_PORT: '0',
        KAFKAJS_NO_PARTITIONER_WARNING: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(worker);
    let buffered = '';
    const collect = (chunk: Buffer): void => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const text of parts) {
        try {
          const parsed = JSON.parse(text) as Record<string, unknown>;
          lines.push({ ...(parsed as unknown as LogLine), at: Date.now() });
        } catch {
          other.push(text);
        }
      }
    };
    worker.stdout.on('data', collect);
    worker.stderr.on('data', collect);
    const pid = worker.pid;
    const find = (msg: string, dependency?: string) => lines.filter((l) => l.msg === msg && (dependency === undefined || l.dependency === dependency));

    const deps = ['clickhouse', 'kafka', 'temporal'];
    await waitFor('a down line for each dependency', () => (deps.every((d) => find('dependency down; waiting for it', d).length > 0) ? true : undefined));
    // Several probes fail meanwhile (backoff 250 ms doubling to 2 s): still one line each.
    await new Promise((r) => setTimeout(r, 4000));
    expect(worker.exitCode).toBeNull();

    const chDir = mkdtempSync(join(tmpdir(), 'sw-recovery-ch-'));
    dirs.push(chDir);
    children.push(spawn(process.execPath, ['--import', 'tsx', clickhouseServerMain, '--host', '127.0.0.1', '--port', String(chPort), '--path', chDir], { cwd: root, stdio: 'ignore' }));
    const chOpen = await waitFor('clickhouse port', async () => ((await portOpen('127.0.0.1', chPort, 300)) ? Date.now() : undefined));
    const chUp = await waitFor('clickhouse up line', () => find('dependency up', 'clickhouse')[0]);

    // Kafka: the pinned jars (shared, cached) with this test's own state folder, ports and data.
    const kafkaState = mkdtempSync(join(tmpdir(), 'sw-recovery-kafka-'));
    dirs.push(kafkaState);
    const kafkaConfig = { ...config, PLATFORM_STATE_DIR: kafkaState, LOCAL_KAFKA_PORT: kafkaPort, LOCAL_KAFKA_CONTROLLER_PORT: controllerPort, KAFKA_BROKERS: undefined };
    mkdirSync(join(kafkaState, 'kafka'), { recursive: true });
    symlinkSync(libsDir(config), libsDir(kafkaConfig));
    children.push(await kafkaComponent.start(kafkaConfig, () => undefined));
    const kafkaOpen = await waitFor('kafka port', async () => ((await portOpen('127.0.0.1', kafkaPort, 300)) ? Date.now() : undefined), 120_000);
    const kafkaUp = await waitFor('kafka up line', () => find('dependency up', 'kafka')[0], 120_000);

    const temporalEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TEMPORAL_')));
    children.push(
      spawn(temporalBinary(config), ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(temporalPort), '--ui-port', String(uiPort), '--headless', '--log-level', 'warn'], {
        env: temporalEnv,
        stdio: 'ignore',
      }),
    );
    const temporalOpen = await waitFor('temporal port', async () => ((await portOpen('127.0.0.1', temporalPort, 300)) ? Date.now() : undefined));
    const temporalUp = await waitFor('temporal up line', () => find('dependency up', 'temporal')[0]);
    await waitFor('worker polling', () => find('worker polling')[0]);

    // It serves: a replay with a bad input is refused by the workflow code this worker runs.
    const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
    try {
      const client = new Client({ connection });
      const err = await client.workflow.execute('replay', { taskQueue, workflowId: 'replay-x-y-0', args: [{ pipelineId: 'x' }] }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause?.message).toMatch(/^replay input: topic: expected a string, got nothing/);
    } finally {
      await connection.close();
    }

    expect(worker.exitCode).toBeNull();
    expect(worker.pid).toBe(pid);
    for (const dependency of deps) {
      expect(find('dependency down; waiting for it', dependency), dependency).toHaveLength(1);
      expect(find('dependency up', dependency), dependency).toHaveLength(1);
    }
    expect(chUp.failedProbes).toBeGreaterThan(3);
    // Recovery figures for the note: from the port answering to the worker noticing (backoff capped at 2 s).
    console.log(`recovery: clickhouse up line ${chUp.at - chOpen} ms after its port opened (down ${chUp.downForMs} ms, ${chUp.failedProbes} failed probes); kafka ${kafkaUp.at - kafkaOpen} ms (down ${kafkaUp.downForMs} ms, ${kafkaUp.failedProbes} failed probes); temporal ${temporalUp.at - temporalOpen} ms (down ${temporalUp.downForMs} ms, ${temporalUp.failedProbes} failed probes)`);
    expect(chUp.at - chOpen).toBeLessThan(15_000);
  });
});
