/**
 * Compatibility modes (Confluent Schema Registry's model) and the checker that applies them to a
 * contract's JSON Schema, listing every breaking change with its field path and a human sentence.
 *
 * | mode                | the new version must...                                            |
 * |---------------------|--------------------------------------------------------------------|
 * | BACKWARD            | read data written with the previous version (upgrade readers first) |
 * | BACKWARD_TRANSITIVE | read data written with every previous version                       |
 * | FORWARD             | write data the previous version can read (upgrade writers first)    |
 * | FORWARD_TRANSITIVE  | write data every previous version can read                          |
 * | FULL                | both BACKWARD and FORWARD with the previous version                 |
 * | FULL_TRANSITIVE     | both, with every previous version                                   |
 * | NONE                | nothing is checked                                                  |
 *
 * The structural rules (what a writer produces, what a reader accepts) are documented in
 * `subset.ts`. Pure code.
 */
import { z } from 'zod';
import { compareShapes, type Finding } from './subset.js';
import { toShape, type JsonSchema } from './shape.js';

/** The compatibility modes, as in Confluent Schema Registry. */
export const compatibilityModes = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
] as const;

/** A compatibility mode; see the table in this module's header. */
export const CompatibilityMode = z.enum(compatibilityModes);
/** A compatibility mode; see the table in this module's header. */
export type CompatibilityMode = z.infer<typeof CompatibilityMode>;

/** The mode a subject gets until someone sets another. */
export const defaultCompatibilityMode: CompatibilityMode = 'BACKWARD';

/** Which way a check runs: new readers on old data (`backward`) or old readers on new data (`forward`). */
export type Direction = 'backward' | 'forward';

/**
 * What changed between versions, phrased old -> new. Pairs flip with the direction: a key the
 * reader requires and the writer lacks is `required_field_added` for BACKWARD (the new reader
 * requires it) and `required_field_removed` for FORWARD (the new writer dropped it).
 */
export type ChangeCode =
  | 'required_field_added'
  | 'required_field_removed'
  | 'optional_to_required'
  | 'required_to_optional'
  | 'field_removed_from_closed_object'
  | 'field_added_to_closed_object'
  | 'object_closed'
  | 'object_opened'
  | 'type_changed'
  | 'type_narrowed'
  | 'type_widened'
  | 'number_to_int'
  | 'int_to_number'
  | 'enum_value_removed'
  | 'enum_value_added'
  | 'nullable_removed'
  | 'nullable_added'
  | 'union_member_removed'
  | 'union_member_added'
  | 'string_format_changed'
  | 'constraint_narrowed'
  | 'constraint_widened'
  | 'unsupported_construct';

/** One breaking change: where, what, which mode it breaks and why, in one sentence. */
export interface BreakingChange {
  /** Field path from the contract root, e.g. `data.status`, `data.items[].sku`. */
  readonly path: string;
  /** Machine-readable change class. */
  readonly change: ChangeCode;
  /** The subject's mode that refuses the change. */
  readonly mode: CompatibilityMode;
  /** Which check failed. */
  readonly direction: Direction;
  /** The registered version the candidate was compared with. */
  readonly against: number;
  /** The candidate version. */
  readonly version: number;
  /** A sentence for people: what changed and which readers or writers it breaks. */
  readonly why: string;
}

/** The verdict of {@link checkCompatibility}. */
export interface CompatibilityResult {
  /** True when no breaking change was found. */
  readonly compatible: boolean;
  /** The mode that was applied. */
  readonly mode: CompatibilityMode;
  /** Versions the candidate was compared with, ascending. */
  readonly checkedAgainst: readonly number[];
  /** Every breaking change, in version then path order. */
  readonly changes: readonly BreakingChange[];
}

/** A registered (or candidate) version of a subject as JSON Schema. */
export interface VersionedSchema {
  /** Version number (1, 2, ...). */
  readonly version: number;
  /** The version's input JSON Schema (`z.toJSONSchema(schema, { io: 'input' })`). */
  readonly schema: JsonSchema;
}

/** Options for {@link checkCompatibility} and {@link compareVersions}. */
export interface CheckOptions {
  /**
   * Prefix for every reported path, so that paths read like the envelope (`data.status`).
   * @default "data"
   */
  readonly root?: string;
}

/**
 * Checks a candidate version against a subject's earlier versions under `mode`. Non-transitive
 * modes compare with the latest earlier version only; transitive ones with all of them. An empty
 * history is always compatible.
 */
export function checkCompatibility(
  candidate: VersionedSchema,
  previous: readonly VersionedSchema[],
  mode: CompatibilityMode,
  options: CheckOptions = {},
): CompatibilityResult {
  const earlier = [...previous].filter((p) => p.version !== candidate.version).sort((a, b) => a.version - b.version);
  if (mode === 'NONE' || earlier.length === 0) {
    return { compatible: true, mode, checkedAgainst: [], changes: [] };
  }
  const against = mode.endsWith('_TRANSITIVE') ? earlier : [earlier[earlier.length - 1]!];
  const directions: Direction[] = mode.startsWith('BACKWARD')
    ? ['backward']
    : mode.startsWith('FORWARD')
      ? ['forward']
      : ['backward', 'forward'];
  const changes: BreakingChange[] = [];
  for (const old of against) {
    for (const direction of directions) {
      changes.push(...compareVersions(old, candidate, direction, mode, options));
    }
  }
  return { compatible: changes.length === 0, mode, checkedAgainst: against.map((a) => a.version), changes };
}

/**
 * Compares two versions in one direction and phrases every finding as an old -> new change.
 * `backward`: readers on `next` reading data written with `old`; `forward`: the reverse.
 */
export function compareVersions(
  old: VersionedSchema,
  next: VersionedSchema,
  direction: Direction,
  mode: CompatibilityMode,
  options: CheckOptions = {},
): BreakingChange[] {
  const root = options.root ?? 'data';
  const oldShape = toShape(old.schema);
  const newShape = toShape(next.schema);
  const findings =
    direction === 'backward' ? compareShapes(oldShape, newShape, root) : compareShapes(newShape, oldShape, root);
  return findings.map((f) => phrase(f, direction, mode, old.version, next.version));
}

const codes: Record<Finding['kind'], [backward: ChangeCode, forward: ChangeCode]> = {
  missing_required: ['required_field_added', 'required_field_removed'],
  may_be_absent: ['optional_to_required', 'required_to_optional'],
  unexpected_field: ['field_removed_from_closed_object', 'field_added_to_closed_object'],
  additional_rejected: ['object_closed', 'object_opened'],
  type_mismatch: ['type_changed', 'type_changed'],
  int_required: ['number_to_int', 'int_to_number'],
  value_not_accepted: ['enum_value_removed', 'enum_value_added'],
  null_not_accepted: ['nullable_removed', 'nullable_added'],
  member_not_accepted: ['union_member_removed', 'union_member_added'],
  narrowed_to_literals: ['type_narrowed', 'type_widened'],
  any_narrowed: ['type_narrowed', 'type_widened'],
  format_mismatch: ['string_format_changed', 'string_format_changed'],
  constraint: ['constraint_narrowed', 'constraint_widened'],
  unsupported: ['unsupported_construct', 'unsupported_construct'],
};

function phrase(f: Finding, direction: Direction, mode: CompatibilityMode, oldV: number, newV: number): BreakingChange {
  const change = codes[f.kind][direction === 'backward' ? 0 : 1];
  const o = `v${oldV}`;
  const n = `v${newV}`;
  // Who breaks: BACKWARD = consumers upgraded to the new version reading old events;
  // FORWARD = consumers still on the old version reading events from upgraded producers.
  const victims =
    direction === 'backward'
      ? `readers on ${n} reject events written with ${o}`
      : `readers still on ${o} reject events written with ${n}`;
  const p = f.path;
  let why: string;
  switch (change) {
    case 'required_field_added':
      if (f.detail.startsWith('at least ')) {
        why = `${p} requires ${f.detail.replace('writers may send', 'the other version allows')}: ${victims} that are shorter`;
        break;
      }
      why = `${p} is required in ${n} (${f.detail}) but does not exist in ${o} and has no default: ${victims}, which never carry it`;
      break;
    case 'required_field_removed':
      if (f.detail.startsWith('at least ')) {
        why = `${p} requires ${f.detail.replace('writers may send', 'the other version allows')}: ${victims} that are shorter`;
        break;
      }
      why = `${p} is required in ${o} but ${n} no longer declares it: ${victims} because they lack it`;
      break;
    case 'optional_to_required':
      why = `${p} was ${f.writerDefault ? 'optional (it had a default)' : 'optional'} in ${o} and is required without a default in ${n}: ${victims} that omit it`;
      break;
    case 'required_to_optional':
      why = `${p} is required in ${o} but ${f.writerDefault ? 'has a default' : 'optional'} in ${n}, so producers on ${n} may omit it: ${victims} that omit it`;
      break;
    case 'field_removed_from_closed_object':
      if (f.detail.includes('tuple')) {
        why = `${p}: ${o}'s tuple allows this element and ${n}'s does not: ${victims} that have it`;
        break;
      }
      why = `${p} exists in ${o} but not in ${n}, whose object refuses unknown keys: ${victims} that carry it`;
      break;
    case 'field_added_to_closed_object':
      if (f.detail.includes('tuple')) {
        why = `${p}: ${n}'s tuple allows this element and ${o}'s does not: ${victims} that have it`;
        break;
      }
      why = `${p} is new in ${n} but the object in ${o} refuses unknown keys: ${victims} that carry it`;
      break;
    case 'object_closed':
      why = `${p}: ${o} allowed extra keys (${f.detail}) and ${n} refuses them: ${victims} with extra keys`;
      break;
    case 'object_opened':
      why = `${p}: ${n} allows extra keys (${f.detail}) that ${o} refuses: ${victims} with extra keys`;
      break;
    case 'type_changed':
      why = `${p} changed type (${o} -> ${n}: ${direction === 'backward' ? f.detail : reverse(f.detail, false)}): ${victims}`;
      break;
    case 'type_narrowed':
      why = `${p} was narrowed (${f.detail}): ${victims} whose value is outside the new type`;
      break;
    case 'type_widened':
      why = `${p} was widened (${f.detail}): ${victims} whose value is outside the old type`;
      break;
    case 'number_to_int':
      why = `${p} was a number in ${o} and is an integer in ${n}: ${victims} with a fractional value`;
      break;
    case 'int_to_number':
      why = `${p} was an integer in ${o} and is a number in ${n}: ${victims} with a fractional value`;
      break;
    case 'enum_value_removed':
      why = `${p} no longer accepts ${f.detail} in ${n}: ${victims} with that value`;
      break;
    case 'enum_value_added':
      why = `${p} accepts ${f.detail} in ${n} but not in ${o}: ${victims} with that value`;
      break;
    case 'nullable_removed':
      why = `${p} was nullable in ${o} and is not in ${n}: ${victims} where it is null`;
      break;
    case 'nullable_added':
      why = `${p} is nullable in ${n} but not in ${o}: ${victims} where it is null`;
      break;
    case 'union_member_removed':
      why = `${p}: the union in ${n} has no member for ${f.detail}, which ${o} allowed: ${victims} of that form`;
      break;
    case 'union_member_added':
      why = `${p}: ${n} allows ${f.detail}, which ${o} has no member for: ${victims} of that form`;
      break;
    case 'string_format_changed':
      why = `${p} string format changed (${direction === 'backward' ? f.detail : reverse(f.detail, false)}): ${victims} whose value does not match the reader's format`;
      break;
    case 'constraint_narrowed':
      why = `${p} constraint tightened (${f.detail}): ${victims} outside the new bounds`;
      break;
    case 'constraint_widened':
      why = `${p} constraint loosened (${reverse(f.detail, true)}): ${victims} outside the old bounds`;
      break;
    case 'unsupported_construct':
      why = `${p} uses a schema construct the checker cannot compare (${f.detail}) and differs between ${o} and ${n}; make it identical or use mode NONE`;
      break;
  }
  return { path: p, change, mode, direction, against: oldV, version: newV, why };
}

/** Turns `a -> b` (writer -> reader, i.e. new -> old in forward checks) into `b -> a`. */
function reverse(detail: string, labelled: boolean): string {
  const i = detail.lastIndexOf(' -> ');
  if (i < 0) return detail;
  const head = detail.slice(0, i);
  const label = labelled ? head.match(/^(\w+) /)?.[1] : undefined;
  const from = label ? head.slice(label.length + 1) : head;
  const to = detail.slice(i + 4);
  return label ? `${label} ${to} -> ${from}` : `${to} -> ${from}`;
}

/** Renders a refusal for people: one line per change. */
export function formatChanges(changes: readonly BreakingChange[]): string {
  return changes.map((c) => `  ${c.path}: ${c.change} [${c.mode}, vs v${c.against}]\n    ${c.why}`).join('\n');
}
