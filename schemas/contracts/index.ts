/**
 * The contracts the platform knows, by subject and version. This module is the one lookup the
 * validator uses: the schema registry replaces or extends this map without touching callers.
 * Pure; importable from workflows.
 */
import type { ZodType } from 'zod';
import { requestTelemetrySubject, requestTelemetryV1 } from './request-telemetry/v1.js';

/** Contract schemas by subject, then by version. */
export const contracts: Record<string, Record<number, ZodType>> = {
  [requestTelemetrySubject]: { 1: requestTelemetryV1 },
};

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
