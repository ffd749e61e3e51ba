/**
 * A Kafka broker of a test's own: the pinned jars (shared, cached) with its own state folder and
 * free ports, so a test may corrupt its segment files or stop and restart it without touching the
 * shared stack's broker. Stop it with `stop()` (SIGTERM, then SIGKILL after 10 s).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureKafkaJars, kafkaComponent, libsDir, logDir } from '../../infra/local/kafka.js';
import { portOpen } from '../../infra/local/process.js';
import type { PlatformConfig } from '../../schemas/config.js';
import { freePort } from './observability.js';

/** A running private broker. */
export interface PrivateKafka {
  /** `127.0.0.1:<port>`. */
  broker: string;
  /** Its `log.dirs`: `<logDir>/<topic>-<partition>/<base offset>.log` are the segments. */
  logDir: string;
  /** Starts the broker again on the same ports and data (after {@link PrivateKafka.kill} or stop). */
  restart(): Promise<void>;
  /** SIGKILLs the broker (a crash: the next start recovers the log, checking batch CRCs). */
  kill(): void;
  /** Stops the broker cleanly (SIGTERM, its data kept), so the next start does not recover the log. */
  halt(): Promise<void>;
  /** Stops it and removes its state folder. */
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** Options of {@link startPrivateKafka}. */
export interface PrivateKafkaOptions {
  /** A cluster id to format with, as if kept from an earlier state folder. @default a new one */
  clusterId?: string;
}

/** Starts a private single-node KRaft broker and waits until consumer groups can join on it. */
export async function startPrivateKafka(config: PlatformConfig, options: PrivateKafkaOptions = {}): Promise<PrivateKafka> {
  await ensureKafkaJars(config, () => undefined);
  const [port, controllerPort] = [await freePort(), await freePort()];
  const state = mkdtempSync(join(tmpdir(), 'sw-private-kafka-'));
  const own: PlatformConfig = { ...config, PLATFORM_STATE_DIR: state, LOCAL_KAFKA_PORT: port, LOCAL_KAFKA_CONTROLLER_PORT: controllerPort, KAFKA_BROKERS: undefined };
  mkdirSync(join(state, 'kafka'), { recursive: true });
  symlinkSync(libsDir(config), libsDir(own));
  if (options.clusterId !== undefined) writeFileSync(join(state, 'kafka', 'cluster-id'), `${options.clusterId}\n`);
  let child: ChildProcess;
  const start = async (): Promise<void> => {
    child = await kafkaComponent.start(own, () => undefined);
    const until = Date.now() + 120_000;
    while (!(await portOpen('127.0.0.1', port, 300))) {
      if (Date.now() > until) throw new Error(`private Kafka broker did not open 127.0.0.1:${port} in 120 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await kafkaComponent.afterReady(own, () => undefined);
  };
  await start();
  return {
    broker: `127.0.0.1:${port}`,
    logDir: logDir(own),
    restart: start,
    kill: () => child.kill('SIGKILL'),
    halt: () => stopChild(child, 'SIGTERM'),
    async stop() {
      await stopChild(child, 'SIGTERM');
      rmSync(state, { recursive: true, force: true });
    },
  };
}
