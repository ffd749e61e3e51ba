/** Every workflow of the platform: the worker's workflowsPath. */
export * from './alerting/alert.js';
export * from './alerting/alert-group.js';
export * from './ingest/pipeline.js';
export * from './ingest/partition-consumer.js';
export * from './analytics/aggregator.js';
