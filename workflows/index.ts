/** Every workflow of the platform: the worker's workflowsPath. */
export * from './alert.js';
export * from './alert-group.js';
export * from './pipeline.js';
export * from './partition-consumer.js';
