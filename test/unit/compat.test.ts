import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  checkCompatibility,
  contractJsonSchema,
  type ChangeCode,
  type CompatibilityMode,
  type CompatibilityResult,
} from '../../schemas/compat/index.js';

/** Checks v2 (`next`) against v1 (`old`) under `mode`. */
function check(old: z.ZodType, next: z.ZodType, mode: CompatibilityMode): CompatibilityResult {
  return checkCompatibility(
    { version: 2, schema: contractJsonSchema(next) },
    [{ version: 1, schema: contractJsonSchema(old) }],
    mode,
  );
}

/** `[path, change]` pairs of a result, for compact assertions. */
function changes(result: CompatibilityResult): [string, ChangeCode][] {
  return result.changes.map((c) => [c.path, c.change]);
}

const base = z.object({ id: z.string(), amount: z.number() });

describe('added and removed fields (open zod objects)', () => {
  it('adding an optional field is compatible both ways', () => {
    const next = base.extend({ note: z.string().optional() });
    expect(check(base, next, 'FULL').compatible).toBe(true);
  });

  it('adding a required field without default breaks BACKWARD only', () => {
    const next = base.extend({ currency: z.string() });
    expect(changes(check(base, next, 'BACKWARD'))).toEqual([['data.currency', 'required_field_added']]);
    expect(check(base, next, 'FORWARD').compatible).toBe(true);
    const why = check(base, next, 'BACKWARD').changes[0]!.why;
    expect(why).toContain('data.currency');
    expect(why).toContain('readers on v2 reject events written with v1');
  });

  it('adding a required field with a default is BACKWARD compatible', () => {
    const next = base.extend({ currency: z.string().default('EUR') });
    expect(check(base, next, 'FULL').compatible).toBe(true);
  });

  it('removing a required field breaks FORWARD only', () => {
    const next = z.object({ id: z.string() });
    expect(check(base, next, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(base, next, 'FORWARD'))).toEqual([['data.amount', 'required_field_removed']]);
  });

  it('removing an optional field is compatible both ways on open objects', () => {
    const old = base.extend({ note: z.string().optional() });
    expect(check(old, base, 'FULL').compatible).toBe(true);
  });
});

describe('closed (strict) objects', () => {
  const strict = z.strictObject({ id: z.string(), amount: z.number() });

  it('adding an optional field to a strict object breaks FORWARD (old readers refuse the key)', () => {
    const next = strict.extend({ note: z.string().optional() });
    expect(check(strict, next, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(strict, next, 'FORWARD'))).toEqual([['data.note', 'field_added_to_closed_object']]);
  });

  it('removing a field from a strict object breaks BACKWARD (new readers refuse old data)', () => {
    const next = z.strictObject({ id: z.string() });
    const result = check(strict, next, 'FULL');
    expect(changes(result)).toEqual([
      ['data.amount', 'field_removed_from_closed_object'],
      ['data.amount', 'required_field_removed'],
    ]);
  });

  it('closing a loose object breaks BACKWARD', () => {
    const old = z.looseObject({ id: z.string() });
    const next = z.strictObject({ id: z.string() });
    expect(changes(check(old, next, 'BACKWARD'))).toEqual([['data.*', 'object_closed']]);
    expect(check(old, next, 'FORWARD').compatible).toBe(true);
  });
});

describe('optional versus required', () => {
  it('optional -> required breaks BACKWARD; the reverse breaks FORWARD', () => {
    const opt = z.object({ status: z.string().optional() });
    const req = z.object({ status: z.string() });
    expect(changes(check(opt, req, 'BACKWARD'))).toEqual([['data.status', 'optional_to_required']]);
    expect(check(opt, req, 'FORWARD').compatible).toBe(true);
    expect(changes(check(req, opt, 'FORWARD'))).toEqual([['data.status', 'required_to_optional']]);
    expect(check(req, opt, 'BACKWARD').compatible).toBe(true);
  });

  it('a default makes a field optional for producers: removing it breaks BACKWARD, adding it breaks FORWARD', () => {
    const withDefault = z.object({ status: z.string().default('ok') });
    const required = z.object({ status: z.string() });
    const removed = check(withDefault, required, 'BACKWARD');
    expect(changes(removed)).toEqual([['data.status', 'optional_to_required']]);
    expect(removed.changes[0]!.why).toContain('had a default');
    expect(changes(check(required, withDefault, 'FORWARD'))).toEqual([['data.status', 'required_to_optional']]);
    expect(check(required, withDefault, 'BACKWARD').compatible).toBe(true);
  });
});

describe('numbers and strings', () => {
  it('int -> number is widening: BACKWARD ok, FORWARD breaks', () => {
    const int = z.object({ n: z.number().int() });
    const num = z.object({ n: z.number() });
    expect(check(int, num, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(int, num, 'FORWARD'))).toEqual([['data.n', 'int_to_number']]);
  });

  it('number -> int is narrowing: BACKWARD breaks', () => {
    const int = z.object({ n: z.number().int() });
    const num = z.object({ n: z.number() });
    expect(changes(check(num, int, 'BACKWARD'))).toEqual([['data.n', 'number_to_int']]);
    expect(check(num, int, 'FORWARD').compatible).toBe(true);
  });

  it('tighter bounds narrow, looser bounds widen', () => {
    const loose = z.object({ n: z.number().min(0).max(100) });
    const tight = z.object({ n: z.number().min(10).max(100) });
    expect(changes(check(loose, tight, 'BACKWARD'))).toEqual([['data.n', 'constraint_narrowed']]);
    const forward = check(tight, loose, 'FORWARD');
    expect(changes(forward)).toEqual([['data.n', 'constraint_widened']]);
    expect(forward.changes[0]!.why).toContain('minimum >= 10 -> >= 0');
  });

  it('adding a string format narrows; dropping it widens', () => {
    const plain = z.object({ id: z.string() });
    const uuid = z.object({ id: z.uuid() });
    expect(changes(check(plain, uuid, 'BACKWARD'))).toEqual([['data.id', 'string_format_changed']]);
    expect(check(uuid, plain, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(uuid, plain, 'FORWARD'))).toEqual([['data.id', 'string_format_changed']]);
  });

  it('a changed type is reported with both types', () => {
    const result = check(z.object({ n: z.string() }), z.object({ n: z.number() }), 'BACKWARD');
    expect(changes(result)).toEqual([['data.n', 'type_changed']]);
    expect(result.changes[0]!.why).toContain('string -> number');
  });
});

describe('enums and literals', () => {
  const ab = z.object({ s: z.enum(['a', 'b']) });
  const abc = z.object({ s: z.enum(['a', 'b', 'c']) });

  it('adding an enum value is BACKWARD compatible and breaks FORWARD', () => {
    expect(check(ab, abc, 'BACKWARD').compatible).toBe(true);
    const result = check(ab, abc, 'FORWARD');
    expect(changes(result)).toEqual([['data.s', 'enum_value_added']]);
    expect(result.changes[0]!.why).toContain('"c"');
  });

  it('removing an enum value breaks BACKWARD', () => {
    const result = check(abc, ab, 'BACKWARD');
    expect(changes(result)).toEqual([['data.s', 'enum_value_removed']]);
    expect(result.changes[0]!.why).toContain('"c"');
  });

  it('string -> enum narrows, enum -> string widens', () => {
    const str = z.object({ s: z.string() });
    expect(changes(check(str, ab, 'BACKWARD'))).toEqual([['data.s', 'type_narrowed']]);
    expect(check(ab, str, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(ab, str, 'FORWARD'))).toEqual([['data.s', 'type_widened']]);
  });

  it('enum -> patterned string: compatible when every value matches the pattern', () => {
    const region = z.string().regex(/^[a-z]{2}-[a-z]+-\d$/);
    expect(check(z.object({ r: z.enum(['eu-west-1', 'us-east-2']) }), z.object({ r: region }), 'BACKWARD').compatible).toBe(true);
    const result = check(z.object({ r: z.enum(['eu-west-1', 'EU']) }), z.object({ r: region }), 'BACKWARD');
    expect(changes(result)).toEqual([['data.r', 'enum_value_removed']]);
    expect(result.changes[0]!.why).toContain('"EU"');
  });

  it('a changed literal breaks both ways', () => {
    const result = check(z.object({ k: z.literal('x') }), z.object({ k: z.literal('y') }), 'FULL');
    expect(changes(result)).toEqual([
      ['data.k', 'enum_value_removed'],
      ['data.k', 'enum_value_added'],
    ]);
  });
});

describe('nullable and unions', () => {
  it('nullable added is BACKWARD compatible and breaks FORWARD; removed breaks BACKWARD', () => {
    const plain = z.object({ s: z.string() });
    const nullable = z.object({ s: z.string().nullable() });
    expect(check(plain, nullable, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(plain, nullable, 'FORWARD'))).toEqual([['data.s', 'nullable_added']]);
    expect(changes(check(nullable, plain, 'BACKWARD'))).toEqual([['data.s', 'nullable_removed']]);
  });

  it('union member removed breaks BACKWARD; added breaks FORWARD', () => {
    const two = z.object({ v: z.union([z.string(), z.number()]) });
    const one = z.object({ v: z.string() });
    expect(changes(check(two, one, 'BACKWARD'))).toEqual([['data.v', 'union_member_removed']]);
    expect(check(one, two, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(one, two, 'FORWARD'))).toEqual([['data.v', 'union_member_added']]);
  });

  it('discriminated union: a change inside one member is reported at its field path', () => {
    const old = z.object({
      payment: z.discriminatedUnion('method', [
        z.object({ method: z.literal('card'), last4: z.string() }),
        z.object({ method: z.literal('iban'), iban: z.string() }),
      ]),
    });
    const next = z.object({
      payment: z.discriminatedUnion('method', [
        z.object({ method: z.literal('card'), last4: z.string(), brand: z.string() }),
        z.object({ method: z.literal('iban'), iban: z.string() }),
      ]),
    });
    expect(changes(check(old, next, 'BACKWARD'))).toEqual([['data.payment.brand', 'required_field_added']]);
  });

  it('discriminated union: a removed member breaks BACKWARD', () => {
    const old = z.object({
      payment: z.discriminatedUnion('method', [
        z.object({ method: z.literal('card'), last4: z.string() }),
        z.object({ method: z.literal('iban'), iban: z.string() }),
      ]),
    });
    const next = z.object({ payment: z.object({ method: z.literal('card'), last4: z.string() }) });
    expect(changes(check(old, next, 'BACKWARD'))).toEqual([['data.payment', 'union_member_removed']]);
    expect(check(old, next, 'BACKWARD').changes[0]!.why).toContain('object with method "iban"');
  });
});

describe('nested objects, arrays and records', () => {
  it('reports the path inside nested arrays of objects', () => {
    const old = z.object({ orders: z.array(z.object({ lines: z.array(z.object({ sku: z.string(), qty: z.number() })) })) });
    const next = z.object({ orders: z.array(z.object({ lines: z.array(z.object({ sku: z.string(), qty: z.number().int() })) })) });
    expect(changes(check(old, next, 'BACKWARD'))).toEqual([['data.orders[].lines[].qty', 'number_to_int']]);
  });

  it('array item type changes and minItems are reported', () => {
    const old = z.object({ tags: z.array(z.string()) });
    const next = z.object({ tags: z.array(z.number()).min(1) });
    expect(changes(check(old, next, 'BACKWARD'))).toEqual([
      ['data.tags', 'constraint_narrowed'],
      ['data.tags[]', 'type_changed'],
    ]);
  });

  it('record value widening is BACKWARD compatible; narrowing is not', () => {
    const int = z.object({ counts: z.record(z.string(), z.number().int()) });
    const num = z.object({ counts: z.record(z.string(), z.number()) });
    expect(check(int, num, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(num, int, 'BACKWARD'))).toEqual([['data.counts.*', 'number_to_int']]);
  });

  it('lists every breaking change, not only the first', () => {
    const old = z.object({ a: z.string(), b: z.number(), c: z.enum(['x', 'y']), d: z.object({ e: z.string().optional() }) });
    const next = z.object({ a: z.number(), b: z.number().int(), c: z.enum(['x']), d: z.object({ e: z.string() }), f: z.boolean() });
    expect(changes(check(old, next, 'BACKWARD'))).toEqual([
      ['data.a', 'type_changed'],
      ['data.b', 'number_to_int'],
      ['data.c', 'enum_value_removed'],
      ['data.d.e', 'optional_to_required'],
      ['data.f', 'required_field_added'],
    ]);
  });

  it('tuples: element changes by position, an added required element, optional elements', () => {
    const pair = z.object({ t: z.tuple([z.string(), z.number()]) });
    const intPair = z.object({ t: z.tuple([z.string(), z.number().int()]) });
    expect(changes(check(pair, intPair, 'BACKWARD'))).toEqual([['data.t[1]', 'number_to_int']]);
    const triple = z.object({ t: z.tuple([z.string(), z.number(), z.boolean()]) });
    expect(changes(check(pair, triple, 'BACKWARD'))).toEqual([['data.t', 'required_field_added']]);
    expect(changes(check(triple, pair, 'BACKWARD'))).toEqual([['data.t[2]', 'field_removed_from_closed_object']]);
    const optionalThird = z.object({ t: z.tuple([z.string(), z.number(), z.boolean().optional()]) });
    expect(check(pair, optionalThird, 'BACKWARD').compatible).toBe(true);
    expect(changes(check(optionalThird, triple, 'BACKWARD'))).toEqual([['data.t', 'required_field_added']]);
  });

  it('handles recursive contracts through $ref', () => {
    interface Node { name: string; children: Node[] }
    const nodeOld: z.ZodType<Node> = z.lazy(() => z.object({ name: z.string(), children: z.array(nodeOld) }));
    interface Node2 { name: string; children: Node2[]; weight?: number }
    const nodeNew: z.ZodType<Node2> = z.lazy(() => z.object({ name: z.string(), children: z.array(nodeNew), weight: z.number().optional() }));
    expect(check(z.object({ root: nodeOld }), z.object({ root: nodeNew }), 'FULL').compatible).toBe(true);
  });
});

describe('modes', () => {
  const v1 = z.object({ s: z.enum(['a']) });
  const v2 = z.object({ s: z.enum(['a', 'b']), note: z.string().optional() });
  const v3 = z.object({ s: z.enum(['b']), note: z.string().optional() });
  const history = [
    { version: 1, schema: contractJsonSchema(v1) },
    { version: 2, schema: contractJsonSchema(v2) },
  ];
  const candidate = { version: 3, schema: contractJsonSchema(v3) };
  const run = (mode: CompatibilityMode) => checkCompatibility(candidate, history, mode);

  it('BACKWARD compares with the latest version only', () => {
    const r = run('BACKWARD');
    expect(r.checkedAgainst).toEqual([2]);
    expect(r.changes.map((c) => [c.against, c.change])).toEqual([[2, 'enum_value_removed']]);
  });

  it('BACKWARD_TRANSITIVE compares with every earlier version', () => {
    const r = run('BACKWARD_TRANSITIVE');
    expect(r.checkedAgainst).toEqual([1, 2]);
    expect(r.changes.map((c) => [c.against, c.change])).toEqual([
      [1, 'enum_value_removed'],
      [2, 'enum_value_removed'],
    ]);
  });

  it('FORWARD and FORWARD_TRANSITIVE', () => {
    expect(run('FORWARD').compatible).toBe(true);
    const r = run('FORWARD_TRANSITIVE');
    expect(r.changes.map((c) => [c.against, c.path, c.change])).toEqual([[1, 'data.s', 'enum_value_added']]);
  });

  it('FULL and FULL_TRANSITIVE check both directions', () => {
    expect(run('FULL').changes.map((c) => c.direction)).toEqual(['backward']);
    expect(run('FULL_TRANSITIVE').changes.map((c) => `${c.against}:${c.direction}`)).toEqual([
      '1:backward',
      '1:forward',
      '2:backward',
    ]);
  });

  it('NONE accepts anything; an empty history is always compatible', () => {
    expect(run('NONE').compatible).toBe(true);
    expect(checkCompatibility(candidate, [], 'FULL_TRANSITIVE').compatible).toBe(true);
  });

  it('every change carries the mode, versions and a sentence', () => {
    const c = run('BACKWARD').changes[0]!;
    expect(c).toMatchObject({ mode: 'BACKWARD', direction: 'backward', against: 2, version: 3, path: 'data.s' });
    expect(c.why).toMatch(/data\.s no longer accepts "a" in v3: readers on v3 reject events written with v2/);
  });
});
