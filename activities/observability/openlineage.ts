/**
 * OpenLineage run events for batch landings (spec 2-0-2, https://openlineage.io/spec/2-0-2/OpenLineage.json;
 * the pinned schema files are in schemas/openlineage/). One landing of `[from, to)` on a partition
 * is one run: START when an attempt begins, then COMPLETE or FAIL. Its run id is a UUID derived
 * from the batch id (name-based, RFC 9562 version 5 layout), so every attempt of a retried batch
 * and every worker report the same run. The parent facet (standard key `parent`) names the
 * partition consumer's workflow run, the pipeline run that planned the batch.
 *
 * Datasets follow the OpenLineage naming conventions: the input is the Kafka topic
 * (`kafka://<bootstrap host:port>`, name = topic) with the `kafkaOffsets` input facet (this
 * platform's; schema in schemas/openlineage/streamwarden/) and the contract as `schema` facet; the
 * outputs are the ClickHouse tables (`clickhouse://<host:port>`, name = `<database>.<table>`) with
 * `outputStatistics` and, on `events`, `columnLineage` from contract fields to columns.
 *
 * {@link OpenLineageEmitter} sends them off the hot path: a bounded queue drained by one
 * background loop, each POST with a timeout; a full queue drops the newest event and counts it.
 * A slow, hanging or dead endpoint therefore never delays or fails a landing.
 */
import { createHash } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { contractJsonSchema } from '../../schemas/compat/json-schema.js';
import type { JsonSchema } from '../../schemas/compat/shape.js';
import { lookupContract } from '../../schemas/contracts/index.js';
import { batchId } from '../../schemas/ingest/pipeline.js';
import type { LandBatchResult } from '../ingest/ingest.js';
import type { LandingLineageSink, LandingRange } from './interceptor.js';
import type { PlatformMetrics } from './metrics.js';

/** The spec version the events follow; its schema URL is each event's `schemaURL`. */
export const openLineageSchemaUrl = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';
/** `_schemaURL` of the platform's Kafka offsets facet. */
export const kafkaOffsetsFacetSchemaUrl = 'https://github.com/streamwarden/streamwarden/blob/main/schemas/openlineage/streamwarden/KafkaOffsetsInputDatasetFacet.json#/$defs/KafkaOffsetsInputDatasetFacet';

const facetUrls = {
  parent: 'https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet',
  errorMessage: 'https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet',
  jobType: 'https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet',
  schema: 'https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet',
  columnLineage: 'https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet',
  outputStatistics: 'https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet',
  inputStatistics: 'https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet',
} as const;

/** A run event as sent (plain JSON). */
export type RunEvent = Record<string, unknown> & { eventType: 'START' | 'RUNNING' | 'COMPLETE' | 'ABORT' | 'FAIL'; run: { runId: string; facets?: Record<string, unknown> } };

/** Where the landing's datasets live, for dataset namespaces and names. */
export interface LineageLocation {
  /** Job namespace. @default "streamwarden" */
  namespace: string;
  /** Kafka bootstrap servers (the first names the input namespace). */
  kafkaBrokers: readonly string[];
  /** ClickHouse URL the worker writes to. */
  clickhouseUrl: string;
  database: string;
  /** URI of the producer (`producer` and every facet's `_producer`), e.g. the processor version. */
  producer: string;
}

/** The workflow run that planned the batch, and the attempt. */
export interface LandingRun {
  workflowId: string;
  runId: string;
  attempt: number;
}

/** Name-based UUID (RFC 9562 §5.5 layout: SHA-1, version 5) of `name` in the platform's namespace. */
export function batchRunId(name: string): string {
  const h = createHash('sha1').update('streamwarden/openlineage/run\0').update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** How each `events` column is made from the envelope (mirrors buildRows in activities/ingest/ingest.ts). */
export const eventsColumnSources: Readonly<Record<string, { from: readonly string[]; subtype: 'IDENTITY' | 'TRANSFORMATION'; description: string }>> = {
  event_id: { from: ['id'], subtype: 'IDENTITY', description: 'envelope id' },
  subject: { from: ['subject'], subtype: 'IDENTITY', description: 'envelope subject (or the Kafka header)' },
  contract_version: { from: ['version'], subtype: 'TRANSFORMATION', description: 'envelope version, upcast to the latest declared migration' },
  event_key: { from: ['key'], subtype: 'IDENTITY', description: 'envelope key' },
  event_time: { from: ['time'], subtype: 'TRANSFORMATION', description: 'envelope time as DateTime64(3) UTC' },
  data: { from: ['data'], subtype: 'TRANSFORMATION', description: 'validated (and upcast) data as JSON text' },
};

function jsonType(schema: JsonSchema | undefined): string {
  const t = (schema as { type?: unknown } | undefined)?.type;
  if (Array.isArray(t)) return t.filter((x) => x !== 'null').join('|') || 'null';
  if (typeof t === 'string') return t;
  if ((schema as { anyOf?: unknown } | undefined)?.anyOf) return 'union';
  return 'any';
}

/** JSON Schema properties of a contract's `data`, by `subject@version` (contracts are immutable, so cached). */
const contractProperties = new Map<string, Record<string, JsonSchema>>();

function propertiesOf(cv: string): Record<string, JsonSchema> {
  let props = contractProperties.get(cv);
  if (!props) {
    const at = cv.lastIndexOf('@');
    const found = lookupContract(cv.slice(0, at), Number(cv.slice(at + 1)));
    props = found.found ? ((contractJsonSchema(found.schema) as { properties?: Record<string, JsonSchema> }).properties ?? {}) : {};
    contractProperties.set(cv, props);
  }
  return props;
}

/** Top-level `data` fields of the contracts landed, for the schema facet and column lineage. */
function contractDataFields(contractVersions: readonly string[]): { name: string; type: string; description: string }[] {
  const fields = new Map<string, { name: string; type: string; description: string }>();
  for (const cv of contractVersions) {
    for (const [name, prop] of Object.entries(propertiesOf(cv))) {
      const seen = fields.get(name);
      if (seen) seen.description += `, ${cv}`;
      else fields.set(name, { name, type: jsonType(prop), description: `contract ${cv}` });
    }
  }
  return [...fields.values()];
}

/** Builds one run event of a landing (pure; `now` is the event time). */
export function landingRunEvent(
  eventType: RunEvent['eventType'],
  input: LandingRange,
  run: LandingRun,
  where: LineageLocation,
  now: Date,
  outcome?: { result?: LandBatchResult; error?: unknown },
): RunEvent {
  const producer = where.producer;
  const id = input.batchId ?? batchId(input.pipelineId, input.topic, input.partition, input.from, input.to);
  const kafkaNamespace = `kafka://${where.kafkaBrokers[0] ?? 'unknown:9092'}`;
  const ch = new URL(where.clickhouseUrl);
  const chNamespace = `clickhouse://${ch.hostname}:${ch.port || (ch.protocol === 'https:' ? '8443' : '8123')}`;
  const result = outcome?.result;
  const dataFields = result ? contractDataFields(result.contractVersions) : [];
  const inputFields = [
    { name: 'id', type: 'string' },
    { name: 'subject', type: 'string' },
    { name: 'version', type: 'integer' },
    { name: 'time', type: 'string', description: 'RFC 3339' },
    { name: 'key', type: 'string' },
    { name: 'data', type: 'struct', ...(dataFields.length > 0 ? { fields: dataFields } : {}) },
  ];
  const runFacets: Record<string, unknown> = {
    parent: { _producer: producer, _schemaURL: facetUrls.parent, run: { runId: run.runId }, job: { namespace: where.namespace, name: run.workflowId } },
  };
  if (eventType === 'FAIL') {
    const err = outcome?.error;
    runFacets.errorMessage = {
      _producer: producer,
      _schemaURL: facetUrls.errorMessage,
      message: err instanceof Error ? err.message : String(err),
      programmingLanguage: 'TypeScript',
      ...(err instanceof Error && err.stack ? { stackTrace: err.stack } : {}),
    };
  }
  const table = (name: string, rows?: number, extra: Record<string, unknown> = {}) => ({
    namespace: chNamespace,
    name: `${where.database}.${name}`,
    ...(Object.keys(extra).length > 0 ? { facets: extra } : {}),
    ...(rows !== undefined ? { outputFacets: { outputStatistics: { _producer: producer, _schemaURL: facetUrls.outputStatistics, rowCount: rows } } } : {}),
  });
  const columnLineage = result
    ? {
        columnLineage: {
          _producer: producer,
          _schemaURL: facetUrls.columnLineage,
          fields: Object.fromEntries(
            Object.entries(eventsColumnSources).map(([column, source]) => [
              column,
              {
                inputFields: (column === 'data' && dataFields.length > 0 ? dataFields.map((f) => `data.${f.name}`) : source.from).map((field) => ({
                  namespace: kafkaNamespace,
                  name: input.topic,
                  field,
                  transformations: [{ type: 'DIRECT', subtype: source.subtype, description: source.description, masking: false }],
                })),
              },
            ]),
          ),
        },
      }
    : {};
  return {
    eventType,
    eventTime: now.toISOString(),
    producer,
    schemaURL: openLineageSchemaUrl,
    run: { runId: batchRunId(id), facets: runFacets },
    job: {
      namespace: where.namespace,
      name: `${input.pipelineId}.land.${input.topic}.${input.partition}`,
      facets: { jobType: { _producer: producer, _schemaURL: facetUrls.jobType, processingType: 'BATCH', integration: 'STREAMWARDEN', jobType: 'TASK' } },
    },
    inputs: [
      {
        namespace: kafkaNamespace,
        name: input.topic,
        facets: { schema: { _producer: producer, _schemaURL: facetUrls.schema, fields: inputFields } },
        inputFacets: {
          kafkaOffsets: { _producer: producer, _schemaURL: kafkaOffsetsFacetSchemaUrl, partition: input.partition, fromOffset: input.from, toOffset: input.to },
          ...(result ? { inputStatistics: { _producer: producer, _schemaURL: facetUrls.inputStatistics, rowCount: input.to - input.from - result.missing, size: result.bytes } } : {}),
        },
      },
    ],
    outputs: [table('events', result?.valid, columnLineage), table('dead_letters', result?.rejected), table('lineage_batches', result ? 1 : undefined)],
  };
}

/** Where events go. */
export interface OpenLineageTransport {
  /** Base URL; events are POSTed to `<url>/<endpoint>`. */
  url?: string;
  /** @default "api/v1/lineage" */
  endpoint?: string;
  /** Bearer token (never logged). */
  apiKey?: string;
  /** Append one JSON event per line. */
  file?: string;
  /** Per-request timeout. @default 5000 */
  timeoutMs?: number;
}

/** Options of {@link OpenLineageEmitter}. */
export interface OpenLineageEmitterOptions {
  transport: OpenLineageTransport;
  location: LineageLocation;
  /** Most events waiting; further ones are dropped (and counted). @default 1000 */
  maxQueue?: number;
  metrics?: PlatformMetrics;
  /** Told about send failures (rate-limited by the caller's logger level). */
  onError?: (message: string, meta: Record<string, unknown>) => void;
}

/** Counts of what happened to events so far. */
export interface EmitterStats {
  queued: number;
  sent: number;
  failed: number;
  dropped: number;
}

/** Sends landing run events in the background; see the module comment. */
export class OpenLineageEmitter implements LandingLineageSink {
  private readonly queue: RunEvent[] = [];
  private readonly maxQueue: number;
  private draining: Promise<void> | null = null;
  private closed = false;
  readonly stats: EmitterStats = { queued: 0, sent: 0, failed: 0, dropped: 0 };

  constructor(private readonly options: OpenLineageEmitterOptions) {
    this.maxQueue = options.maxQueue ?? 1000;
  }

  /** Where the emitted events say their datasets live (namespace, brokers, ClickHouse, producer). */
  get location(): LineageLocation {
    return this.options.location;
  }

  started(input: LandingRange, run: LandingRun): void {
    this.enqueue(landingRunEvent('START', input, run, this.options.location, new Date()));
  }

  completed(input: LandingRange, run: LandingRun, result: LandBatchResult): void {
    this.enqueue(landingRunEvent('COMPLETE', input, run, this.options.location, new Date(), { result }));
  }

  failed(input: LandingRange, run: LandingRun, error: unknown): void {
    this.enqueue(landingRunEvent('FAIL', input, run, this.options.location, new Date(), { error }));
  }

  /** Queues an event; never blocks, never throws. */
  enqueue(event: RunEvent): void {
    if (this.closed || this.queue.length >= this.maxQueue) {
      this.stats.dropped += 1;
      this.options.metrics?.lineageEvents.labels('dropped').inc();
      return;
    }
    this.queue.push(event);
    this.stats.queued += 1;
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  /** Waits until the queue is empty or `timeoutMs` passed, then stops accepting events. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closed = true;
    if (this.draining) await Promise.race([this.draining, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private async drain(): Promise<void> {
    // Yield first, so the landing that enqueued continues before any I/O starts.
    await new Promise((r) => setImmediate(r));
    for (let event = this.queue.shift(); event; event = this.queue.shift()) {
      try {
        await this.send(event);
        this.stats.sent += 1;
        this.options.metrics?.lineageEvents.labels('sent').inc();
      } catch (err) {
        this.stats.failed += 1;
        this.options.metrics?.lineageEvents.labels('failed').inc();
        this.options.onError?.('OpenLineage event not delivered', { eventType: event.eventType, runId: event.run.runId, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  private async send(event: RunEvent): Promise<void> {
    const t = this.options.transport;
    const body = JSON.stringify(event);
    if (t.file) await appendFile(t.file, `${body}\n`);
    if (t.url) {
      const url = `${t.url.replace(/\/$/, '')}/${(t.endpoint ?? 'api/v1/lineage').replace(/^\//, '')}`;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(t.apiKey ? { authorization: `Bearer ${t.apiKey}` } : {}) },
        body,
        signal: AbortSignal.timeout(t.timeoutMs ?? 5_000),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    }
  }
}
