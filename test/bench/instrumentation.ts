/**
 * Everything observable turned on in a bench worker (step (d)): prom-client metrics with the
 * landing observer, JSON logs, tracing through Temporal's interceptors with a BatchSpanProcessor
 * exporting OTLP to a collector that is not there (127.0.0.1:9, refused: the exporter keeps
 * trying and dropping, as with a dead collector), and OpenLineage run events appended to a file.
 */
import { join, resolve } from 'node:path';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createPlatformMetrics } from '../../activities/observability/metrics.js';
import type { StackEndpoints } from '../../infra/local/endpoints.js';
import type { PlatformConfig } from '../../schemas/config.js';
import { lineageFromConfig } from '../../workers/observability/lineage.js';
import { startTracing } from '../../workers/observability/tracing.js';
import { processorVersion } from '../../workers/processor-version.js';
import type { WorkerObservability } from '../../workers/worker.js';

/** Metrics, tracing and lineage for the bench worker. */
export function instrumentation(config: PlatformConfig, endpoints: StackEndpoints): WorkerObservability {
  const metrics = createPlatformMetrics();
  const tracing = startTracing(new BatchSpanProcessor(new OTLPTraceExporter({ url: 'http://127.0.0.1:9/v1/traces', timeoutMillis: 2000 }), { maxQueueSize: 2048 }), 'streamwarden-bench');
  const lineageFile = join(resolve(config.PLATFORM_STATE_DIR), 'bench', `${config.CLICKHOUSE_DATABASE}-openlineage.ndjson`);
  const lineage = lineageFromConfig({ ...config, OPENLINEAGE_FILE: lineageFile }, endpoints, processorVersion(config), metrics, { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined });
  return { metrics, tracing, ...(lineage ? { lineage } : {}) };
}
