/** The processor version stamped on every row: PROCESSOR_VERSION, else the package version. */
import { readFileSync } from 'node:fs';
import type { PlatformConfig } from '../schemas/config.js';

/** Version from package.json (read once). */
export const packageVersion: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The processor version for `config`. */
export function processorVersion(config: PlatformConfig): string {
  return config.PROCESSOR_VERSION ?? packageVersion;
}
