/**
 * Ingest activities: plan a batch, land exactly that batch, commit progress. A batch is the
 * offset range `[from, to)` planned by the workflow before landing, so a retried landing is the
 * same batch and ClickHouse's insert_deduplication_token (`<pipeline>/<topic>/<partition>/<from>-<to>`)
 * makes it land once. Activities return offsets and counts only, never payloads.
 */
import { createHash } from 'node:crypto';
import { CancelledFailure, Context } from '@temporalio/activity';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin, Kafka } from 'kafkajs';
import type { PipelineInput } from '../../schemas/ingest/pipeline.js';
import { batchPlanSchema, cutSteps, planBatchId, stepEventsFor, type BatchPlanSteps, type BatchStep } from '../../schemas/ingest/batch-plan.js';
import { describeInputError } from '../../schemas/ingest/pipeline.js';
import { duplicateIdReason, tombstoneReason, undecodableBatchReason, validateEvent, type DeadLetterReason, type FirstLanding } from '../../schemas/contracts/validate.js';
import { defaultDuplicateIdWindowMinutes } from '../../schemas/ingest/pipeline.js';
import { InvalidInputError, PlatformError, RangeIncompleteError, RangeReadError, toActivityFailure } from '../errors.js';
import type { SubjectDefinition } from '../../schemas/contracts/define.js';
import { createReplayActivities } from './replay.js';
import { registerKafkaCodecs } from './kafka-codecs.js';
import { GroupOffsetCommitter } from './kafka-offsets.js';
import type { ValidEvent } from '../../schemas/contracts/envelope.js';
import { resolveSelection, type ProcessorChange, type ProcessorSelection } from '../../schemas/processing/selection.js';
import { createProcessingRuntime, shadowProcessor, type ProcessingFailure, type ProcessingRuntime, type ProcessingScope, type SourceEvent } from '../processing/runtime.js';
import type { ProcessorFamily } from '../../schemas/processing/define.js';
import { processors as treeProcessors } from '../../schemas/processors/index.js';
import { onCanary, type PlannedRouting } from '../../schemas/rollouts/routing.js';
import { latestRouting, routingForBatch, stepObservations, type RoleStep, type RoutingRow } from '../rollouts/routing.js';
import { RolloutLiveness } from '../rollouts/liveness.js';
import type { Client } from '@temporalio/client';
import { recordObservations } from '../rollouts/observations.js';
import { KafkaRangeFetcher, type FetchedRecord } from './kafka-range.js';
import { RawRangeReader, RawReadError, type PoisonBatch, type RawRangeReaderOptions } from './kafka-raw-fetch.js';
import { silentLogger, type Logger } from '../logger.js';
import { heartbeating } from './heartbeat.js';
import type { LandingObserver } from '../observability/landing-observer.js';
import { inSpan, inSpanSync } from '../observability/spans.js';
import { batchLandedSignalName, type BatchLanded } from '../../schemas/analytics/landing-report.js';

/** Dependencies of {@link createIngestActivities}. */
export interface IngestDeps {
  kafka: Kafka;
  /** Bound to the platform's database. */
  warehouse: ClickHouseClient;
  log?: Logger;
  /** Stamped on every row. */
  processorVersion: string;
  /** Runs the batch plan's processor (created here when absent). */
  processing?: ProcessingRuntime;
  /** The process's Kafka connections; created here when absent (pass them to be able to close them). */
  resources?: KafkaResources;
  /** Largest amount of record bytes held in memory per landing step. @default 8 MiB */
  chunkMaxBytes?: number;
  /** How long one fetch may wait for its records. @default 60000 */
  fetchTimeoutMs?: number;
  /** Told about rows as they are validated and become queryable (freshness metrics). @default none */
  observer?: LandingObserver;
  /** The contract catalogue events are validated against. @default the working tree's subjects */
  contracts?: readonly SubjectDefinition[];
  /** Processor versions this worker can run (batch plans name them). @default the working tree's catalogue */
  catalogue?: readonly ProcessorFamily[];
  /**
   * Temporal client: the planner routes a batch only while the rollout that published the routing
   * is running (a terminated rollout's last routing row is ignored). Without it routing rows are
   * trusted as written (tests of the landing path alone).
   */
  temporal?: Client;
  /**
   * How a landing step finds ids that already landed for the pipeline (issue 7, point 6).
   * `claims`: the step inserts one claim per candidate id into `event_id_claims` and reads back
   * every claim of its ids within the window; an id is the step's only when its claim ranks first
   * ({@link rankClaims}); exact when two partitions land the same new id at the same moment.
   * `lookup`: the step looks its ids up in `events` before inserting (one query fewer; two steps
   * racing on the same new id both see nothing and both land it). Tests and the bench compare them.
   * @default 'claims'
   */
  duplicateIdCheck?: 'claims' | 'lookup';
  /**
   * How landing steps read Kafka. `raw`: the raw Fetch reader ({@link RawRangeReader}), which
   * verifies every batch's CRC-32C (a mismatch makes the batch's offsets `undecodable_batch` /
   * `crc_mismatch` dead letters). `kafkajs`: the KafkaJS range consumer, which checks no CRC; the
   * raw reader then only re-reads a step KafkaJS cannot decode. Forced to `kafkajs` when the
   * resources' Kafka connection uses SASL (the raw reader does not speak it). @default 'raw'
   */
  rangeReader?: 'raw' | 'kafkajs';
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
  /**
   * Average record size of the partition's previous landing, bytes (from history); sizes the
   * steps. @default 1024
   */
  recordBytes?: number | null;
  /**
   * The processor the partition runs (the baseline of a rollout). When set, the planner reads the
   * pipeline's canary routing (`rollout_routing`) and records it in the plan. @default none (no routing)
   */
  processor?: ProcessorSelection | null;
}

/**
 * A planned batch: `[from, to)` (empty when `from === to`) with its generation, steps and tokens
 * (see schemas/ingest/batch-plan.ts), plus what planning saw.
 */
export interface BatchPlan extends BatchPlanSteps {
  /** High watermark at planning time. */
  highWatermark: number;
  /** Log start offset at planning time. */
  lowWatermark: number;
  /** Where `from` came from on a fresh start. */
  source: 'cursor' | 'group' | 'earliest' | 'latest';
}

/** Input of landBatch: the plan recorded in history, landed exactly as planned. */
export interface LandBatchInput {
  plan: BatchPlanSteps;
  maxEventBytes: number;
  /**
   * Set on the first batch planned after a processor or flag change: recorded in
   * `processor_switches` with this batch's id and first offset.
   */
  change?: ProcessorChange | null;
  /**
   * Duplicate-id window, minutes of event time: an event whose id already landed for the
   * pipeline at another offset, with an event time at most this far from its own, becomes a
   * `duplicate_id` dead letter pointing at that offset. 0 turns the cross-batch check off (ids
   * are still unique within a step). From the workflow input, so recorded in history.
   * @default 1440 (24 h)
   */
  duplicateIdWindowMinutes?: number;
  /**
   * Workflow id of the pipeline's aggregator. When set and the batch has valid events, the landing
   * sends it `batchLanded` `{partition, from, to}` as soon as the lineage row is written, instead
   * of leaving the report to the workflow after the activity completed: that saves the
   * completion's round trip and the partition consumer's next workflow task (on a loaded worker,
   * most of the time from a window becoming final to the aggregator hearing of it). Best effort,
   * at most {@link reportTimeoutMs}: `reportedLanding` in the result says whether it was delivered,
   * and the workflow sends the report itself when it was not. @default none (no report)
   */
  reportLandingTo?: string;
}

/** DateTime64(3) range of ClickHouse, ms: times outside it are stored clamped, so the row would not say what a report computed. */
const dateTime64MinMs = Date.UTC(1900, 0, 1);
const dateTime64MaxMs = Date.UTC(2299, 11, 31, 23, 59, 59, 999);

/**
 * The lineage row's facts as the aggregator reads them back (`toUnixTimestamp64Milli`), for the
 * landing report: event-time bounds from the row's `YYYY-MM-DD hh:mm:ss.sss` UTC strings, and the
 * finish time. Empty (the report only wakes the aggregator, which then reads the row) when a bound
 * is outside ClickHouse's DateTime64 range or does not parse.
 */
export function lineageFacts(minEventTime: string | null, maxEventTime: string | null, finishedAtMs: number): { minEventTimeMs: number | null; maxEventTimeMs: number | null; finishedAtMs: number } | Record<string, never> {
  const toMs = (t: string | null): number | null | undefined => {
    if (t === null) return null;
    const ms = Date.parse(`${t.replace(' ', 'T')}Z`);
    return Number.isInteger(ms) && ms >= dateTime64MinMs && ms <= dateTime64MaxMs ? ms : undefined;
  };
  const min = toMs(minEventTime);
  const max = toMs(maxEventTime);
  return min === undefined || max === undefined ? {} : { minEventTimeMs: min, maxEventTimeMs: max, finishedAtMs };
}

/** Longest wait for the landing report's signal, ms. */
export const reportTimeoutMs = 2_000;

/** Result of landBatch: counts only. */
export interface LandBatchResult {
  batchId: string;
  valid: number;
  rejected: number;
  /** Offsets of the range without a record (retention, compaction, transaction markers). */
  missing: number;
  bytes: number;
  /** Number of landing steps of the plan (inserts per table). */
  chunks: number;
  /** Records of the range already present (an earlier landing of the same offsets), not inserted again. */
  alreadyLanded: number;
  /** Rows this landing inserted into `events` (valid events not present before; a replay's newly landed events). */
  insertedEvents: number;
  /** Wall time of this attempt, ms (the workflow adapts its batch size to it). */
  durationMs: number;
  /** What the plan's processor did (null without one): the breaker judges `failures / processed`. */
  processing: { processed: number; emitted: number; dropped: number; failures: number; deadLetters: number } | null;
  /** Rejected events by `reason_code` (metrics, OpenLineage). */
  rejectCodes: Record<string, number>;
  /** Contracts of the landed events, `subject@version`, sorted. */
  contractVersions: string[];
  /** Whether the aggregator named by `reportLandingTo` was sent `batchLanded` (false when not asked, no valid events, or the signal failed). */
  reportedLanding: boolean;
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
  /** The pipeline's largest accepted event, bytes: sets the created topic's `max.message.bytes` (see {@link topicMaxMessageBytes}). */
  maxEventBytes?: number;
}

/**
 * `max.message.bytes` of a topic the platform creates for a pipeline accepting events up to
 * `maxEventBytes`: twice that plus 64 KiB of batch overhead. Events up to twice the limit reach
 * the pipeline and become `oversized` dead letters (kept, with their bytes) instead of being
 * refused at the producer by the broker's default of about 1 MB.
 */
export function topicMaxMessageBytes(maxEventBytes: number): number {
  return 2 * maxEventBytes + 64 * 1024;
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

/**
 * Running totals of a landing, also its heartbeat details: a retry of the same batch resumes at
 * step `stepsDone` of the plan (a step boundary, so tokens never shift).
 */
export interface LandingProgress {
  batchId: string;
  stepsDone: number;
  valid: number;
  rejected: number;
  alreadyLanded: number;
  /** Rows inserted into `events` (absent in heartbeats of older workers). */
  insertedEvents?: number;
  bytes: number;
  versions: string[];
  codes: Record<string, number>;
  minEventTime: string | null;
  maxEventTime: string | null;
  startedAt: string;
  /** Processor counters (absent in heartbeats of older workers). */
  processed?: number;
  emitted?: number;
  dropped?: number;
  processingFailures?: number;
  processingDeadLetters?: number;
  /** Events the canary of a routed batch processed (absent in heartbeats of older workers). */
  canaryEvents?: number;
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

/**
 * The dead-letter row of an event a processor refused (`processing_error`, `output_violation`, ...):
 * the raw record kept exactly, the reason with processor, version and stage in the details.
 */
export function processingDeadLetter(
  record: FetchedRecord,
  failure: ProcessingFailure,
  event: EventRow | undefined,
  ctx: Omit<RowContext, 'maxEventBytes'>,
): DeadLetterRow {
  return {
    pipeline: ctx.pipelineId,
    batch_id: ctx.batchId,
    topic: ctx.topic,
    partition: ctx.partition,
    offset: record.offset,
    reason_code: failure.code,
    reason_message: failure.message,
    reason_detail: JSON.stringify(failure.detail),
    subject: event?.subject ?? '',
    contract_version: event?.contract_version ?? 0,
    message_key: record.key ? record.key.toString('utf8') : '',
    ...rawText(record.value),
    raw_bytes: record.value?.byteLength ?? 0,
    kafka_timestamp: toClickHouseTime(record.timestamp),
    processor_version: ctx.processorVersion,
  };
}

/** Context stamped on the rows of one landing step. */
export interface RowContext {
  pipelineId: string;
  topic: string;
  partition: number;
  batchId: string;
  processorVersion: string;
  maxEventBytes: number;
  /** @default the working tree's subjects */
  catalogue?: readonly SubjectDefinition[];
}

/**
 * Validates records and splits them into event rows and dead-letter rows. Pure given its input,
 * so a retried step produces the same rows. Duplicate event ids are detected within the step.
 */
export function buildRows(records: readonly FetchedRecord[], ctx: RowContext): { events: EventRow[]; deadLetters: DeadLetterRow[]; valid: ValidEvent[] } {
  const events: EventRow[] = [];
  // The validated events, parallel to `events` (what a processor's stages take).
  const valid: ValidEvent[] = [];
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
      deadLetters.push(deadLetterRow(record, common, reason, subject, version));
    };
    if (record.value === null) {
      reject(tombstoneReason());
      continue;
    }
    const result = validateEvent(record.value, { maxBytes: ctx.maxEventBytes, headers: record.headers ?? null, ...(ctx.catalogue ? { catalogue: ctx.catalogue } : {}) });
    if (!result.ok) {
      const details = result.reason.details;
      reject(result.reason, details.subject ?? '', details.version ?? 0);
      continue;
    }
    // UUIDs compare case-insensitively (the events column is a UUID: both spellings are one value).
    const idKey = result.event.id.toLowerCase();
    const first = seen.get(idKey);
    if (first !== undefined) {
      reject(duplicateIdReason(result.event.id, { topic: ctx.topic, partition: ctx.partition, offset: String(first) }), result.subject, result.version);
      continue;
    }
    seen.set(idKey, record.offset);
    valid.push(result.event);
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
  return { events, deadLetters, valid };
}

/** A row of `events` holding an id that a step is about to land (see {@link markEarlierLandings}). */
export interface LandedId extends FirstLanding {
  /** The event id, lowercase. */
  id: string;
  batchId: string;
  /** Event time of the landed row, ClickHouse DateTime64 text (UTC). */
  eventTime: string;
}

/** Milliseconds since the epoch of ClickHouse DateTime64 text in UTC (`2026-01-01 12:00:00.000`). */
function clickHouseTimeMs(text: string): number {
  return Date.parse(`${text.replace(' ', 'T')}Z`);
}

/**
 * Moves the step's events whose id already landed for the pipeline (`landed`: rows of `events`
 * found by id, or the winning claims of {@link rankClaims}) to the dead letters as `duplicate_id`,
 * pointing at the row that holds the id. A
 * landed row counts when it sits at another source position (the same offset landed again by a
 * retry, a re-plan or a replay is not a duplicate of itself) and its event time is within
 * `windowMs` of the event's. When several qualify, the first in `landed`'s order (the caller
 * orders by landing time, then position) is named. In-step duplicates of an id that turns out to
 * be a repeat are re-pointed at the same landed row. Pure: the same rows and `landed` give the
 * same result, so a retried step inserts the same blocks.
 */
export function markEarlierLandings(
  rows: { events: EventRow[]; deadLetters: DeadLetterRow[]; valid: ValidEvent[] },
  records: readonly FetchedRecord[],
  landed: readonly LandedId[],
  windowMs: number,
): { events: EventRow[]; deadLetters: DeadLetterRow[]; valid: ValidEvent[]; repeats: number } {
  if (landed.length === 0) return { ...rows, repeats: 0 };
  const byId = new Map<string, LandedId[]>();
  for (const l of landed) {
    const list = byId.get(l.id);
    if (list) list.push(l);
    else byId.set(l.id, [l]);
  }
  const byOffset = new Map(records.map((r) => [r.offset, r]));
  const events: EventRow[] = [];
  const valid: ValidEvent[] = [];
  const repeated: DeadLetterRow[] = [];
  const firstOf = new Map<string, LandedId>();
  rows.events.forEach((e, k) => {
    const id = e.event_id.toLowerCase();
    const time = clickHouseTimeMs(e.event_time);
    const first = byId
      .get(id)
      ?.find((l) => !(l.topic === e.topic && l.partition === e.partition && Number(l.offset) === e.offset) && Math.abs(clickHouseTimeMs(l.eventTime) - time) <= windowMs);
    const record = byOffset.get(e.offset);
    if (!first || !record) {
      events.push(e);
      valid.push(rows.valid[k]!);
      return;
    }
    firstOf.set(id, first);
    repeated.push(deadLetterRow(record, e, duplicateIdReason(e.event_id, first, 'pipeline'), e.subject, e.contract_version));
  });
  if (repeated.length === 0) return { ...rows, repeats: 0 };
  const deadLetters = rows.deadLetters.map((d) => {
    if (d.reason_code !== 'duplicate_id') return d;
    const id = String((JSON.parse(d.reason_detail) as { id?: unknown }).id ?? '').toLowerCase();
    const first = firstOf.get(id);
    const record = byOffset.get(d.offset);
    return first && record ? deadLetterRow(record, d, duplicateIdReason(id, first, 'pipeline'), d.subject, d.contract_version) : d;
  });
  deadLetters.push(...repeated);
  deadLetters.sort((a, b) => a.offset - b.offset);
  return { events, deadLetters, valid, repeats: repeated.length };
}

/**
 * One claimant of an event id read back from `event_id_claims`: a source position with the
 * lowest block number among its claims (a retry, re-plan or replay of the same offset claims
 * again; its first claim counts).
 */
export interface IdClaim extends LandedId {
  /** `min(_block_number)` of the position's claims of the id. */
  block: number;
}

/** What {@link rankClaims} decided for a step's events. */
export interface ClaimRanking {
  /** The winning claim of each id the step loses, in the form {@link markEarlierLandings} takes. */
  winners: LandedId[];
  /** Ids (lowercase) of step events whose own claim is not among `claims`. */
  missing: string[];
}

/**
 * The rank rule of the claims check: for each event of a step, the claims of its id (read back
 * after the step's own claim insert) whose event time is within `windowMs` of the event's compete;
 * the first by (block, topic, partition, offset) owns the id. The step keeps the event when that is
 * its own position; otherwise the winner goes to `winners` (the event becomes a `duplicate_id`
 * dead letter pointing at it). Why it is exact: a plain MergeTree numbers blocks from one counter
 * as parts are committed, so any claim with a lower block than the step's own was committed before
 * it and is among `claims`; every claimant therefore agrees on the first. Ties happen only within
 * one block (the migration's backfill). An event whose own position is absent from `claims` is
 * listed in `missing` (the caller fails the attempt, retriably). Pure.
 */
export function rankClaims(events: readonly EventRow[], claims: readonly IdClaim[], windowMs: number): ClaimRanking {
  const byId = new Map<string, IdClaim[]>();
  for (const c of claims) {
    const list = byId.get(c.id);
    if (list) list.push(c);
    else byId.set(c.id, [c]);
  }
  const winners: LandedId[] = [];
  const missing: string[] = [];
  for (const e of events) {
    const id = e.event_id.toLowerCase();
    const time = clickHouseTimeMs(e.event_time);
    const own = (c: IdClaim): boolean => c.topic === e.topic && c.partition === e.partition && Number(c.offset) === e.offset;
    let first: IdClaim | undefined;
    let mine = false;
    for (const c of byId.get(id) ?? []) {
      if (own(c)) mine = true;
      else if (Math.abs(clickHouseTimeMs(c.eventTime) - time) > windowMs) continue;
      if (!first || compareClaims(c, first) < 0) first = c;
    }
    if (!mine) missing.push(id);
    else if (first && !own(first)) winners.push({ id, topic: first.topic, partition: first.partition, offset: first.offset, batchId: first.batchId, eventTime: first.eventTime });
  }
  return { winners, missing };
}

/** Order of claims: block number, then topic, partition, offset. */
function compareClaims(a: IdClaim, b: IdClaim): number {
  if (a.block !== b.block) return a.block - b.block;
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  if (a.partition !== b.partition) return a.partition - b.partition;
  return Number(a.offset) - Number(b.offset);
}

/** The dead-letter row of `record` with `reason`, stamped like `common` (a row of the same step). */
function deadLetterRow(
  record: FetchedRecord,
  common: Pick<EventRow, 'pipeline' | 'batch_id' | 'topic' | 'partition' | 'offset' | 'processor_version' | 'kafka_timestamp'>,
  reason: DeadLetterReason,
  subject: string,
  version: number,
): DeadLetterRow {
  return {
    pipeline: common.pipeline,
    batch_id: common.batch_id,
    topic: common.topic,
    partition: common.partition,
    offset: common.offset,
    processor_version: common.processor_version,
    kafka_timestamp: common.kafka_timestamp,
    reason_code: reason.code,
    reason_message: reason.message,
    reason_detail: JSON.stringify(reason.details),
    subject,
    contract_version: version,
    message_key: record.key ? record.key.toString('utf8') : '',
    ...rawText(record.value),
    raw_bytes: record.value?.byteLength ?? 0,
  };
}

/** Most raw batch bytes kept in a dead-letter row of an undecodable batch (base64 in `raw`). */
export const undecodableRawCapBytes = 1024 * 1024;

/**
 * The dead-letter rows of the offsets `[p.from, p.to)` of a permanently undecodable batch
 * (reason `undecodable_batch`). The first offset of the span carries the stored batch, header
 * included, base64 in `raw` (at most {@link undecodableRawCapBytes}; `raw_bytes` is the whole
 * batch's size, `rawTruncated` says when it was cut); the others point at it (`rawAtOffset`).
 * Every row's detail has the base offset, the claimed last offset, the record count, the codec
 * and the cause. Pure, so a retried step inserts the same rows.
 */
export function undecodableBatchRows(p: PoisonBatch, ctx: Omit<RowContext, 'maxEventBytes' | 'catalogue'>): DeadLetterRow[] {
  const rows: DeadLetterRow[] = [];
  const truncated = p.bytes.length > undecodableRawCapBytes;
  for (let offset = p.from; offset < p.to; offset++) {
    const carrier = offset === p.from;
    const reason = undecodableBatchReason(`record batch at offset ${p.baseOffset} cannot be decoded: ${p.message}`, {
      baseOffset: String(p.baseOffset),
      lastOffset: String(p.lastOffset),
      recordCount: p.recordCount,
      codec: p.codec,
      cause: p.cause,
      batchBytes: p.bytes.length,
      rawAtOffset: String(p.from),
      ...(carrier && truncated ? { rawTruncated: true } : {}),
    });
    rows.push({
      pipeline: ctx.pipelineId,
      batch_id: ctx.batchId,
      topic: ctx.topic,
      partition: ctx.partition,
      offset,
      reason_code: reason.code,
      reason_message: reason.message,
      reason_detail: JSON.stringify(reason.details),
      subject: '',
      contract_version: 0,
      message_key: '',
      raw: carrier ? p.bytes.subarray(0, undecodableRawCapBytes).toString('base64') : '',
      raw_encoding: 'base64',
      raw_bytes: carrier ? p.bytes.length : 0,
      kafka_timestamp: toClickHouseTime(p.timestamp),
      processor_version: ctx.processorVersion,
    });
  }
  return rows;
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
  /** Reads ranges from raw Fetch responses, CRC-checked (the primary reader unless SASL is configured). */
  readonly rawReader: RawRangeReader;
  /** True when the Kafka connection uses SASL, which only KafkaJS speaks: ranges are then read by KafkaJS. */
  readonly sasl: boolean;
  private adminPromise: Promise<Admin> | null = null;

  /** `raw`: how the raw reader reaches the brokers (TLS, SASL as configured for KafkaJS). @default plaintext */
  constructor(
    private readonly kafka: Kafka,
    log: Logger = silentLogger,
    raw: RawRangeReaderOptions = {},
  ) {
    registerKafkaCodecs();
    this.fetcher = new KafkaRangeFetcher(kafka, { log: (line) => log.warn(line) });
    this.committer = new GroupOffsetCommitter(kafka, () => this.admin());
    this.rawReader = new RawRangeReader(() => this.admin(), raw);
    this.sasl = raw.sasl ?? false;
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
  const processingRuntime = deps.processing ?? createProcessingRuntime({ warehouse: deps.warehouse, log });
  const resources = deps.resources ?? new KafkaResources(deps.kafka, log);
  const { fetcher, committer, rawReader } = resources;
  const admin = () => resources.admin();
  const chunkMaxBytes = deps.chunkMaxBytes ?? 8 * 1024 * 1024;
  const fetchTimeoutMs = deps.fetchTimeoutMs ?? 60_000;
  const rangeReader: 'raw' | 'kafkajs' = resources.sasl ? 'kafkajs' : (deps.rangeReader ?? 'raw');
  if (resources.sasl && deps.rangeReader !== 'kafkajs') log.info('Kafka uses SASL, which the raw reader does not speak: ranges are read by KafkaJS, without CRC-32C checks');
  const catalogue = deps.catalogue ?? treeProcessors;
  const liveness = deps.temporal ? new RolloutLiveness(deps.temporal) : null;
  const stale = new Set<string>();
  const duplicateIdCheck = deps.duplicateIdCheck ?? 'claims';

  /** The routing of a batch: the latest published row, unless its rollout is no longer running. */
  async function plannedRouting(pipelineId: string, processor: ProcessorSelection, row: RoutingRow | null): Promise<PlannedRouting | null> {
    const routing = routingForBatch(row, processor, catalogue, log);
    if (!routing || !liveness) return routing;
    if (await liveness.isRunning(routing.rolloutId)) {
      stale.delete(routing.rolloutId);
      return routing;
    }
    if (!stale.has(routing.rolloutId)) {
      stale.add(routing.rolloutId);
      log.warn('rollout routing ignored: the rollout that published it is no longer running (terminated?); batches run the baseline', { pipeline: pipelineId, rolloutId: routing.rolloutId, epoch: routing.epoch, mode: routing.mode });
    }
    return null;
  }

  async function watermarks(topic: string, partition: number): Promise<{ low: number; high: number }> {
    const offsets = await (await admin()).fetchTopicOffsets(topic);
    const p = offsets.find((o) => o.partition === partition);
    if (!p) throw new InvalidInputError(`topic ${topic}: expected partition ${partition}, found partitions ${offsets.map((o) => o.partition).join(', ')}`);
    return { low: Number(p.low), high: Number(p.high) };
  }

  return {
    ...createReplayActivities({ warehouse: deps.warehouse, admin, log }),
    /** Creates the topic when missing (with `max.message.bytes` sized for `maxEventBytes`); returns its partition numbers. */
    async ensureTopic(input: EnsureTopicInput): Promise<{ partitions: number[]; created: boolean }> {
      const a = await admin();
      const existing = await a.listTopics();
      let created = false;
      if (!existing.includes(input.topic)) {
        const configEntries = input.maxEventBytes ? [{ name: 'max.message.bytes', value: String(topicMaxMessageBytes(input.maxEventBytes)) }] : [];
        created = await a.createTopics({ topics: [{ topic: input.topic, numPartitions: input.partitions, configEntries }], waitForLeaders: true });
        log.info('created topic', { topic: input.topic, partitions: input.partitions, ...(configEntries[0] ? { maxMessageBytes: configEntries[0].value } : {}) });
      }
      const metadata = await a.fetchTopicMetadata({ topics: [input.topic] });
      const partitions = (metadata.topics[0]?.partitions ?? []).map((p) => p.partitionId).sort((x, y) => x - y);
      return { partitions, created };
    },

    /**
     * Plans the next batch: `[from, min(high watermark, from + maxEvents))`, cut into steps of
     * about `chunkMaxBytes` each (estimated from `recordBytes`), each with its de-duplication
     * token. The result is recorded in the workflow's history, so every landing attempt of the
     * batch uses these steps, whatever worker runs it. Heartbeats every 0.5 s while it runs (its
     * heartbeat timeout is 2 s, so a lost attempt is retried within 2 s).
     */
    planBatch: heartbeating(async (input: PlanBatchInput): Promise<BatchPlan> => {
      // The routing read (processor pipelines only) overlaps the Kafka round trips; an empty batch ignores it.
      const routingRow = input.processor ? latestRouting(deps.warehouse, input.pipelineId) : null;
      routingRow?.catch(() => undefined);
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
      let to = Math.min(high, from + input.maxEvents);
      if (from > high) {
        // The log is shorter than the cursor (topic re-created?): wait rather than invent offsets.
        log.warn('cursor beyond high watermark', { topic: input.topic, partition: input.partition, cursor: from, high });
        to = from;
      }
      const generation = 0;
      // A rollout's routing applies only to batches with events and a processor (its baseline).
      const routing = to > from && input.processor && routingRow ? await plannedRouting(input.pipelineId, input.processor, await routingRow) : null;
      return {
        pipelineId: input.pipelineId,
        topic: input.topic,
        partition: input.partition,
        from,
        to,
        generation,
        batchId: planBatchId(input.pipelineId, input.topic, input.partition, from, to, generation),
        steps: cutSteps(input.pipelineId, input.topic, input.partition, from, to, generation, stepEventsFor(chunkMaxBytes, input.recordBytes)),
        highWatermark: high,
        lowWatermark: low,
        source,
        ...(routing ? { routing } : {}),
      };
    }),

    /**
     * Lands exactly the planned batch: step by step, fetches the step's offsets, validates,
     * inserts valid rows into `events` and rejects into `dead_letters` under the step's token
     * (offsets already present from an earlier landing are left out), then writes one
     * `lineage_batches` row. Heartbeats after each step and resumes at the first step not done.
     * Throws a non-retryable `invalid_input` failure for a malformed plan.
     */
    async landBatch(input: LandBatchInput): Promise<LandBatchResult> {
      try {
        return await land(input);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /** Commits `offset` as the pipeline group's position on the partition. Heartbeats every 0.5 s while it runs. */
    commitProgress: heartbeating(async (input: CommitProgressInput): Promise<void> => {
      await committer.commit(input.consumerGroup, input.topic, input.partition, input.offset);
    }),
  };

  /** Offsets of `[step.from, step.to)` already in `events` and in `dead_letters` for this pipeline. */
  async function presentOffsets(plan: BatchPlanSteps, step: BatchStep): Promise<{ events: Set<number>; deadLetters: Set<number> }> {
    const result = await deps.warehouse.query({
      query: `SELECT 'e' AS t, offset FROM events WHERE pipeline = {p:String} AND topic = {topic:String} AND partition = {n:UInt32} AND offset >= {from:UInt64} AND offset < {to:UInt64}
              UNION ALL
              SELECT 'd' AS t, offset FROM dead_letters WHERE pipeline = {p:String} AND topic = {topic:String} AND partition = {n:UInt32} AND offset >= {from:UInt64} AND offset < {to:UInt64}`,
      query_params: { p: plan.pipelineId, topic: plan.topic, n: plan.partition, from: step.from, to: step.to },
      format: 'JSONCompactEachRow',
    });
    const events = new Set<number>();
    const deadLetters = new Set<number>();
    for (const [t, o] of await result.json<[string, string | number]>()) (t === 'e' ? events : deadLetters).add(Number(o));
    return { events, deadLetters };
  }

  /**
   * Rows of `events` for the pipeline holding one of `rows`' ids, with an event time within
   * `windowMs` of the step's event times: one parameterised query per step (the `event_id` bloom
   * filter index of migration 030 keeps it from reading every granule of the pipeline). Ordered by
   * landing time, then position, so the first landing comes first.
   */
  async function landedIds(plan: BatchPlanSteps, rows: readonly EventRow[], windowMs: number): Promise<LandedId[]> {
    if (rows.length === 0) return [];
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of rows) {
      const t = Date.parse(`${r.event_time.replace(' ', 'T')}Z`);
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    const ids = [...new Set(rows.map((r) => r.event_id.toLowerCase()))];
    const result = await deps.warehouse.query({
      query: `SELECT lower(toString(event_id)) AS id, topic, partition, toString(offset) AS offset, batch_id AS batchId, toString(event_time) AS eventTime
              FROM events
              WHERE pipeline = {p:String} AND event_id IN {ids:Array(UUID)}
                AND event_time >= {lo:DateTime64(3, 'UTC')} AND event_time <= {hi:DateTime64(3, 'UTC')}
              ORDER BY ingested_at, topic, partition, offset`,
      query_params: { p: plan.pipelineId, ids, lo: toClickHouseTime(lo - windowMs), hi: toClickHouseTime(hi + windowMs) },
      format: 'JSONEachRow',
    });
    return (await result.json<LandedId>()).map((l) => ({ ...l, partition: Number(l.partition) }));
  }

  /** Logs the batches of a read that become `undecodable_batch` dead letters. */
  function warnPoison(plan: BatchPlanSteps, poison: readonly PoisonBatch[] | undefined): void {
    if (!poison || poison.length === 0) return;
    log.warn('undecodable record batch becomes dead letters', {
      topic: plan.topic,
      partition: plan.partition,
      batches: poison.map((p) => ({ baseOffset: p.baseOffset, from: p.from, to: p.to, cause: p.cause })),
    });
  }

  /**
   * The claims check of a step (see {@link rankClaims}): inserts one claim per event of `rows`
   * into `event_id_claims` under a token derived from the step's (the same rows give the same
   * token, so a retry is de-duplicated and keeps its block), then reads back, in one query, every
   * claimant of the ids with an event time within `windowMs` of the step's event times. Returns
   * the winners of the ids the step loses. Throws a retriable `claim_missing` PlatformError when
   * the step's own claim is not visible after its insert.
   */
  async function claimIds(plan: BatchPlanSteps, step: BatchStep, batchId: string, rows: readonly EventRow[], windowMs: number): Promise<LandedId[]> {
    if (rows.length === 0) return [];
    const claims = rows.map((r) => ({ pipeline: r.pipeline, event_id: r.event_id, event_time: r.event_time, topic: r.topic, partition: r.partition, offset: r.offset, batch_id: batchId }));
    const digest = createHash('sha256')
      .update(claims.map((c) => `${c.offset}:${c.event_id.toLowerCase()}`).join(','))
      .digest('hex')
      .slice(0, 16);
    await inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'event_id_claims', 'streamwarden.rows': claims.length }, () =>
      deps.warehouse.insert({ table: 'event_id_claims', values: claims, format: 'JSONEachRow', clickhouse_settings: dedup(`${step.token}/claims-${digest}`) }),
    );
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of rows) {
      const t = clickHouseTimeMs(r.event_time);
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    const ids = [...new Set(rows.map((r) => r.event_id.toLowerCase()))];
    const result = await deps.warehouse.query({
      query: `SELECT lower(toString(event_id)) AS id, topic, partition, toString(offset) AS offset, toString(min(_block_number)) AS block,
                     argMin(batch_id, _block_number) AS batchId, toString(min(event_time)) AS eventTime
              FROM event_id_claims
              WHERE pipeline = {p:String} AND event_id IN {ids:Array(UUID)}
                AND event_time >= {lo:DateTime64(3, 'UTC')} AND event_time <= {hi:DateTime64(3, 'UTC')}
              GROUP BY event_id, topic, partition, offset`,
      query_params: { p: plan.pipelineId, ids, lo: toClickHouseTime(lo - windowMs), hi: toClickHouseTime(hi + windowMs) },
      format: 'JSONEachRow',
    });
    const read = (await result.json<Omit<IdClaim, 'block' | 'partition'> & { block: string; partition: number | string }>()).map((c) => ({ ...c, partition: Number(c.partition), block: Number(c.block) }));
    const { winners, missing } = rankClaims(rows, read, windowMs);
    if (missing.length > 0) {
      throw new PlatformError(
        'claim_missing',
        `batch ${batchId}, step [${step.from}, ${step.to}): expected the step's own claims of ${missing.length} event id(s) in event_id_claims right after inserting them, found none for ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}`,
        true,
      );
    }
    return winners;
  }

  /**
   * Reads every record of the step (several byte-capped fetches when needed).
   *
   * With the raw reader (`rangeReader` 'raw', the default): every batch's CRC-32C is verified;
   * batches that are permanently undecodable (CRC mismatch, records that do not decompress or
   * parse) are returned as `poison` (their offsets become `undecodable_batch` dead letters). When
   * it cannot decide (codec missing on this worker, broker down) it throws a retriable
   * RangeReadError; an open transaction past the deadline is a retriable RangeIncompleteError.
   *
   * With KafkaJS ('kafkajs', forced under SASL): no CRC check. When the KafkaJS consumer crashes
   * or stalls on the range, the rest of the step is re-read by the raw reader as above; once that
   * happened in a landing (`mode.raw`), its later steps are read by the raw reader directly (each
   * KafkaJS crash costs its retries and a new consumer). The raw reader returns the same records
   * as KafkaJS (checked in test/integration/codecs.test.ts).
   */
  async function fetchStep(plan: BatchPlanSteps, step: BatchStep, signal: AbortSignal, mode: { raw: boolean }): Promise<{ records: FetchedRecord[]; bytes: number; poison: PoisonBatch[] }> {
    const records: FetchedRecord[] = [];
    const poison: PoisonBatch[] = [];
    let bytes = 0;
    let next = step.from;
    while (next < step.to) {
      let chunk: { records: FetchedRecord[]; next: number; bytes: number; poison?: PoisonBatch[] };
      if (rangeReader === 'raw') {
        try {
          chunk = await rawReader.read(plan.topic, plan.partition, next, step.to, chunkMaxBytes, { deadline: Date.now() + fetchTimeoutMs, signal });
        } catch (err) {
          if (err instanceof RawReadError) throw new RangeReadError(plan.topic, plan.partition, next, err, { undecodable: err.undecodable });
          throw err;
        }
        warnPoison(plan, chunk.poison);
      } else {
        try {
          if (mode.raw) throw new RangeReadError(plan.topic, plan.partition, next, new Error('an earlier step of this landing was not readable by KafkaJS'), { undecodable: false });
          chunk = await fetcher.fetch(plan.topic, plan.partition, next, step.to, { deadline: Date.now() + fetchTimeoutMs, maxBytes: chunkMaxBytes, signal });
        } catch (err) {
          if (!(err instanceof RangeReadError || err instanceof RangeIncompleteError)) throw err;
          try {
            chunk = await rawReader.read(plan.topic, plan.partition, next, step.to, chunkMaxBytes, { deadline: Date.now() + fetchTimeoutMs, signal });
          } catch (rawErr) {
            // Not decidable here (codec missing on this worker, broker down, SASL): the consumer's error, retriable.
            log.warn('raw re-read of the range did not isolate a batch', { topic: plan.topic, partition: plan.partition, offset: next, reason: (rawErr as Error).message });
            const undecodable = rawErr instanceof RawReadError && rawErr.undecodable;
            if (undecodable || mode.raw) throw new RangeReadError(plan.topic, plan.partition, next, rawErr, { undecodable });
            throw err;
          }
          mode.raw = true;
          warnPoison(plan, chunk.poison);
        }
      }
      if (chunk.next <= next) throw new PlatformError('range_stalled', `fetch ${plan.topic}[${plan.partition}] made no progress at offset ${next}`, true);
      for (const r of chunk.records) records.push(r);
      if (chunk.poison) poison.push(...chunk.poison);
      bytes += chunk.bytes;
      next = chunk.next;
    }
    return { records, bytes, poison };
  }

  async function land(input: LandBatchInput): Promise<LandBatchResult> {
    const parsed = batchPlanSchema.safeParse(input.plan);
    if (!parsed.success) throw new InvalidInputError(describeInputError('landBatch plan', parsed.error, input.plan));
    const plan = parsed.data;
    const { pipelineId, topic, partition, from, to } = plan;
    const ctx = Context.current();
    const began = Date.now();
    const id = plan.batchId;
    const windowMs = (input.duplicateIdWindowMinutes ?? defaultDuplicateIdWindowMinutes) * 60_000;
    if (!(Number.isInteger(windowMs) && windowMs >= 0)) {
      throw new InvalidInputError(`landBatch duplicateIdWindowMinutes: expected a whole number of minutes >= 0, got ${JSON.stringify(input.duplicateIdWindowMinutes)}`);
    }
    const resumed = ctx.info.heartbeatDetails as Partial<LandingProgress> | undefined;
    const progress: LandingProgress =
      resumed?.batchId === id && typeof resumed.stepsDone === 'number' && resumed.stepsDone >= 0 && resumed.stepsDone <= plan.steps.length
        ? (resumed as LandingProgress)
        : { batchId: id, stepsDone: 0, valid: 0, rejected: 0, alreadyLanded: 0, bytes: 0, versions: [], codes: {}, minEventTime: null, maxEventTime: null, startedAt: toClickHouseTime(Date.now()) };
    if (progress.stepsDone > 0) log.info('landing resumes from heartbeat', { batchId: id, step: progress.stepsDone, of: plan.steps.length });
    // The processor and flags come from the plan in history, never from this worker's configuration.
    let processing: { scope: Omit<ProcessingScope, 'batchFrom'>; ref: string; flagsJson: string } | null = null;
    if (plan.processor) {
      let resolved;
      try {
        resolved = resolveSelection(plan.processor, catalogue);
      } catch (err) {
        // Another worker (a newer deployment) may know the version: retry, visibly.
        throw new PlatformError('processor_unavailable', `batch ${id}: ${(err as Error).message}`, true);
      }
      await processingRuntime.ensureTables(resolved.processor);
      processing = {
        scope: { pipelineId, topic, partition, batchId: id, processor: resolved.processor, flags: resolved.flags },
        ref: `${plan.processor.name}@${plan.processor.version}`,
        flagsJson: JSON.stringify(resolved.flags),
      };
    }
    // The canary of a routed batch, as planned: live tables in weight mode, shadow tables in shadow mode.
    let canary: { scope: Omit<ProcessingScope, 'batchFrom'>; ref: string; mode: 'shadow' | 'weight'; percent: number } | null = null;
    if (processing && plan.routing) {
      const routing = plan.routing;
      let resolved;
      try {
        resolved = resolveSelection(routing.canary, catalogue);
      } catch (err) {
        throw new PlatformError('processor_unavailable', `batch ${id}: canary of ${routing.rolloutId}: ${(err as Error).message}`, true);
      }
      const definition = routing.mode === 'shadow' ? shadowProcessor(resolved.processor) : resolved.processor;
      await processingRuntime.ensureTables(definition);
      canary = {
        scope: { pipelineId, topic, partition, batchId: id, processor: definition, flags: resolved.flags },
        ref: `${routing.canary.name}@${routing.canary.version}`,
        mode: routing.mode,
        percent: routing.percent,
      };
    }
    // Reading with KafkaJS, set when KafkaJS could not read a step: the rest of this landing is read by the raw reader.
    const readMode = { raw: false };
    // Every 0.5 s: the workflow's heartbeat timeout is 2 s, and heartbeats deliver cancellation.
    const beat = setInterval(() => ctx.heartbeat(progress), 500);
    try {
      for (let i = progress.stepsDone; i < plan.steps.length; i++) {
        // Cancellation (pipeline stop, pause) takes effect here, between steps: never half a step.
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new CancelledFailure('landing cancelled');
        const step = plan.steps[i]!;
        const { records, bytes, poison } = await inSpan(
          'fetch',
          { 'messaging.system': 'kafka', 'messaging.destination.name': topic, 'messaging.destination.partition.id': String(partition), 'streamwarden.from_offset': step.from, 'streamwarden.to_offset': step.to },
          () => fetchStep(plan, step, ctx.cancellationSignal, readMode),
        );
        const built = inSpanSync('validate', { 'streamwarden.records': records.length }, () =>
          buildRows(records, { pipelineId, topic, partition, batchId: id, processorVersion: deps.processorVersion, maxEventBytes: input.maxEventBytes, ...(deps.contracts ? { catalogue: deps.contracts } : {}) }),
        );
        // Ids that already landed (or are claimed) for the pipeline, any partition, become
        // duplicate_id dead letters. The duplicate check and the present-offsets read are
        // independent: they run side by side.
        const duplicates = windowMs === 0 ? Promise.resolve([]) : duplicateIdCheck === 'claims' ? claimIds(plan, step, id, built.events, windowMs) : landedIds(plan, built.events, windowMs);
        const [landed, present] = await Promise.all([duplicates, presentOffsets(plan, step)]);
        const rows = windowMs > 0 ? markEarlierLandings(built, records, landed, windowMs) : built;
        if (poison.length > 0) {
          rows.deadLetters.push(...poison.flatMap((p) => undecodableBatchRows(p, { pipelineId, topic, partition, batchId: id, processorVersion: deps.processorVersion })));
          rows.deadLetters.sort((a, b) => a.offset - b.offset);
        }
        deps.observer?.validated({ pipelineId, topic }, rows.events, Date.now());
        const events = rows.events.filter((r) => !present.events.has(r.offset));
        const deadLetters = rows.deadLetters.filter((r) => !present.deadLetters.has(r.offset) && !present.events.has(r.offset));
        // Both inserts at once: each carries its own token, so a retry after either failed repeats
        // both and the one that landed is dropped as a duplicate block (and skipped by `present`).
        await Promise.all([
          events.length === 0
            ? undefined
            : inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'events', 'streamwarden.rows': events.length }, () =>
                deps.warehouse.insert({ table: 'events', values: events, format: 'JSONEachRow', clickhouse_settings: dedup(rowsToken(step.token, events, rows.events.length)) }),
              ).then(() => deps.observer?.queryable({ pipelineId, topic }, events, Date.now())),
          deadLetters.length === 0
            ? undefined
            : inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'dead_letters', 'streamwarden.rows': deadLetters.length }, () =>
                deps.warehouse.insert({
                  table: 'dead_letters',
                  values: deadLetters,
                  format: 'JSONEachRow',
                  clickhouse_settings: dedup(`${rowsToken(step.token, deadLetters, rows.deadLetters.length)}/dead_letters`),
                }),
              ),
        ]);
        if (processing) {
          const scope = { ...processing.scope, batchFrom: from };
          const sources: SourceEvent[] = rows.events.map((e, k) => ({ offset: e.offset, subject: e.subject, contractVersion: e.contract_version, event: rows.valid[k]! }));
          const byOffset = new Map(records.map((r) => [r.offset, r]));
          const eventByOffset = new Map(rows.events.map((e) => [e.offset, e]));
          const range = { from: step.from, to: step.to };
          const timed = canary !== null;
          // Weight: a stable hash of the event key picks the version, so a key stays on one version.
          const weight = canary?.mode === 'weight' ? canary.percent : null;
          const canaryKeys = weight === null ? null : new Set(rows.events.filter((e) => onCanary(e.event_key, weight)).map((e) => e.offset));
          const roles: RoleStep[] = [];
          /** Processes `group` with one version into the live outputs (rows, dead letters, counters). */
          const runLive = async (runScope: ProcessingScope, ref: string, group: SourceEvent[], token: string, role: RoleStep['role']): Promise<void> => {
            const processed = await inSpan('process', { 'streamwarden.processor': ref, 'streamwarden.records': group.length }, () => processingRuntime.process(runScope, group, { timed }));
            await inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'processor_outputs', 'streamwarden.rows': processed.emitted }, () =>
              processingRuntime.write(runScope, processed, token, range),
            );
            const processingDeadLetters = processed.failures
              .map((f) => processingDeadLetter(byOffset.get(f.offset)!, f, eventByOffset.get(f.offset), { pipelineId, topic, partition, batchId: id, processorVersion: deps.processorVersion }))
              .filter((d) => !present.deadLetters.has(d.offset));
            if (processingDeadLetters.length > 0) {
              await deps.warehouse.insert({
                table: 'dead_letters',
                values: processingDeadLetters,
                format: 'JSONEachRow',
                clickhouse_settings: dedup(`${rowsToken(token, processingDeadLetters, processed.failures.length)}/processing_dead_letters`),
              });
            }
            // A replay (generation > 0) that now processes without failure an offset whose event
            // landed before with a processor-failure dead letter: recorded, so resolveDeadLetters
            // marks that dead letter resolved (the event itself is not landed again).
            if (plan.generation > 0) {
              const failed = new Set(processed.failures.map((f) => f.offset));
              const recovered = group.filter((e) => present.events.has(e.offset) && present.deadLetters.has(e.offset) && !failed.has(e.offset)).map((e) => e.offset);
              if (recovered.length > 0) {
                const digest = createHash('sha256').update(recovered.join(',')).digest('hex').slice(0, 16);
                await deps.warehouse.insert({
                  table: 'processing_recoveries',
                  values: recovered.map((offset) => ({ pipeline: pipelineId, topic, partition, offset, batch_id: id, processor: ref })),
                  format: 'JSONEachRow',
                  clickhouse_settings: dedup(`${token}/processing_recoveries/${digest}`),
                });
              }
            }
            for (const f of processed.failures) progress.codes[f.code] = (progress.codes[f.code] ?? 0) + 1;
            progress.processed = (progress.processed ?? 0) + processed.processed;
            progress.emitted = (progress.emitted ?? 0) + processed.emitted;
            progress.dropped = (progress.dropped ?? 0) + processed.dropped;
            progress.processingFailures = (progress.processingFailures ?? 0) + processed.breakerFailures;
            progress.processingDeadLetters = (progress.processingDeadLetters ?? 0) + processed.failures.length;
            roles.push({ role, processorVersion: ref, events: group.length, processed });
          };
          await runLive(scope, processing.ref, canaryKeys ? sources.filter((e) => !canaryKeys.has(e.offset)) : sources, step.token, 'baseline');
          if (canary && plan.routing) {
            const canaryScope = { ...canary.scope, batchFrom: from };
            if (canaryKeys) {
              const group = sources.filter((e) => canaryKeys.has(e.offset));
              await runLive(canaryScope, canary.ref, group, `${step.token}/canary`, 'canary');
              progress.canaryEvents = (progress.canaryEvents ?? 0) + group.length;
            } else {
              // Shadow: the same events into the shadow tables; nothing reaches the live outputs,
              // dead letters or dedupe state (the judge sees its failures in the observations).
              const shadowed = await inSpan('process', { 'streamwarden.processor': `${canary.ref} (shadow)`, 'streamwarden.records': sources.length }, () =>
                processingRuntime.process(canaryScope, sources, { timed: true }),
              );
              await processingRuntime.write(canaryScope, shadowed, `${step.token}/shadow`, range, { recordDedupe: false });
              roles.push({ role: 'canary', processorVersion: canary.ref, events: sources.length, processed: shadowed });
              progress.canaryEvents = (progress.canaryEvents ?? 0) + sources.length;
            }
            await recordObservations(
              deps.warehouse,
              stepObservations({ routing: plan.routing, pipeline: pipelineId, topic, partition, stepId: step.token, from: step.from, to: step.to, observedAt: new Date().toISOString() }, roles),
            );
          }
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
        progress.insertedEvents = (progress.insertedEvents ?? 0) + events.length;
        progress.alreadyLanded += rows.events.length - events.length + rows.deadLetters.length - deadLetters.length;
        progress.bytes += bytes;
        progress.stepsDone = i + 1;
        ctx.heartbeat(progress);
      }
      const missing = to - from - progress.valid - progress.rejected;
      if (processing && input.change) {
        await deps.warehouse.insert({
          table: 'processor_switches',
          values: [
            {
              pipeline: pipelineId,
              topic,
              partition,
              change: input.change.change,
              from_processor: input.change.from ? `${input.change.from.name}@${input.change.from.version}` : '',
              to_processor: processing.ref,
              from_flags: input.change.from ? JSON.stringify(input.change.from.flags) : '',
              to_flags: processing.flagsJson,
              first_batch_id: id,
              first_offset: from,
              requested_by: input.change.requestedBy,
              reason: input.change.reason,
              requested_at: toClickHouseTime(input.change.requestedAt),
            },
          ],
          format: 'JSONEachRow',
          clickhouse_settings: dedup(`${id}/switch/${input.change.change}`),
        });
      }
      const finishedAtMs = Date.now();
      await inSpan('insert', { 'db.system': 'clickhouse', 'db.collection.name': 'lineage_batches', 'streamwarden.rows': 1 }, () => deps.warehouse.insert({
        table: 'lineage_batches',
        values: [
          {
            pipeline: pipelineId,
            batch_id: id,
            generation: plan.generation,
            topic,
            partition,
            from_offset: from,
            to_offset: to,
            high_watermark: plan.highWatermark ?? null,
            valid_count: progress.valid,
            rejected_count: progress.rejected,
            missing_count: Math.max(0, missing),
            bytes: progress.bytes,
            contract_versions: progress.versions.sort(),
            reject_codes: progress.codes,
            min_event_time: progress.minEventTime,
            max_event_time: progress.maxEventTime,
            processor_version: deps.processorVersion,
            processor: processing?.ref ?? '',
            flags: processing?.flagsJson ?? '',
            processed_count: progress.emitted ?? 0,
            dropped_count: progress.dropped ?? 0,
            processing_failures: progress.processingFailures ?? 0,
            rollout_id: plan.routing?.rolloutId ?? '',
            routing_epoch: plan.routing?.epoch ?? 0,
            routing_mode: plan.routing?.mode ?? '',
            routing_percent: plan.routing?.percent ?? 0,
            canary_processor: plan.routing ? `${plan.routing.canary.name}@${plan.routing.canary.version}` : '',
            canary_events: progress.canaryEvents ?? 0,
            workflow_id: ctx.info.workflowExecution?.workflowId ?? '',
            run_id: ctx.info.workflowExecution?.runId ?? '',
            activity_attempt: ctx.info.attempt,
            started_at: progress.startedAt,
            finished_at: toClickHouseTime(finishedAtMs),
          },
        ],
        format: 'JSONEachRow',
        clickhouse_settings: dedup(`${id}/lineage`),
      }));
      log.debug('batch landed', { batchId: id, valid: progress.valid, rejected: progress.rejected, missing });
      const reportedLanding = input.reportLandingTo !== undefined && progress.valid > 0
        ? await reportLanding(input.reportLandingTo, { partition, from, to, ...lineageFacts(progress.minEventTime, progress.maxEventTime, finishedAtMs) })
        : false;
      return {
        batchId: id,
        valid: progress.valid,
        rejected: progress.rejected,
        missing: Math.max(0, missing),
        bytes: progress.bytes,
        chunks: plan.steps.length,
        alreadyLanded: progress.alreadyLanded,
        insertedEvents: progress.insertedEvents ?? 0,
        durationMs: Date.now() - began,
        processing: processing
          ? { processed: progress.processed ?? 0, emitted: progress.emitted ?? 0, dropped: progress.dropped ?? 0, failures: progress.processingFailures ?? 0, deadLetters: progress.processingDeadLetters ?? 0 }
          : null,
        rejectCodes: { ...progress.codes },
        contractVersions: [...progress.versions].sort(),
        reportedLanding,
      };
    } finally {
      clearInterval(beat);
    }
  }

  /** Sends `batchLanded` to the aggregator; false (and a debug line) when that failed or took too long. */
  async function reportLanding(workflowId: string, landed: BatchLanded): Promise<boolean> {
    const temporal = deps.temporal;
    if (!temporal) return false;
    try {
      await temporal.connection.withDeadline(Date.now() + reportTimeoutMs, () => temporal.workflow.getHandle(workflowId).signal(batchLandedSignalName, landed));
      return true;
    } catch (err) {
      log.debug('landing report not delivered; the workflow sends it', { workflowId, error: (err as Error).message });
      return false;
    }
  }
}

/**
 * Token of a step's insert into one table. The plan's step token when every row of the step is
 * inserted; when some offsets were already present (an earlier landing of the same offsets under
 * other steps), the rest gets a token derived from exactly its offsets. Never the step token for
 * a different row set: after a partially committed multi-part insert, the step token would make
 * ClickHouse drop the parts that never landed.
 */
function rowsToken(stepToken: string, rows: readonly { offset: number }[], built: number): string {
  if (rows.length === built) return stepToken;
  const digest = createHash('sha256').update(rows.map((r) => r.offset).join(',')).digest('hex').slice(0, 16);
  return `${stepToken}/rest-${digest}`;
}

/** The ingest activities. */
export type IngestActivities = ReturnType<typeof createIngestActivities>;
