/**
 * Outages of a RUNNING worker's dependencies (ClickHouse, Kafka, Temporal), logged as ONE line
 * when each starts and ONE when it ends, instead of a line (or a multi-line client dump) per
 * retried operation (issue 7, point 7).
 *
 * - An outage starts at the first operation that fails because the dependency is unreachable
 *   ({@link classifyOutage}): `dependency outage started` (warn) with the dependency and the
 *   first failure's one-line reason.
 * - While it lasts, every further failed operation for it is only counted, and the dependency is
 *   probed every `probeEveryMs` (a real request: ClickHouse `/ping`, a Kafka metadata request, a
 *   Temporal `GetSystemInfo`).
 * - It ends at the first successful probe: `dependency outage ended` (info) with `outageMs` (first
 *   failure to successful probe) and `retriedOperations` (failed operations counted during it,
 *   including the first).
 *
 * This follows Alertmanager's firing/resolved pair rather than a log line per evaluation.
 */
import type { Logger } from '../../activities/logger.js';
import { shortReason } from '../dependencies.js';

/** The servers a worker depends on. */
export type Dependency = 'clickhouse' | 'kafka' | 'temporal';

/** The addresses of the worker's dependencies, to tell whose address a connection error names. */
export interface DependencyTargets {
  /** e.g. `http://127.0.0.1:8123` */
  clickhouseUrl: string;
  /** `host:port` of each bootstrap broker */
  kafkaBrokers: readonly string[];
  /** `host:port` */
  temporalAddress: string;
}

/** Options of {@link OutageTracker}. */
export interface OutageTrackerOptions {
  log: Logger;
  /** Health probe of each dependency: resolves when it answers, rejects otherwise. Without one, an outage of that dependency ends at {@link OutageTracker.succeeded}. */
  probes?: Partial<Record<Dependency, () => Promise<void>>>;
  /** Interval between probes during an outage, ms. @default 500 */
  probeEveryMs?: number;
}

/** Called when an outage of `dependency` starts, `since` its first failure (epoch ms); see {@link OutageTracker.onStarted}. */
export type OutageStartedListener = (dependency: Dependency, since: number) => void;

interface Outage {
  since: number;
  retried: number;
  timer: NodeJS.Timeout | null;
}

/** One start line and one end line per outage of each dependency; see the module comment. */
export class OutageTracker {
  private readonly outages = new Map<Dependency, Outage>();
  private readonly probeEveryMs: number;
  private readonly startedListeners = new Set<OutageStartedListener>();
  private closed = false;

  constructor(private readonly options: OutageTrackerOptions) {
    this.options = { ...options };
    this.probeEveryMs = options.probeEveryMs ?? 500;
  }

  /** Sets (or replaces) the health probes, e.g. once the clients exist. */
  setProbes(probes: Partial<Record<Dependency, () => Promise<void>>>): void {
    this.options.probes = { ...this.options.probes, ...probes };
  }

  /**
   * Calls `listener` each time an outage starts (after its start line), synchronously, with the
   * dependency and the time of its first failure (epoch ms); a listener that throws is logged
   * (warn) and kept. Used by the worker to replace its Temporal Workers after a Temporal outage
   * (workers/task-queue-workers.ts). Returns a function that removes the listener.
   */
  onStarted(listener: OutageStartedListener): () => void {
    this.startedListeners.add(listener);
    return () => {
      this.startedListeners.delete(listener);
    };
  }

  /** True while an outage of `dependency` is open. */
  inOutage(dependency: Dependency): boolean {
    return this.outages.has(dependency);
  }

  /** Records one operation that failed because `dependency` is unreachable; opens an outage (one log line) if none is open. */
  failed(dependency: Dependency, reason: unknown): void {
    const open = this.outages.get(dependency);
    if (open) {
      open.retried += 1;
      return;
    }
    if (this.closed) return;
    const outage: Outage = { since: Date.now(), retried: 1, timer: null };
    this.outages.set(dependency, outage);
    this.options.log.warn('dependency outage started', { dependency, reason: shortReason(reason), probeEveryMs: this.options.probes?.[dependency] ? this.probeEveryMs : null });
    this.scheduleProbe(dependency, outage);
    for (const listener of this.startedListeners) {
      try {
        listener(dependency, outage.since);
      } catch (err) {
        this.options.log.warn('outage listener failed', { dependency, reason: shortReason(err) });
      }
    }
  }

  /**
   * Records a sign of an outage that is not itself a failed operation (a client library's own log
   * line about a connection error; the operation's failure is counted where it surfaces): opens
   * an outage if none is open, counts nothing.
   */
  noticed(dependency: Dependency, reason: unknown): void {
    if (!this.outages.has(dependency)) {
      this.failed(dependency, reason);
      this.outages.get(dependency)!.retried = 0;
    }
  }

  /** Records an operation on `dependency` that succeeded; ends its outage when it has no probe (with a probe, the probe decides). */
  succeeded(dependency: Dependency): void {
    if (!this.options.probes?.[dependency]) this.end(dependency);
  }

  /** Stops probing; open outages are left unlogged (the worker is stopping). */
  close(): void {
    this.closed = true;
    this.startedListeners.clear();
    for (const outage of this.outages.values()) if (outage.timer) clearTimeout(outage.timer);
    this.outages.clear();
  }

  private end(dependency: Dependency): void {
    const outage = this.outages.get(dependency);
    if (!outage) return;
    if (outage.timer) clearTimeout(outage.timer);
    this.outages.delete(dependency);
    this.options.log.info('dependency outage ended', { dependency, outageMs: Date.now() - outage.since, retriedOperations: outage.retried });
  }

  private scheduleProbe(dependency: Dependency, outage: Outage): void {
    const probe = this.options.probes?.[dependency];
    if (!probe || this.closed) return;
    outage.timer = setTimeout(() => {
      outage.timer = null;
      probe().then(
        () => {
          if (this.outages.get(dependency) === outage) this.end(dependency);
        },
        () => {
          if (this.outages.get(dependency) === outage) this.scheduleProbe(dependency, outage);
        },
      );
    }, this.probeEveryMs);
    outage.timer.unref();
  }
}

/** Node's socket error codes that mean the peer cannot be reached (or dropped the connection). */
const unreachableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);
/** KafkaJS error names that mean the brokers cannot be reached. */
const kafkaUnreachableNames = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSBrokerNotFound', 'KafkaJSRequestTimeoutError', 'KafkaJSLockTimeout', 'KafkaJSGroupCoordinatorNotFound']);
/**
 * KafkaJS protocol error types of a group coordinator that is not serving yet (Kafka error codes
 * 14-16): what a broker answers group requests (offset commits) with while it starts again after
 * an outage, until its `__consumer_offsets` partitions are loaded.
 */
const kafkaCoordinatorStarting = new Set(['GROUP_LOAD_IN_PROGRESS', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR_FOR_GROUP']);
/** gRPC status UNAVAILABLE (14) and DEADLINE_EXCEEDED (4): Temporal's frontend cannot be reached. */
const grpcUnreachable = new Set([14, 4]);

/**
 * True when a KafkaJS log line is about the brokers being unreachable (a connection error, a
 * request timeout, retries exhausted on either, a consumer crash caused by one, a group
 * coordinator not serving yet after a restart): such lines belong to an outage, not to the log
 * one by one. Pass the line's message and its `error` field together.
 */
export function isKafkaConnectionLog(message: string): boolean {
  return /Connection error|Connection timeout|Closed connection|ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|KafkaJSConnection|KafkaJSNumberOfRetriesExceeded|KafkaJSBrokerNotFound|KafkaJSRequestTimeoutError|Request .* timed out|Failed to connect|Failed to find group coordinator|coordinator is loading|coordinator is not available|not the correct coordinator/i.test(message);
}

/** The error and its causes (`cause`, KafkaJS `originalError`, `retriedError`), outermost first, at most 8 deep. */
function chain(err: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let current: unknown = err;
  while (current !== null && typeof current === 'object' && out.length < 8) {
    const e = current as Record<string, unknown>;
    out.push(e);
    current = e.cause ?? e.originalError ?? e.retriedError;
  }
  return out;
}

function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    return url;
  }
}

/**
 * Which dependency an error says is unreachable, or null when it is any other failure (those are
 * logged as before). Walks the error's causes: a KafkaJS connection error (or retries exhausted
 * on one) is `kafka`; a gRPC UNAVAILABLE/DEADLINE_EXCEEDED is `temporal`; a socket error
 * (ECONNREFUSED, ECONNRESET, `socket hang up`, ...) is whichever dependency's `host:port` its
 * message or address names, or `clickhouse` when it names none (the ClickHouse client is the only
 * plain-HTTP client of the data path).
 */
export function classifyOutage(err: unknown, targets: DependencyTargets): Dependency | null {
  const clickhouse = hostPort(targets.clickhouseUrl);
  for (const e of chain(err)) {
    const name = typeof e.name === 'string' ? e.name : '';
    const message = typeof e.message === 'string' ? e.message : '';
    if (kafkaUnreachableNames.has(name)) return 'kafka';
    if (name === 'KafkaJSProtocolError' && typeof e.type === 'string' && kafkaCoordinatorStarting.has(e.type)) return 'kafka';
    if (typeof e.code === 'number' && grpcUnreachable.has(e.code) && (name === 'ServiceError' || 'details' in e || 'metadata' in e)) return 'temporal';
    const code = typeof e.code === 'string' ? e.code : '';
    if (unreachableCodes.has(code) || /socket hang up|ECONNREFUSED|ECONNRESET|other side closed/i.test(message)) {
      const address = typeof e.address === 'string' && typeof e.port === 'number' ? `${e.address}:${e.port}` : '';
      const names = (target: string) => address === target || message.includes(target);
      if (targets.kafkaBrokers.some(names)) return 'kafka';
      if (names(targets.temporalAddress)) return 'temporal';
      if (names(clickhouse)) return 'clickhouse';
      if (name.startsWith('KafkaJS')) return 'kafka';
      return 'clickhouse';
    }
  }
  return null;
}
