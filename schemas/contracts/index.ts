/**
 * The contracts the platform knows, by subject and version: the working tree's catalogue. The
 * validator looks contracts up here; the schema registry (ClickHouse `schema_registry`) records
 * which of these versions are registered and refuses changes to them. Pure; importable from
 * workflows.
 *
 * Adding a version: write `<subject>/vN.ts`, add it to the subject's `index.ts` (with an `upcast`
 * when events of the previous version should land as the new one), run `platform schemas check`.
 */
import type { ZodType } from 'zod';
import type { SubjectDefinition } from './define.js';
import { deployEvents } from './deploy-events/index.js';
import { requestTelemetry } from './request-telemetry/index.js';

export { defineSubject, migration, type ContractVersion, type SubjectDefinition, type Upcast } from './define.js';

/** Every subject in the working tree. */
export const subjects: readonly SubjectDefinition[] = [requestTelemetry, deployEvents];

/** Builds the subject -> version -> schema map of a catalogue. */
export function contractMap(catalogue: readonly SubjectDefinition[]): Record<string, Record<number, ZodType>> {
  return Object.fromEntries(catalogue.map((s) => [s.subject, Object.fromEntries(s.versions.map((v) => [v.version, v.schema]))]));
}

/** Contract schemas by subject, then by version. */
export const contracts: Record<string, Record<number, ZodType>> = contractMap(subjects);

/** Result of looking a contract up: the schema, or why there is none. */
export type ContractLookup =
  | { found: true; schema: ZodType }
  | { found: false; reason: 'unknown_subject' | 'unknown_version'; knownVersions: number[] };

/** Finds the schema for `subject` at `version`. */
export function lookupContract(subject: string, version: number): ContractLookup {
  const versions = Object.hasOwn(contracts, subject) ? contracts[subject] : undefined;
  if (!versions) return { found: false, reason: 'unknown_subject', knownVersions: [] };
  const schema = Object.hasOwn(versions, version) ? versions[version] : undefined;
  if (!schema) return { found: false, reason: 'unknown_version', knownVersions: Object.keys(versions).map(Number) };
  return { found: true, schema };
}

/** Known subjects (for messages and the CLI). */
export function knownSubjects(): string[] {
  return Object.keys(contracts);
}

/** The definition of `subject` in `catalogue` (default: the working tree's), if any. */
export function findSubject(subject: string, catalogue: readonly SubjectDefinition[] = subjects): SubjectDefinition | undefined {
  return catalogue.find((s) => s.subject === subject);
}

/** Highest version of a subject, or 0 when the subject is unknown. */
export function latestVersion(subject: string, catalogue: readonly SubjectDefinition[] = subjects): number {
  return findSubject(subject, catalogue)?.versions.at(-1)?.version ?? 0;
}
