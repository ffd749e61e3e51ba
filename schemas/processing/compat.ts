/**
 * Compatibility of a new processor version's outputs with the tables the earlier versions created,
 * and the processor fingerprint. A table is shared by every version of its processor, so a new
 * version may add columns (`ALTER TABLE ... ADD COLUMN`) but never drop or retype one. The check
 * reuses the contracts' checker in FORWARD direction (the table, shaped by the old output, must hold
 * every row the new output writes) and then compares the derived column types, which are the
 * ground truth:
 * - every column of the old version must still exist with the same ClickHouse type (`column_retyped`,
 *   `column_removed`), which also refuses a required field that disappears or becomes nullable;
 * - checker findings that cannot hurt the table are let through when the column type is unchanged:
 *   a new enum value (columns are LowCardinality(String)), a widened bound that still fits the
 *   same integer type, a new field (a new column).
 * Pure; importable from workflows.
 */
import { canonicalJson, compareVersions, type BreakingChange, type JsonSchema } from '../compat/index.js';
import { outputColumns, type OutputColumn } from './ddl.js';

/** One refused output change, with the field path. */
export interface OutputChange {
  /** The output name. */
  readonly output: string;
  /** Field path inside the output row, e.g. `error.code`. */
  readonly path: string;
  readonly change: BreakingChange['change'] | 'column_retyped' | 'column_removed';
  /** One sentence for people. */
  readonly why: string;
}

/** One version's outputs as the registry stores them: output name -> output JSON Schema. */
export type OutputSchemas = Readonly<Record<string, JsonSchema>>;

const harmlessWhenTypeKept = new Set<BreakingChange['change']>(['enum_value_added', 'constraint_widened', 'field_added_to_closed_object', 'object_opened', 'string_format_changed']);

function byPath(columns: readonly OutputColumn[]): Map<string, OutputColumn> {
  return new Map(columns.map((c) => [c.path, c]));
}

/**
 * Lists every change of `next` that the tables of `previous` cannot take (empty: compatible).
 * Outputs that `next` drops are fine (their table stays, nothing writes to it); new outputs get new tables.
 */
export function checkOutputCompatibility(previous: { version: number; outputs: OutputSchemas }, next: { version: number; outputs: OutputSchemas }): OutputChange[] {
  const changes: OutputChange[] = [];
  for (const [output, oldSchema] of Object.entries(previous.outputs)) {
    const newSchema = next.outputs[output];
    if (newSchema === undefined) continue;
    const oldCols = byPath(outputColumns(oldSchema));
    const newCols = byPath(outputColumns(newSchema));
    const typeKept = (path: string) => {
      const o = oldCols.get(path);
      const n = newCols.get(path);
      return o === undefined || (n !== undefined && n.ch === o.ch);
    };
    for (const [path, col] of oldCols) {
      const now = newCols.get(path);
      if (now === undefined) {
        changes.push({ output, path, change: 'column_removed', why: `${output}.${path}: column ${col.name} (${col.ch}) exists since v${previous.version} and v${next.version} no longer writes it; columns are never dropped, keep the field (optional if it must)` });
      } else if (now.ch !== col.ch) {
        changes.push({ output, path, change: 'column_retyped', why: `${output}.${path}: column ${col.name} is ${col.ch} and v${next.version} needs ${now.ch}; columns are never retyped, add a field with a new name instead` });
      }
    }
    const findings = compareVersions({ version: previous.version, schema: oldSchema }, { version: next.version, schema: newSchema }, 'forward', 'FORWARD', { root: '' });
    for (const f of findings) {
      const path = f.path.replace(/^\./, '');
      if (harmlessWhenTypeKept.has(f.change) && typeKept(path)) continue;
      // A retyped or removed column is already reported above, with the table's words.
      if (changes.some((c) => c.output === output && c.path === path)) continue;
      if (f.change === 'required_to_optional' && typeKept(path)) continue;
      changes.push({ output, path, change: f.change, why: `${output}.${f.why}` });
    }
  }
  return changes;
}

/** Columns `next` adds to the tables of `previous`, by output. */
export function addedColumns(previous: OutputSchemas, next: OutputSchemas): Record<string, OutputColumn[]> {
  const result: Record<string, OutputColumn[]> = {};
  for (const [output, schema] of Object.entries(next)) {
    const old = previous[output];
    const have = new Set(old === undefined ? [] : outputColumns(old).map((c) => c.name));
    result[output] = outputColumns(schema).filter((c) => !have.has(c.name));
  }
  return result;
}

/** Canonical text of a value, re-exported for fingerprints. */
export { canonicalJson };
