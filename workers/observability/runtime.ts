/**
 * Temporal's Runtime (installed once per process, before any connection): its log lines, the Rust
 * core's included (forwarded, WARN and above unless LOG_LEVEL=debug), go to the platform's JSON logger, and its own metrics (workflow/activity task latencies, schedule-to-
 * start, slots, polls, sticky cache; the Rust core's meter) are served by its Prometheus exporter
 * on TEMPORAL_METRICS_PORT, with `_total` on counters, units in names and seconds for durations
 * so they follow the same naming as the platform's metrics.
 */
import { DefaultLogger, makeTelemetryFilterString, Runtime, type LogLevel, type Logger as SdkLogger } from '@temporalio/worker';
import type { JsonLogger } from '../../activities/observability/json-logger.js';
import type { PlatformConfig } from '../../schemas/config.js';
import { portIsFree } from './metrics-server.js';
import type { OutageTracker } from './outages.js';

const levels: Record<PlatformConfig['LOG_LEVEL'], LogLevel> = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' };

/** What {@link installRuntime} did. */
export interface RuntimeInstallation {
  /** Address the SDK's Prometheus exporter listens on, or null when off or the port was taken. */
  temporalMetricsAddress: string | null;
}

/**
 * Installs the Runtime with the JSON logger (or `sdkLogger` when given) and (when TEMPORAL_METRICS_PORT is not 0 and the
 * port is free) the Prometheus exporter. A taken port is logged as a warning, not a crash: a
 * second worker on the same machine runs without its own SDK metrics endpoint.
 */
export async function installRuntime(config: PlatformConfig, log: JsonLogger, sdkLogger?: SdkLogger, outages?: OutageTracker): Promise<RuntimeInstallation> {
  const sdkLog = log.child('temporal-sdk');
  // `npm start` passes its own (the file log, with ERROR lines also on the screen).
  const logger = sdkLogger ?? new DefaultLogger(levels[config.LOG_LEVEL], (entry) => {
    // The Core SDK's gRPC retries against an unreachable server (one line per retry) belong to a
    // Temporal outage: each is a retried call, counted there (the tracker's probe ends the outage),
    // and none is logged one by one.
    if (outages && isTemporalUnreachableLog(entry.message, entry.meta)) {
      outages.failed('temporal', entry.message);
      return;
    }
    const meta = { ...(entry.meta ?? {}), sdkLevel: entry.level };
    if (entry.level === 'ERROR') sdkLog.error(entry.message, meta);
    else if (entry.level === 'WARN') sdkLog.warn(entry.message, meta);
    else if (entry.level === 'INFO') sdkLog.info(entry.message, meta);
    else sdkLog.debug(entry.message, meta);
  });
  let address: string | null = null;
  if (config.TEMPORAL_METRICS_PORT !== 0) {
    if (await portIsFree(config.METRICS_HOST, config.TEMPORAL_METRICS_PORT)) address = `${config.METRICS_HOST}:${config.TEMPORAL_METRICS_PORT}`;
    else log.warn('TEMPORAL_METRICS_PORT is taken: the Temporal SDK metrics are not served by this worker', { port: config.TEMPORAL_METRICS_PORT });
  }
  Runtime.install({
    logger,
    telemetryOptions: {
      // The Rust core prints its own log lines straight to the console unless they are forwarded:
      // on `npm start` they tore the progress screen ("Task not found when completing", client
      // retry warnings, ANSI colours). Forwarded, they go where the SDK's other lines go, and a
      // worker's outage tracker counts the gRPC retries of a Temporal outage among them.
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: config.LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARN' }) },
      ...(address ? { metrics: { prometheus: { bindAddress: address, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } } } : {}),
    },
  });
  return { temporalMetricsAddress: address };
}

/** True when a Core SDK log line is about Temporal's frontend being unreachable (gRPC UNAVAILABLE, a transport or connect error). */
export function isTemporalUnreachableLog(message: string, meta?: Record<string, unknown>): boolean {
  const text = `${message} ${meta ? JSON.stringify(meta) : ''}`;
  return /Unavailable|tcp connect error|transport error|ConnectionRefused|Connection refused|connection reset|broken pipe/i.test(text);
}
