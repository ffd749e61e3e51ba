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
