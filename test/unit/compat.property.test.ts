/**
 * Property tests for the compatibility checker. A random contract tree is mutated with a known
 * mutation class; data is generated from the writer's tree by an arbitrary derived from the same
 * tree. Properties:
 * - soundness: when the checker says BACKWARD (FORWARD) compatible, every value written with the
 *   old (new) schema parses under the new (old) one;
 * - precision: for every mutation class the expected verdict (table below) is what the checker says;
 * - witnesses: when the class guarantees a breaking value, one is found by sampling the writer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkCompatibility, contractJsonSchema, type Direction } from '../../schemas/compat/index.js';

type Prim = 'string' | 'uuid' | 'int' | 'number' | 'boolean';
type Node =
  | { t: Prim }
  | { t: 'enum'; values: string[] }
  | { t: 'nullable'; inner: Node }
  | { t: 'array'; item: Node }
  | { t: 'object'; mode: ObjectMode; fields: Field[] }
  | { t: 'union'; members: Prim[] };
type Presence = 'required' | 'optional' | 'default';
/** zod's three object flavours: strip (default), strict (closed), loose (open: extra keys kept). */
type ObjectMode = 'strip' | 'strict' | 'loose';
interface Field {
  name: string;
  node: Node;
  presence: Presence;
}
type ObjectNode = Extract<Node, { t: 'object' }>;

// ---- trees -----------------------------------------------------------------------------------

const enumValues = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 4 });
const prim = fc.constantFrom<Prim>('string', 'uuid', 'int', 'number', 'boolean');
/** Union members of pairwise distinct JSON kinds, so a member is never shadowed by another. */
const unionMembers = fc
  .tuple(fc.constantFrom<Prim | null>('string', 'uuid', null), fc.constantFrom<Prim | null>('int', 'number', null), fc.boolean())
  .map(([s, n, b]) => [s, n, b ? 'boolean' : null].filter((m): m is Prim => m !== null))
  .filter((m) => m.length >= 2);

const leaf: fc.Arbitrary<Node> = fc.oneof(
  prim.map((t) => ({ t })),
  enumValues.map((values) => ({ t: 'enum' as const, values })),
  unionMembers.map((members) => ({ t: 'union' as const, members })),
);
const nullableLeaf: fc.Arbitrary<Node> = fc.oneof({ arbitrary: leaf, weight: 4 }, { arbitrary: leaf.map((inner) => ({ t: 'nullable' as const, inner })), weight: 1 });

function nodeArb(depth: number): fc.Arbitrary<Node> {
  if (depth === 0) return nullableLeaf;
  return fc.oneof(
    { arbitrary: nullableLeaf, weight: 3 },
    { arbitrary: objectArb(depth - 1), weight: 1 },
    { arbitrary: nodeArb(depth - 1).map((item) => ({ t: 'array' as const, item })), weight: 1 },
  );
}

function objectArb(depth: number): fc.Arbitrary<ObjectNode> {
  const field = fc.record({
    name: fc.constantFrom(...fieldNames),
    node: nodeArb(depth),
    presence: fc.constantFrom<Presence>('required', 'optional', 'default'),
  });
  return fc
    .record({ mode: fc.constantFrom<ObjectMode>('strip', 'strict', 'loose'), fields: fc.uniqueArray(field, { minLength: 1, maxLength: 4, selector: (f) => f.name }) })
    .map(({ mode, fields }) => ({ t: 'object' as const, mode, fields }));
}

// ---- zod and data from a tree ----------------------------------------------------------------

function primZod(t: Prim): z.ZodType {
  switch (t) {
    case 'string':
      return z.string();
    case 'uuid':
      return z.uuid();
    case 'int':
      return z.number().int();
    case 'number':
      return z.number();
    case 'boolean':
      return z.boolean();
  }
}

function toZod(node: Node): z.ZodType {
  switch (node.t) {
    case 'enum':
      return z.enum(node.values as [string, ...string[]]);
    case 'nullable':
      return toZod(node.inner).nullable();
    case 'array':
      return z.array(toZod(node.item));
    case 'union':
      return z.union(node.members.map(primZod) as [z.ZodType, z.ZodType, ...z.ZodType[]]);
    case 'object': {
      const shape: Record<string, z.ZodType> = {};
      for (const f of node.fields) {
        const s = toZod(f.node);
        shape[f.name] = f.presence === 'required' ? s : f.presence === 'optional' ? s.optional() : s.default(defaultValue(f.node));
      }
      return node.mode === 'strict' ? z.strictObject(shape) : node.mode === 'loose' ? z.looseObject(shape) : z.object(shape);
    }
    default:
      return primZod(node.t);
  }
}

function defaultValue(node: Node): unknown {
  switch (node.t) {
    case 'string':
      return 'dflt';
    case 'uuid':
      return '5f0c6a8e-3b1d-4c2a-9e7f-1a2b3c4d5e6f';
    case 'int':
      return 0;
    case 'number':
      return 0.5;
    case 'boolean':
      return false;
    case 'enum':
      return node.values[0];
    case 'nullable':
      return null;
    case 'array':
      return [];
    case 'union':
      return defaultValue({ t: node.members[0]! });
    case 'object':
      return Object.fromEntries(node.fields.filter((f) => f.presence === 'required').map((f) => [f.name, defaultValue(f.node)]));
  }
}

const ABSENT = Symbol('absent');
const fieldNames = ['id', 'kind', 'amount', 'status', 'items', 'meta', 'tags', 'code', 'note', 'ts'] as const;
const extraKeyPool = [...fieldNames, 'added', 'x_extra'];
/** Values of undeclared keys: one of each JSON kind, so no single field type accepts them all. */
const anyJson = fc.oneof(fc.string({ maxLength: 3 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constant({}), fc.constant([]));

/** Values a writer on this tree produces: declared keys only, optional/default keys sometimes absent. */
function dataArb(node: Node): fc.Arbitrary<unknown> {
  switch (node.t) {
    case 'string':
      return fc.string({ maxLength: 6 });
    case 'uuid':
      return fc.uuid();
    case 'int':
      return fc.integer();
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'enum':
      return fc.constantFrom(...node.values);
    case 'nullable':
      return fc.oneof(fc.constant(null), dataArb(node.inner));
    case 'array':
      return fc.array(dataArb(node.item), { minLength: 1, maxLength: 3 });
    case 'union':
      return fc.oneof(...node.members.map((t) => dataArb({ t })));
    case 'object': {
      const entries = node.fields.map((f) => {
        const value = dataArb(f.node);
        return f.presence === 'required'
          ? value
          : fc.oneof({ arbitrary: fc.constant(ABSENT), weight: 1 }, { arbitrary: value, weight: 4 });
      });
      // A loose object's writer may also send undeclared keys with any value; the key pool holds
      // every name a mutation may declare or remove, so such keys can collide with them.
      const declared = new Set(node.fields.map((f) => f.name));
      const extraKeys = extraKeyPool.filter((k) => !declared.has(k));
      const extras = node.mode === 'loose' ? fc.dictionary(fc.constantFrom(...extraKeys), anyJson, { maxKeys: 2 }) : fc.constant({});
      return fc.tuple(fc.tuple(...entries), extras).map(([values, extra]) => {
        const out: Record<string, unknown> = { ...extra };
        node.fields.forEach((f, i) => {
          if (values[i] !== ABSENT) out[f.name] = values[i];
        });
        return out;
      });
    }
  }
}

// ---- mutations -------------------------------------------------------------------------------

type Verdict = 'ok' | 'break';
type MutationClass =
  | 'add_optional_field' | 'add_required_field' | 'add_default_field' | 'set_object_mode'
  | 'remove_field' | 'optional_to_required' | 'default_to_required' | 'required_to_optional' | 'required_to_default'
  | 'int_to_number' | 'number_to_int' | 'enum_add' | 'enum_remove' | 'make_nullable' | 'remove_nullable'
  | 'change_type' | 'string_to_uuid' | 'uuid_to_string' | 'union_add' | 'union_remove';

interface Mutation {
  cls: MutationClass;
  next: ObjectNode;
  /** Expected verdicts; every `break` is guaranteed to have a witness among writer values. */
  backward: Verdict;
  forward: Verdict;
}

/** A place to mutate: the path of object fields / array items to an object, plus a field of it. */
type Step = { field: string } | 'items';
interface Site {
  path: Step[];
  object: ObjectNode;
}

function sites(node: Node, path: Step[] = []): Site[] {
  if (node.t === 'object') {
    return [{ path, object: node }, ...node.fields.flatMap((f) => sites(f.node, [...path, { field: f.name }]))];
  }
  if (node.t === 'array') return sites(node.item, [...path, 'items']);
  return [];
}

function replaceAt(node: Node, path: Step[], fn: (o: ObjectNode) => ObjectNode): Node {
  if (path.length === 0) return fn(node as ObjectNode);
  const [step, ...rest] = path;
  if (step === 'items') return { ...(node as Extract<Node, { t: 'array' }>), item: replaceAt((node as Extract<Node, { t: 'array' }>).item, rest, fn) };
  const o = node as ObjectNode;
  return { ...o, fields: o.fields.map((f) => (f.name === step!.field ? { ...f, node: replaceAt(f.node, rest, fn) } : f)) };
}

const otherPrim: Record<Prim, Prim> = { string: 'boolean', uuid: 'int', int: 'string', number: 'boolean', boolean: 'number' };

/** Every mutation applicable at a site, with its expected verdicts. */
function mutationsAt(root: ObjectNode, site: Site): Mutation[] {
  const o = site.object;
  const strict = o.mode === 'strict';
  const loose = o.mode === 'loose';
  const at = (cls: MutationClass, fn: (x: ObjectNode) => ObjectNode, backward: Verdict, forward: Verdict): Mutation => ({
    cls,
    next: replaceAt(root, site.path, fn) as ObjectNode,
    backward,
    forward,
  });
  const addField = (presence: Presence) => (x: ObjectNode) => ({ ...x, fields: [...x.fields, { name: 'added', node: { t: 'string' as const }, presence }] });
  // Old loose writers may already send `added` with any value: a typed `added` narrows it.
  const out: Mutation[] = [
    at('add_optional_field', addField('optional'), loose ? 'break' : 'ok', strict ? 'break' : 'ok'),
    at('add_required_field', addField('required'), 'break', strict ? 'break' : 'ok'),
    at('add_default_field', addField('default'), loose ? 'break' : 'ok', strict ? 'break' : 'ok'),
  ];
  const modeVerdicts: Record<string, [Verdict, Verdict]> = {
    'strip>strict': ['ok', 'ok'],
    'strip>loose': ['ok', 'ok'],
    'strict>strip': ['ok', 'ok'],
    'strict>loose': ['ok', 'break'],
    'loose>strict': ['break', 'ok'],
    'loose>strip': ['ok', 'ok'],
  };
  for (const mode of ['strip', 'strict', 'loose'] as const) {
    if (mode === o.mode) continue;
    const [backward, forward] = modeVerdicts[`${o.mode}>${mode}`]!;
    out.push(at('set_object_mode', (x) => ({ ...x, mode }), backward, forward));
  }
  for (const f of o.fields) {
    const withField = (fn: (g: Field) => Field | null) => (x: ObjectNode) => ({
      ...x,
      fields: x.fields.flatMap((g) => (g.name === f.name ? [fn(g)].filter((h): h is Field => h !== null) : [g])),
    });
    const setNode = (node: Node) => withField((g) => ({ ...g, node }));
    // New loose writers may send the removed key with any value, which old readers type-check.
    out.push(at('remove_field', withField(() => null), strict ? 'break' : 'ok', f.presence === 'required' || loose ? 'break' : 'ok'));
    if (f.presence === 'optional') out.push(at('optional_to_required', withField((g) => ({ ...g, presence: 'required' })), 'break', 'ok'));
    if (f.presence === 'default') out.push(at('default_to_required', withField((g) => ({ ...g, presence: 'required' })), 'break', 'ok'));
    if (f.presence === 'required') {
      out.push(at('required_to_optional', withField((g) => ({ ...g, presence: 'optional' })), 'ok', 'break'));
      out.push(at('required_to_default', withField((g) => ({ ...g, presence: 'default' })), 'ok', 'break'));
    }
    const nullable = f.node.t === 'nullable';
    const inner = f.node.t === 'nullable' ? f.node.inner : f.node;
    const wrap = (n: Node): Node => (nullable ? { t: 'nullable', inner: n } : n);
    if (nullable) out.push(at('remove_nullable', setNode(inner), 'break', 'ok'));
    else if (inner.t !== 'object' && inner.t !== 'array') out.push(at('make_nullable', setNode({ t: 'nullable', inner }), 'ok', 'break'));
    switch (inner.t) {
      case 'int':
        out.push(at('int_to_number', setNode(wrap({ t: 'number' })), 'ok', 'break'));
        break;
      case 'number':
        out.push(at('number_to_int', setNode(wrap({ t: 'int' })), 'break', 'ok'));
        break;
      case 'string':
        out.push(at('string_to_uuid', setNode(wrap({ t: 'uuid' })), 'break', 'ok'));
        break;
      case 'uuid':
        out.push(at('uuid_to_string', setNode(wrap({ t: 'string' })), 'ok', 'break'));
        break;
      case 'enum': {
        const missing = ['a', 'b', 'c', 'd', 'e', 'f'].find((v) => !inner.values.includes(v))!;
        out.push(at('enum_add', setNode(wrap({ t: 'enum', values: [...inner.values, missing] })), 'ok', 'break'));
        if (inner.values.length >= 2) out.push(at('enum_remove', setNode(wrap({ t: 'enum', values: inner.values.slice(1) })), 'break', 'ok'));
        out.push(at('change_type', setNode(wrap({ t: 'int' })), 'break', 'break'));
        break;
      }
      case 'union': {
        const kinds = new Set(inner.members.map((m) => (m === 'uuid' ? 'string' : m === 'int' ? 'number' : m)));
        const add: Prim | undefined = (['string', 'int', 'boolean'] as const).find((k) => !kinds.has(k === 'int' ? 'number' : k));
        if (add) out.push(at('union_add', setNode(wrap({ t: 'union', members: [...inner.members, add] })), 'ok', 'break'));
        const rest = inner.members.slice(1);
        out.push(at('union_remove', setNode(wrap(rest.length === 1 ? { t: rest[0]! } : { t: 'union', members: rest })), 'break', 'ok'));
        break;
      }
      default:
        break;
    }
    if (inner.t === 'string' || inner.t === 'uuid' || inner.t === 'int' || inner.t === 'number' || inner.t === 'boolean') {
      out.push(at('change_type', setNode(wrap({ t: otherPrim[inner.t] })), 'break', 'break'));
    }
  }
  return out;
}

const scenario = objectArb(2).chain((root) => {
  const all = sites(root).flatMap((s) => mutationsAt(root, s));
  return fc.record({ root: fc.constant(root), mutation: fc.constantFrom(...all), seed: fc.integer() });
});

function verdicts(oldTree: ObjectNode, newTree: ObjectNode): Record<Direction, Verdict> {
  const history = [{ version: 1, schema: contractJsonSchema(toZod(oldTree)) }];
  const candidate = { version: 2, schema: contractJsonSchema(toZod(newTree)) };
  return {
    backward: checkCompatibility(candidate, history, 'BACKWARD').compatible ? 'ok' : 'break',
    forward: checkCompatibility(candidate, history, 'FORWARD').compatible ? 'ok' : 'break',
  };
}

/** Values written on `writer` that `reader` refuses (sampled; writer sanity-checked). */
function refusals(writer: ObjectNode, reader: ObjectNode, seed: number, samples: number): unknown[] {
  const w = toZod(writer);
  const r = toZod(reader);
  const values = fc.sample(dataArb(writer), { numRuns: samples, seed });
  for (const v of values) expect(w.safeParse(v).success, `writer refuses its own value ${JSON.stringify(v)}`).toBe(true);
  return values.filter((v) => !r.safeParse(v).success);
}

describe('compatibility checker properties', () => {
  it('compatible verdicts are sound: written values parse under the reader', () => {
    fc.assert(
      fc.property(scenario, ({ root, mutation, seed }) => {
        const got = verdicts(root, mutation.next);
        if (got.backward === 'ok') expect(refusals(root, mutation.next, seed, 60)).toEqual([]);
        if (got.forward === 'ok') expect(refusals(mutation.next, root, seed, 60)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('verdicts match the mutation class, and every refusal has a witness', () => {
    const seen = new Set<MutationClass>();
    fc.assert(
      fc.property(scenario, ({ root, mutation, seed }) => {
        seen.add(mutation.cls);
        const got = verdicts(root, mutation.next);
        expect({ cls: mutation.cls, ...got }).toEqual({ cls: mutation.cls, backward: mutation.backward, forward: mutation.forward });
        if (mutation.backward === 'break') expect(refusals(root, mutation.next, seed, 400).length).toBeGreaterThan(0);
        if (mutation.forward === 'break') expect(refusals(mutation.next, root, seed, 400).length).toBeGreaterThan(0);
      }),
      { numRuns: 200 },
    );
    // The generator must actually exercise the classes it claims to test.
    expect(seen.size).toBeGreaterThanOrEqual(15);
  });
});
