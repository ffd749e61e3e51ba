/**
 * The processors the platform knows, by name and version: the working tree's catalogue (like
 * `schemas/contracts/`). `platform processors check` compares it with `processor_registry` and
 * with `versions.lock.json`; published versions are immutable.
 *
 * Adding a version: write `<name>/vN.ts` with `defineProcessor`, add it below, run
 * `platform processors check`, then `platform processors lock`. Pure; importable from workflows.
 */
import { defineCatalogue, type ProcessorDefinition, type ProcessorFamily } from '../processing/define.js';
import { requestEnrichedV1, requestEnrichedV2, requestEnrichedV3 } from './request-enriched/index.js';

export { requestEnrichedV1, requestEnrichedV2, requestEnrichedV3 };

/** Every processor version in the working tree (v3 is a demo of a bad version: see its file). */
export const processorVersions: readonly ProcessorDefinition[] = [requestEnrichedV1, requestEnrichedV2, requestEnrichedV3];

/** The catalogue grouped by name (versions 1..n checked). */
export const processors: readonly ProcessorFamily[] = defineCatalogue(processorVersions);

/** Result of {@link lookupProcessor}: the version, or why there is none. */
export type ProcessorLookup =
  | { readonly found: true; readonly processor: ProcessorDefinition }
  | { readonly found: false; readonly message: string };

/** Finds `name` at `version` in `catalogue` (default: the working tree's). */
export function lookupProcessor(name: string, version: number, catalogue: readonly ProcessorFamily[] = processors): ProcessorLookup {
  const family = catalogue.find((f) => f.name === name);
  if (!family) return { found: false, message: `no processor named ${JSON.stringify(name)}; known: ${catalogue.map((f) => f.name).join(', ') || 'none'}` };
  const processor = family.versions.find((v) => v.version === version);
  if (!processor) return { found: false, message: `processor ${name} has versions ${family.versions.map((v) => v.version).join(', ')}, not ${version}` };
  return { found: true, processor };
}
