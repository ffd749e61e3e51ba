/**
 * The one way a zod contract becomes JSON Schema, so that the checker, the registry and the
 * exported files always see the same document.
 */
import { z } from 'zod';
import type { JsonSchema } from './shape.js';

/**
 * The input JSON Schema of a contract (draft 2020-12): what producers may send. `io: 'input'`
 * because defaults make keys optional for producers, and transforms are described by the type
 * they accept. Throws for constructs JSON cannot carry (dates, functions): a contract must be
 * expressible on the wire.
 */
export function contractJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as JsonSchema;
}

/**
 * JSON with object keys sorted at every level, so that equal schemas serialise to equal text
 * (the registry's fingerprint is a hash of this).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The `format` values JSON Schema 2020-12 defines (Validation, section 7.3). */
const standardFormats = new Set([
  'date-time', 'date', 'time', 'duration', 'email', 'idn-email', 'hostname', 'idn-hostname', 'ipv4', 'ipv6',
  'uri', 'uri-reference', 'iri', 'iri-reference', 'uuid', 'uri-template', 'json-pointer', 'relative-json-pointer', 'regex',
]);

/**
 * A copy of `schema` that any JSON Schema 2020-12 validator takes in strict mode: zod writes
 * `format` values of its own (`starts_with`, `ends_with`, `includes`, `cuid`, ...) next to the
 * `pattern` that carries the rule; those formats are dropped, the pattern stays. Used for the
 * files exported to producers, not for the registry's fingerprints (which stay as registered).
 */
export function portableJsonSchema<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map((item: unknown) => portableJsonSchema(item)) as T;
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema as Record<string, unknown>)) {
    if (key === 'format' && typeof value === 'string' && !standardFormats.has(value)) continue;
    out[key] = portableJsonSchema(value);
  }
  return out as T;
}
