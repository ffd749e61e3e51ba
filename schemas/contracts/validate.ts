/**
 * Validation of one raw event: size, JSON, envelope, then the contract its envelope names.
 * Every rejection carries a machine-readable reason (a stable code plus details) that lands in the
 * dead-letter table next to the raw bytes, so poison input never blocks a partition.
 * Pure; importable from workflows.
 */
import type { z } from 'zod';
import { findSubject, subjects as treeSubjects, type SubjectDefinition } from './index.js';
import { envelopeSchema, type ValidEvent } from './envelope.js';

/** Stable codes of the reasons an event is rejected. */
export const deadLetterCodes = [
  'malformed_json',
  'not_an_object',
  'unknown_subject',
  'unknown_version',
  'contract_violation',
  'oversized',
  'duplicate_id',
  'tombstone',
  'undecodable_batch',
] as const;

/** One of {@link deadLetterCodes}. */
export type DeadLetterCode = (typeof deadLetterCodes)[number];

/** One problem found by the schema: where (dotted path) and what. */
export interface ValidationIssue {
  path: string;
  message: string;
}

/** Why an event was rejected: a stable code, a sentence for people, details for machines. */
export interface DeadLetterReason {
  code: DeadLetterCode;
  message: string;
  details: {
    issues?: ValidationIssue[];
    subject?: string;
    version?: number;
    knownVersions?: number[];
    bytes?: number;
    maxBytes?: number;
    firstOffset?: string;
    [extra: string]: unknown;
  };
}

/** Outcome of {@link validateEvent}. */
export type ValidationResult =
  | {
      ok: true;
      /** The event with its data at `version` (upcast when a migration is declared). */
      event: ValidEvent;
      subject: string;
      /** The contract version of `event.data` as landed. */
      version: number;
      /** The version the producer wrote; differs from `version` when the event was upcast. */
      writtenVersion: number;
    }
  | { ok: false; reason: DeadLetterReason };

/**
 * Kafka record headers as KafkaJS hands them over (`IHeaders`): used for `subject` and `version`
 * when the envelope does not carry them.
 */
export type RecordHeaders = Readonly<Record<string, string | Uint8Array | readonly (string | Uint8Array)[] | undefined>>;

/** Options of {@link validateEvent}. */
export interface ValidateOptions {
  /** Largest accepted raw size in bytes (UTF-8). */
  maxBytes: number;
  /**
   * The record's Kafka headers. `subject` and `version` headers fill in envelope fields that are
   * absent; the envelope wins when both are present.
   */
  headers?: RecordHeaders | null;
  /**
   * Upcast events of older versions to the latest version reachable through declared migrations.
   * @default true
   */
  upcast?: boolean;
  /** The contract catalogue to validate against. @default the working tree's subjects */
  catalogue?: readonly SubjectDefinition[];
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Converts every zod issue to a dotted path (array indices in brackets), prefixed by `prefix`. */
export function toIssues(error: z.ZodError, prefix = ''): ValidationIssue[] {
  return error.issues.map((issue) => {
    let path = prefix;
    for (const part of issue.path) {
      if (typeof part === 'number') path += `[${part}]`;
      else path += path === '' ? String(part) : `.${String(part)}`;
    }
    return { path: path === '' ? '(root)' : path, message: issue.message };
  });
}

function reject(code: DeadLetterCode, message: string, details: DeadLetterReason['details'] = {}): ValidationResult {
  return { ok: false, reason: { code, message, details } };
}

/**
 * The reason of a tombstone: a Kafka record whose value is null (a delete marker on compacted
 * topics), which is not an event. Distinct from an empty value, which is `malformed_json`.
 */
export function tombstoneReason(): DeadLetterReason {
  return { code: 'tombstone', message: 'expected an event, found a tombstone (a record with a null value)', details: { bytes: 0 } };
}

/**
 * Why the offsets of a record batch that can never be decoded are dead letters: its stored
 * CRC-32C does not match its bytes, or its records do not decompress or parse. `details` carry
 * the batch's base offset, record count, codec and the cause.
 */
export function undecodableBatchReason(message: string, details: DeadLetterReason['details']): DeadLetterReason {
  return { code: 'undecodable_batch', message, details };
}

/**
 * Validates one raw event (bytes as read from Kafka, or a string). Never throws: every outcome is
 * either a valid event (with contract defaults applied) or a reason.
 */
export function validateEvent(raw: Uint8Array | string, opts: ValidateOptions): ValidationResult {
  const bytes = typeof raw === 'string' ? encoder.encode(raw).byteLength : raw.byteLength;
  if (bytes > opts.maxBytes) {
    return reject('oversized', `event is ${bytes} bytes, expected at most ${opts.maxBytes}`, { bytes, maxBytes: opts.maxBytes });
  }
  let text: string;
  try {
    text = typeof raw === 'string' ? raw : decoder.decode(raw);
  } catch {
    return reject('malformed_json', 'expected UTF-8 encoded JSON, found bytes that are not valid UTF-8', { bytes });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return reject('malformed_json', `expected a JSON object, found text that does not parse: ${detail}`, { bytes });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const found = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`;
    return reject('not_an_object', `expected a JSON object (an event envelope), found ${found}`, { bytes });
  }
  const envelope = envelopeSchema.safeParse(withHeaderFields(parsed as Record<string, unknown>, opts.headers));
  if (!envelope.success) {
    const issues = toIssues(envelope.error);
    return reject('contract_violation', `envelope invalid: ${summary(issues)}`, { issues });
  }
  const { subject, version } = envelope.data;
  const definition = findSubject(subject, opts.catalogue ?? treeSubjects);
  if (!definition) {
    return reject('unknown_subject', `no contract for subject "${subject}"`, { subject, version });
  }
  const index = definition.versions.findIndex((v) => v.version === version);
  if (index < 0) {
    const knownVersions = definition.versions.map((v) => v.version);
    return reject(
      'unknown_version',
      `subject "${subject}" has no version ${version}; known versions: ${knownVersions.join(', ')}`,
      { subject, version, knownVersions },
    );
  }
  const data = definition.versions[index]!.schema.safeParse(envelope.data.data);
  if (!data.success) {
    const issues = toIssues(data.error, 'data');
    return reject('contract_violation', `${subject} v${version}: ${summary(issues)}`, { subject, version, issues });
  }
  let landed = data.data;
  let landedVersion = version;
  if (opts.upcast ?? true) {
    // Walk the declared migrations forward; stop at the first version without one.
    for (const next of definition.versions.slice(index + 1)) {
      if (!next.upcast) break;
      let candidate: unknown;
      try {
        candidate = next.upcast(landed);
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        return reject('contract_violation', `${subject}: upcast v${landedVersion} -> v${next.version} failed: ${detail}`, {
          subject,
          version,
          upcastTo: next.version,
        });
      }
      const upcast = next.schema.safeParse(candidate);
      if (!upcast.success) {
        const issues = toIssues(upcast.error, 'data');
        return reject('contract_violation', `${subject}: upcast v${landedVersion} -> v${next.version} produced invalid data: ${summary(issues)}`, {
          subject,
          version,
          upcastTo: next.version,
          issues,
        });
      }
      landed = upcast.data;
      landedVersion = next.version;
    }
  }
  return {
    ok: true,
    event: { ...envelope.data, version: landedVersion, data: landed },
    subject,
    version: landedVersion,
    writtenVersion: version,
  };
}

/** `path: message; ...` for the first issues, then how many more. */
function summary(issues: readonly ValidationIssue[], shown = 5): string {
  const head = issues.slice(0, shown).map((i) => `${i.path}: ${i.message}`).join('; ');
  return issues.length > shown ? `${head}; and ${issues.length - shown} more` : head;
}

function headerText(value: RecordHeaders[string]): string | undefined {
  const first = Array.isArray(value) ? (value as readonly (string | Uint8Array)[])[0] : (value as string | Uint8Array | undefined);
  if (first === undefined) return undefined;
  if (typeof first === 'string') return first;
  try {
    return decoder.decode(first);
  } catch {
    return undefined;
  }
}

/**
 * Fills `subject` / `version` from the Kafka headers when the envelope lacks them. A version
 * header that is not a number stays a string, so the envelope check reports it at `version`.
 */
function withHeaderFields(envelope: Record<string, unknown>, headers: RecordHeaders | null | undefined): Record<string, unknown> {
  if (!headers) return envelope;
  const out = { ...envelope };
  if (out.subject === undefined) {
    const subject = headerText(headers.subject);
    if (subject !== undefined) out.subject = subject;
  }
  if (out.version === undefined) {
    const version = headerText(headers.version);
    if (version !== undefined) out.version = /^\d+$/.test(version.trim()) ? Number(version.trim()) : version;
  }
  return out;
}

/** Where an event id first landed: the source position of the row in `events`. */
export interface FirstLanding {
  topic: string;
  partition: number;
  /** Kafka offset, as a decimal string (UInt64 in ClickHouse). */
  offset: string;
  /** Batch id of the landing (empty when the row was seen earlier in the same step). */
  batchId?: string;
  /** Event time of the first landing, ClickHouse DateTime64 text (UTC). */
  eventTime?: string;
}

/**
 * The reason for an event whose id already landed: earlier in the same step (`scope: "batch"`,
 * found in memory) or in an earlier batch of the same pipeline within its duplicate-id window
 * (`scope: "pipeline"`, found in `events`). `details.firstOffset` / `firstPartition` /
 * `firstTopic` point at the row that holds the id.
 */
export function duplicateIdReason(id: string, first: FirstLanding, scope: 'batch' | 'pipeline' = 'batch'): DeadLetterReason {
  const where = `${first.topic}[${first.partition}] offset ${first.offset}`;
  return {
    code: 'duplicate_id',
    message: scope === 'batch' ? `event id ${id} already seen at ${where} in the same batch` : `event id ${id} already landed at ${where}${first.batchId ? ` (batch ${first.batchId})` : ''}`,
    details: {
      id,
      firstTopic: first.topic,
      firstPartition: first.partition,
      firstOffset: first.offset,
      ...(first.batchId ? { firstBatchId: first.batchId } : {}),
      ...(first.eventTime ? { firstEventTime: first.eventTime } : {}),
      scope,
    },
  };
}
