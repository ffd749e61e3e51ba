/**
 * The hook the landing code calls as rows move through it, so freshness can be measured per
 * event without the landing code knowing about metrics. {@link metricsLandingObserver} is the
 * implementation the worker uses.
 */
import { clickHouseTimeMs, type PlatformMetrics } from './metrics.js';

/** Which batch rows belong to. */
export interface LandingScope {
  pipelineId: string;
  topic: string;
}

/** Told about rows of a landing; must be fast and must not throw. */
export interface LandingObserver {
  /** Valid rows built (validated) at `atMs`; `event_time` is ClickHouse DateTime64 text, UTC. */
  validated(scope: LandingScope, events: readonly { event_time: string }[], atMs: number): void;
  /** Rows whose insert was acknowledged at `atMs` (queryable); `kafka_timestamp` as above. */
  queryable(scope: LandingScope, events: readonly { kafka_timestamp: string }[], atMs: number): void;
}

/**
 * Observes `streamwarden_event_age_at_landing_seconds` (landing time minus event time) and
 * `streamwarden_kafka_to_queryable_seconds` (insert acknowledged minus Kafka timestamp), one
 * observation per event. Negative ages (producer clocks ahead) are clamped to 0.
 */
export function metricsLandingObserver(metrics: PlatformMetrics): LandingObserver {
  return {
    validated(scope, events, atMs) {
      if (events.length === 0) return;
      const h = metrics.eventAgeAtLanding.labels(scope.pipelineId, scope.topic);
      for (const e of events) {
        const t = clickHouseTimeMs(e.event_time);
        if (Number.isFinite(t)) h.observe(Math.max(0, atMs - t) / 1000);
      }
    },
    queryable(scope, events, atMs) {
      if (events.length === 0) return;
      const h = metrics.kafkaToQueryable.labels(scope.pipelineId, scope.topic);
      for (const e of events) {
        const t = clickHouseTimeMs(e.kafka_timestamp);
        if (Number.isFinite(t)) h.observe(Math.max(0, atMs - t) / 1000);
      }
    },
  };
}
