/**
 * The contract compatibility checker: JSON Schema in, every breaking change out.
 * See `check.ts` for the modes and `subset.ts` for the structural rules.
 */
export * from './check.js';
export { toShape, describeShape, type JsonSchema, type Shape, type Literal, type PropertyShape, type AdditionalKeys } from './shape.js';
export { compareShapes, joinPath, accepts, type Finding, type FindingKind } from './subset.js';
export { canonicalJson, contractJsonSchema, portableJsonSchema } from './json-schema.js';
