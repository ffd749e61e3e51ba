/**
 * The processor definition API: one TypeScript file declares a processor version, its input
 * contracts, its ordered stages, its named outputs (each a zod schema that defines a typed
 * ClickHouse table), its typed feature flags and its breaker. Versions are immutable once
 * published (fingerprint-locked in `schemas/processors/versions.lock.json` and registered in
 * ClickHouse `processor_registry`). Pure; importable from workflows.
 */
import { z } from 'zod';
import { PlatformError } from '../errors.js';
import { outputColumns, type OutputColumn } from './ddl.js';
import type { AnyStage } from './stage.js';

/** Thrown when a processor definition is malformed (caught by unit tests and `processors check`). */
export class ProcessorDefinitionError extends PlatformError {
  constructor(message: string) {
    super('processor_definition_invalid', message, false);
    this.name = 'ProcessorDefinitionError';
  }
}

/**
 * When a processor is broken rather than its input unlucky: after `consecutiveBatches` batches in a
 * row whose failure ratio (dead letters from stages and output schemas over input events) is above
 * `failureRatio`, the pipeline pauses itself and opens an alert.
 */
export const breakerSchema = z.strictObject({
  /** Failure ratio above which a batch counts as failing, 0..1. @default 0.5 */
  failureRatio: z.number().min(0).max(1).default(0.5),
  /** Failing batches in a row that trip the breaker. @default 3 */
  consecutiveBatches: z.number().int().min(1).max(1000).default(3),
  /** Batches with fewer input events are not judged. @default 10 */
  minEvents: z.number().int().min(1).default(10),
});

/** Breaker settings after defaults. */
export type BreakerSettings = z.output<typeof breakerSchema>;

/** One named output: its schema and, optionally, the table it lands in. */
export interface OutputDefinition {
  /** zod schema of the output rows; defines the table's columns (see `ddl.ts`). */
  readonly schema: z.ZodType;
  /**
   * ClickHouse table. Shared by every version of the processor: new fields add columns.
   * @default "<processor name with - as _>_<output name>"
   */
  readonly table?: string;
}

/** Which implementation of a stage with several implementations a version selects. */
export type Implementation = 'typescript' | 'wasm';

/** What a processor version file declares. */
export interface ProcessorSpec<Flags extends z.ZodType = z.ZodType> {
  /** Lowercase name with dashes, like contract subjects. */
  readonly name: string;
  /** 1, 2, ... Immutable once published. */
  readonly version: number;
  /** One sentence for people. */
  readonly description: string;
  /** Input contracts: subject -> accepted contract versions. Other events pass to dead letters (`processing_error`). */
  readonly input: { readonly subject: string; readonly versions: readonly number[] };
  /** The stages, in order. */
  readonly stages: readonly AnyStage[];
  /** Named outputs (1..n); a single output gets every event that is not routed. */
  readonly outputs: Readonly<Record<string, OutputDefinition>>;
  /** Typed feature flags; every key needs a default so a pipeline can start without flags. @default z.object({}) */
  readonly flags?: Flags;
  /** Breaker settings (defaults in {@link breakerSchema}). */
  readonly breaker?: z.input<typeof breakerSchema>;
  /** Implementation a multi-implementation stage uses in this version (recorded, fingerprinted). @default "typescript" */
  readonly implementation?: Implementation;
  /** What changed in this version, for people. */
  readonly notes?: string;
}

/** A checked processor version with everything derived once. */
export interface ProcessorDefinition {
  readonly name: string;
  readonly version: number;
  readonly description: string;
  readonly input: { readonly subject: string; readonly versions: readonly number[] };
  readonly stages: readonly AnyStage[];
  readonly outputs: Readonly<Record<string, { readonly schema: z.ZodType; readonly table: string; readonly columns: readonly OutputColumn[] }>>;
  readonly flags: z.ZodType;
  readonly breaker: BreakerSettings;
  readonly implementation: Implementation;
  readonly notes: string;
}

const processorName = /^[a-z][a-z0-9-]{0,62}$/;
const outputName = /^[a-z][a-z0-9_]{0,62}$/;
const tableName = /^[a-z][a-z0-9_]{0,190}$/;

/** Default table of an output: `<name with - as _>_<output>`. */
export function defaultTable(processor: string, output: string): string {
  return `${processor.replace(/-/g, '_')}_${output}`;
}

/**
 * Checks a processor version and derives its tables' columns. Throws
 * {@link ProcessorDefinitionError} naming what is wrong (name, version, duplicate stage names,
 * outputs, a flag without default) and `OutputSchemaError` naming the field path of an output
 * construct that has no column type.
 */
export function defineProcessor<Flags extends z.ZodType>(spec: ProcessorSpec<Flags>): ProcessorDefinition {
  const where = `processor ${spec.name} v${spec.version}`;
  if (!processorName.test(spec.name)) throw new ProcessorDefinitionError(`name: expected a lowercase name with dashes like orders-enriched, got ${JSON.stringify(spec.name)}`);
  if (!Number.isInteger(spec.version) || spec.version < 1) throw new ProcessorDefinitionError(`${where}: version: expected a positive integer`);
  if (spec.input.versions.length === 0) throw new ProcessorDefinitionError(`${where}: input.versions: expected at least one contract version`);
  const names = new Set<string>();
  for (const s of spec.stages) {
    if (names.has(s.name)) throw new ProcessorDefinitionError(`${where}: stages: the name ${s.name} is used twice; stage names appear in dead letters and must be unique`);
    names.add(s.name);
  }
  const outputEntries = Object.entries(spec.outputs);
  if (outputEntries.length === 0) throw new ProcessorDefinitionError(`${where}: outputs: expected at least one output`);
  const outputs = Object.fromEntries(
    outputEntries.map(([name, o]) => {
      if (!outputName.test(name)) throw new ProcessorDefinitionError(`${where}: outputs.${name}: expected a lowercase name of a-z, 0-9 or _`);
      const table = o.table ?? defaultTable(spec.name, name);
      if (!tableName.test(table)) throw new ProcessorDefinitionError(`${where}: outputs.${name}.table: expected a lowercase table name of a-z, 0-9 or _, got ${JSON.stringify(table)}`);
      return [name, { schema: o.schema, table, columns: outputColumns(o.schema) }];
    }),
  );
  const flags = spec.flags ?? z.object({});
  const defaults = flags.safeParse({});
  if (!defaults.success) {
    throw new ProcessorDefinitionError(`${where}: flags: every flag needs a default so a pipeline can start without flags (${defaults.error.issues.map((i) => i.path.join('.')).join(', ')})`);
  }
  return {
    name: spec.name,
    version: spec.version,
    description: spec.description,
    input: spec.input,
    stages: spec.stages,
    outputs,
    flags,
    breaker: breakerSchema.parse(spec.breaker ?? {}),
    implementation: spec.implementation ?? 'typescript',
    notes: spec.notes ?? '',
  };
}

/** Every version of one processor, ascending. */
export interface ProcessorFamily {
  readonly name: string;
  readonly versions: readonly ProcessorDefinition[];
}

/** Groups versions by name and checks each name's versions run 1..n without gaps. */
export function defineCatalogue(versions: readonly ProcessorDefinition[]): ProcessorFamily[] {
  const byName = new Map<string, ProcessorDefinition[]>();
  for (const v of versions) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
  return [...byName.entries()].map(([name, list]) => {
    const sorted = [...list].sort((a, b) => a.version - b.version);
    sorted.forEach((v, i) => {
      if (v.version !== i + 1) throw new ProcessorDefinitionError(`processor ${name}: expected version ${i + 1} at position ${i}, found ${v.version}`);
    });
    return { name, versions: sorted };
  });
}
