/**
 * The processing model: stages, processor definitions, the output-schema -> ClickHouse mapping,
 * output compatibility and descriptors. Pure; importable from workflows.
 */
export * from './stage.js';
export * from './run.js';
export * from './ddl.js';
export * from './define.js';
export * from './compat.js';
export * from './describe.js';
