/**
 * The worker's observability, started the same way by every entrypoint (`npm run worker` and
 * `npm start`): prom-client metrics served on METRICS_HOST:METRICS_PORT, OpenTelemetry tracing
 * when configured, OpenLineage run events when configured. The Temporal SDK's own metrics are
 * served by the Runtime (see runtime.ts), installed before this.
 */
import type { Logger } from '../../activities/logger.js';
import { createPlatformMetrics } from '../../activities/observability/metrics.js';
import type { StackEndpoints } from '../../infra/local/endpoints.js';
import type { PlatformConfig } from '../../schemas/config.js';
import type { WorkerObservability } from '../worker.js';
import { lineageFromConfig } from './lineage.js';
import { startMetricsServer } from './metrics-server.js';
import { tracingFromConfig } from './tracing.js';

/** What {@link startObservability} started. */
export interface StartedObservability {
  /** To pass to `startWorker({ observability })`. */
  observability: WorkerObservability;
  /** URL of /metrics, or null when METRICS_PORT is 0 or was taken (logged as a warning). */
  metricsUrl: string | null;
  /** Stops the metrics server and flushes traces and lineage. Never throws. */
  close(): Promise<void>;
}

/**
 * Starts metrics, tracing and lineage from the config. A taken METRICS_PORT is a warning, not a
 * failure: a second worker on the same machine runs without its own /metrics.
 */
export async function startObservability(config: PlatformConfig, endpoints: StackEndpoints, processorVersion: string, log: Logger): Promise<StartedObservability> {
  const metrics = createPlatformMetrics();
  const server =
    config.METRICS_PORT === 0
      ? null
      : await startMetricsServer({ registry: metrics.registry, port: config.METRICS_PORT, host: config.METRICS_HOST }).catch((err: unknown) => {
          log.warn('METRICS_PORT cannot be bound: this worker serves no /metrics', { port: config.METRICS_PORT, error: err instanceof Error ? err.message : String(err) });
          return null;
        });
  const tracing = tracingFromConfig(config);
  const lineage = lineageFromConfig(config, endpoints, processorVersion, metrics, log);
  return {
    observability: { metrics, tracing, ...(lineage ? { lineage } : {}) },
    metricsUrl: server?.url ?? null,
    async close() {
      await Promise.allSettled([server?.close(), tracing?.shutdown(), lineage?.close()]);
    },
  };
}
