/**
 * The platform's Prometheus metrics (prom-client), in one registry per worker process. Names
 * follow the Prometheus naming guide (https://prometheus.io/docs/practices/naming/): the
 * `streamwarden_` prefix, base units in the name (`_seconds`, `_events`), `_total` on counters.
 * The Temporal SDK's own metrics (task latencies, poll counts, slots) are served separately by
 * its Rust core on the address given to `Runtime.install` (see workers/observability/).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Buckets for batch landing and job durations, seconds (50 ms .. 5 min). */
const durationBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Buckets for batch sizes, events (1 .. 50 000). */
const sizeBuckets = [1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 50000];
/** Buckets for freshness, seconds (10 ms .. 1 day): late replays must still fall in a bucket. */
const freshnessBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];

/** Every metric the platform exports, created on one registry. */
export interface PlatformMetrics {
  registry: Registry;
  /** `streamwarden_events_landed_total{pipeline,topic}`: valid events inserted into `events`. */
  eventsLanded: Counter<'pipeline' | 'topic'>;
  /** `streamwarden_events_rejected_total{pipeline,topic,reason}`: dead letters by `reason_code`. */
  eventsRejected: Counter<'pipeline' | 'topic' | 'reason'>;
  /** `streamwarden_batches_total{pipeline,topic,outcome}`: landing attempts by outcome (`success`, `failure`). */
  batches: Counter<'pipeline' | 'topic' | 'outcome'>;
  /** `streamwarden_batch_landing_duration_seconds{pipeline,topic,outcome}`: wall time of one landing attempt. */
  batchLandingDuration: Histogram<'pipeline' | 'topic' | 'outcome'>;
  /** `streamwarden_batch_size_events{pipeline,topic}`: offsets per landed batch. */
  batchSize: Histogram<'pipeline' | 'topic'>;
  /** `streamwarden_consumer_lag_events{pipeline,topic,partition}`: high watermark minus the next offset to land, at the last plan. */
  consumerLag: Gauge<'pipeline' | 'topic' | 'partition'>;
  /** `streamwarden_event_age_at_landing_seconds{pipeline,topic}`: landing time minus the event's own `time` (freshness, producer clock). */
  eventAgeAtLanding: Histogram<'pipeline' | 'topic'>;
  /** `streamwarden_kafka_to_queryable_seconds{pipeline,topic}`: Kafka record timestamp to the insert being acknowledged (queryable). */
  kafkaToQueryable: Histogram<'pipeline' | 'topic'>;
  /** `streamwarden_rollup_duration_seconds{outcome}`: one computeRollups run. */
  rollupDuration: Histogram<'outcome'>;
  /** `streamwarden_detector_duration_seconds{outcome}`: one detector (detectThresholds) run. */
  detectorDuration: Histogram<'outcome'>;
  /** `streamwarden_alerts_total{event,severity}`: incidents `fired`, `acknowledged`, `resolved` (from the audit trail written). */
  alerts: Counter<'event' | 'severity'>;
  /** `streamwarden_notifications_total{channel,outcome}`: delivery attempts by channel type and `delivered` / `failed` / `duplicate`. */
  notifications: Counter<'channel' | 'outcome'>;
  /** `streamwarden_activity_duration_seconds{activity,outcome}`: every activity execution. */
  activityDuration: Histogram<'activity' | 'outcome'>;
  /** `streamwarden_openlineage_events_total{outcome}`: OpenLineage events `sent`, `failed`, `dropped` (queue full). */
  lineageEvents: Counter<'outcome'>;
}

/** Options of {@link createPlatformMetrics}. */
export interface PlatformMetricsOptions {
  /** Also export Node process metrics (`process_*`, `nodejs_*`). @default true */
  processMetrics?: boolean;
  /** Labels added to every series, e.g. `{ worker: hostname }`. @default {} */
  defaultLabels?: Record<string, string>;
}

/** Creates the metrics on a fresh registry. Call once per process (or per test). */
export function createPlatformMetrics(options: PlatformMetricsOptions = {}): PlatformMetrics {
  const registry = new Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    eventsLanded: new Counter({ name: 'streamwarden_events_landed_total', help: 'Valid events inserted into the events table.', labelNames: ['pipeline', 'topic'], registers }),
    eventsRejected: new Counter({ name: 'streamwarden_events_rejected_total', help: 'Events written to dead_letters, by reason_code.', labelNames: ['pipeline', 'topic', 'reason'], registers }),
    batches: new Counter({ name: 'streamwarden_batches_total', help: 'Batch landing attempts by outcome.', labelNames: ['pipeline', 'topic', 'outcome'], registers }),
    batchLandingDuration: new Histogram({ name: 'streamwarden_batch_landing_duration_seconds', help: 'Wall time of one batch landing attempt.', labelNames: ['pipeline', 'topic', 'outcome'], buckets: durationBuckets, registers }),
    batchSize: new Histogram({ name: 'streamwarden_batch_size_events', help: 'Offsets per landed batch.', labelNames: ['pipeline', 'topic'], buckets: sizeBuckets, registers }),
    consumerLag: new Gauge({ name: 'streamwarden_consumer_lag_events', help: 'High watermark minus the next offset to land, at the last plan.', labelNames: ['pipeline', 'topic', 'partition'], registers }),
    eventAgeAtLanding: new Histogram({ name: 'streamwarden_event_age_at_landing_seconds', help: 'Landing time minus the event time (freshness by producer clock).', labelNames: ['pipeline', 'topic'], buckets: freshnessBuckets, registers }),
    kafkaToQueryable: new Histogram({ name: 'streamwarden_kafka_to_queryable_seconds', help: 'Kafka record timestamp to the ClickHouse insert being acknowledged.', labelNames: ['pipeline', 'topic'], buckets: freshnessBuckets, registers }),
    rollupDuration: new Histogram({ name: 'streamwarden_rollup_duration_seconds', help: 'Duration of one rollup run.', labelNames: ['outcome'], buckets: durationBuckets, registers }),
    detectorDuration: new Histogram({ name: 'streamwarden_detector_duration_seconds', help: 'Duration of one detector run.', labelNames: ['outcome'], buckets: durationBuckets, registers }),
    alerts: new Counter({ name: 'streamwarden_alerts_total', help: 'Alert incidents fired, acknowledged and resolved.', labelNames: ['event', 'severity'], registers }),
    notifications: new Counter({ name: 'streamwarden_notifications_total', help: 'Notification delivery attempts by channel type and outcome.', labelNames: ['channel', 'outcome'], registers }),
    activityDuration: new Histogram({ name: 'streamwarden_activity_duration_seconds', help: 'Duration of every activity execution.', labelNames: ['activity', 'outcome'], buckets: durationBuckets, registers }),
    lineageEvents: new Counter({ name: 'streamwarden_openlineage_events_total', help: 'OpenLineage events by outcome (sent, failed, dropped).', labelNames: ['outcome'], registers }),
  };
}

/** Parses ClickHouse DateTime64 text in UTC (`2026-01-01 12:00:00.000`) to epoch ms; NaN when unparsable. */
export function clickHouseTimeMs(text: string): number {
  return Date.parse(`${text.replace(' ', 'T')}Z`);
}
