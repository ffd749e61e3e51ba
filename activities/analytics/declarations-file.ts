/**
 * The worker's start-up loader of the analytics declarations (infra/analytics/pipelines.json by
 * default, `ANALYTICS_FILE` to override): a file that cannot be read or does not validate stops
 * the worker with a message naming the file and every bad field.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { analyticsFileSchema, type AnalyticsFile } from '../../schemas/analytics/declarations.js';
import { describeInputError } from '../../schemas/ingest/pipeline.js';
import { PlatformError } from '../../schemas/errors.js';

/** The repo's declarations file. */
export const defaultAnalyticsPath = fileURLToPath(new URL('../../infra/analytics/pipelines.json', import.meta.url));

/** A declarations file that cannot be used; the message names the file and the fields. */
export class AnalyticsConfigError extends PlatformError {
  constructor(message: string) {
    super('analytics_config', message, false);
    this.name = 'AnalyticsConfigError';
  }
}

/** Reads and validates the declarations. @throws AnalyticsConfigError naming the file and field. */
export async function loadAnalyticsFile(path: string = defaultAnalyticsPath): Promise<AnalyticsFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new AnalyticsConfigError(`${path}: expected a readable JSON file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = analyticsFileSchema.safeParse(raw);
  if (!parsed.success) throw new AnalyticsConfigError(describeInputError(path, parsed.error, raw));
  return parsed.data;
}
