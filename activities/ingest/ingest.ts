/**
 * Ingest activities: plan a batch, land exactly that batch, commit progress. A batch is the
 * offset range `[from, to)` planned by the workflow before landing, so a retried landing is the
 * same batch and ClickHouse's insert_deduplication_token (`<pipeline>/<topic>/<partition>/<from>-<to>`)
 * makes it land once. Activities return offsets and counts only, never payloads.
 */
import { Context } from '@temporalio/activity';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin, Kafka } from 'kafkajs';
import { batchId, type PipelineInput } from '../../schemas/ingest/pipeline.js';
import { duplicateIdReason, validateEvent, type DeadLetterReason } from '../../schemas/contracts/validate.js';
import { InvalidInputError, PlatformError, toActivityFailure } from '../errors.js';
import { GroupOffsetCommitter } from './kafka-offsets.js';
import { KafkaRangeFetcher, type FetchedRecord } from './kafka-range.js';
import { silentLogger, type Logger } from '../logger.js';
import type { LandingObserver } from '../observability/landing-observer.js';
import { inSpan, inSpanSync } from '../observability/spans.js';

/** Dependencies of {@link createIngestActivities}. */
export interface IngestDeps {
  kafka: Kafka;
  /** Bound to the platform's database. */
  warehouse: ClickHouseClient;
  log?: Logger;
  /** Stamped on every row. */
  processorVersion: string;
  /** The process's Kafka connections; created here when absent (pass them to be able to close them). */
  resources?: KafkaResources;
  /** Largest amount of record bytes held in memory per landing step. @default 8 MiB */
  chunkMaxBytes?: number;
  /** How long one fetch may wait for its records. @default 60000 */
  fetchTimeoutMs?: number;
  /** Told about rows as they are validated and become queryable (freshness metrics). @default none */
  observer?: LandingObserver;
}

/** Input of planBatch. */
export interface PlanBatchInput {
  pipelineId: string;
  topic: string;
  partition: number;
  /** The workflow's cursor; null on a fresh start (then the group's offset, else startFrom). */
  cursor: number | null;
  maxEvents: number;
  consumerGroup: string;
  startFrom: PipelineInput['startFrom'];
}

/** A planned batch: `[from, to)`, empty when `from === to`. */
export interface BatchPlan {
  from: number;
  to: number;
  /** High watermark at planning time. */
  highWatermark: number;
  /** Log start offset at planning time. */
  lowWatermark: number;
  /** Where `from` came from on a fresh start. */
  source: 'cursor' | 'group' | 'earliest' | 'latest';
}

/** Input of landBatch. */
export interface LandBatchInput {
  pipelineId: string;
  topic: string;
  partition: number;
  from: number;
  to: number;
  maxEventBytes: number;
  /** The partition's high watermark when the batch was planned (recorded in `lineage_batches.high_watermark` for backlog over time). */
  highWatermark?: number;
}

/** Result of landBatch: counts only. */
export interface LandBatchResult {
  batchId: string;
  valid: number;
  rejected: number;
  /** Offsets of the range without a record (retention, compaction, transaction markers). */
  missing: number;
  bytes: number;
  /** Number of landing steps (inserts per table). */
  chunks: number;
  /** Wall time of this attempt, ms (the workflow adapts its batch size to it). */
  durationMs: number;
  /** Rejected events by `reason_code` (metrics, OpenLineage). */
  rejectCodes: Record<string, number>;
  /** Contracts of the landed events, `subject@version`, sorted. */
  contractVersions: string[];
}

/** Input of commitProgress. */
export interface CommitProgressInput {
  consumerGroup: string;
  topic: string;
  partition: number;
  /** Next offset to read (Kafka convention). */
  offset: number;
}

/** Input of ensureTopic. */
export interface EnsureTopicInput {
  topic: string;
  /** Partition count when the topic has to be created. */
  partitions: number;
}

/** Row of the `events` table. */
export interface EventRow {
  pipeline: string;
  batch_id: string;
  topic: string;
  partition: number;
  offset: number;
  event_id: string;
  subject: string;
  contract_version: number;
  event_key: string;
  event_time: string;
  data: string;
  kafka_timestamp: string;
  processor_version: string;
}

/** Row of the `dead_letters` table. */
export interface DeadLetterRow {
  pipeline: string;
  batch_id: string;
  topic: string;
  partition: number;
  offset: number;
  reason_code: string;
  reason_message: string;
  reason_detail: string;
  subject: string;
  contract_version: number;
  message_key: string;
  raw: string;
  raw_encoding: 'utf8' | 'base64';
  raw_bytes: number;
  kafka_timestamp: string;
  processor_version: string;
}

/** Running totals of a landing, also its heartbeat details (so a retry resumes after landed chunks). */
export interface LandingProgress {
  next: number;
  valid: number;
  rejected: number;
  bytes: number;
  chunks: number;
  versions: string[];
  codes: Record<string, number>;
  minEventTime: string | null;
  maxEventTime: string | null;
  startedAt: string;
}

/** ClickHouse DateTime64 text in UTC: `2026-01-01 12:00:00.000`. */
export function toClickHouseTime(value: string | number | Date): string {
  return new Date(value).toISOString().replace('T', ' ').replace('Z', '');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function rawText(value: Buffer | null): { raw: string; raw_encoding: 'utf8' | 'base64' } {
  if (!value) return { raw: '', raw_encoding: 'utf8' };
  try {
    return { raw: utf8.decode(value), raw_encoding: 'utf8' };
  } catch {
    return { raw: value.toString('base64'), raw_encoding: 'base64' };
  }
}

/** Context stamped on the rows of one landing step. */
export interface RowContext {
  pipelineId: string;
  topic: string;
  partition: number;
  batchId: string;
  processorVersion: string;
  maxEventBytes: number;
}

/**
 * Validates records and splits them into event rows and dead-letter rows. Pure given its input,
 * so a retried step produces the same rows. Duplicate event ids are detected within the step.
 */
export function buildRows(records: readonly FetchedRecord[], ctx: RowContext): { events: EventRow[]; deadLetters: DeadLetterRow[] } {
  const events: EventRow[] = [];
  const deadLetters: DeadLetterRow[] = [];
  const seen = new Map<string, number>();
  for (const record of records) {
    const kafkaTime = toClickHouseTime(record.timestamp);
    const common = {
      pipeline: ctx.pipelineId,
      batch_id: ctx.batchId,
      topic: ctx.topic,
      partition: ctx.partition,
      offset: record.offset,
      processor_version: ctx.processorVersion,
      kafka_timestamp: kafkaTime,
    };
    const reject = (reason: DeadLetterReason, subject = '', version = 0): void => {
      deadLetters.push({
        ...common,
        reason_code: reason.code,
        reason_message: reason.message,
        reason_detail: JSON.stringify(reason.details),
        subject,
        contract_version: version,
        message_key: record.key ? record.key.toString('utf8') : '',
        ...rawText(record.value),
        raw_bytes: record.value?.byteLength ?? 0,
      });
    };
    const result = validateEvent(record.value ?? new Uint8Array(0), { maxBytes: ctx.maxEventBytes, headers: record.headers ?? null });
    if (!result.ok) {
      const details = result.reason.details;
      reject(result.reason, details.subject ?? '', details.version ?? 0);
      continue;
    }
    const first = seen.get(result.event.id);
    if (first !== undefined) {
      reject(duplicateIdReason(result.event.id, String(first)), result.subject, result.version);
      continue;
    }
    seen.set(result.event.id, record.offset);
    events.push({
      ...common,
      event_id: result.event.id,
      subject: result.subject,
      contract_version: result.version,
      event_key: result.event.key,
      event_time: toClickHouseTime(result.event.time),
      data: JSON.stringify(result.event.data),
    });
  }
  return { events, deadLetters };
}

/**
 * Settings of a de-duplicated insert. Tables are partitioned by event or record time, which
 * producers control: a batch spanning many months must not fail (and block its partition) on
 * the default 100-partitions-per-insert limit.
 */
function dedup(token: string): Record<string, string | number> {
  return { insert_deduplicate: 1, insert_deduplication_token: token, async_insert: 0, max_partitions_per_insert_block: 0 };
}

/**
 * The long-lived Kafka connections of one worker process: the range fetcher (one consumer per
 * topic), an admin client and the group offset committer. Close at shutdown.
 */
export class KafkaResources {
  readonly fetcher: KafkaRangeFetcher;
  readonly committer: GroupOffsetCommitter;
  private adminPromise: Promise<Admin> | null = null;

  constructor(
    private readonly kafka: Kafka,
    log: Logger = silentLogger,
  ) {
    this.fetcher = new KafkaRangeFetcher(kafka, { log: (line) => log.warn(line) });
    this.committer = new GroupOffsetCommitter(kafka, () => this.admin());
  }

  /** The shared admin client, connected on first use. */
  admin(): Promise<Admin> {
    if (!this.adminPromise) {
      const a = this.kafka.admin();
      this.adminPromise = a.connect().then(
        () => a,
        (err: unknown) => {
          this.adminPromise = null;
          throw err;
        },
      );
    }
    return this.adminPromise;
  }

  /** Disconnects everything. */
  async close(): Promise<void> {
    const admin = this.adminPromise;
    this.adminPromise = null;
    await Promise.allSettled([this.fetcher.close(), this.committer.close(), admin?.then((a) => a.disconnect())]);
  }
}

/** Builds the ingest activities around the given clients. */
export function createIngestActivities(deps: IngestDeps) {
  const log = deps.log ?? silentLogger;
  const resources = deps.resources ?? new KafkaResources(deps.kafka, log);
  const { fetcher, committer } = resources;
  const admin = () => resources.admin();
  const chunkMaxBytes = deps.chunkMaxBytes ?? 8 * 1024 * 1024;
  const fetchTimeoutMs = deps.fetchTimeoutMs ?? 60_000;

  async function watermarks(topic: string, partition: number): Promise<{ low: number; high: number }> {
    const offsets = await (await admin()).fetchTopicOffsets(topic);
    const p = offsets.find((o) => o.partition === partition);
    if (!p) throw new InvalidInputError(`topic ${topic}: expected partition ${partition}, found partitions ${offsets.map((o) => o.partition).join(', ')}`);
    return { low: Number(p.low), high: Number(p.high) };
  }

  return {
    /** Creates the topic when missing; returns its partition numbers. */
    async ensureTopic(input: EnsureTopicInput): Promise<{ partitions: number[]; created: boolean }> {
      const a = await admin();
      const existing = await a.listTopics();
      let created = false;
      if (!existing.includes(input.topic)) {
        created = await a.createTopics({ topics: [{ topic: input.topic, numPartitions: input.partitions }], waitForLeaders: true });
        log.info('created topic', { topic: input.topic, partitions: input.partitions });
      }
      const metadata = await a.fetchTopicMetadata({ topics: [input.topic] });
      const partitions = (metadata.topics[0]?.partitions ?? []).map((p) => p.partitionId).sort((x, y) => x - y);
      return { partitions, created };
    },

    /** Plans the next batch deterministically: `[from, min(high watermark, from + maxEvents))`. */
    async planBatch(input: PlanBatchInput): Promise<BatchPlan> {
      const { low, high } = await watermarks(input.topic, input.partition);
      let from: number;
      let source: BatchPlan['source'] = 'cursor';
      if (input.cursor !== null) {
        from = input.cursor;
      } else {
        const group = await (await admin()).fetchOffsets({ groupId: input.consumerGroup, topics: [input.topic] });
        const committed = Number(group[0]?.partitions.find((p) => p.partition === input.partition)?.offset ?? -1);
        if (committed >= 0) {
          from = committed;
          source = 'group';
        } else {
          from = input.startFrom === 'latest' ? high : low;
          source = input.startFrom;
        }
      }
      if (from > high) {
        // The log is shorter than the cursor (topic re-created?): wait rather than invent offsets.
        log.warn('cursor beyond high watermark', { topic: input.topic, partition: input.partition, cursor: from, high });
        return { from, to: from, highWatermark: high, lowWatermark: low, source };
      }
      const to = Math.min(high, from + input.maxEvents);
      return { from, to, highWatermark: high, lowWatermark: low, source };
    },

    /**
     * Lands exactly `[from, to)`: fetches it in byte-capped steps, validates, inserts valid rows
     * into `events` and rejects into `dead_letters` (each step with its own de-duplication token),
     * then writes one `lineage_batches` row. Heartbeats its progress and resumes from it.
     */
    async landBatch(input: LandBatchInput): Promise<LandBatchResult> {
      try {
        return await land(input);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /** Commits `offset` as the pipeline group's position on the partition. */
    async commitProgress(input: CommitProgressInput): Promise<void> {
      await committer.commit(input.consumerGroup, input.topic, input.partition, input.offset);
    },
  };

  async function land(input: LandBatchInput): Promise<LandBatchResult> {
    const { pipelineId, topic, partition, from, to } = input;
    if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to >= from)) {
      throw new InvalidInputError(`landBatch: expected integers 0 <= from <= to, got from=${from} to=${to}`);
    }
    const ctx = Context.current();
    const began = Date.now();
    const id = batchId(pipelineId, topic, partition, from, to);
    const resumed = ctx.info.heartbeatDetails as LandingProgress | undefined;
    const progress: LandingProgress =
      resumed && resumed.next >= from && resumed.next <= to
        ? resumed
        : { next: from, valid: 0, rejected: 0, bytes: 0, chunks: 0, versions: [], codes: {}, minEventTime: null, maxEventTime: null, startedAt: toClickHouseTime(Date.now()) };
    if (resumed) log.info('landing resumes from heartbeat', { batchId: id, next: progress.next });
    const beat = setInterval(() => ctx.heartbeat(progress), 2_000);
    try {
      while (progress.next < to) {
        const fetchFrom = progress.next;
        const chunk = await inSpan('fetch', { 'messaging.system': 'kafka', 'messaging.destination.name': topic, 'messaging.destination.partition.id': String(partition), 'streamwarden.from_offset': fetchFrom, 'streamwarden.to_offset': to }, () =>
          fetcher.fetch(topic, partition, fetchFrom, to, {
            deadline: Date.now() + fetchTimeoutMs,
            maxBytes: chunkMaxBytes,
            signal: ctx.cancellationSignal,
          }),
        );
        if (chunk.next <= progress.next) throw new PlatformError('range_stalled', `fetch ${topic}[${partition}] made no progress at offset ${progress.next}`, true);
        // The step's range, not the batch's: a batch landed in one step keeps the batch token.
        const stepToken = batchId(pipelineId, topic, partition, progress.next, chunk.next);
        const rows = inSpanSync('validate', { 'streamwarden.records': chunk.records.length }, () =>
          buildRows(chunk.records, { pipelineId, topic, partition, batchId: id, processorVersion: deps.processorVersion, maxEventBytes: input.maxEventBytes }),
        );
        deps.observer?.validated({ pipelineId, topic }, rows.events, Date.now());
        if (rows.events.length > 0) {
          await inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'events', 'streamwarden.rows': rows.events.length }, () =>
            deps.warehouse.insert({ table: 'events', values: rows.events, format: 'JSONEachRow', clickhouse_settings: dedup(stepToken) }),
          );
          deps.observer?.queryable({ pipelineId, topic }, rows.events, Date.now());
        }
        if (rows.deadLetters.length > 0) {
          await inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'dead_letters', 'streamwarden.rows': rows.deadLetters.length }, () =>
            deps.warehouse.insert({ table: 'dead_letters', values: rows.deadLetters, format: 'JSONEachRow', clickhouse_settings: dedup(`${stepToken}/dead_letters`) }),
          );
        }
        for (const e of rows.events) {
          const version = `${e.subject}@${e.contract_version}`;
          if (!progress.versions.includes(version)) progress.versions.push(version);
          if (progress.minEventTime === null || e.event_time < progress.minEventTime) progress.minEventTime = e.event_time;
          if (progress.maxEventTime === null || e.event_time > progress.maxEventTime) progress.maxEventTime = e.event_time;
        }
        for (const d of rows.deadLetters) progress.codes[d.reason_code] = (progress.codes[d.reason_code] ?? 0) + 1;
        progress.valid += rows.events.length;
        progress.rejected += rows.deadLetters.length;
        progress.bytes += chunk.bytes;
        progress.chunks += 1;
        progress.next = chunk.next;
        ctx.heartbeat(progress);
      }
      const missing = to - from - progress.valid - progress.rejected;
      await inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'lineage_batches', 'streamwarden.rows': 1 }, () => deps.warehouse.insert({
        table: 'lineage_batches',
        values: [
          {
            pipeline: pipelineId,
            batch_id: id,
            topic,
            partition,
            from_offset: from,
            to_offset: to,
            high_watermark: input.highWatermark ?? null,
            valid_count: progress.valid,
            rejected_count: progress.rejected,
            missing_count: Math.max(0, missing),
            bytes: progress.bytes,
            contract_versions: progress.versions.sort(),
            reject_codes: progress.codes,
            min_event_time: progress.minEventTime,
            max_event_time: progress.maxEventTime,
            processor_version: deps.processorVersion,
            workflow_id: ctx.info.workflowExecution?.workflowId ?? '',
            run_id: ctx.info.workflowExecution?.runId ?? '',
            activity_attempt: ctx.info.attempt,
            started_at: progress.startedAt,
            finished_at: toClickHouseTime(Date.now()),
          },
        ],
        format: 'JSONEachRow',
        clickhouse_settings: dedup(`${id}/lineage`),
      }));
      log.debug('batch landed', { batchId: id, valid: progress.valid, rejected: progress.rejected, missing });
      return {
        batchId: id,
        valid: progress.valid,
        rejected: progress.rejected,
        missing: Math.max(0, missing),
        bytes: progress.bytes,
        chunks: progress.chunks,
        durationMs: Date.now() - began,
        rejectCodes: { ...progress.codes },
        contractVersions: [...progress.versions].sort(),
      };
    } finally {
      clearInterval(beat);
    }
  }
}

/** The ingest activities. */
export type IngestActivities = ReturnType<typeof createIngestActivities>;
