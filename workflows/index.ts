/** Every workflow of the platform: the worker's workflowsPath. */
export * from './alerting/alert.js';
export * from './alerting/alert-group.js';
export * from './ingest/pipeline.js';
export * from './ingest/partition-consumer.js';
export * from './analytics/aggregator.js';
// Only the workflow functions: the rollout's update/query constants share wire names with others.
export { canaryRollout } from './rollouts/canary-rollout.js';
export { rolloutLock } from './rollouts/rollout-lock.js';
export { replay } from './ingest/replay.js';
