/**
 * The processing runtime: runs a processor version (as planned for a batch, with the batch's flags)
 * over the validated events of one landing step, and writes its outputs to their typed tables.
 * - Reference data of enrichment stages comes from the worker's {@link ReferenceCache}; dedupe
 *   state from the {@link DedupeStore}, consulted only for offsets below the batch's start.
 * - An exception in a stage dead-letters its event (`processing_error`, stage name and message); an
 *   output value that fails its output schema dead-letters the event (`output_violation`, output and
 *   field path); an event of a subject or contract version the processor does not take dead-letters
 *   with `processor_input_mismatch` (not counted against the breaker: the input is wrong, not the code).
 * - An event lands in all of its outputs or in none.
 * Output inserts carry `<step token>/<table>` as de-duplication token, so a retried step lands once.
 */
import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { z } from 'zod';
import type { ValidEvent } from '../../schemas/contracts/envelope.js';
import { toRow } from '../../schemas/processing/ddl.js';
import type { ProcessorDefinition } from '../../schemas/processing/define.js';
import { runStages, type EventFate } from '../../schemas/processing/run.js';
import type { ReferenceRow, StageContext } from '../../schemas/processing/stage.js';
import { createDedupeStore, type DedupeStore } from './dedupe-store.js';
import { createReferenceCache, type ReferenceCache } from './reference-cache.js';
import { applyOutputTables } from './tables.js';
import { shadowTableSuffix } from '../../schemas/rollouts/routing.js';
import { silentLogger, type Logger } from '../logger.js';

/** One validated event of a landing step, with its source position. */
export interface SourceEvent {
  readonly offset: number;
  readonly subject: string;
  readonly contractVersion: number;
  readonly event: ValidEvent;
}

/** Where the step runs and under which plan. */
export interface ProcessingScope {
  readonly pipelineId: string;
  readonly topic: string;
  readonly partition: number;
  readonly batchId: string;
  /** First offset of the batch (dedupe state is consulted below it). */
  readonly batchFrom: number;
  /** The processor version the batch was planned with. */
  readonly processor: ProcessorDefinition;
  /** The batch's flags as planned (parsed by the processor's flag schema here). */
  readonly flags: unknown;
}

/** A processing failure of one event, for the dead-letter table. */
export interface ProcessingFailure {
  readonly offset: number;
  readonly code: 'processing_error' | 'output_violation' | 'processor_input_mismatch' | (string & {});
  readonly message: string;
  readonly detail: Record<string, unknown>;
}

/** What processing one step produced. */
export interface ProcessedStep {
  /** Rows per output table, lineage columns included. */
  readonly rows: ReadonlyMap<string, Record<string, unknown>[]>;
  readonly failures: readonly ProcessingFailure[];
  /** Events dropped on purpose (filters, duplicates, misses declared `drop`). */
  readonly dropped: number;
  /** Events that landed in at least one output. */
  readonly emitted: number;
  /** processing_error + output_violation: what the breaker judges. */
  readonly breakerFailures: number;
  /** Events that entered the processor's stages. */
  readonly processed: number;
  /** Dedupe keys to record after the rows are written. */
  readonly dedupeKeys: readonly { stage: string; keys: { key: string; time: number; offset: number }[] }[];
  /** Per-event processing time in stages, ms, one per processed event (empty unless `timed`). */
  readonly eventTimesMs: readonly number[];
}

/** Options of one `process` call. */
export interface ProcessOptions {
  /** Measure each event's time in stages (canary observations). @default false */
  readonly timed?: boolean;
}

/**
 * The same processor version writing to shadow tables: every output table gets
 * {@link shadowTableSuffix} (`request_enriched_requests_shadow`), nothing else changes. Shadow
 * steps of a canary rollout run the canary this way, so its rows never reach the live outputs.
 */
export function shadowProcessor(processor: ProcessorDefinition): ProcessorDefinition {
  return {
    ...processor,
    outputs: Object.fromEntries(Object.entries(processor.outputs).map(([name, o]) => [name, { ...o, table: `${o.table}${shadowTableSuffix}` }])),
  };
}

/** Dependencies of {@link createProcessingRuntime}. */
export interface ProcessingDeps {
  readonly warehouse: ClickHouseClient;
  readonly log?: Logger;
  /** Secrets for stages (e.g. `pseudonymKey`), from the worker's environment. */
  readonly secrets?: Readonly<Record<string, string>>;
  readonly references?: ReferenceCache;
  readonly dedupe?: DedupeStore;
}

/** The runtime. */
export type ProcessingRuntime = ReturnType<typeof createProcessingRuntime>;

function issuePath(issue: z.core.$ZodIssue): string {
  return issue.path.map(String).join('.') || '(root)';
}

/** Builds the runtime; one per worker process (it owns the reference cache). */
export function createProcessingRuntime(deps: ProcessingDeps) {
  const log = deps.log ?? silentLogger;
  const references = deps.references ?? createReferenceCache({ warehouse: deps.warehouse, log });
  const dedupe = deps.dedupe ?? createDedupeStore(deps.warehouse);
  const secrets = deps.secrets ?? {};
  const tablesReady = new Map<string, Promise<void>>();

  async function process(scope: ProcessingScope, events: readonly SourceEvent[], options: ProcessOptions = {}): Promise<ProcessedStep> {
    const { processor } = scope;
    const failures: ProcessingFailure[] = [];
    const accepted: SourceEvent[] = [];
    for (const e of events) {
      if (e.subject === processor.input.subject && processor.input.versions.includes(e.contractVersion)) accepted.push(e);
      else
        failures.push({
          offset: e.offset,
          code: 'processor_input_mismatch',
          message: `${processor.name} v${processor.version} takes ${processor.input.subject} v${processor.input.versions.join(', v')}, got ${e.subject} v${e.contractVersion}`,
          detail: { processor: processor.name, processorVersion: processor.version, subject: e.subject, version: e.contractVersion },
        });
    }
    const flagsParsed = processor.flags.safeParse(scope.flags ?? {});
    // Flags were validated by the setFlags/start validators; a mismatch here is a programming error.
    if (!flagsParsed.success) throw new Error(`flags do not match ${processor.name} v${processor.version}: ${flagsParsed.error.message}`);
    const lookups = new Map<string, ReadonlyMap<string, ReferenceRow>>();
    const seenBefore = new Map<string, ReadonlySet<string>>();
    const ctx: StageContext = { flags: flagsParsed.data as Record<string, unknown>, lookups, seenBefore, secrets };
    const dedupeEntered = new Map<string, { indices: readonly number[]; keys: { key: string; time: number }[] }>();
    const timings = options.timed ? { clock: () => performance.now(), perEvent: new Array<number>(accepted.length).fill(0) } : undefined;
    const fates: EventFate[] = await runStages(
      processor.stages,
      accepted.map((e) => e.event),
      ctx,
      async (stage, values, indices) => {
        if (stage.enrich) lookups.set(stage.name, await references.get(stage.enrich));
        if (stage.dedupe) {
          const spec = stage.dedupe;
          const keys = values.map((v) => ({ key: spec.key(v as never), time: spec.time(v as never) }));
          dedupeEntered.set(stage.name, { indices, keys });
          const scopeKey = { pipelineId: scope.pipelineId, stage: stage.name, topic: scope.topic, partition: scope.partition };
          seenBefore.set(stage.name, await dedupe.seenBefore(scopeKey, scope.batchFrom, keys, spec.windowMs));
        }
      },
      timings,
    );
    const outputNames = Object.keys(processor.outputs);
    const rows = new Map<string, Record<string, unknown>[]>(Object.values(processor.outputs).map((o) => [o.table, []]));
    let dropped = 0;
    let emitted = 0;
    let breakerFailures = 0;
    for (const fate of fates) {
      const source = accepted[fate.index]!;
      if (fate.kind === 'dropped') {
        dropped++;
        continue;
      }
      if (fate.kind === 'dead_letter') {
        if (fate.code === 'processing_error') breakerFailures++;
        failures.push({ offset: source.offset, code: fate.code, message: `${fate.stage}: ${fate.message}`, detail: { processor: processor.name, processorVersion: processor.version, stage: fate.stage } });
        continue;
      }
      const targets = fate.outputs ?? (outputNames.length === 1 ? outputNames : null);
      const unknown = targets?.filter((t) => !outputNames.includes(t)) ?? [];
      if (targets === null || unknown.length > 0) {
        breakerFailures++;
        const message = targets === null ? `event was not routed to any of the outputs ${outputNames.join(', ')}` : `event routed to unknown output(s) ${unknown.join(', ')}; outputs are ${outputNames.join(', ')}`;
        failures.push({ offset: source.offset, code: 'processing_error', message, detail: { processor: processor.name, processorVersion: processor.version, stage: '(route)' } });
        continue;
      }
      const built: [string, Record<string, unknown>][] = [];
      let violation: ProcessingFailure | null = null;
      for (const name of targets) {
        const output = processor.outputs[name]!;
        const parsed = output.schema.safeParse(fate.value);
        if (!parsed.success) {
          const first = parsed.error.issues[0]!;
          violation = {
            offset: source.offset,
            code: 'output_violation',
            message: `output ${name}: ${issuePath(first)}: ${first.message}`,
            detail: { processor: processor.name, processorVersion: processor.version, output: name, issues: parsed.error.issues.map((i) => ({ path: issuePath(i), message: i.message })) },
          };
          break;
        }
        built.push([
          output.table,
          {
            pipeline: scope.pipelineId,
            batch_id: scope.batchId,
            topic: scope.topic,
            partition: scope.partition,
            offset: source.offset,
            subject: source.subject,
            contract_version: source.contractVersion,
            processor: processor.name,
            processor_version: processor.version,
            ...toRow(output.columns, parsed.data),
          },
        ]);
      }
      if (violation) {
        breakerFailures++;
        failures.push(violation);
        continue;
      }
      emitted++;
      for (const [table, row] of built) rows.get(table)!.push(row);
    }
    const dedupeKeys = [...dedupeEntered.entries()].map(([stage, { indices, keys }]) => ({
      stage,
      keys: indices
        .map((index, i) => ({ index, ...keys[i]! }))
        .filter(({ index }) => {
          const f = fates[index]!;
          return !(f.kind === 'dropped' && f.stage === stage);
        })
        .map(({ index, key, time }) => ({ key, time, offset: accepted[index]!.offset })),
    }));
    return { rows, failures, dropped, emitted, breakerFailures, processed: accepted.length, dedupeKeys, eventTimesMs: timings?.perEvent ?? [] };
  }

  return {
    process,

    /** Creates/evolves the output tables of a version once per process (ADD COLUMN only). */
    async ensureTables(processor: ProcessorDefinition): Promise<void> {
      // Keyed by the tables too: a version's live and shadow tables are created separately.
      const id = `${processor.name}@${processor.version}:${Object.values(processor.outputs).map((o) => o.table).join(',')}`;
      let ready = tablesReady.get(id);
      if (!ready) {
        ready = applyOutputTables(deps.warehouse, processor).then(() => undefined);
        tablesReady.set(id, ready);
        ready.catch(() => tablesReady.delete(id));
      }
      await ready;
    },

    /**
     * Inserts a processed step's rows into their tables and records its dedupe keys
     * (`<token>/dedupe/<stage>`). Offsets of the step already in a table (an earlier landing of the
     * same offsets, e.g. under other steps) are left out, so `count()` stays exact; the insert token
     * is `<token>/<table>` when nothing was left out, else derived from exactly the offsets inserted
     * (never the step token for another row set). Safe to repeat for a retried step. With
     * `recordDedupe: false` (shadow runs) the dedupe keys are not recorded: the live dedupe state
     * belongs to the baseline.
     */
    async write(scope: ProcessingScope, step: ProcessedStep, token: string, range?: { from: number; to: number }, options: { recordDedupe?: boolean } = {}): Promise<void> {
      // Each output table on its own (own present-offset read, own token), all at once.
      await Promise.all([...step.rows].map(async ([table, all]) => {
        if (all.length === 0) return;
        let values = all;
        if (range) {
          const result = await deps.warehouse.query({
            query: `SELECT offset FROM {table:Identifier} WHERE pipeline = {p:String} AND topic = {topic:String} AND partition = {n:UInt32} AND offset >= {from:UInt64} AND offset < {to:UInt64}`,
            query_params: { table, p: scope.pipelineId, topic: scope.topic, n: scope.partition, from: range.from, to: range.to },
            format: 'JSONCompactEachRow',
          });
          const present = new Set((await result.json<[string | number]>()).map(([o]) => Number(o)));
          if (present.size > 0) values = all.filter((r) => !present.has(Number(r.offset)));
        }
        if (values.length === 0) return;
        const tableToken = values.length === all.length ? `${token}/${table}` : `${token}/${table}/rest-${createHash('sha256').update(values.map((r) => String(r.offset)).join(',')).digest('hex').slice(0, 16)}`;
        await deps.warehouse.insert({
          table,
          values,
          format: 'JSONEachRow',
          clickhouse_settings: { insert_deduplicate: 1, insert_deduplication_token: tableToken, async_insert: 0, max_partitions_per_insert_block: '0' },
        });
      }));
      for (const { stage, keys } of options.recordDedupe === false ? [] : step.dedupeKeys) {
        await dedupe.record({ pipelineId: scope.pipelineId, stage, topic: scope.topic, partition: scope.partition }, keys, `${token}/dedupe/${stage}`);
      }
      log.debug('processed step written', { batchId: scope.batchId, emitted: step.emitted, failures: step.failures.length });
    },
  };
}
