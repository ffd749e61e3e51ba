/**
 * From an output's zod schema to its ClickHouse table: the columns, their types, the DDL, and the
 * conversion of an output value into a row. The mapping works on the schema's output JSON Schema
 * (the same document the processor registry stores and the compatibility checker compares), so a
 * table can be re-derived from the registry without the TypeScript source of an old version.
 *
 * | zod (output)                                | ClickHouse                                   |
 * |---------------------------------------------|----------------------------------------------|
 * | `z.string()`                                | `String`                                     |
 * | `z.enum([...])`, `z.literal("x")`           | `LowCardinality(String)` (1)                 |
 * | `z.iso.datetime()`, `z.date()`              | `DateTime64(3, 'UTC')`                       |
 * | `z.int()` / `.int().min(a).max(b)`          | narrowest of UInt8..UInt64, Int8..Int64 holding [a, b]; unbounded: Int64 |
 * | `z.number()`                                | `Float64`                                    |
 * | `z.boolean()`                               | `Bool`                                       |
 * | `.nullable()`, `.optional()`                | `Nullable(T)` (`LowCardinality(Nullable(String))`) |
 * | `z.array(T)`                                | `Array(T)`; optional arrays land as `[]` (2) |
 * | nested `z.object({...})`                    | flattened: one column per leaf, `parent_child` (3) |
 * | `z.array(z.object({...}))`                  | `Array(Tuple(name T, ...))`                  |
 * | anything else (unions, records, tuples, bigint, any/unknown, maps, sets) | refused with its path |
 *
 * (1) LowCardinality(String) rather than Enum8: adding an enum value in a new processor version
 *     then needs no `MODIFY COLUMN` (which the platform never does), and the storage is the same.
 * (2) ClickHouse has no `Nullable(Array(...))`.
 * (3) Flattening rather than the `JSON` type: every leaf gets a declared type visible in `DESCRIBE`,
 *     a new leaf in a new version is an `ADD COLUMN` like any other field, the compatibility rules
 *     apply per column, and analysts filter and aggregate on plain columns that compress and index
 *     like any other. A nullable or optional parent makes all its leaves Nullable. Two paths that
 *     flatten to the same name are refused.
 *
 * Every table also carries the lineage columns of {@link lineageColumns}. Pure; importable from
 * workflows.
 */
import { z } from 'zod';
import { PlatformError } from '../errors.js';
import type { JsonSchema } from '../compat/index.js';

/** Thrown when an output schema uses a construct the table mapping does not accept. */
export class OutputSchemaError extends PlatformError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('output_schema_unsupported', `${path}: ${message}`, false);
    this.name = 'OutputSchemaError';
  }
}

/** A column type as a small tree, rendered to ClickHouse by {@link renderType}. */
export type ColumnType =
  | { readonly kind: 'scalar'; readonly ch: string; readonly time: boolean; readonly lowCardinality: boolean }
  | { readonly kind: 'nullable'; readonly of: ColumnType }
  | { readonly kind: 'array'; readonly of: ColumnType }
  | { readonly kind: 'tuple'; readonly fields: readonly { readonly name: string; readonly type: ColumnType }[] };

/** One column derived from an output schema. */
export interface OutputColumn {
  /** Column name (flattened path, `_`-joined). */
  readonly name: string;
  /** Field path in the output value, dotted (`error.code`); used in messages. */
  readonly path: string;
  /** Keys from the value's root to the leaf. */
  readonly keys: readonly string[];
  readonly type: ColumnType;
  /** The rendered ClickHouse type. */
  readonly ch: string;
}

/** The lineage columns on every row of every output table, in table order. */
export const lineageColumns: readonly { readonly name: string; readonly ch: string; readonly comment: string }[] = [
  { name: 'pipeline', ch: 'LowCardinality(String)', comment: 'pipeline id' },
  { name: 'batch_id', ch: 'String', comment: 'lineage_batches.batch_id' },
  { name: 'topic', ch: 'LowCardinality(String)', comment: 'source topic' },
  { name: 'partition', ch: 'UInt32', comment: 'source partition' },
  { name: 'offset', ch: 'UInt64', comment: 'source offset' },
  { name: 'subject', ch: 'LowCardinality(String)', comment: 'input contract subject' },
  { name: 'contract_version', ch: 'UInt32', comment: 'input contract version' },
  { name: 'processor', ch: 'LowCardinality(String)', comment: 'processor name' },
  { name: 'processor_version', ch: 'UInt32', comment: 'processor version' },
  { name: 'ingested_at', ch: "DateTime64(3, 'UTC')", comment: 'written at' },
];

const lineageNames = new Set(lineageColumns.map((c) => c.name));

/**
 * The output JSON Schema of a zod schema (draft 2020-12), with `z.date()` written as a date-time
 * string and constructs JSON cannot carry marked `x-unsupported` (so the mapping can name them).
 */
export function outputJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, {
    io: 'output',
    target: 'draft-2020-12',
    unrepresentable: 'any',
    override(ctx) {
      // `_zod.def` is zod 4's documented surface for tools that walk schemas.
      const type = (ctx.zodSchema as unknown as { _zod: { def: { type: string } } })._zod.def.type;
      const json = ctx.jsonSchema as Record<string, unknown>;
      if (type === 'date') {
        json.type = 'string';
        json.format = 'date-time';
      } else if (['bigint', 'symbol', 'map', 'set', 'function', 'custom', 'nan', 'undefined', 'void', 'promise', 'file', 'transform'].includes(type)) {
        json['x-unsupported'] = type;
      }
    },
  }) as JsonSchema;
}

const intTypes: readonly [string, number | bigint, number | bigint][] = [
  ['UInt8', 0, 255],
  ['UInt16', 0, 65_535],
  ['UInt32', 0, 4_294_967_295],
  ['Int8', -128, 127],
  ['Int16', -32_768, 32_767],
  ['Int32', -2_147_483_648, 2_147_483_647],
  ['UInt64', 0, 18_446_744_073_709_551_615n],
  ['Int64', -9_223_372_036_854_775_808n, 9_223_372_036_854_775_807n],
];

/** The narrowest ClickHouse integer type holding [min, max] (UInt before Int, narrow before wide). */
export function narrowestInt(min: number | undefined, max: number | undefined, path: string): string {
  if (min === undefined || max === undefined) return 'Int64';
  for (const [name, lo, hi] of intTypes) if (min >= lo && max <= hi) return name;
  throw new OutputSchemaError(path, `integer range [${min}, ${max}] does not fit Int64 or UInt64`);
}

type Json = Record<string, unknown>;

function kindName(node: Json): string {
  if (typeof node['x-unsupported'] === 'string') return node['x-unsupported'];
  if (Array.isArray(node.anyOf) || Array.isArray(node.oneOf)) return 'union';
  if (Array.isArray(node.type)) return `union (${node.type.join(' | ')})`;
  if (Array.isArray(node.prefixItems)) return 'tuple';
  if (node.type === 'object' && node.properties === undefined) return 'record';
  if (node.type === undefined && node.enum === undefined && node.const === undefined) return 'any/unknown';
  return JSON.stringify(node.type ?? node);
}

/** Splits `anyOf: [X, {type: "null"}]` into X and nullable. */
function unwrapNull(node: Json): { node: Json; nullable: boolean } {
  const members = (node.anyOf ?? node.oneOf) as Json[] | undefined;
  if (Array.isArray(members)) {
    const rest = members.filter((m) => m.type !== 'null');
    if (rest.length === 1 && members.length === 2) return { node: { ...rest[0]! }, nullable: true };
  }
  if (Array.isArray(node.type) && node.type.length === 2 && node.type.includes('null')) {
    return { node: { ...node, type: node.type.find((t) => t !== 'null') }, nullable: true };
  }
  return { node, nullable: false };
}

function scalar(ch: string, extra: Partial<{ time: boolean; lowCardinality: boolean }> = {}): ColumnType {
  return { kind: 'scalar', ch, time: extra.time ?? false, lowCardinality: extra.lowCardinality ?? false };
}

/** Type of a leaf (or array element) node; objects only inside arrays (as tuples). */
function leafType(raw: Json, path: string, defs: Json): ColumnType {
  const { node, nullable } = unwrapNull(resolveRef(raw, defs, path));
  let type: ColumnType;
  if (node['x-unsupported'] !== undefined || node.anyOf !== undefined || node.oneOf !== undefined || node.prefixItems !== undefined || Array.isArray(node.type)) {
    throw new OutputSchemaError(path, `unsupported kind ${kindName(node)}: a typed column needs one concrete type (keep it as a JSON string with z.string() if it must stay free-form)`);
  }
  if (node.const !== undefined || Array.isArray(node.enum)) {
    const values = (node.enum as unknown[] | undefined) ?? [node.const];
    if (!values.every((v) => typeof v === 'string')) throw new OutputSchemaError(path, `unsupported kind enum/literal of ${JSON.stringify(values)}: only string enums and literals map to columns`);
    type = scalar('String', { lowCardinality: true });
  } else if (node.type === 'string') {
    type = node.format === 'date-time' ? scalar("DateTime64(3, 'UTC')", { time: true }) : scalar('String');
  } else if (node.type === 'integer') {
    const min = (node.minimum as number | undefined) ?? (typeof node.exclusiveMinimum === 'number' ? node.exclusiveMinimum + 1 : undefined);
    const max = (node.maximum as number | undefined) ?? (typeof node.exclusiveMaximum === 'number' ? node.exclusiveMaximum - 1 : undefined);
    type = scalar(narrowestInt(min, max, path));
  } else if (node.type === 'number') {
    type = scalar('Float64');
  } else if (node.type === 'boolean') {
    type = scalar('Bool');
  } else if (node.type === 'array') {
    if (node.items === undefined || typeof node.items !== 'object') throw new OutputSchemaError(path, 'unsupported kind array without an item schema');
    if (nullable) throw new OutputSchemaError(path, 'unsupported kind nullable array: ClickHouse has no Nullable(Array); use an optional array (lands as [])');
    return { kind: 'array', of: leafType(node.items as Json, `${path}[]`, defs) };
  } else if (node.type === 'object') {
    if (node.properties === undefined) throw new OutputSchemaError(path, 'unsupported kind record: declare the keys with z.object');
    if (nullable) throw new OutputSchemaError(path, 'unsupported kind nullable object inside an array');
    const props = node.properties as Record<string, Json>;
    const required = new Set((node.required as string[] | undefined) ?? []);
    return {
      kind: 'tuple',
      fields: Object.entries(props).map(([k, v]) => {
        const t = leafType(v, `${path}.${k}`, defs);
        return { name: k, type: required.has(k) ? t : makeNullable(t, `${path}.${k}`) };
      }),
    };
  } else {
    throw new OutputSchemaError(path, `unsupported kind ${kindName(node)}`);
  }
  return nullable ? makeNullable(type, path) : type;
}

function makeNullable(type: ColumnType, path: string): ColumnType {
  if (type.kind === 'nullable' || type.kind === 'array') return type; // arrays: absent lands as []
  if (type.kind === 'tuple') throw new OutputSchemaError(path, 'unsupported kind optional object inside an array');
  return { kind: 'nullable', of: type };
}

function resolveRef(node: Json, defs: Json, path: string): Json {
  if (typeof node.$ref !== 'string') return node;
  const name = node.$ref.replace(/^#\/\$defs\//, '');
  const target = defs[name] as Json | undefined;
  if (!target) throw new OutputSchemaError(path, `unsupported kind recursive or external reference ${node.$ref}`);
  return target;
}

/** Renders a column type as ClickHouse SQL. */
export function renderType(type: ColumnType): string {
  switch (type.kind) {
    case 'scalar':
      return type.lowCardinality ? `LowCardinality(${type.ch})` : type.ch;
    case 'nullable':
      if (type.of.kind === 'scalar' && type.of.lowCardinality) return `LowCardinality(Nullable(${type.of.ch}))`;
      return `Nullable(${renderType(type.of)})`;
    case 'array':
      return `Array(${renderType(type.of)})`;
    case 'tuple':
      return `Tuple(${type.fields.map((f) => `${f.name} ${renderType(f.type)}`).join(', ')})`;
  }
}

const columnName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The columns of an output schema (its top level must be an object), nested objects flattened.
 * Throws {@link OutputSchemaError} naming the path of the first construct it cannot map.
 */
export function outputColumns(schema: z.ZodType | JsonSchema): OutputColumn[] {
  const json = (schema instanceof z.ZodType ? outputJsonSchema(schema) : schema) as Json;
  const defs = (json.$defs ?? {}) as Json;
  const root = resolveRef(json, defs, '(root)');
  if (root.type !== 'object' || root.properties === undefined) throw new OutputSchemaError('(root)', `expected an object schema, got ${kindName(root)}`);
  const columns: OutputColumn[] = [];
  const walk = (node: Json, keys: string[], forceNullable: boolean): void => {
    const props = node.properties as Record<string, Json>;
    const required = new Set((node.required as string[] | undefined) ?? []);
    for (const [key, child] of Object.entries(props)) {
      const path = [...keys, key].join('.');
      if (!columnName.test(key)) throw new OutputSchemaError(path, 'expected a field name of A-Z, a-z, 0-9 or _ (it becomes a column name)');
      const nullable = forceNullable || !required.has(key);
      const { node: inner, nullable: isNull } = unwrapNull(resolveRef(child, defs, path));
      if (inner.type === 'object' && inner.properties !== undefined) {
        walk(inner, [...keys, key], nullable || isNull);
        continue;
      }
      let type = leafType(child, path, defs);
      if (nullable) type = makeNullable(type, path);
      const name = [...keys, key].join('_');
      columns.push({ name, path, keys: [...keys, key], type, ch: renderType(type) });
    }
  };
  walk(root, [], false);
  const seen = new Map<string, string>();
  for (const c of columns) {
    if (lineageNames.has(c.name)) throw new OutputSchemaError(c.path, `column name ${c.name} is a lineage column; rename the field`);
    const other = seen.get(c.name);
    if (other !== undefined) throw new OutputSchemaError(c.path, `flattens to column ${c.name}, like ${other}; rename one of them`);
    seen.set(c.name, c.path);
  }
  return columns;
}

/** ClickHouse DateTime64 text in UTC for a Date, ISO string or epoch ms. */
function chTime(value: unknown): unknown {
  if (value instanceof Date || typeof value === 'string' || typeof value === 'number') {
    const d = new Date(value);
    if (!Number.isNaN(d.getTime())) return d.toISOString().replace('T', ' ').replace('Z', '');
  }
  return value;
}

function convert(type: ColumnType, value: unknown): unknown {
  if (value === undefined || value === null) {
    if (type.kind === 'array') return [];
    return null;
  }
  switch (type.kind) {
    case 'scalar':
      return type.time ? chTime(value) : value;
    case 'nullable':
      return convert(type.of, value);
    case 'array':
      return Array.isArray(value) ? value.map((v) => convert(type.of, v)) : value;
    case 'tuple': {
      const obj = value as Record<string, unknown>;
      return Object.fromEntries(type.fields.map((f) => [f.name, convert(f.type, obj[f.name])]));
    }
  }
}

/** The columns of one row for an output value (validated by the output schema beforehand). */
export function toRow(columns: readonly OutputColumn[], value: unknown): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const c of columns) {
    let v: unknown = value;
    for (const k of c.keys) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    row[c.name] = convert(c.type, v);
  }
  return row;
}

/** Quotes an identifier for ClickHouse SQL (backticks; names are checked by {@link outputColumns}). */
export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

/**
 * `CREATE TABLE IF NOT EXISTS` for an output table: lineage columns, then the output's columns;
 * ReplacingMergeTree ordered by the source position, like `events` (the insert tokens are the
 * first guard, this the second), and `non_replicated_deduplication_window` so tokens work.
 */
export function createTableSql(table: string, columns: readonly OutputColumn[]): string {
  const lines = [
    ...lineageColumns.map((c) => `    ${quoteIdentifier(c.name)} ${c.ch}${c.name === 'ingested_at' ? ' DEFAULT now64(3)' : ''} COMMENT '${c.comment}'`),
    ...columns.map((c) => `    ${quoteIdentifier(c.name)} ${c.ch}`),
  ];
  return [
    `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(table)}`,
    '(',
    lines.join(',\n'),
    ')',
    'ENGINE = ReplacingMergeTree',
    'ORDER BY (pipeline, topic, partition, offset)',
    'SETTINGS non_replicated_deduplication_window = 1000',
  ].join('\n');
}

/** `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` for one column. */
export function addColumnSql(table: string, column: OutputColumn): string {
  return `ALTER TABLE ${quoteIdentifier(table)} ADD COLUMN IF NOT EXISTS ${quoteIdentifier(column.name)} ${column.ch}`;
}
