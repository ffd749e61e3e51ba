/**
 * The worker's OpenLineage emitter from OPENLINEAGE_URL / OPENLINEAGE_FILE (off when both are
 * unset). Events go to `<OPENLINEAGE_URL>/<OPENLINEAGE_ENDPOINT>` (Marquez: `/api/v1/lineage`) with
 * OPENLINEAGE_API_KEY as bearer token, and/or are appended to OPENLINEAGE_FILE.
 */
import { OpenLineageEmitter } from '../../activities/observability/openlineage.js';
import type { Logger } from '../../activities/logger.js';
import type { PlatformMetrics } from '../../activities/observability/metrics.js';
import type { StackEndpoints } from '../../infra/local/endpoints.js';
import type { PlatformConfig } from '../../schemas/config.js';

/** Producer URI of the platform's events (`producer` and every `_producer`), carrying the processor version. */
export function lineageProducer(processorVersion: string): string {
  return `https://github.com/streamwarden/streamwarden/tree/${encodeURIComponent(processorVersion)}`;
}

/** Builds the emitter, or null when OpenLineage is off. */
export function lineageFromConfig(config: PlatformConfig, endpoints: StackEndpoints, processorVersion: string, metrics: PlatformMetrics | undefined, log: Logger): OpenLineageEmitter | null {
  if (!config.OPENLINEAGE_URL && !config.OPENLINEAGE_FILE) return null;
  // A dead endpoint fails every event: log the first failure and then every 100th, not each one.
  let failures = 0;
  return new OpenLineageEmitter({
    transport: {
      ...(config.OPENLINEAGE_URL ? { url: config.OPENLINEAGE_URL } : {}),
      endpoint: config.OPENLINEAGE_ENDPOINT,
      ...(config.OPENLINEAGE_API_KEY ? { apiKey: config.OPENLINEAGE_API_KEY } : {}),
      ...(config.OPENLINEAGE_FILE ? { file: config.OPENLINEAGE_FILE } : {}),
    },
    location: {
      namespace: config.OPENLINEAGE_NAMESPACE,
      kafkaBrokers: endpoints.kafkaBrokers,
      clickhouseUrl: endpoints.clickhouseUrl,
      database: config.CLICKHOUSE_DATABASE,
      producer: lineageProducer(processorVersion),
    },
    ...(metrics ? { metrics } : {}),
    onError: (message, meta) => {
      if (failures++ % 100 === 0) log.warn(message, { ...meta, failuresSoFar: failures });
    },
  });
}
