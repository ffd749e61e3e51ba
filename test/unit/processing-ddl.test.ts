import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTableSql, lineageColumns, narrowestInt, outputColumns, OutputSchemaError, toRow } from '../../schemas/processing/ddl.js';

const types = (schema: z.ZodType) => Object.fromEntries(outputColumns(schema).map((c) => [c.name, c.ch]));

describe('output schema -> ClickHouse columns', () => {
  it('maps every accepted zod kind', () => {
    const schema = z.object({
      s: z.string(),
      e: z.enum(['GET', 'POST']),
      lit: z.literal('v1'),
      t: z.iso.datetime(),
      d: z.date(),
      u8: z.int().min(0).max(255),
      u16: z.int().min(0).max(256),
      u32: z.uint32(),
      i8: z.int().min(-128).max(127),
      i16: z.int().min(-129).max(0),
      i32: z.int32(),
      i64: z.int(),
      f: z.number(),
      b: z.boolean(),
      opt: z.string().optional(),
      nul: z.number().nullable(),
      optEnum: z.enum(['a', 'b']).optional(),
      def: z.number().default(1),
      arr: z.array(z.int().min(0).max(10)),
      optArr: z.array(z.string()).optional(),
      arrNull: z.array(z.string().nullable()),
      nested: z.object({ team: z.string(), tier: z.int().min(1).max(3), deep: z.object({ x: z.boolean() }) }),
      optNested: z.object({ code: z.string() }).optional(),
      rows: z.array(z.object({ sku: z.string(), qty: z.uint32(), note: z.string().optional() })),
    });
    expect(types(schema)).toEqual({
      s: 'String',
      e: 'LowCardinality(String)',
      lit: 'LowCardinality(String)',
      t: "DateTime64(3, 'UTC')",
      d: "DateTime64(3, 'UTC')",
      u8: 'UInt8',
      u16: 'UInt16',
      u32: 'UInt32',
      i8: 'Int8',
      i16: 'Int16',
      i32: 'Int32',
      i64: 'Int64',
      f: 'Float64',
      b: 'Bool',
      opt: 'Nullable(String)',
      nul: 'Nullable(Float64)',
      optEnum: 'LowCardinality(Nullable(String))',
      def: 'Float64',
      arr: 'Array(UInt8)',
      optArr: 'Array(String)',
      arrNull: 'Array(Nullable(String))',
      nested_team: 'String',
      nested_tier: 'UInt8',
      nested_deep_x: 'Bool',
      optNested_code: 'Nullable(String)',
      rows: 'Array(Tuple(sku String, qty UInt32, note Nullable(String)))',
    });
  });

  it('picks the narrowest integer type, unsigned first', () => {
    expect(narrowestInt(0, 255, 'x')).toBe('UInt8');
    expect(narrowestInt(-1, 1, 'x')).toBe('Int8');
    expect(narrowestInt(0, 65_536, 'x')).toBe('UInt32');
    expect(narrowestInt(-1, 2 ** 40, 'x')).toBe('Int64');
    expect(narrowestInt(0, 2 ** 40, 'x')).toBe('UInt64');
    expect(narrowestInt(undefined, 5, 'x')).toBe('Int64');
  });

  it.each([
    ['union', z.object({ a: z.object({ v: z.union([z.string(), z.number()]) }) }), 'a.v', 'union'],
    ['record', z.object({ labels: z.record(z.string(), z.string()) }), 'labels', 'record'],
    ['bigint', z.object({ n: z.bigint() }), 'n', 'bigint'],
    ['unknown', z.object({ payload: z.unknown() }), 'payload', 'any/unknown'],
    ['any', z.object({ payload: z.any() }), 'payload', 'any/unknown'],
    ['tuple', z.object({ p: z.tuple([z.number(), z.number()]) }), 'p', 'tuple'],
    ['map', z.object({ m: z.map(z.string(), z.number()) }), 'm', 'map'],
    ['set', z.object({ s: z.set(z.string()) }), 's', 'set'],
    ['numeric enum', z.object({ lvl: z.literal(3) }), 'lvl', 'enum/literal'],
    ['nullable array', z.object({ tags: z.array(z.string()).nullable() }), 'tags', 'nullable array'],
    ['array in array of nullable objects', z.object({ rows: z.array(z.object({ a: z.string() }).nullable()) }), 'rows[]', 'nullable object'],
  ])('refuses %s with its path', (_name, schema, path, kind) => {
    let error: unknown;
    try {
      outputColumns(schema);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(OutputSchemaError);
    expect((error as OutputSchemaError).path).toBe(path);
    expect((error as OutputSchemaError).message).toContain(kind);
  });

  it('refuses a root that is not an object, lineage column names and flattening collisions', () => {
    expect(() => outputColumns(z.string())).toThrow(/\(root\): expected an object schema/);
    expect(() => outputColumns(z.object({ offset: z.number() }))).toThrow(/offset: column name offset is a lineage column/);
    expect(() => outputColumns(z.object({ a_b: z.string(), a: z.object({ b: z.string() }) }))).toThrow(/a\.b: flattens to column a_b, like a_b/);
  });

  it('converts values into rows: flattened, times as ClickHouse text, absent as null or []', () => {
    const schema = z.object({ at: z.iso.datetime(), d: z.date(), n: z.object({ a: z.string(), b: z.number().optional() }), tags: z.array(z.string()).optional(), rows: z.array(z.object({ t: z.iso.datetime() })) });
    const row = toRow(outputColumns(schema), { at: '2026-01-02T03:04:05.678Z', d: new Date(0), n: { a: 'x' }, rows: [{ t: '2026-01-01T00:00:00Z' }] });
    expect(row).toEqual({ at: '2026-01-02 03:04:05.678', d: '1970-01-01 00:00:00.000', n_a: 'x', n_b: null, tags: [], rows: [{ t: '2026-01-01 00:00:00.000' }] });
  });

  it('puts the lineage columns first and keys the table by source position', () => {
    const sql = createTableSql('orders_enriched_main', outputColumns(z.object({ amount: z.number() })));
    for (const c of lineageColumns) expect(sql).toContain(`\`${c.name}\` ${c.ch}`);
    expect(sql).toContain('ORDER BY (pipeline, topic, partition, offset)');
    expect(sql.indexOf('`amount`')).toBeGreaterThan(sql.indexOf('`ingested_at`'));
  });
});
