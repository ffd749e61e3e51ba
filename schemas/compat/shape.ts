/**
 * Normalises a JSON Schema (as produced by zod 4's `z.toJSONSchema(schema, { io: 'input' })`) into
 * a small closed tree of shapes that the compatibility checker can compare structurally.
 *
 * Why JSON Schema rather than zod's internal definition: it is the form the registry persists and
 * exports, so the CI gate can compare the working tree against what ClickHouse holds without the
 * old TypeScript source, and non-TypeScript producers see exactly what the checker saw.
 *
 * Pure code: importable from workflows.
 */

/** A JSON Schema document or sub-schema (`true`/`false` are the boolean schemas). */
export type JsonSchema = boolean | Readonly<Record<string, unknown>>;

/** A primitive value that a `const` or `enum` can name. */
export type Literal = string | number | boolean | null;

/** One property of an object shape. */
export interface PropertyShape {
  /** The property's value shape. */
  readonly shape: Shape;
  /** True when a valid value must carry the key (not optional, no default). */
  readonly required: boolean;
  /** True when the schema declares a default (so the key may be omitted on input). */
  readonly hasDefault: boolean;
}

/**
 * How an object treats keys it does not declare.
 * - `strip`: accepted and dropped (zod's default object; JSON Schema without `additionalProperties`).
 *   Writers on such a schema never send undeclared keys: zod's output removes them.
 * - `reject`: refused (zod `strictObject`; `additionalProperties: false`).
 * - a {@link Shape}: accepted when the value matches (zod `looseObject`, `catchall`, `record`).
 */
export type AdditionalKeys = 'strip' | 'reject' | Shape;

/** The normalised structure of a schema. */
export type Shape =
  | { readonly kind: 'any' }
  | { readonly kind: 'never' }
  | { readonly kind: 'boolean' }
  | {
      readonly kind: 'string';
      readonly format?: string;
      readonly pattern?: string;
      readonly minLength?: number;
      readonly maxLength?: number;
    }
  | {
      readonly kind: 'number';
      readonly integer: boolean;
      readonly minimum?: number;
      readonly exclusiveMinimum?: number;
      readonly maximum?: number;
      readonly exclusiveMaximum?: number;
      readonly multipleOf?: number;
    }
  | { readonly kind: 'literal'; readonly values: readonly Literal[] }
  | {
      readonly kind: 'object';
      readonly properties: Readonly<Record<string, PropertyShape>>;
      readonly additional: AdditionalKeys;
      readonly propertyNames?: Shape;
    }
  | { readonly kind: 'array'; readonly items: Shape; readonly minItems?: number; readonly maxItems?: number }
  | { readonly kind: 'tuple'; readonly prefix: readonly Shape[]; readonly rest: Shape | null; readonly minItems: number }
  | { readonly kind: 'union'; readonly members: readonly Shape[] }
  | { readonly kind: 'ref'; readonly ref: string; readonly resolve: () => Shape }
  | { readonly kind: 'opaque'; readonly schema: JsonSchema; readonly reason: string };

type Obj = Readonly<Record<string, unknown>>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const isLiteral = (v: unknown): v is Literal =>
  v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** Keywords that only annotate; they never change which values are valid. */
const annotations = new Set([
  '$schema', '$id', '$comment', '$defs', 'definitions', 'title', 'description', 'default',
  'examples', 'deprecated', 'readOnly', 'writeOnly', 'id',
]);

/** Keywords this normaliser understands; any other validating keyword makes a node opaque. */
const understood = new Set([
  ...annotations, 'type', 'const', 'enum', 'format', 'pattern', 'minLength', 'maxLength',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'properties',
  'required', 'additionalProperties', 'propertyNames', 'items', 'prefixItems', 'minItems',
  'maxItems', 'anyOf', 'oneOf', '$ref', 'contentEncoding', 'contentMediaType',
]);

/**
 * Builds the {@link Shape} of a JSON Schema document. `$ref`s into `#/$defs/*`, `#/definitions/*`
 * or `#` resolve lazily, so recursive contracts are supported.
 */
export function toShape(root: JsonSchema): Shape {
  const cache = new Map<string, Shape>();
  const resolveRef = (ref: string): Shape => {
    const hit = cache.get(ref);
    if (hit) return hit;
    let target: unknown;
    if (ref === '#') target = root;
    else if (ref.startsWith('#/')) {
      target = root;
      for (const part of ref.slice(2).split('/')) {
        const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
        target = isObj(target) ? target[key] : undefined;
      }
    }
    const shape: Shape =
      target === undefined
        ? { kind: 'opaque', schema: { $ref: ref }, reason: `unresolvable $ref ${ref}` }
        : convert(target as JsonSchema);
    cache.set(ref, shape);
    return shape;
  };

  const convert = (schema: JsonSchema): Shape => {
    if (schema === true) return { kind: 'any' };
    if (schema === false) return { kind: 'never' };
    if (!isObj(schema)) return { kind: 'opaque', schema, reason: 'not a schema object' };

    const unknownKeyword = Object.keys(schema).find((k) => !understood.has(k) && k !== 'not');
    if (unknownKeyword) return { kind: 'opaque', schema, reason: `keyword "${unknownKeyword}" is not supported` };
    if ('not' in schema) {
      // zod emits `{ not: {} }` for z.never(); other negations are out of scope.
      const n = schema.not;
      if (isObj(n) && Object.keys(n).length === 0 && Object.keys(schema).every((k) => k === 'not' || annotations.has(k)))
        return { kind: 'never' };
      return { kind: 'opaque', schema, reason: 'keyword "not" is not supported' };
    }

    if (typeof schema.$ref === 'string') {
      const ref = schema.$ref;
      return { kind: 'ref', ref, resolve: () => resolveRef(ref) };
    }

    const alternatives = (schema.anyOf ?? schema.oneOf) as unknown;
    if (Array.isArray(alternatives)) {
      const rest = Object.fromEntries(Object.entries(schema).filter(([k]) => k !== 'anyOf' && k !== 'oneOf'));
      const hasOwnConstraints = Object.keys(rest).some((k) => !annotations.has(k));
      if (hasOwnConstraints) return { kind: 'opaque', schema, reason: 'anyOf/oneOf combined with sibling constraints' };
      return union(alternatives.map((a) => convert(a as JsonSchema)));
    }

    if ('const' in schema) {
      const value = schema.const;
      if (!isLiteral(value)) return { kind: 'opaque', schema, reason: 'non-primitive const' };
      return { kind: 'literal', values: [value] };
    }
    if (Array.isArray(schema.enum)) {
      const values = schema.enum as unknown[];
      if (!values.every(isLiteral)) return { kind: 'opaque', schema, reason: 'non-primitive enum value' };
      return { kind: 'literal', values };
    }

    const type = schema.type;
    if (type === undefined) {
      const typed = ['properties', 'items', 'prefixItems', 'minLength', 'minimum', 'maximum', 'pattern', 'format'];
      if (typed.some((k) => k in schema)) return { kind: 'opaque', schema, reason: 'constraints without "type"' };
      return { kind: 'any' };
    }
    if (Array.isArray(type)) return union(type.map((t) => single(schema, String(t))));
    return single(schema, String(type));
  };

  const single = (s: Obj, type: string): Shape => {
    switch (type) {
      case 'null':
        return { kind: 'literal', values: [null] };
      case 'boolean':
        return { kind: 'boolean' };
      case 'string':
        return strip({
          kind: 'string',
          format: typeof s.format === 'string' ? s.format : undefined,
          pattern: typeof s.pattern === 'string' ? s.pattern : undefined,
          minLength: num(s.minLength),
          maxLength: num(s.maxLength),
        });
      case 'integer':
      case 'number': {
        const integer = type === 'integer';
        // zod's int() always carries the safe-integer range; it is implied by "integer" and
        // would otherwise be reported again next to every number -> integer change.
        const implied = (v: number | undefined) => integer && v !== undefined && Math.abs(v) === Number.MAX_SAFE_INTEGER;
        const minimum = num(s.minimum);
        const maximum = num(s.maximum);
        return strip({
          kind: 'number',
          integer,
          minimum: implied(minimum) ? undefined : minimum,
          maximum: implied(maximum) ? undefined : maximum,
          exclusiveMinimum: num(s.exclusiveMinimum),
          exclusiveMaximum: num(s.exclusiveMaximum),
          multipleOf: num(s.multipleOf),
        });
      }
      case 'array': {
        if (Array.isArray(s.prefixItems)) {
          const rest = s.items === undefined ? { kind: 'any' as const } : s.items === false ? null : convert(s.items as JsonSchema);
          const minItems = num(s.minItems) ?? 0;
          return { kind: 'tuple', prefix: s.prefixItems.map((p) => convert(p as JsonSchema)), rest, minItems };
        }
        return strip({
          kind: 'array',
          items: s.items === undefined ? { kind: 'any' } : convert(s.items as JsonSchema),
          minItems: num(s.minItems),
          maxItems: num(s.maxItems),
        });
      }
      case 'object': {
        const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
        const declared = isObj(s.properties) ? s.properties : {};
        const ap = s.additionalProperties;
        const additional: AdditionalKeys = ap === undefined ? 'strip' : ap === false ? 'reject' : convert(ap as JsonSchema);
        const properties: Record<string, PropertyShape> = {};
        for (const [name, sub] of Object.entries(declared)) {
          const hasDefault = isObj(sub) && 'default' in sub;
          properties[name] = { shape: convert(sub as JsonSchema), required: required.has(name), hasDefault };
        }
        // zod's exhaustive records (`z.record(z.enum([...]), V)`) require keys they do not declare.
        for (const name of required) {
          if (!(name in properties)) {
            properties[name] = {
              shape: typeof additional === 'string' ? { kind: 'any' } : additional,
              required: true,
              hasDefault: false,
            };
          }
        }
        return strip({
          kind: 'object',
          properties,
          additional,
          propertyNames: s.propertyNames === undefined ? undefined : convert(s.propertyNames as JsonSchema),
        });
      }
      default:
        return { kind: 'opaque', schema: s, reason: `unknown type "${type}"` };
    }
  };

  return convert(root);
}

/** Builds a union, flattening nested unions; a one-member union is its member. */
export function union(members: readonly Shape[]): Shape {
  const flat: Shape[] = [];
  for (const m of members) {
    if (m.kind === 'union') flat.push(...m.members);
    else if (m.kind !== 'never') flat.push(m);
  }
  if (flat.length === 0) return { kind: 'never' };
  if (flat.length === 1) return flat[0]!;
  return { kind: 'union', members: flat };
}

/** Drops keys whose value is undefined so that shapes compare and print cleanly. */
function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** A short human name for a shape, used in messages (`integer`, `string (uuid)`, `"a" | "b"`). */
export function describeShape(shape: Shape, depth = 0): string {
  switch (shape.kind) {
    case 'any':
      return 'any value';
    case 'never':
      return 'no value';
    case 'boolean':
      return 'boolean';
    case 'string':
      return shape.format ? `string (${shape.format})` : 'string';
    case 'number':
      return shape.integer ? 'integer' : 'number';
    case 'literal':
      return shape.values.map((v) => JSON.stringify(v)).join(' | ');
    case 'object':
      return typeof shape.additional === 'object' && Object.keys(shape.properties).length === 0 ? 'record' : 'object';
    case 'array':
      return depth > 1 ? 'array' : `array of ${describeShape(shape.items, depth + 1)}`;
    case 'tuple':
      return 'tuple';
    case 'union':
      return depth > 1 ? 'union' : shape.members.map((m) => describeShape(m, depth + 1)).join(' | ');
    case 'ref':
      return depth > 1 ? shape.ref : describeShape(shape.resolve(), depth + 1);
    case 'opaque':
      return 'unsupported schema';
  }
}
