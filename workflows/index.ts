/** Every workflow of the platform: the worker's workflowsPath. */
export * from './alert.js';
export * from './alert-group.js';
