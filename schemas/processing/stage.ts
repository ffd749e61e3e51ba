/**
 * The stage model of a processor: a stage is a pure function over one event (optionally over a
 * micro-batch, where that is faster) with a typed input and output, and an outcome that says what
 * happens to the event: it goes on (to the next stage, optionally addressed to named outputs), it
 * is dropped on purpose (a filter, a duplicate, an enrichment miss declared `drop`), or it becomes a
 * dead letter with a reason. Reference data and deduplication state reach a stage as synchronous
 * snapshots in its {@link StageContext}, prepared by the runtime before the stage runs, so every
 * stage stays pure and unit-testable with plain vitest. Pure; importable from workflows.
 */

/** What a stage did with one event. */
export type StageOutcome<Out> =
  | { readonly kind: 'emit'; readonly value: Out; readonly outputs?: readonly string[] }
  | { readonly kind: 'drop'; readonly reason: string }
  | { readonly kind: 'dead_letter'; readonly code: string; readonly message: string };

/** One row of reference data (an enrichment source), by column name. */
export type ReferenceRow = Readonly<Record<string, unknown>>;

/** Everything a stage may read besides its event. Built by the runtime (or by a unit test). */
export interface StageContext<Flags = Readonly<Record<string, unknown>>> {
  /** The flags the batch runs with (parsed by the processor's flag schema). */
  readonly flags: Flags;
  /** Reference data of enrichment stages, by stage name: key -> row. */
  readonly lookups: ReadonlyMap<string, ReadonlyMap<string, ReferenceRow>>;
  /**
   * Deduplication state of dedupe stages, by stage name: the keys already seen before this
   * batch (within the stage's window of the event that carries them).
   */
  readonly seenBefore: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Secrets stages may use (keys of keyed hashes), by name; filled by the worker from its
   * environment, never part of a plan, a flag or a log line.
   * @default {}
   */
  readonly secrets?: Readonly<Record<string, string>>;
}

/** The kinds of stages of the library; `custom` is a user-written stage. */
export type StageKind = 'filter' | 'map' | 'enrich' | 'route' | 'dedupe' | 'custom';

/** Where an enrichment stage's reference data comes from. */
export type ReferenceSource =
  | {
      /** A ClickHouse table or dictionary in the platform database. */
      readonly kind: 'clickhouse';
      /** Table or dictionary name. */
      readonly table: string;
      /** Column holding the lookup key (compared as a string). */
      readonly keyColumn: string;
      /** Columns to load besides the key. */
      readonly columns: readonly string[];
    }
  | {
      /** A JSON Lines file: one object per line. */
      readonly kind: 'file';
      /** Path, relative to the worker's working directory or absolute. */
      readonly path: string;
      readonly keyColumn: string;
      readonly columns: readonly string[];
    };

/** What an enrichment does when the key has no row. */
export type MissBehaviour = 'keep' | 'drop' | 'dead_letter';

/** Declared I/O of an enrichment stage: the runtime loads and caches its reference data. */
export interface EnrichSpec {
  readonly source: ReferenceSource;
  /**
   * How long a loaded snapshot of the reference data is used before it is reloaded, in ms.
   * @default 30000
   */
  readonly refreshMs: number;
  readonly onMiss: MissBehaviour;
}

/** Declared state of a dedupe stage: the runtime answers which keys were seen in earlier batches. */
export interface DedupeSpec {
  /** Event-time window in ms: a key seen within this distance of the event's time is a repeat. */
  readonly windowMs: number;
  /** The business key of an event (called by the runtime to ask the state store). */
  readonly key: (event: never) => string;
  /** The event time of an event, epoch ms. */
  readonly time: (event: never) => number;
}

/**
 * A stage. `apply` handles one event; `applyBatch`, when present, handles a micro-batch and must
 * give the same outcomes as `apply` on each event (the runtime falls back to `apply`, event by
 * event, when `applyBatch` throws, so one bad event is isolated and dead-lettered alone).
 */
export interface Stage<In = unknown, Out = unknown, Flags = Readonly<Record<string, unknown>>> {
  /** Unique within the processor; appears in dead letters (`processing_error`) and metrics. */
  readonly name: string;
  readonly kind: StageKind;
  apply(event: In, ctx: StageContext<Flags>): StageOutcome<Out>;
  applyBatch?(events: readonly In[], ctx: StageContext<Flags>): StageOutcome<Out>[];
  /** Present on enrichment stages. */
  readonly enrich?: EnrichSpec;
  /** Present on dedupe stages. */
  readonly dedupe?: DedupeSpec;
  /** Present on stages with several implementations: the one this stage uses. */
  readonly implementation?: 'typescript' | 'wasm';
}

/** A stage with its types erased, as a processor's ordered list holds it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the list is heterogenous; each stage is typed where it is written
export type AnyStage = Stage<any, any, any>;

/** Outcome helper: the event goes on as `value`. */
export function emit<Out>(value: Out, outputs?: readonly string[]): StageOutcome<Out> {
  return outputs === undefined ? { kind: 'emit', value } : { kind: 'emit', value, outputs };
}

/** Outcome helper: the event is dropped on purpose (not an error; counted, never dead-lettered). */
export function drop(reason: string): StageOutcome<never> {
  return { kind: 'drop', reason };
}

/** Outcome helper: the event becomes a dead letter with `code` and `message`. */
export function deadLetter(code: string, message: string): StageOutcome<never> {
  return { kind: 'dead_letter', code, message };
}

const stageName = /^[a-z][a-z0-9-]{0,62}$/;

function checkName(name: string): string {
  if (!stageName.test(name)) throw new TypeError(`stage name: expected 1-63 chars of a-z, 0-9 or - starting with a letter, got ${JSON.stringify(name)}`);
  return name;
}

/** Keeps the events for which `predicate` is true; drops the others (reason `filtered:<name>`). */
export function filter<T, Flags = Readonly<Record<string, unknown>>>(
  name: string,
  predicate: (event: T, ctx: StageContext<Flags>) => boolean,
): Stage<T, T, Flags> {
  checkName(name);
  return { name, kind: 'filter', apply: (event, ctx) => (predicate(event, ctx) ? emit(event) : drop(`filtered:${name}`)) };
}

/** Transforms every event into the next shape. */
export function map<In, Out, Flags = Readonly<Record<string, unknown>>>(
  name: string,
  fn: (event: In, ctx: StageContext<Flags>) => Out,
): Stage<In, Out, Flags> {
  checkName(name);
  return { name, kind: 'map', apply: (event, ctx) => emit(fn(event, ctx)) };
}

/** Options of {@link enrich}. */
export interface EnrichOptions<In, Out> {
  /** Where the reference data lives. */
  readonly source: ReferenceSource;
  /** The lookup key of an event. */
  readonly key: (event: In) => string;
  /** Joins an event with its reference row (null on a miss with `onMiss: "keep"`). */
  readonly join: (event: In, row: ReferenceRow | null) => Out;
  /** @default "keep" */
  readonly onMiss?: MissBehaviour;
  /** Reload interval of the cached reference data, ms. @default 30000 */
  readonly refreshMs?: number;
}

/**
 * Joins each event with reference data (a ClickHouse table or dictionary, or a JSON Lines file)
 * held in the worker as a snapshot refreshed every `refreshMs`. On a miss: `keep` joins with
 * null, `drop` drops the event (reason `enrich_miss:<name>`), `dead_letter` dead-letters it with
 * code `enrich_miss`.
 */
export function enrich<In, Out>(name: string, options: EnrichOptions<In, Out>): Stage<In, Out> {
  checkName(name);
  const onMiss = options.onMiss ?? 'keep';
  const refreshMs = options.refreshMs ?? 30_000;
  if (!Number.isInteger(refreshMs) || refreshMs < 0) throw new TypeError(`${name}: refreshMs: expected a whole number of ms >= 0, got ${refreshMs}`);
  return {
    name,
    kind: 'enrich',
    enrich: { source: options.source, refreshMs, onMiss },
    apply(event, ctx) {
      const table = ctx.lookups.get(name);
      if (!table) throw new Error(`reference data of stage ${name} is not loaded`);
      const key = options.key(event);
      const row = table.get(key) ?? null;
      if (row === null && onMiss === 'drop') return drop(`enrich_miss:${name}`);
      if (row === null && onMiss === 'dead_letter') return deadLetter('enrich_miss', `${name}: no reference row for key ${JSON.stringify(key)}`);
      return emit(options.join(event, row));
    },
  };
}

/**
 * Addresses each event to one or more named outputs of the processor (`by` returns an output name
 * or a list of them; an empty list drops the event with reason `unrouted:<name>`).
 */
export function route<T, Flags = Readonly<Record<string, unknown>>>(
  name: string,
  by: (event: T, ctx: StageContext<Flags>) => string | readonly string[],
): Stage<T, T, Flags> {
  checkName(name);
  return {
    name,
    kind: 'route',
    apply(event, ctx) {
      const to = by(event, ctx);
      const outputs = typeof to === 'string' ? [to] : [...to];
      return outputs.length === 0 ? drop(`unrouted:${name}`) : emit(event, outputs);
    },
  };
}

/** Options of {@link dedupe}. */
export interface DedupeOptions<T> {
  /** The business key. */
  readonly key: (event: T) => string;
  /** The event time, epoch ms. */
  readonly time: (event: T) => number;
  /** Event-time window, ms: a repeat of a key within this distance of its earlier occurrence is dropped. */
  readonly windowMs: number;
}

/**
 * Drops repeats of a business key within an event-time window, across batches: the runtime tells
 * the stage which keys occurred earlier in the partition (lower offsets) within the window
 * (`ctx.seenBefore`), and the stage drops those and every later repeat inside the micro-batch
 * (reason `duplicate:<name>`). Ordering is the partition's offset order, like Flink's keyed
 * deduplication keeps the first row per key; keys must be partitioned by key (Kafka's default
 * partitioner on the message key) for the deduplication to be global.
 */
export function dedupe<T>(name: string, options: DedupeOptions<T>): Stage<T, T> {
  checkName(name);
  if (!Number.isInteger(options.windowMs) || options.windowMs <= 0) throw new TypeError(`${name}: windowMs: expected a positive whole number of ms, got ${options.windowMs}`);
  const decide = (events: readonly T[], ctx: StageContext): StageOutcome<T>[] => {
    const before = ctx.seenBefore.get(name) ?? new Set<string>();
    const inBatch = new Map<string, number>();
    return events.map((event) => {
      const key = options.key(event);
      const time = options.time(event);
      const earlier = inBatch.get(key);
      if (before.has(key) || (earlier !== undefined && Math.abs(time - earlier) <= options.windowMs)) return drop(`duplicate:${name}`);
      inBatch.set(key, time);
      return emit(event);
    });
  };
  return {
    name,
    kind: 'dedupe',
    dedupe: { windowMs: options.windowMs, key: options.key as (event: never) => string, time: options.time as (event: never) => number },
    apply: (event, ctx) => decide([event], ctx)[0]!,
    applyBatch: decide,
  };
}

/**
 * A user-written stage with the library's signature: `fn` returns an outcome (use {@link emit},
 * {@link drop}, {@link deadLetter}); `batch`, if given, handles a micro-batch with the same result.
 */
export function stage<In, Out, Flags = Readonly<Record<string, unknown>>>(
  name: string,
  fn: (event: In, ctx: StageContext<Flags>) => StageOutcome<Out>,
  batch?: (events: readonly In[], ctx: StageContext<Flags>) => StageOutcome<Out>[],
): Stage<In, Out, Flags> {
  checkName(name);
  return batch ? { name, kind: 'custom', apply: fn, applyBatch: batch } : { name, kind: 'custom', apply: fn };
}

/** An empty context (no flags, no reference data, nothing seen before), for tests. */
export function emptyContext<Flags = Readonly<Record<string, unknown>>>(flags?: Flags): StageContext<Flags> {
  return { flags: (flags ?? {}) as Flags, lookups: new Map(), seenBefore: new Map() };
}
