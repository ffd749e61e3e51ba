/**
 * Validation of one raw event: size, JSON, envelope, then the contract its envelope names.
 * Every rejection carries a machine-readable reason (a stable code plus details) that lands in the
 * dead-letter table next to the raw bytes, so poison input never blocks a partition.
 * Pure; importable from workflows.
 */
import type { z } from 'zod';
import { lookupContract } from './contracts/index.js';
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
  | { ok: true; event: ValidEvent; subject: string; version: number }
  | { ok: false; reason: DeadLetterReason };

/** Options of {@link validateEvent}. */
export interface ValidateOptions {
  /** Largest accepted raw size in bytes (UTF-8). */
  maxBytes: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Converts zod issues to dotted paths (array indices in brackets), prefixed by `prefix`. */
export function toIssues(error: z.ZodError, prefix = ''): ValidationIssue[] {
  return error.issues.slice(0, 20).map((issue) => {
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
  const envelope = envelopeSchema.safeParse(parsed);
  if (!envelope.success) {
    const issues = toIssues(envelope.error);
    return reject('contract_violation', `envelope invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues });
  }
  const { subject, version } = envelope.data;
  const contract = lookupContract(subject, version);
  if (!contract.found) {
    if (contract.reason === 'unknown_subject') {
      return reject('unknown_subject', `no contract for subject "${subject}"`, { subject, version });
    }
    return reject(
      'unknown_version',
      `subject "${subject}" has no version ${version}; known versions: ${contract.knownVersions.join(', ')}`,
      { subject, version, knownVersions: contract.knownVersions },
    );
  }
  const data = contract.schema.safeParse(envelope.data.data);
  if (!data.success) {
    const issues = toIssues(data.error, 'data');
    return reject(
      'contract_violation',
      `${subject} v${version}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { subject, version, issues },
    );
  }
  return { ok: true, event: { ...envelope.data, data: data.data }, subject, version };
}

/** The reason for an event whose id was already seen earlier in the same batch. */
export function duplicateIdReason(id: string, firstOffset: string): DeadLetterReason {
  return {
    code: 'duplicate_id',
    message: `event id ${id} already seen at offset ${firstOffset} in the same batch`,
    details: { firstOffset, id },
  };
}
