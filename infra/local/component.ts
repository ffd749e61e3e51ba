/**
 * The contract between the stack orchestrator (stack.ts) and each local server module
 * (temporal.ts, kafka.ts, clickhouse.ts): how to find, probe, install, start and describe it.
 */
import type { ChildProcess } from 'node:child_process';
import type { PlatformConfig } from '../../schemas/config.js';
import type { ComponentName, LogFn } from './process.js';

/** One server of the local stack. */
export interface LocalComponent {
  name: ComponentName;
  /** The main port the server listens on (from config). */
  port(config: PlatformConfig): number;
  /** Other ports it needs free before it starts (e.g. Kafka's controller, Temporal's UI). */
  extraPorts(config: PlatformConfig): number[];
  /** Address shown to people and clients: host:port or a URL. */
  address(config: PlatformConfig): string;
  /** The address from the environment when an external server is configured, else null. */
  external(config: PlatformConfig): string | null;
  /** A string that appears in the command line of our server (a path in our state folder). */
  marker(config: PlatformConfig): string;
  /** One quick health probe: true when the server answers as a healthy instance of its kind. */
  probe(config: PlatformConfig): Promise<boolean>;
  /** Installs what is missing (idempotent, prints progress); cheap when already installed. */
  install(config: PlatformConfig, log: LogFn): Promise<void>;
  /** Starts the server detached (stdio to its log file, PID file written). */
  start(config: PlatformConfig, log: LogFn): Promise<ChildProcess>;
  /** Idempotent set-up once healthy, on a fresh start and on reuse alike. */
  afterReady(config: PlatformConfig, log: LogFn): Promise<void>;
  /** Version of the running server, or of what is installed; null when unknown. */
  version(config: PlatformConfig): Promise<string | null>;
  /** How long a fresh start may take to become healthy. */
  startTimeoutMs: number;
  /** Grace period between SIGTERM and SIGKILL on stop. */
  stopGraceMs: number;
}
