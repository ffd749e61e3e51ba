/**
 * The shape of the in-code contract catalogue: subjects, their immutable versions and the
 * migrations that upcast one version to the next for landing. Pure; importable from workflows.
 */
import type { z } from 'zod';
import type { CompatibilityMode } from '../compat/check.js';
import { PlatformError } from '../errors.js';

/** A migration from one version's parsed data to the next version's input. */
export type Upcast = (previous: unknown) => unknown;

/** One version of a subject. Immutable once registered: change it by adding a version. */
export interface ContractVersion {
  /** 1, 2, ... without gaps. */
  readonly version: number;
  /** The zod schema of the event's `data` at this version. */
  readonly schema: z.ZodType;
  /**
   * Declared migration from the previous version's parsed data to this version's input. Present:
   * events written with the previous version are upcast through it when they land.
   */
  readonly upcast?: Upcast;
  /** What changed in this version, for people. */
  readonly notes?: string;
}

/** A subject: one kind of event, with every version of its contract. */
export interface SubjectDefinition {
  /** Name carried by the envelope's `subject` field (lowercase, dashes). */
  readonly subject: string;
  /** One sentence for people. */
  readonly description: string;
  /**
   * The compatibility mode the registry gives the subject when it first registers it.
   * @default "BACKWARD"
   */
  readonly compatibility?: CompatibilityMode;
  /** Every version, ascending. */
  readonly versions: readonly ContractVersion[];
}

/** Thrown when a catalogue entry is malformed (programming error, caught by the unit tests). */
export class ContractDefinitionError extends PlatformError {
  constructor(message: string) {
    super('contract_definition_invalid', message, false);
    this.name = 'ContractDefinitionError';
  }
}

const subjectName = /^[a-z][a-z0-9-]{0,99}$/;

/** Checks a subject definition (name, versions 1..n without gaps, no upcast into v1) and returns it. */
export function defineSubject(definition: SubjectDefinition): SubjectDefinition {
  if (!subjectName.test(definition.subject)) {
    throw new ContractDefinitionError(`subject: expected a lowercase name like request-telemetry, got ${JSON.stringify(definition.subject)}`);
  }
  definition.versions.forEach((v, i) => {
    if (v.version !== i + 1) {
      throw new ContractDefinitionError(`${definition.subject}: expected version ${i + 1} at position ${i}, found ${v.version}`);
    }
  });
  if (definition.versions.length === 0) throw new ContractDefinitionError(`${definition.subject}: expected at least one version`);
  if (definition.versions[0]!.upcast) throw new ContractDefinitionError(`${definition.subject}: version 1 cannot declare an upcast`);
  return definition;
}

/**
 * Types a migration between two schemas and erases it to {@link Upcast} for the catalogue, so the
 * function body is checked against both versions' types.
 */
export function migration<From extends z.ZodType, To extends z.ZodType>(
  _from: From,
  _to: To,
  fn: (previous: z.output<From>) => z.input<To>,
): Upcast {
  return fn as Upcast;
}
