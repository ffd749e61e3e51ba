/**
 * The published surface of a processor version as JSON: what the registry stores, what the
 * fingerprint hashes, and what `platform processors show|diff` print. It covers the input
 * contracts, the ordered stages (name, kind, declared reference data and windows), each output's
 * table and output JSON Schema, the flag schema, the breaker and the implementation. Stage code is
 * not part of it (functions have no stable text across toolchains): changing what a stage computes
 * without changing its declared surface is a new version by convention, which review enforces.
 * Pure; importable from workflows.
 */
import { z } from 'zod';
import type { JsonSchema } from '../compat/index.js';
import { outputJsonSchema } from './ddl.js';
import type { BreakerSettings, Implementation, ProcessorDefinition } from './define.js';

/** The JSON descriptor of one processor version. */
export interface ProcessorDescriptor {
  readonly name: string;
  readonly version: number;
  readonly description: string;
  readonly input: { readonly subject: string; readonly versions: readonly number[] };
  readonly stages: readonly { readonly name: string; readonly kind: string; readonly detail?: Record<string, unknown> }[];
  readonly outputs: Readonly<Record<string, { readonly table: string; readonly schema: JsonSchema }>>;
  readonly flags: JsonSchema;
  readonly breaker: BreakerSettings;
  readonly implementation: Implementation;
  readonly notes: string;
}

/** Builds the descriptor of a processor version. */
export function describeProcessor(def: ProcessorDefinition): ProcessorDescriptor {
  return {
    name: def.name,
    version: def.version,
    description: def.description,
    input: { subject: def.input.subject, versions: [...def.input.versions] },
    stages: def.stages.map((s) => {
      const detail = s.enrich
        ? { ...s.enrich, source: { ...s.enrich.source } }
        : s.dedupe
          ? { windowMs: s.dedupe.windowMs }
          : s.implementation
            ? { implementation: s.implementation }
            : undefined;
      return detail ? { name: s.name, kind: s.kind, detail } : { name: s.name, kind: s.kind };
    }),
    outputs: Object.fromEntries(Object.entries(def.outputs).map(([k, o]) => [k, { table: o.table, schema: outputJsonSchema(o.schema) }])),
    flags: z.toJSONSchema(def.flags, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as JsonSchema,
    breaker: def.breaker,
    implementation: def.implementation,
    notes: def.notes,
  };
}

/** The output schemas of a descriptor, as the compatibility check takes them. */
export function descriptorOutputs(d: ProcessorDescriptor): Record<string, JsonSchema> {
  return Object.fromEntries(Object.entries(d.outputs).map(([k, o]) => [k, o.schema]));
}
