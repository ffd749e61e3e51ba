import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkOutputCompatibility, addedColumns } from '../../schemas/processing/compat.js';
import { outputJsonSchema } from '../../schemas/processing/ddl.js';
import { describeProcessor, descriptorOutputs } from '../../schemas/processing/describe.js';
import { processors } from '../../schemas/processors/index.js';

const base = z.object({ id: z.string(), status: z.int().min(100).max(599), kind: z.enum(['a', 'b']), nested: z.object({ team: z.string() }) });

function check(next: z.ZodType) {
  return checkOutputCompatibility({ version: 1, outputs: { main: outputJsonSchema(base) } }, { version: 2, outputs: { main: outputJsonSchema(next) } });
}

describe('output compatibility (tables are shared by every version)', () => {
  it('accepts a new field, a new enum value and a bound that keeps the column type', () => {
    const next = base.extend({ region: z.string().nullable(), kind: z.enum(['a', 'b', 'c']), status: z.int().min(100).max(600) });
    expect(check(next)).toEqual([]);
    expect(addedColumns({ main: outputJsonSchema(base) }, { main: outputJsonSchema(next) }).main!.map((c) => c.name)).toEqual(['region']);
  });

  it('refuses a removed field with its path', () => {
    const changes = check(base.omit({ status: true }));
    expect(changes.map((c) => [c.path, c.change])).toContainEqual(['status', 'column_removed']);
  });

  it('refuses a retyped column with its path (narrowest integer grows, string to number, nested leaf)', () => {
    expect(check(base.extend({ status: z.int().min(0).max(70_000) })).map((c) => [c.path, c.change])).toContainEqual(['status', 'column_retyped']);
    expect(check(base.extend({ id: z.number() })).map((c) => [c.path, c.change])).toContainEqual(['id', 'column_retyped']);
    const nested = check(base.extend({ nested: z.object({ team: z.int() }) }));
    expect(nested.map((c) => [c.path, c.change])).toContainEqual(['nested.team', 'column_retyped']);
    expect(nested[0]!.why).toContain('main.nested.team');
  });

  it('refuses a field that becomes nullable (Nullable is a different column type)', () => {
    expect(check(base.extend({ id: z.string().nullable() })).map((c) => [c.path, c.change])).toContainEqual(['id', 'column_retyped']);
  });

  it('the demo processor v2 is compatible with v1 and adds two columns to requests', () => {
    const [v1, v2] = processors.find((p) => p.name === 'request-enriched')!.versions;
    const o1 = descriptorOutputs(describeProcessor(v1!));
    const o2 = descriptorOutputs(describeProcessor(v2!));
    expect(checkOutputCompatibility({ version: 1, outputs: o1 }, { version: 2, outputs: o2 })).toEqual([]);
    expect(addedColumns(o1, o2).requests!.map((c) => c.name)).toEqual(['protocol', 'upstream_ms']);
    expect(addedColumns(o1, o2).errors).toEqual([]);
  });
});
